import pytest

from editbench.gates import check_gates, gates_for

TABLE = {"single": {"factworld": {"ft-c": {"es": {"min": 0.9}}, "default": {"es": {"min": 0.5}}},
                    "default": {"default": {"ns": {"min": 0.1}}}}}


def test_lookup_order():
    assert gates_for(TABLE, "single", "factworld", "ft-c") == {"es": {"min": 0.9}}
    assert gates_for(TABLE, "single", "factworld", "other") == {"es": {"min": 0.5}}
    assert gates_for(TABLE, "single", "/some/dir/model", "x") == {"ns": {"min": 0.1}}
    assert gates_for(TABLE, "sequential", "factworld", "ft-c") == {}


def test_check_gates_reports_each_failure():
    gates = {"es": {"min": 0.9}, "ns": {"max": 0.2}, "ps": {"min": 0.1}}
    fails = check_gates({"es": 0.5, "ns": 0.3}, gates)
    assert any(f.startswith("es = 0.500 < min 0.9") for f in fails)
    assert any(f.startswith("ns = 0.300 > max 0.2") for f in fails)
    assert "ps: not measured" in fails
    assert check_gates({"es": 0.95}, {"es": {"min": 0.9}}) == []


def test_bare_null_key_means_the_null_editor(tmp_path):
    from editbench.gates import load_thresholds
    p = tmp_path / "t.yaml"
    p.write_text("single:\n  default:\n    null: {es: {max: 0.1}}\n")
    assert gates_for(load_thresholds(p), "single", "m", "null") == {"es": {"max": 0.1}}


def test_verdict_says_when_there_is_nothing_to_judge_by():
    from editbench.gates import verdict
    assert verdict({}, []) == "NO GATES"
    assert verdict({"es": {"min": 0.9}}, []) == "pass"
    assert verdict({"es": {"min": 0.9}}, ["es = 0.5 < min 0.9"]) == "FAIL"


SRC = "ROME on SmolLM2, 10 records, 2026-11-26: NS 0.70 vs unedited 0.70"


def test_relative_gate_compares_with_the_unedited_model_on_the_same_records():
    from editbench.gates import check_gates
    gates = {"ns": {"min_vs_baseline": -0.2, "from": SRC}}
    # the new user's 30 records: NS 0.47 is a fall of only 0.10 from the unedited 0.57 -> pass
    assert check_gates({"ns": 0.47}, gates, baseline={"ns": 0.57}) == []
    (fail,) = check_gates({"ns": 0.40}, gates, baseline={"ns": 0.70})
    # names the metric, the value, the baseline, the difference, the bar and where the bar came from
    assert fail.startswith("ns - unedited = 0.400 - 0.700 = -0.300 < min_vs_baseline -0.2") and SRC in fail
    (fail,) = check_gates({"ns": 0.9}, gates)
    assert "needs the unedited baseline" in fail and SRC in fail
    assert check_gates({"es": 0.6}, {"es": {"max_vs_baseline": 0.0}}, baseline={"es": 0.5}) == [
        "es - unedited = 0.600 - 0.500 = +0.100 > max_vs_baseline 0.0"]


def test_bound_gates_read_the_interval():
    from editbench.gates import check_gates
    ci = {"es": {"mean": 0.9, "lo": 0.7, "hi": 1.0, "n": 10}}
    assert check_gates({"es": 0.9}, {"es": {"lo_min": 0.6}}, intervals=ci) == []
    (fail,) = check_gates({"es": 0.9}, {"es": {"lo_min": 0.8, "from": "x"}}, intervals=ci)
    assert fail == "es = 0.900 [0.700, 1.000] (n = 10): interval lower bound 0.700 < lo_min 0.8 (bar from: x)"
    (fail,) = check_gates({"es": 0.9}, {"es": {"hi_max": 0.95}}, intervals=ci)
    assert "interval upper bound 1.000 > hi_max 0.95" in fail
    (fail,) = check_gates({"es": 0.9}, {"es": {"lo_min": 0.5}})
    assert "needs the interval" in fail


def test_every_failure_names_its_source_and_typos_fail():
    from editbench.gates import check_gates
    fails = check_gates({"es": 0.5}, {"es": {"min": 0.9, "from": SRC}, "ps": {"min": 0.6, "from": SRC}})
    assert fails == [f"es = 0.500 < min 0.9 (bar from: {SRC})", f"ps: not measured (bar from: {SRC})"]
    (fail,) = check_gates({"es": 0.95}, {"es": {"mn": 0.9}})  # a typo must not pass silently
    assert "unknown gate key(s) ['mn']" in fail


def test_gate_values_are_flat_numbers():
    from editbench.gates import gate_values
    gates = {"es": {"min": 0.9, "lo_min": 0.5}, "ns": {"min_vs_baseline": -0.2}}
    v = gate_values({"es": 0.9, "ns": 0.47}, gates, baseline={"ns": 0.57}, intervals={"es": {"lo": 0.7}})
    assert v == {"es": 0.9, "es_lo": 0.7, "ns": 0.47, "ns_baseline": 0.57, "ns_vs_baseline": pytest.approx(-0.1)}


def test_shipped_gates_have_sources_known_keys_and_fair_ns():
    from editbench.gates import SPEC_KEYS, check_gates, load_thresholds
    from editbench.pytest_plugin import THRESHOLDS
    table = load_thresholds(THRESHOLDS)
    for model, by_editor in table["single"].items():
        for editor, gates in by_editor.items():
            for metric, spec in gates.items():
                assert set(spec) <= set(SPEC_KEYS) and spec.get("from"), (model, editor, metric, spec)
                if metric == "ns":  # NS depends on the records drawn: gated against the unedited model
                    assert set(spec) - {"from"} == {"min_vs_baseline"}, (model, editor, spec)
    rome = gates_for(table, "single", "smollm2-135m", "rome")
    # what a new user measured on 30 other real CounterFact records: ES 0.97 / PS 0.90 / NS 0.47 (unedited 0.57)
    assert check_gates({"es": 0.97, "ps": 0.90, "ns": 0.47}, rome, baseline={"ns": 0.57}) == []
    (fail,) = check_gates({"es": 0.97, "ps": 0.90, "ns": 0.30}, rome, baseline={"ns": 0.57})
    assert fail.startswith("ns - unedited = 0.300 - 0.570") and "bar from: ROME on SmolLM2" in fail


def test_a_value_exactly_at_the_bar_passes_despite_float_rounding():
    assert 0.6 - 0.8 < -0.2  # in floats
    assert check_gates({"ns": 0.6}, {"ns": {"min_vs_baseline": -0.2}}, baseline={"ns": 0.8}) == []
    assert check_gates({"ns": 0.6}, {"ns": {"min_vs_baseline": -0.1}}, baseline={"ns": 0.8}) != []
