"""The pytest plugin end to end: option validation, parametrization, JSON results and the summary table."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from editbench.runner.results import validate_session

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(*args, cwd=ROOT, env_extra=None, timeout=600):
    # one torch thread, as in this process (tests/conftest.py): two threads thrash a 2-core machine under xdist
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=os.environ.get("EDITBENCH_TEST_THREADS", "1"))
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=timeout)


# One process, several pytest sessions: each case's exit code and stderr, as run_pytest gives them (python + torch
# start once, not once per case: ~5-10 s each on CI's 2 cores). For cases that stop before any test runs.
_MANY = """
import contextlib, io, json, sys
import pytest
out = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main(["-p", "no:cacheprovider", *args])
    out.append([int(code), err.getvalue()])
print("\\n@@RESULTS@@" + json.dumps(out))
"""


def run_pytest_many(cases, cwd=ROOT, env_extra=None, timeout=600) -> list[subprocess.CompletedProcess]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=os.environ.get("EDITBENCH_TEST_THREADS", "1"))
    env.update(env_extra or {})
    r = subprocess.run([sys.executable, "-c", _MANY, json.dumps([list(c) for c in cases])], cwd=cwd,
                       capture_output=True, text=True, env=env, timeout=timeout)
    assert "@@RESULTS@@" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    return [subprocess.CompletedProcess(list(c), code, "", err)
            for c, (code, err) in zip(cases, json.loads(r.stdout.split("@@RESULTS@@")[-1]))]

def test_unknown_editor_exits_4_with_did_you_mean():
    r = run_pytest("suites", "-m", "single", "--editor", "ft-cc", "--collect-only", "-q")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "no such editor" in r.stderr and "Did you mean 'ft-c'" in r.stderr


def test_unknown_model_and_dataset_exit_4():
    model, dataset = run_pytest_many([("suites", "--model", "factwrld", "--collect-only", "-q"),
                                      ("suites", "--dataset", "counterfakt", "--collect-only", "-q")])
    assert model.returncode == 4 and "Did you mean 'factworld'" in model.stderr
    assert dataset.returncode == 4 and "Did you mean 'counterfact'" in dataset.stderr


def test_suites_run_from_any_directory_through_the_installed_plugin(tmp_path):
    """A method author's CI: no conftest, no checkout, just the installed package (pytest11 entry point)."""
    reports = tmp_path / "reports"
    r = run_pytest("--pyargs", "editbench.suites", "-m", "single", "--editor", "null", "--model", "tiny-gpt2",
                   "--dataset", "counterfact-1k", "--n-records", "2", "--reports-dir", str(reports),
                   "--thresholds", str(_null_gates(tmp_path)), cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "test_single_edit[null] PASSED" in r.stdout or "1 passed" in r.stdout
    (f,) = reports.glob("editbench-*.json")
    assert validate_session(json.loads(f.read_text())) == []


def _null_gates(tmp_path: Path) -> Path:
    gates = tmp_path / "gates.yaml"
    gates.write_text("single:\n  default:\n    null: {es: {max: 1.0}}\n")
    return gates


def test_default_editors_are_every_registered_editor():
    from editbench import registry
    r = run_pytest("suites", "-m", "single", "--collect-only", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    for name in registry.available():
        assert f"test_single_edit[{name}]" in r.stdout


def _write_dataset(path: Path) -> None:
    recs = [{"case_id": i, "prompt": f"{s} is in the city of", "subject": s, "target_new": "Rome",
             "ground_truth": "Paris", "rephrase_prompt": f"the music of {s} is in", "locality_prompt":
             "a river in the city of", "locality_ground_truth": "Paris"}
            for i, s in enumerate(["France", "the river", "English music"])]
    recs.append({"case_id": 99, "prompt": "Nobody is in", "subject": "Someone", "target_new": "Rome",
                 "ground_truth": "Paris", "rephrase_prompt": "x", "locality_prompt": "y",
                 "locality_ground_truth": "Paris"})  # malformed: subject not in prompt
    path.write_text(json.dumps(recs))


def test_suite_writes_json_and_prints_table(tmp_path):
    data = tmp_path / "tiny.json"
    _write_dataset(data)
    gates = tmp_path / "gates.yaml"
    gates.write_text("single:\n  default:\n    null: {es: {max: 1.0}}\n    ft: {es: {min: 0.0}}\n")
    reports = tmp_path / "reports"
    r = run_pytest("suites", "-m", "single", "--model", "tiny-gpt2", "--dataset", str(data), "--editor", "null",
                   "--editor", "ft", "--thresholds", str(gates), "--reports-dir", str(reports),
                   "--hparam", "ft.num_steps=3")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "editbench results" in r.stdout and "| single" in r.stdout
    files = list(reports.glob("editbench-*.json"))
    assert len(files) == 1
    payload = json.loads(files[0].read_text())
    assert validate_session(payload) == []  # every result in the one versioned schema
    results = {res["provenance"]["editor"]["name"]: res for res in payload["results"]}
    assert set(results) == {"null", "ft"}
    ft = results["ft"]
    prov = ft["provenance"]
    assert prov["editor"]["hparams"]["num_steps"] == 3 and ft["experiment"]["hparams"] == {"num_steps": 3}
    assert prov["model"]["id"] == "tiny-gpt2" and len(prov["model"]["hash"]) == 64
    assert sorted(prov["dataset"]["record_ids"]) == ["0", "1", "2"] and ft["n"] == 3
    assert any("99" in e and "subject" in e for e in ft["record_errors"])  # reported, the session went on
    assert "malformed record(s) were skipped" in r.stdout  # ... and said so in the terminal
    assert prov["versions"]["torch"] and prov["seed"] == 0 and ft["timings"]["apply_s_mean"] is not None
    assert ft["cost"]["apply_s_total"] > 0 and ft["cost"]["peak_rss_mb"] > 50 and "prepare_s" in ft["cost"]
    assert all(rec["restored"] for rec in ft["details"]["per_record"])
    assert results["null"]["metrics"]["es"] == results["null"]["baseline"]["es"]


def test_gpu_marker_skips_with_reason(tmp_path):
    (tmp_path / "test_g.py").write_text("import pytest\n@pytest.mark.gpu\ndef test_x():\n    assert False\n")
    r = run_pytest(str(tmp_path / "test_g.py"), "-rs", cwd=tmp_path)
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert r.returncode == 0 and "needs CUDA" in r.stdout


def test_suites_and_cli_share_the_default_model_and_its_dataset():
    from editbench import DEFAULT_MODEL
    from editbench.cli import build_parser
    from editbench.models.profiles import profile

    assert DEFAULT_MODEL == "smollm2-135m"  # the real model; the fact world is a fixture (docs/factworld.md)
    assert profile("factworld").dataset == "factworld" and profile(DEFAULT_MODEL).dataset == "counterfact"
    a = build_parser().parse_args(["sequential", "--editor", "memit"])
    assert a.model == DEFAULT_MODEL and a.dataset is None


def test_single_suite_passes_on_the_shipped_fact_world(tmp_path):
    """Every built-in editor runs the single-edit suite on the shipped checkpoint against the checked-in gates, with
    no edit raising (a rebuilt checkpoint once broke MEMIT's solve with a dead neuron; tests/test_linalg.py)."""
    reports = tmp_path / "reports"
    # 10 of the gates' 20 records (CI time: ~4 s of the fact world's ~0.4 s/edit per editor, 10 editors)
    r = run_pytest("suites", "-m", "single", "--model", "factworld", "--n-records", "10", "--reports-dir",
                   str(reports), env_extra={"EDITBENCH_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (f,) = reports.glob("editbench-*.json")
    results = {res["provenance"]["editor"]["name"]: res for res in json.loads(f.read_text())["results"]}
    assert {"null", "ft", "ft-c", "rome", "r-rome", "memit"} <= set(results)
    for name, res in results.items():
        assert not res["failures"] and len(res["details"]["per_record"]) == 10, (name, res["failures"])
        assert all(rec["restored"] for rec in res["details"]["per_record"]), name
