"""Every wrong front-end input is a one-line usage error (exit 4) before any model loads, in pytest and the CLI."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editbench.cli import USAGE_ERROR, main
from editbench.runner import checks
from editbench.runner.experiment import ExperimentError, parse_hparams

from test_plugin import run_pytest, run_pytest_many  # tests/ is on sys.path (rootdir-relative test modules)


@pytest.fixture
def bad_json(tmp_path) -> Path:
    p = tmp_path / "invalid.json"
    p.write_text("[{\"case_id\": 1, \"prompt\": ")
    return p


def _cli(capsys, *argv) -> tuple[int, str]:
    code = main(["sequential", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", [
    (["--editor", "romee"], "Did you mean 'rome'"),
    (["--editor", "rome", "--model", "nosuch"], "not in the local Hugging Face cache"),
    (["--editor", "rome", "--model", "factwrld"], "Did you mean 'factworld'"),
    (["--editor", "rome", "--n-edits", "0"], "--n-edits 0"),
    (["--editor", "rome", "--n-edits", "-1"], "--n-edits -1"),
    (["--editor", "memit", "--batch-size", "0"], "--batch-size 0"),
    (["--editor", "memit", "--history-every", "0"], "--history-every 0"),
    (["--editor", "memit", "--checkpoint-every", "0"], "--checkpoint-every 0"),
    (["--editor", "rome", "--samples", "0"], "--samples 0"),
    (["--editor", "rome", "--sample", "10"], "--sample must be an edit order 0..9"),
    (["--editor", "rome", "--device", "banana"], "--device 'banana'"),
    (["--editor", "rome", "--batch-size", "2"], "one request at a time"),
    (["--editor", "rome", "--hparam", "v_lr=1"], "EDITOR.KEY=VALUE"),
    (["--editor", "rome", "--hparam", "rome.nosuch=1"], "no hyperparameter 'nosuch'"),
    (["--editor", "rome", "--hparam", "rome.v_lr=abc"], "expected float"),
    (["--editor", "rome", "--hparam", "romee.v_lr=0.5"], "no editor 'romee'"),
    (["--editor", "rome", "--dataset", "."], "is a directory"),
    (["--editor", "rome", "--dataset", "nosuch.json"], "not a dataset name or an existing file"),
])
def test_cli_usage_errors_before_any_model_loads(capsys, monkeypatch, argv, needle):
    import editbench.models.loader as loader
    monkeypatch.setattr(loader, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    code, err = _cli(capsys, *argv)
    assert code == USAGE_ERROR == 4 and needle in err, err
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback


def test_cli_bad_dataset_file_and_unwritable_out(capsys, bad_json, tmp_path):
    code, err = _cli(capsys, "--editor", "rome", "--model", "tiny-gpt2", "--dataset", str(bad_json))
    assert code == 4 and "invalid.json" in err and len(err.strip().splitlines()) == 1, err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = _cli(capsys, "--editor", "null", "--model", "tiny-gpt2", "--dataset", "counterfact-1k",
                     "--out", str(blocker / "sub"))
    assert code == 4 and "cannot write there" in err and "is a file" in err, err


def test_cli_sample_runs_only_that_edit_order(capsys, tmp_path):
    """--sample S runs edit order S alone (e.g. a second published order beside a finished sample 0)."""
    from editbench.data import load_records
    from editbench.runner.schedule import make_stream

    code = main(["sequential", "--editor", "null", "--model", "tiny-gpt2", "--dataset", "counterfact-1k",
                 "--n-edits", "2", "--history-every", "2", "--sample", "1", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    runs = sorted(p.parent.name for p in tmp_path.rglob("summary.json"))
    assert runs == ["sample_1"]
    summary = json.loads(next(tmp_path.rglob("summary.json")).read_text())
    want = [r.case_id for r in make_stream(load_records("counterfact-1k"), order=summary["order"], sample=1,
                                           n_edits=2)]
    assert summary["sample"] == 1 and summary["provenance"]["dataset"]["record_ids"] == [str(c) for c in want]


def test_cli_more_edits_than_unique_subjects_is_one_line(capsys, tmp_path):
    """The stream needs one unique subject per edit; a pool with too few is a usage error, not a traceback."""
    code, err = _cli(capsys, "--editor", "null", "--model", "tiny-gpt2", "--dataset", "counterfact-1k",
                     "--n-edits", "5000", "--out", str(tmp_path))
    assert code == 4 and "--n-edits 5000" in err and "unique subjects" in err, err
    assert len(err.strip().splitlines()) == 1, err


PYTEST_USAGE = [
    (["--model", "nosuch"], "not in the local Hugging Face cache"),
    (["--n-records", "0"], "--n-records 0"),
    (["--n-records", "-1"], "--n-records -1"),
    (["--hparam", "rome.nosuch=1"], "no hyperparameter 'nosuch'"),
    (["--hparam", "rome.v_lr=abc"], "expected float"),
    (["--hparam", "romee.v_lr=0.5"], "no editor 'romee'"),
    (["--dataset", "."], "is a directory"),
]


def test_pytest_usage_errors():
    """Each case its own pytest session, all in one process (run_pytest_many: one python + torch start)."""
    runs = run_pytest_many([["suites", "-m", "single", "--editor", "rome", *args, "--collect-only", "-q"]
                            for args, _ in PYTEST_USAGE])
    for (args, needle), r in zip(PYTEST_USAGE, runs):
        assert r.returncode == 4 and needle in r.stderr, (args, r.stderr[-2000:])
        assert "Traceback" not in r.stderr, args


def test_pytest_invalid_dataset_file_and_unwritable_reports_dir(tmp_path, bad_json):
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad, unwritable = run_pytest_many([("suites", "-m", "single", "--dataset", str(bad_json), "--collect-only", "-q"),
                                       ("suites", "-m", "single", "--reports-dir", str(blocker / "sub"),
                                        "--collect-only", "-q")])
    assert bad.returncode == 4 and "invalid.json" in bad.stderr, bad.stderr[-2000:]
    assert unwritable.returncode == 4 and "cannot write there" in unwritable.stderr, unwritable.stderr[-2000:]


def test_missing_shared_data_is_one_clear_line_before_the_model(tmp_path):
    empty = tmp_path / "nodata"
    empty.mkdir()
    # ... and the model's default dataset too (no --dataset given), before the model is loaded
    r, default = run_pytest_many([("suites", "-m", "single", "--editor", "null", "--dataset", "counterfact",
                                   "--collect-only", "-q"), ("suites", "-m", "single", "--editor", "null")],
                                 env_extra={"EDITBENCH_DATA_DIR": str(empty)})
    assert r.returncode == 4 and "shared data mirror" in r.stderr and "counterfact-full" in r.stderr, r.stderr
    assert default.returncode == 4 and "the default dataset of --model 'smollm2-135m'" in default.stderr, \
        default.stderr[-2000:]


# -- a fuzz of the option validators: only ExperimentError, never a crash ------------------------------------------
COUNTS = {"tried": 0, "typed error": 0, "accepted": 0}

junk = st.one_of(st.text(max_size=30), st.integers(-10**30, 10**30), st.floats(allow_nan=True), st.none(),
                 st.booleans(), st.lists(st.integers(), max_size=3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["count", "device", "model", "hparam", "hparam_value", "editor"]), value=junk)
def test_option_validators_fuzz(kind, value):
    COUNTS["tried"] += 1
    accepted = True
    try:
        if kind == "count":
            checks.check_count("--n-edits", value)
        elif kind == "device":
            checks.check_device(str(value))
        elif kind == "model":
            checks.check_model(str(value))
        elif kind == "hparam":
            checks.check_hparam_editors(parse_hparams([str(value)]))
        elif kind == "hparam_value":
            checks.check_hparam_editors({"rome": {"v_lr": value}})
        else:
            checks.check_editor(str(value))
        COUNTS["accepted"] += 1
    except ExperimentError as e:
        assert str(e) and "\n" not in str(e).strip()
        COUNTS["typed error"] += 1
        accepted = False
    if kind == "count":  # exactly the whole numbers >= 1 (or not given) pass
        assert accepted == (value is None or (type(value) is int and value >= 1))
    if kind == "hparam_value":  # a finite number > 0 (v_lr's declared range), or a string that reads as one
        numeric = type(value) in (int, float) or (isinstance(value, str) and _reads_as_float(value))
        assert accepted == (numeric and math.isfinite(float(value)) and float(value) > 0), value


def _reads_as_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def test_fuzz_counts_are_reported():
    """Printed for the record (run with -s); every try ended in acceptance or a typed error."""
    print(json.dumps(COUNTS))
    assert COUNTS["tried"] == COUNTS["typed error"] + COUNTS["accepted"]
    assert os.environ.get("PYTEST_XDIST_WORKER") or COUNTS["tried"] >= 300
