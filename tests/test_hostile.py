"""Hostile input, second round (issue 30): nothing silent, nothing crashes, nothing lost.

Every case asserts what a user sees: the exit code, no traceback, one line naming the problem, and nothing
written half (a refused run leaves its output directory as it was). The same cases go through the runner
(``editbench sequential``'s ``main``) and the pytest suites (``pytest suites -m single|sequential`` through
``pytest.main``), both in this process -- a new interpreter costs seconds of imports per case; one suite case runs
as a subprocess from a shell's view -- on the fact-world model and the tiny models. Categories: options, hparams,
models, datasets, paths, checkpoints, concurrency; hypothesis drives the hparam/seed ranges and checkpoint tampering.
``CASES`` counts what ran per category (printed by the last test; ``-s`` to see it).
"""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editbench.cli import main
from editbench.runner import checks
from editbench.runner.experiment import ExperimentError

from test_plugin import run_pytest  # tests/ is on sys.path (rootdir-relative test modules)

CASES: Counter = Counter()
FW = ["--model", "factworld"]
TINY = ["--model", "tiny-gpt2", "--dataset", "counterfact-1k"]


def _listing(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")} if root.exists() else {}


def _one_line(text: str) -> bool:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return len(lines) == 1 and "Traceback" not in text


def _error_line(err: str) -> bool:
    """Exactly one ``error:`` line and no traceback (progress bars and library warnings may share stderr)."""
    return sum("error:" in x for x in err.splitlines()) == 1 and "Traceback" not in err


def _cli(capsys, argv, out: Path) -> tuple[int, str]:
    code = main(["sequential", *argv, "--out", str(out)])
    return code, capsys.readouterr().err


# -- the examples and their kin: the runner ----------------------------------------------------------------
RUNNER = {  # category, argv (after `editbench sequential --editor rome --model factworld`), what the line names
    "v_lr negative": ("hparams", ["--hparam", "rome.v_lr=-5"], "rome.v_lr=-5: must be finite and > 0"),
    "v_lr nan": ("hparams", ["--hparam", "rome.v_lr=nan"], "rome.v_lr='nan'"),
    "v_lr inf": ("hparams", ["--hparam", "rome.v_lr=.inf"], "rome.v_lr=inf"),
    "steps -1": ("hparams", ["--hparam", "rome.v_num_grad_steps=-1"], ">= 1"),
    "steps 0": ("hparams", ["--hparam", "rome.v_num_grad_steps=0"], ">= 1"),
    "layer 99": ("hparams", ["--hparam", "rome.layer=99"], "it has 8 layers (0..7)"),
    "layer -1": ("hparams", ["--hparam", "rome.layer=-1"], "layer index >= 0"),
    "layer 8": ("hparams", ["--hparam", "rome.layer=8"], "it has 8 layers"),
    "v_loss_layer 12": ("hparams", ["--hparam", "rome.v_loss_layer=12"], "v_loss_layer=12"),
    "fact_token": ("hparams", ["--hparam", "rome.fact_token=first"], "one of 'subject_last', 'last'"),
    "memit layers": ("hparams", ["--editor", "memit", "--hparam", "memit.layers=[3, 9]"], "item 9"),
    "memit descending": ("hparams", ["--editor", "memit", "--hparam", "memit.layers=[4, 3]"], "strictly ascending"),
    "ft lr 0": ("hparams", ["--editor", "ft", "--hparam", "ft.lr=0"], "ft.lr=0"),
    "seed 2**64": ("options", ["--seed", "18446744073709551616"], "--seed 18446744073709551616"),
    "seed -1": ("options", ["--seed", "-1"], "--seed -1"),
    "seed 2**32": ("options", ["--seed", "4294967296"], "2**32 - 1"),
    "n-edits > subjects": ("options", ["--n-edits", "5000"], "only 1000 unique subjects"),
    "samples past the published orders": ("options", ["--dataset", "counterfact", "--model", "tiny-gpt2",
                                                      "--samples", "11"], "--samples 11"),
    "sample past the published orders": ("options", ["--dataset", "counterfact", "--model", "tiny-gpt2",
                                                     "--sample", "10"], "--sample must be an edit order 0..9"),
    "counterfact on the fact world": ("datasets", ["--dataset", "counterfact-1k"], "tokenizer does not know"),
}


@pytest.mark.parametrize("case", list(RUNNER))
def test_runner_refuses_before_any_model_loads(case, capsys, monkeypatch, tmp_path):
    import editbench.models.loader as loader
    monkeypatch.setattr(loader, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    category, argv, needle = RUNNER[case]
    editor = [] if "--editor" in argv else ["--editor", "rome"]
    before = _listing(tmp_path)
    code, err = _cli(capsys, [*editor, *FW, "--n-edits", "3", *argv], tmp_path / "out")
    assert code == 4 and needle in err and _one_line(err), err
    assert _listing(tmp_path) == before  # nothing written
    CASES[category] += 1


# -- the same examples through the pytest suites -------------------------------------------------------------------
def _bad_thresholds(d: Path) -> Path:
    p = d / "bad.yaml"
    p.write_text("single: [unclosed\n")
    return p


def _suite_cases(d: Path) -> dict:
    blocker = d / "a-file"
    blocker.write_text("")
    return {  # name: (category, suite, args, what the line names)
        "v_lr -5": ("hparams", "single", ["--hparam", "rome.v_lr=-5"], "rome.v_lr=-5"),
        "v_lr nan": ("hparams", "single", ["--hparam", "rome.v_lr=nan"], "rome.v_lr='nan'"),
        "steps -1": ("hparams", "sequential", ["--hparam", "rome.v_num_grad_steps=-1"], ">= 1"),
        "layer 99": ("hparams", "sequential", ["--hparam", "rome.layer=99"], "it has 8 layers"),
        "layer -1": ("hparams", "single", ["--hparam", "rome.layer=-1"], "layer index >= 0"),
        "seed 2**64": ("options", "sequential", ["--seed", "18446744073709551616"], "--seed 18446744073709551616"),
        "n-records > dataset": ("options", "single", ["--n-records", "5000"], "has only 1000 valid records"),
        "n-edits > subjects": ("options", "sequential", ["--n-edits", "5000"], "only 1000 unique subjects"),
        "counterfact on the fact world": ("datasets", "single", ["--dataset", "counterfact-1k"],
                                          "tokenizer does not know"),
        "broken thresholds": ("paths", "single", ["--thresholds", str(_bad_thresholds(d))], "not a readable gates"),
        "reports dir under a file": ("paths", "sequential", ["--reports-dir", str(blocker / "r")], "cannot write"),
    }


def test_suites_refuse_at_collection_with_one_line(tmp_path, capfd):
    """Exit code 4 before any test runs (no model loads, no session file), one line naming the problem. The
    sessions run in this process (``pytest.main``: the plugin as pytest loads it, without a new interpreter's
    seconds of imports); the subprocess tests below show the same path from a shell."""
    cases = _suite_cases(tmp_path)
    bad = []
    for name, (category, suite, args, needle) in cases.items():
        reports = tmp_path / name.replace(" ", "_")
        argv = ["suites", "-m", suite, "--editor", "rome", *FW, "--n-records", "2", "--n-edits", "3"]
        if "--reports-dir" not in args:
            argv += ["--reports-dir", str(reports)]
        code = pytest.main([*argv, *args, "--collect-only", "-q", "-p", "no:cacheprovider"])
        out, err = capfd.readouterr()
        errors = [x for x in err.splitlines() if x.startswith("ERROR:")]
        ok = (code == 4 and needle in err and len(errors) == 1 and "Traceback" not in out + err
              and not list(reports.glob("editbench-*.json")))
        if not ok:
            bad.append(f"{name}: rc={code} {err[-600:]}")
        CASES[category] += 1
    assert not bad, "\n".join(bad)


# -- hparams: declared ranges, a fuzz with an independent oracle ---------------------------------------------------
values = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                   st.none(), st.text(max_size=6), st.sampled_from(["nan", "-inf", "1e-3", "5", "-0.0"]))
FIELDS = {  # editor, field -> the oracle: is this (coerced) number valid? (n_layers = 8, the fact world's)
    ("rome", "v_lr"): lambda x: math.isfinite(x) and x > 0,
    ("rome", "v_num_grad_steps"): lambda x: x >= 1,
    ("rome", "layer"): lambda x: 0 <= x < 8,
    ("rome", "kl_factor"): lambda x: math.isfinite(x) and x >= 0,
    ("memit", "clamp_norm_factor"): lambda x: math.isfinite(x) and x > 0,
    ("ft", "num_steps"): lambda x: x >= 1,
    ("mend", "edit_lr"): lambda x: math.isfinite(x) and x > 0,
}


def _as_number(value, is_int: bool) -> float | None:
    """The number a value stands for, if the field's type accepts it: ints (not bools); for float fields also
    floats; strings that read as one (YAML leaves "1e-3" a string; the editors coerce it)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) or (isinstance(value, float) and not is_int):
        return float(value)
    if isinstance(value, str):
        try:
            return float(int(value)) if is_int else float(value)
        except ValueError:
            return None
    return None


@settings(max_examples=250, deadline=None)
@given(field=st.sampled_from(sorted(FIELDS)), value=values)
def test_hparam_ranges_fuzz(field, value):
    editor, key = field
    accepted = True
    try:
        checks.check_hparam_editors({editor: {key: value}}, model="factworld")
    except ExperimentError as e:
        accepted = False
        assert _one_line(str(e)) and f"{editor}.{key}" in str(e)
    x = _as_number(value, key in ("v_num_grad_steps", "layer", "num_steps"))
    assert accepted == (x is not None and FIELDS[field](x)), (field, value)
    CASES["hparams"] += 1


@settings(max_examples=150, deadline=None)
@given(seed=st.one_of(st.integers(-2**70, 2**70), st.integers(0, 2**32 + 5)))
def test_seed_range_fuzz(seed):
    try:
        checks.check_seed(seed)
        accepted = True
    except ExperimentError as e:
        accepted = False
        assert _one_line(str(e))
    assert accepted == (0 <= seed < 2**32)
    CASES["options"] += 1


def test_preset_out_of_range_for_the_loaded_model_is_one_line(monkeypatch):
    """A preset for another model (ROME's default layer 17) on a model with 4 layers: refused by make_editor."""
    from editbench.models.loader import load_model
    from editbench.runner.experiment import Experiment, make_editor

    lm = load_model("tiny-gpt2")
    monkeypatch.setattr(lm, "preset_keys", ["no-such-model"])
    with pytest.raises(ExperimentError) as e:
        make_editor(Experiment(suite="single", editor="rome", model="tiny-gpt2"), lm)
    assert "rome.layer=17 (the preset for tiny-gpt2): is not a layer of this model: it has 4 layers" in str(e.value)
    CASES["hparams"] += 1


# -- runs that measured nothing: never a pass, never exit 0 --------------------------------------------------------
def test_runner_where_every_edit_raised_exits_1_saying_why(capsys, monkeypatch, tmp_path):
    from editbench.editors.null import NullEditor

    def boom(self, model, tok, requests):
        raise ValueError("Invalid learning rate: -5.0")
    monkeypatch.setattr(NullEditor, "apply", boom)
    code, err = _cli(capsys, ["--editor", "null", *TINY, "--n-edits", "3", "--history-every", "3"], tmp_path)
    assert code == 1, err
    assert "3 of 3 edits raised (3x ValueError: Invalid learning rate: -5.0)" in err and _error_line(err), err
    CASES["options"] += 1


def test_suites_where_every_edit_raised_fail_saying_why(tmp_path, capfd, monkeypatch):
    from editbench.editors.null import NullEditor

    def boom(self, model, tok, requests):
        raise ValueError("Invalid learning rate: -5.0")
    monkeypatch.setattr(NullEditor, "apply", boom)
    reports = tmp_path / "reports"
    code = pytest.main(["suites", "-m", "single or sequential", "--editor", "null", *TINY, "--n-records", "3",
                        "--n-edits", "3", "--reports-dir", str(reports), "--thresholds", str(_null_gates(tmp_path)),
                        "-q", "-rf", "-p", "no:cacheprovider"])
    out, err = capfd.readouterr()
    assert code == 1 and "Traceback" not in out, out[-3000:] + err[-2000:]
    (f,) = reports.glob("editbench-*.json")
    results = json.loads(f.read_text())["results"]
    assert sorted(r["suite"] for r in results) == ["sequential", "single"]
    for r in results:
        assert r["verdict"] != "pass", r["verdict"]
        assert r["failures"][0].startswith("3 of 3 edits raised (3x ValueError: Invalid learning rate: -5.0)")
        CASES["options"] += 1
    assert out.count("3 of 3 edits raised (3x ValueError: Invalid learning rate: -5.0)") >= 2, out[-3000:]


# -- paths: results are never lost ---------------------------------------------------------------------------------
def test_write_atomic_falls_back_and_names_the_fallback(tmp_path):
    from editbench.runner.files import WriteFailed, write_atomic

    (tmp_path / "file").write_text("")
    with pytest.raises(WriteFailed) as e:
        write_atomic(tmp_path / "file" / "sub" / "results.json", '{"kept": true}')
    assert e.value.fallback is not None and json.loads(e.value.fallback.read_text()) == {"kept": True}
    assert str(e.value.fallback) in str(e.value) and _one_line(str(e.value))
    e.value.fallback.unlink()
    first = write_atomic(tmp_path / "s.json", "1", exclusive=True)
    second = write_atomic(tmp_path / "s.json", "2", exclusive=True)
    assert (first.read_text(), second.read_text(), second.name) == ("1", "2", "s_2.json")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary left behind
    CASES["paths"] += 1


class Sabotage:
    """Turns the reports directory into a file when the session ends, before the results file is written."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        d = Path(session.config.getoption("--reports-dir"))
        shutil.rmtree(d, ignore_errors=True)
        d.write_text("the reports directory became a file during the run")


def test_session_file_that_cannot_be_written_goes_to_a_named_fallback(tmp_path, capfd):
    code = pytest.main(["suites", "-m", "single", "--editor", "null", *TINY, "--n-records", "2", "--reports-dir",
                        str(tmp_path / "reports"), "--thresholds", str(_null_gates(tmp_path)), "-q",
                        "-p", "no:cacheprovider"], plugins=[Sabotage()])
    out, err = capfd.readouterr()
    lines = [x for x in out.splitlines() if x.startswith("editbench: error: cannot write")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in out + err, out[-3000:]
    fallback = Path(lines[0].split("written to ")[1].split(" instead")[0])
    assert json.loads(fallback.read_text())["results"][0]["verdict"] == "pass"
    fallback.unlink()
    CASES["paths"] += 1


def _null_gates(d: Path) -> Path:
    p = d / "null-gates.yaml"
    p.write_text("single:\n  default:\n    default:\n      es: {min: 0.0}\n"
                 "sequential:\n  default:\n    default:\n      forgetting_max: 1.0\n")
    return p


# -- checkpoints ---------------------------------------------------------------------------------------------------
def _run_dir(out: Path, editor="null", model="tiny-gpt2") -> Path:
    return out / "runs" / "sequential" / editor / model / "sample_0"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 2-edit ROME run on tiny-gpt2 (a checkpoint at edit 2; a cheap ROME: 2 steps, no C), made once."""
    out = tmp_path_factory.mktemp("run")
    assert main(["sequential", *ROME_RUN, "--out", str(out)]) == 0
    return out


ROME_RUN = ["--editor", "rome", *TINY, "--n-edits", "2", "--history-every", "2", "--checkpoint-every", "2",
            "--hparam", "rome.layer=1", "--hparam", "rome.v_num_grad_steps=2", "--hparam", "rome.mom2_adjustment=false"]


RESUME_DIFFS = {  # argv changes -> what the one line names
    "another layer": (["--hparam", "rome.layer=2"], "hparams.layer: 1 -> 2"),
    "another seed": (["--seed", "7"], "seed: 0 -> 7"),
    "another count": (["--n-edits", "3"], "n_edits: 2 -> 3"),
    "another dataset": (["--dataset", "counterfact"], "dataset: 'counterfact-1k' -> 'counterfact'"),
}


@pytest.mark.parametrize("case", list(RESUME_DIFFS))
def test_resume_with_other_options_is_refused_naming_them(case, finished_run, capsys, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished_run, out)
    change, needle = RESUME_DIFFS[case]
    argv = _replace(ROME_RUN, change)
    before = _listing(out)
    code, err = _cli(capsys, [*argv, "--resume"], out)
    assert code == 4 and needle in err and _one_line(err), err
    assert _listing(out) == before
    CASES["checkpoints"] += 1


def test_suite_resume_with_another_layer_is_a_usage_error(finished_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished_run, out)
    before = _listing(out)
    argv = _replace(ROME_RUN, ["--hparam", "rome.layer=2"])
    i = argv.index("--history-every")  # the suite has no such option (its runs re-score every 10 edits)
    r = run_pytest("suites", "-m", "sequential", *argv[:i], *argv[i + 2:], "--reports-dir", str(out), "--resume", "-q")
    assert r.returncode == 4 and "hparams.layer: 1 -> 2" in r.stderr and "Traceback" not in r.stdout + r.stderr, \
        r.stdout[-2000:] + r.stderr[-2000:]
    assert len([x for x in r.stderr.splitlines() if x.startswith("ERROR:")]) == 1
    assert _listing(out) == before
    CASES["checkpoints"] += 1


def _replace(argv: list[str], change: list[str]) -> list[str]:
    out = list(argv)
    for opt, val in zip(change[::2], change[1::2]):
        if opt == "--hparam":
            key = val.split("=")[0]
            out = [x for i, x in enumerate(out) if not (x.startswith(key + "=") or
                                                       (x == "--hparam" and i + 1 < len(out)
                                                        and out[i + 1].startswith(key + "=")))]
            out += [opt, val]
        elif opt in out:
            out[out.index(opt) + 1] = val
        else:
            out += [opt, val]
    return out


def test_resume_with_other_resolved_hparams_is_refused_at_run_time(finished_run, tmp_path):
    """What the options cannot show (a preset that changed, another model): compared when the run resumes."""
    from editbench.runner.experiment import Experiment, ModelCache, make_editor, run_sequential_sample
    from editbench.runner.state import ResumeMismatch

    out = tmp_path / "copy"
    shutil.copytree(finished_run, out)
    exp = Experiment(suite="sequential", editor="rome", model="tiny-gpt2", dataset="counterfact-1k", n=2,
                     history_every=2, checkpoint_every=2, out_dir=str(out), resume=True,
                     hparams=(("layer", 1), ("v_num_grad_steps", 2), ("mom2_adjustment", False)))
    lm = ModelCache().get("tiny-gpt2")
    editor = make_editor(exp, lm)
    editor.hparams = editor.hparams.replace(kl_factor=0.5)  # as if the preset had changed since
    with pytest.raises(ResumeMismatch, match=r"hparams\.kl_factor: 0\.0625 -> 0\.5"):
        run_sequential_sample(exp, editor, lm, progress=False)
    CASES["checkpoints"] += 1


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_byte_of_a_checkpoint_is_refused(finished_run, tmp_path_factory, data):
    """One byte of state.json, a tensor file or a manifest hash changed: never resumed, one line naming the file."""
    from editbench.runner.state import CheckpointError, latest_checkpoint, read_checkpoint

    out = tmp_path_factory.mktemp("tamper")
    shutil.copytree(finished_run, out, dirs_exist_ok=True)
    ck = latest_checkpoint(_run_dir(out, "rome"))
    name = data.draw(st.sampled_from(["state.json", "params.safetensors", "manifest.json"]))
    f = ck / name
    raw = bytearray(f.read_bytes())
    if name == "manifest.json":  # a hex digit of a recorded hash
        text = raw.decode()
        positions = [m.start() + k for m in re.finditer(r"[0-9a-f]{64}", text) for k in range(64)]  # hashes only
    else:
        positions = list(range(len(raw)))
    i = data.draw(st.sampled_from(positions))
    raw[i] = (raw[i] + data.draw(st.integers(1, 15))) % 256 if name != "manifest.json" else \
        ord("0" if chr(raw[i]) != "0" else "1")
    f.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(ck)
    assert _one_line(str(e.value)) and (name in str(e.value) or "manifest.json" in str(e.value))
    CASES["checkpoints"] += 1


# -- concurrency: one writer per run directory ---------------------------------------------------------------------
def test_a_second_writer_is_refused_by_runner_and_suite(capfd, tmp_path):
    from editbench.runner.files import RunLock

    out = tmp_path / "busy"
    run_dir = _run_dir(out)
    with RunLock(run_dir):  # another run holds the directory (this process: same as another pid for flock)
        before = _listing(out)
        code, err = _cli(capfd, ["--editor", "null", *TINY, "--n-edits", "2"], out)
        assert code == 4 and "is being written by another run (pid" in err and _one_line(err), err
        code = pytest.main(["suites", "-m", "sequential", "--editor", "null", *TINY, "--n-edits", "2",
                            "--reports-dir", str(out), "-q", "-p", "no:cacheprovider"])
        o, e = capfd.readouterr()
        assert code == 4 and "is being written by another run" in e and "Traceback" not in o + e, e[-2000:]
        assert _listing(out) == before
    code, err = _cli(capfd, ["--editor", "null", *TINY, "--n-edits", "2", "--history-every", "2"], out)
    assert code == 0, err  # free again once the holder is gone
    CASES["concurrency"] += 2


CHILD = '''
import sys, time
from editbench.runner.files import RunLock
with RunLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
'''


def test_a_lock_dies_with_its_process_so_kill_9_never_blocks_a_resume(tmp_path):
    from editbench.runner.files import RunLock, RunLocked, lock_holder

    d = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), str(d)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        assert lock_holder(d) == f"pid {child.pid} on " + lock_holder(d).split(" on ")[1]
        with pytest.raises(RunLocked, match=f"pid {child.pid}"):
            RunLock(d).acquire()
    finally:
        child.kill()
        child.wait()
    assert lock_holder(d) is None
    with RunLock(d):
        pass
    CASES["concurrency"] += 1


# -- models (the model directory itself is issue 27's; the paths a user types) --------------------------------------
@pytest.mark.parametrize("model,needle", [("./no-such-dir", "no such model directory"),
                                          ("weights.safetensors", "no such model directory")])
def test_model_paths_are_one_line(model, needle, capsys, tmp_path):
    code, err = _cli(capsys, ["--editor", "null", "--model", model], tmp_path / "o")
    assert code == 4 and needle in err and _one_line(err), err
    CASES["models"] += 1


def test_cases_per_category_are_reported():
    """The per-category count of the hostile cases run before this test in this process (the module's last test).
    Under pytest-xdist a worker may get this test without any other of the module: then there is nothing to count."""
    if not CASES:
        pytest.skip("no hostile case ran in this worker before this test (pytest-xdist split the module); "
                    "`pytest tests/test_hostile.py` counts them")
    print(json.dumps(dict(CASES), sort_keys=True))
    assert all(n > 0 for n in CASES.values())
