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
