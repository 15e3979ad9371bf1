"""Gating in CI: gate failures name metric, value, bar and source (every shipped gate has a `from`), and
``editbench compare BASE NEW`` (editbench.runner.compare) fails on interval-separated score regressions, gate
verdicts going from pass to FAIL, and s/edit or pytest-benchmark slow-downs beyond a tolerance."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from editbench.cli import main
from editbench.gates import BAR_KEYS, check_gates, load_thresholds
from editbench.runner.compare import (CompareError, compare_paths, load_set, lower_is_better,
                                      parse_benchmark_fail)
from editbench.runner.results import SESSION_SCHEMA, make_result

THRESHOLDS = Path(__file__).resolve().parents[1] / "editbench" / "suites" / "thresholds.yaml"
PROV = {"editor": {"name": "rome"}, "model": {"id": "factworld"}, "dataset": {"name": "factworld"}, "seed": 0,
        "device": "cpu", "versions": {}, "git": None, "created": "2026-12-02T00:00:00Z"}


# -- gates: where the bar came from ------------------------------------------------------------------------------
def _specs(node, path=()):
    """Every metric spec of the thresholds file: (path, metric, spec)."""
    for k, v in (node or {}).items():
        if isinstance(v, dict) and (set(v) & set(BAR_KEYS) or "from" in v):
            yield path, k, v
        elif isinstance(v, dict):
            yield from _specs(v, (*path, k))
        else:  # a bare number: a shorthand with nowhere to say where it came from
            yield path, k, {"bare": v}


def test_every_shipped_gate_says_where_its_bar_came_from():
    specs = list(_specs(load_thresholds(THRESHOLDS)))
    assert len(specs) > 20
    lacking = [f"{'/'.join(p)}: {m}" for p, m, s in specs if not str(s.get("from", "")).strip()]
    assert lacking == [], f"gates without a `from:` source in thresholds.yaml: {lacking}"


def test_every_shipped_gate_failure_names_metric_value_bar_and_source():
    for path, metric, spec in _specs(load_thresholds(THRESHOLDS)):
        value = -1e9 if "min" in spec or "min_vs_baseline" in spec or "lo_min" in spec else 1e9
        fails = check_gates({metric: value}, {metric: spec}, baseline={metric: 0.0},
                            intervals={metric: {"lo": value, "hi": value, "n": 5}})
        assert fails, (path, metric)
        for f in fails:
            assert f.startswith(metric) and f"(bar from: {spec['from']})" in f, f
            assert any(f"{k} {spec[k]}" in f for k in BAR_KEYS if k in spec), f  # the bar, by key and number


def test_a_suite_gate_failure_is_an_ordinary_test_failure_with_the_source(tmp_path):
    from test_plugin import run_pytest
    gates = tmp_path / "gates.yaml"
    gates.write_text('single:\n  default:\n    default:\n      es: {min: 0.99, from: "a bar set for this test"}\n')
    r = run_pytest("suites", "-m", "single", "--model", "factworld", "--editor", "null", "--n-records", "3",
                   "--thresholds", str(gates), "--reports-dir", str(tmp_path / "r"))
    assert r.returncode == 1, r.stdout[-2000:]
    assert "1 failed" in r.stdout and "es = 0.000 < min 0.99 (bar from: a bar set for this test)" in r.stdout


# -- compare -----------------------------------------------------------------------------------------------------
def _result(es=(0.9, 0.8, 1.0), ns=(0.95, 0.9, 1.0), s_edit=0.2, verdict="pass", editor="rome", failures=()):
    ci = {"es": {"mean": es[0], "lo": es[1], "hi": es[2], "n": 20},
          "ns": {"mean": ns[0], "lo": ns[1], "hi": ns[2], "n": 20}}
    return make_result(suite="single", test="t", experiment={"suite": "single", "editor": editor, "model": "factworld",
                                                             "dataset": None},
                       provenance={**PROV, "editor": {"name": editor}}, metrics={"es": es[0], "ns": ns[0], "em": 0.5},
                       n=20, gates={"es": {"min": 0.5}}, gate_values={}, failures=list(failures), verdict=verdict,
                       timings={"apply_s_mean": s_edit}, details={"intervals": {"post": ci}})


def _session(path: Path, *results) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": SESSION_SCHEMA, "exitstatus": 0, "results": list(results)}))
    return path


def _regressions(findings):
    return [(f.key.split()[1], f.kind, f.metric) for f in findings if f.regression]


def test_identical_sets_and_overlapping_intervals_pass(tmp_path):
    base = _session(tmp_path / "b.json", _result())
    assert _regressions(compare_paths(base, base)) == []
    # a raw drop of 0.15 in ES with overlapping intervals is sampling noise, not a regression
    new = _session(tmp_path / "n.json", _result(es=(0.75, 0.55, 0.9)))
    (f,) = [f for f in compare_paths(base, new) if f.metric == "es"]
    assert f.status == "within noise" and not f.regression


def test_disjoint_intervals_are_a_regression_and_the_tolerance_widens_them(tmp_path):
    base = _session(tmp_path / "b.json", _result())
    new = _session(tmp_path / "n.json", _result(es=(0.5, 0.3, 0.7)))
    assert _regressions(compare_paths(base, new)) == [("rome", "score", "es")]
    assert _regressions(compare_paths(base, new, score_tol=0.15)) == []
    better = _session(tmp_path / "better.json", _result(ns=(1.0, 1.0, 1.0), es=(0.9, 0.8, 1.0)))
    worse_base = _session(tmp_path / "wb.json", _result(ns=(0.5, 0.4, 0.6)))
    (f,) = [f for f in compare_paths(worse_base, better) if f.metric == "ns"]
    assert f.status == "improved" and not f.regression
    assert [f.status for f in compare_paths(base, new) if f.metric == "em"] == []  # no interval: not compared


def test_lower_is_better_metrics_regress_upwards():
    assert lower_is_better("f1_drop_sst2") and lower_is_better("forget_argmax_now") and not lower_is_better("es")


def test_verdict_pass_to_fail_is_a_regression(tmp_path):
    base = _session(tmp_path / "b.json", _result())
    new = _session(tmp_path / "n.json", _result(verdict="FAIL", failures=["es = 0.40 < min 0.5 (bar from: x)"]))
    (f,) = [f for f in compare_paths(base, new) if f.kind == "verdict"]
    assert f.regression and "bar from: x" in f.note


def test_latency_regression_by_relative_tolerance_and_floor(tmp_path):
    base = _session(tmp_path / "b.json", _result(s_edit=0.2))
    slow = _session(tmp_path / "n.json", _result(s_edit=0.3))
    assert _regressions(compare_paths(base, slow)) == [("rome", "latency", "s/edit")]
    assert _regressions(compare_paths(base, slow, latency_tol=0.6)) == []
    tiny_b = _session(tmp_path / "tb.json", _result(s_edit=0.001))
    tiny_n = _session(tmp_path / "tn.json", _result(s_edit=0.004))  # x4, but 3 ms: below the floor
    assert _regressions(compare_paths(tiny_b, tiny_n)) == []


def test_directories_merge_and_missing_results_are_reported(tmp_path):
    _session(tmp_path / "base" / "a" / "editbench-1.json", _result(editor="rome"))
    _session(tmp_path / "base" / "editbench-2.json", _result(editor="memit"))
    _session(tmp_path / "new" / "editbench-3.json", _result(editor="rome"), _result(editor="ft-c"))
    kind, table = load_set(tmp_path / "base")
    assert kind == "results" and sorted(k.split()[1] for k in table) == ["memit", "rome"]
    findings = compare_paths(tmp_path / "base", tmp_path / "new")
    assert {(f.key.split()[1], f.kind) for f in findings if f.kind in ("missing", "new-only")} == {
        ("memit", "missing"), ("ft-c", "new-only")}
    assert _regressions(findings) == []
    assert _regressions(compare_paths(tmp_path / "base", tmp_path / "new", require_all=True)) == [
        ("memit", "missing", "-")]


def _bench(path: Path, **medians) -> Path:
    path.write_text(json.dumps({"machine_info": {}, "commit_info": {}, "benchmarks": [
        {"name": k, "fullname": f"benchmarks/test_x.py::{k}",
         "stats": {"min": v * 0.9, "max": v * 1.2, "mean": v, "median": v, "stddev": v * 0.05, "rounds": 5}}
        for k, v in medians.items()]}))
    return path


def test_pytest_benchmark_json_uses_its_compare_fail_rules(tmp_path):
    base = _bench(tmp_path / "b.json", test_rome=1.0, test_memit=2.0)
    new = _bench(tmp_path / "n.json", test_rome=1.2, test_memit=2.8)
    assert [f.key.split("::")[1] for f in compare_paths(base, new) if f.regression] == ["test_memit"]  # median:25%
    assert [f.key for f in compare_paths(base, new, benchmark_fail=["mean:10%"]) if f.regression] != []
    assert [f for f in compare_paths(base, new, benchmark_fail=["min:1.0"]) if f.regression] == []
    assert parse_benchmark_fail("mean:5%") == ("mean", 0.05, True)
    with pytest.raises(CompareError, match="STAT:N%"):
        parse_benchmark_fail("mean")
    with pytest.raises(CompareError, match="like with like"):
        compare_paths(base, _session(tmp_path / "s.json", _result()))


def test_cli_exit_status(tmp_path, capsys):
    base = _session(tmp_path / "b.json", _result())
    assert main(["compare", str(base), str(base)]) == 0
    assert "0 regression(s) over 1 compared result(s)" in capsys.readouterr().out
    new = _session(tmp_path / "n.json", _result(es=(0.5, 0.3, 0.7), s_edit=1.0))
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "es" in out and "s/edit" in out and "2 regression(s)" in out
    assert main(["compare", str(base), str(new), "--latency-tolerance", "10", "--score-tolerance", "0.2"]) == 0
    (tmp_path / "junk.json").write_text("{not json")
    assert main(["compare", str(base), str(tmp_path / "junk.json")]) == 2
    assert "not readable JSON" in capsys.readouterr().err
    assert main(["compare", str(base), str(tmp_path / "nowhere")]) == 2
