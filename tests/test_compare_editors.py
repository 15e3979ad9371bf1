"""``editbench compare PATH --editor A --baseline B`` (editbench.runner.paired): editor against editor on the same
model, records and seed, per-metric paired differences with bootstrap intervals and sign tests, speed as a ratio;
refused with one line and exit status 4 when the two did not run on the same model, records or seed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from editbench.cli import USAGE_ERROR, main
from editbench.runner.paired import compare_editors, paired_ci, sign_test
from editbench.runner.results import SESSION_SCHEMA, make_result

IDS = [str(i) for i in range(20)]


def _result(editor, es, ns, s_edit=0.1, ids=IDS, model_hash="h0", seed=0):
    per_record = [{"case_id": i, "apply_s": s_edit * (1 + 0.01 * k), "post": {"es": es[k], "ns": ns[k]}}
                  for k, i in enumerate(ids)]
    prov = {"editor": {"name": editor}, "model": {"id": "factworld", "hash": model_hash},
            "dataset": {"name": "factworld", "record_ids": list(ids)}, "seed": seed, "device": "cpu",
            "versions": {}, "git": None, "created": "2026-12-07T00:00:00Z"}
    return make_result(suite="single", test="t", experiment={"suite": "single", "editor": editor,
                                                             "model": "factworld", "dataset": "factworld"},
                       provenance=prov, metrics={"es": float(np.mean(es)), "ns": float(np.mean(ns))}, n=len(ids),
                       gates={}, gate_values={}, failures=[], verdict="NO GATES",
                       timings={"apply_s_mean": s_edit}, details={"per_record": per_record})


def _session(path: Path, *results) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": SESSION_SCHEMA, "exitstatus": 0, "results": list(results)}))
    return path


def _run(capsys, *argv):
    rc = main(["compare", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


ONES, ZEROS = [1.0] * 20, [0.0] * 20


def test_sign_test_and_paired_interval():
    assert sign_test([1] * 6) == (6, 0, pytest.approx(2 / 64))
    assert sign_test([1, -1, 0, 0]) == (1, 1, 1.0) and sign_test([0, 0]) == (0, 0, 1.0)
    est, lo, hi = paired_ci(np.ones(10), np.zeros(10))
    assert (est, lo, hi) == (1.0, 1.0, 1.0)
    est, lo, hi = paired_ci(np.full(10, 2.0), np.ones(10), ratio=True)
    assert est == pytest.approx(2.0) and lo == pytest.approx(2.0)


def test_a_worse_than_the_baseline_beyond_noise_fails_on_a_gated_metric(tmp_path, capsys):
    ns_a = [1.0] * 8 + [0.0] * 12   # A's neighbourhood: 12 of 20 records broken
    _session(tmp_path / "r" / "editbench-1.json", _result("mine", ONES, ns_a), _result("rome", ONES, ONES))
    rc, out, err = _run(capsys, tmp_path / "r", "--editor", "mine", "--baseline", "rome")
    assert rc == 1, out + err
    row = next(line for line in out.splitlines() if "| ns " in line)
    assert "A worse (gated)" in row and "sign test 0+/12-" in row and "n=20" in row
    assert "1 regression(s) of mine against rome" in out
    # es equal everywhere: within noise, not gated; the same pair with ns not gated passes
    assert "within noise" in next(line for line in out.splitlines() if "| es " in line)
    assert _run(capsys, tmp_path / "r", "--editor", "mine", "--baseline", "rome", "--gate", "es")[0] == 0


def test_better_or_noisy_differences_pass_and_speed_is_reported(tmp_path, capsys):
    es_a = [1.0, 0.0] * 10
    es_b = [0.0, 1.0] * 10   # as many wins as losses: noise
    _session(tmp_path / "a.json", _result("mine", es_a, ONES, s_edit=0.3))
    _session(tmp_path / "b.json", _result("rome", es_b, ONES, s_edit=0.1))
    rc, out, _ = _run(capsys, tmp_path / "a.json", tmp_path / "b.json", "--editor", "mine", "--baseline", "rome")
    assert rc == 0 and "sign test 10+/10- p=1" in out
    speed = next(line for line in out.splitlines() if "s/edit" in line)
    assert "A slower" in speed and "x3.00" in speed and "not gated" in speed
    rc, out, _ = _run(capsys, tmp_path / "a.json", tmp_path / "b.json", "--editor", "mine", "--baseline", "rome",
                      "--max-slowdown", "2")
    assert rc == 1 and "A slower (gated)" in out


@pytest.mark.parametrize("change,message", [
    ({"ids": IDS[:10] + [f"x{i}" for i in range(10)]}, "different records: 10 record(s) only in A"),
    ({"model_hash": "h1"}, "different model"),
    ({"seed": 3}, "different seed: 3 vs 0"),
])
def test_results_on_other_records_model_or_seed_are_refused_in_one_line(tmp_path, capsys, change, message):
    _session(tmp_path / "r.json", _result("mine", ONES, ONES, **change), _result("rome", ONES, ONES))
    rc, out, err = _run(capsys, tmp_path / "r.json", "--editor", "mine", "--baseline", "rome")
    assert rc == USAGE_ERROR == 4 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_a_missing_editor_or_a_half_given_pair_is_a_usage_error(tmp_path, capsys):
    _session(tmp_path / "r.json", _result("mine", ONES, ONES))
    rc, _, err = _run(capsys, tmp_path / "r.json", "--editor", "mine", "--baseline", "rome")
    assert rc == 4 and "no result of editor 'rome'" in err and "editors there: mine" in err
    assert _run(capsys, tmp_path / "r.json", "--editor", "mine")[0] == 4
    assert _run(capsys, tmp_path / "r.json")[0] == 4  # BASE without NEW and without --editor


def test_findings_api(tmp_path):
    _session(tmp_path / "r.json", _result("mine", ONES, ONES), _result("rome", ZEROS, ONES))
    (es,) = [f for f in compare_editors([tmp_path / "r.json"], "mine", "rome") if f.metric == "es"]
    assert es.status == "A better" and not es.regression and es.base == "0.000" and es.new == "1.000"


# -- the pytest form: --baseline NAME [--baseline-results PATH] [--baseline-gate METRIC] -------------------------
class _Config:
    def __init__(self, **opts):
        self.opts = opts

    def getoption(self, name):
        return self.opts.get(name)


def test_pytest_baseline_option_pairs_the_sessions_editors(tmp_path):
    from editbench.pytest_baseline import compare
    ns_a = [1.0] * 8 + [0.0] * 12
    session = _session(tmp_path / "s.json", _result("mine", ONES, ns_a))
    base = _session(tmp_path / "base" / "editbench-0.json", _result("rome", ONES, ONES))
    results = json.loads(session.read_text())["results"]
    assert compare(_Config(), session, results) == (None, [])                      # no --baseline: nothing
    status, lines = compare(_Config(**{"--baseline": "rome", "--baseline-results": str(base.parent)}), session,
                            results)
    assert status == 1 and "mine vs rome (gated: es, ps, ns): 1 regression(s)" in lines[0] and "| ns " in lines[1]
    status, _ = compare(_Config(**{"--baseline": "rome", "--baseline-results": str(base.parent),
                                   "--baseline-gate": ["es"]}), session, results)
    assert status == 0
    other = _session(tmp_path / "other.json", _result("rome", ONES, ONES, seed=5))
    status, lines = compare(_Config(**{"--baseline": "rome", "--baseline-results": str(other)}), session, results)
    assert status == 4 and len(lines) == 1 and "different seed" in lines[0]


def test_pytest_baseline_fails_the_session_when_an_editor_is_worse(tmp_path):
    """The null editor leaves em (p(new) - p(true), ES's magnitude) at the unedited model's; FT-C raises it on every
    record even where the fact world's ES stays 0: null is worse than FT-C on em beyond noise."""
    from test_plugin import run_pytest
    r = run_pytest("--pyargs", "editbench.suites", "-m", "single", "--editor", "null", "--editor", "ft-c",
                   "--model", "factworld", "--n-records", "3", "--baseline", "ft-c", "--baseline-gate", "em",
                   "--reports-dir", str(tmp_path / "r"), "-q", cwd=tmp_path)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert "null vs ft-c (gated: em): 1 regression(s)" in r.stdout and "A worse (gated)" in r.stdout, r.stdout[-3000:]
