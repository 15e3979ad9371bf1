"""A model that cannot be used is one line, once: a usage error (exit 4) before any test runs or weight loads.

Directories made here: a tiny mixture-of-experts model (save_pretrained), a text file, an empty directory, a broken
config.json, an encoder (BERT) config, an unknown model_type, a usable config without weights. The same rules hold
for ``pytest suites --model DIR`` and ``editbench sequential --model DIR`` (:func:`editbench.runner.checks.
check_model_usable`). A usable model with no entry of its own in thresholds.yaml is gated by the defaults.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from editbench.cli import main
from editbench.models.families import build_tiny_family
from editbench.runner import checks
from editbench.runner.experiment import ExperimentError

from test_plugin import run_pytest  # tests/ is on sys.path (rootdir-relative test modules)


def _save(model_type: str, path: Path, weights: bool = True) -> Path:
    model, tok = build_tiny_family(model_type, weight_std=None)
    if weights:
        model.save_pretrained(path)
    else:
        model.config.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    from transformers import BertConfig

    root = tmp_path_factory.mktemp("models")
    d = {"moe": _save("mixtral", root / "moe"), "noweights": _save("llama", root / "noweights", weights=False)}
    d["text"] = root / "model.txt"
    d["text"].write_text("not a model\n")
    d["empty"] = root / "empty"
    d["empty"].mkdir()
    d["broken"] = root / "broken"
    d["broken"].mkdir()
    (d["broken"] / "config.json").write_text('{"model_type": "llama", ')
    d["bert"] = root / "bert"
    BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64).save_pretrained(
        d["bert"])
    d["unknown"] = root / "unknown"
    d["unknown"].mkdir()
    (d["unknown"] / "config.json").write_text(json.dumps({"model_type": "nosucharch", "hidden_size": 8}))
    d["garbled"] = _save("llama", root / "garbled")  # weights that cannot be deserialized (issue 30)
    for f in d["garbled"].glob("*.safetensors"):
        f.write_bytes(b"garbage" * 100)
    return d


NEEDLES = {
    "moe": "mixture-of-experts MLP",
    "noweights": "no weight files",
    "text": "a file, not a model directory",
    "empty": "has no config.json",
    "broken": "config.json is not valid JSON",
    "bert": "not a causal LM decoder",
    "unknown": "model_type is unknown to the installed transformers",
    "garbled": "is not a readable safetensors file",
}


@pytest.fixture
def no_weight_loading(monkeypatch):
    """Any attempt to load weights fails the test: the check must come from the config alone."""
    import transformers

    def refuse(*_a, **_k):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


@pytest.mark.parametrize("kind", sorted(NEEDLES))
def test_check_model_is_one_line(bad, kind, no_weight_loading):
    with pytest.raises(ExperimentError) as e:
        checks.check_model(str(bad[kind]))
    msg = str(e.value)
    assert NEEDLES[kind] in msg and msg.startswith(f"--model {str(bad[kind])!r}") and "\n" not in msg, msg


def test_a_usable_directory_passes(tmp_path, no_weight_loading):
    checks.check_model(str(_save("gemma2", tmp_path / "gemma2")))


@pytest.mark.parametrize("kind", ["moe", "broken", "garbled"])
def test_editbench_sequential_exits_4_with_one_line(bad, kind, capsys, no_weight_loading):
    code = main(["sequential", "--editor", "null", "--model", str(bad[kind])])
    err = capsys.readouterr().err
    assert code == 4 and NEEDLES[kind] in err and len(err.strip().splitlines()) == 1, err


def test_pytest_suites_exit_4_with_one_line_before_any_test(bad):
    r = run_pytest("suites", "-m", "single", "--editor", "null", "--editor", "rome", "--model", str(bad["moe"]))
    assert r.returncode == 4, r.stdout[-2000:] + r.stderr[-2000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and NEEDLES["moe"] in lines[0] and "Traceback" not in r.stdout + r.stderr, r.stderr
    assert "passed" not in r.stdout and "failed" not in r.stdout


def test_a_model_with_no_entry_of_its_own_is_gated_by_the_defaults(tmp_path):
    model_dir = _save("qwen2", tmp_path / "my-qwen2")
    reports = tmp_path / "reports"
    r = run_pytest("suites", "-m", "single", "--editor", "null", "--model", str(model_dir), "--dataset",
                   "counterfact-1k", "--n-records", "2", "--reports-dir", str(reports))
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    (f,) = reports.glob("editbench-*.json")
    (res,) = json.loads(f.read_text())["results"]
    assert res["verdict"] == "pass" and set(res["gates"]) == {"es", "ns"}
    assert all("max_vs_baseline" in g or "min_vs_baseline" in g for g in res["gates"].values())
