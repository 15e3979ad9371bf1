"""Powered, matched verdicts: record slices merged, the paired NS drop, ties, Table 3 standing and the agreement
line, and `editbench reproduce` end to end on the fact world (resume skips what exists)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from editbench.report.collect import collect
from editbench.report.tables import ties
from editbench.report.paired import paired_ns_drop
from editbench.report.verdicts import Verdict, agreement, agrees

EXAMPLES = Path(__file__).resolve().parents[1] / "reports" / "examples"


def _sliced(tmp_path: Path) -> tuple[dict, Path]:
    """The committed 10-record session cut into two --record-range slices (0:4 and 4:10), each its own file."""
    whole = json.loads((EXAMPLES / "single-smollm2-counterfact-10-protocols.json").read_text())
    res = next(r for r in whole["results"] if r["experiment"]["editor"] == "rome")
    for name, (a, b) in (("s0", (0, 4)), ("s1", (4, 10))):
        r = copy.deepcopy(res)
        r["experiment"]["record_range"] = f"{a}:{b}"
        r["details"]["per_record"] = res["details"]["per_record"][a:b]
        r["n"] = b - a
        r["metrics"] = {"es": -1}  # the merge recomputes every rate from the records
        (tmp_path / name).mkdir()
        (tmp_path / name / "s.json").write_text(json.dumps({"schema": "editbench.results/2", "results": [r]}))
    return res, tmp_path


def test_record_slices_merge_into_the_whole_run(tmp_path):
    res, _ = _sliced(tmp_path)
    merged = [e for e in collect([tmp_path]).by_suite("single")]
    assert len(merged) == 1
    e = merged[0]
    assert e.n == 10 and e.experiment["record_ranges"] == ["0:4", "4:10"]
    for k in ("es", "ps", "ns"):
        assert e.metrics[k] == pytest.approx(res["metrics"][k])
        iv = res["details"]["intervals"]["post"][k]
        assert e.intervals[k] == pytest.approx((iv["lo"], iv["hi"]))
    # an overlapping slice (a rerun of 0:4) counts its records once
    (tmp_path / "s2").mkdir()
    (tmp_path / "s2" / "s.json").write_text((tmp_path / "s0" / "s.json").read_text().replace('"0:4"', '"2:4"'))
    assert collect([tmp_path]).by_suite("single")[0].n == 10


def test_a_prefix_run_joins_its_slices_as_0_to_n(tmp_path):
    """A plain --n-records 4 run is the first 4 records of the same seeded order: beside a 4:10 slice it is 0:4;
    alone (no slice of its run anywhere) it stays as it was."""
    res, _ = _sliced(tmp_path)
    prefix = json.loads((tmp_path / "s0" / "s.json").read_text())
    prefix["results"][0]["experiment"]["record_range"] = None
    (tmp_path / "s0" / "s.json").write_text(json.dumps(prefix))
    e = collect([tmp_path]).by_suite("single")[0]
    assert e.n == 10 and e.experiment["record_ranges"] == ["0:4", "4:10"]
    assert e.metrics["ns"] == pytest.approx(res["metrics"]["ns"])
    alone = collect([tmp_path / "s0"]).by_suite("single")[0]
    assert alone.n == 4 and not alone.experiment.get("record_ranges")


def test_paired_ns_drop_is_the_mean_per_record_difference(tmp_path):
    res, _ = _sliced(tmp_path)
    e = collect([tmp_path]).by_suite("single")[0]
    d = paired_ns_drop(e)
    pr = res["details"]["per_record"]
    want = 100 * sum(r["pre"]["ns"] - r["post"]["ns"] for r in pr) / len(pr)
    assert d["n"] == 10 and d["drop"] == pytest.approx(want) and d["lo"] <= d["drop"] <= d["hi"]


def test_overlapping_intervals_are_tied():
    col = collect([EXAMPLES / "single-smollm2-counterfact-10-protocols.json"])
    tied = ties(col, "smollm2-135m", "ns")
    assert len(tied) >= 2  # 10 records: the NS intervals of several editors overlap the best one's


def test_agreement_line_and_explanations():
    def cells(words, straddle=()):
        props = ("EDITING EFFICACY", "EDIT LOCALITY", "AVERAGE DURATION BEFORE CF", "DOWNSTREAM PERFORMANCE LOSS",
                 "FACT FORGETTING PERCENTAGE", "SINGLE DISABLING EDIT")
        return {p: {ed: Verdict(words.get((p, ed), "x"), "", straddles=(p, ed) in straddle)
                    for ed in ("ft-c", "rome", "memit")} for p in props}
    a = {("EDIT LOCALITY", "memit"): "High", ("EDIT LOCALITY", "rome"): "Low", ("SINGLE DISABLING EDIT", "rome"): "True",
         ("EDITING EFFICACY", "ft-c"): "100%"}
    b = {("EDIT LOCALITY", "memit"): "High", ("EDIT LOCALITY", "rome"): "Very Low",
         ("FACT FORGETTING PERCENTAGE", "ft-c"): "High"}
    out = agreement({"m1": cells(a, straddle={("EDIT LOCALITY", "rome")}), "m2": cells(b)})
    assert out["m1"]["line"] == "2/18 cells agree with the paper"
    why = {(d["property"], d["editor"]): d["why"] for d in out["m1"]["disagreements"]}
    assert why[("EDIT LOCALITY", "memit")].startswith("scale")          # both models: High, paper Very High
    assert why[("EDIT LOCALITY", "rome")].startswith("undecided")       # the interval straddles a boundary
    assert why[("FACT FORGETTING PERCENTAGE", "ft-c")] == "open finding"
    assert agrees("AVERAGE DURATION BEFORE CF", "CF not observed", "Long")
    assert agrees("DOWNSTREAM PERFORMANCE LOSS", "Low, within noise", "Low")
    assert agrees("EDITING EFFICACY", "< 100%", "< 100% until CF")


def test_reproduce_end_to_end_on_the_fact_world_then_resume_skips(tmp_path, capsys):
    from editbench.cli import main
    out = tmp_path / "evidence"
    args = ["reproduce", "--model", "factworld", "--editor", "rome", "--out", str(out), "--n-single", "2",
            "--slice", "2", "--n-edits", "2"]
    assert main(args) == 0, capsys.readouterr()
    first = capsys.readouterr().out
    assert first.count("done ") >= 3 and "cells agree with the paper" in first
    results = sorted(out.glob("single/rome/records-*/editbench-*.json"))
    assert [p.parent.name for p in results] == ["records-0000-0002"]
    assert sorted(out.glob("downstream/rome/order-0/runs/**/summary.json"))
    rep = json.loads((out / "report" / "report.json").read_text())
    row = next(r for r in rep["leaderboard"]["rows"] if r[0] == "rome")
    assert "n=2" in row[2] and "pts" in row[-1]                        # merged slices; paired NS drop
    assert rep["agreement"]["factworld"]["total"] == 18
    table3 = (out / "report" / "table3.md").read_text()
    assert "cells agree with the paper" in table3 and "paired NS drop" in table3
    readme = (out / "report" / "README.md").read_text()
    assert "Model: the embedded fact-world" in readme and "figures/paper-editors-long-runs.png" in readme
    mtimes = {p: p.stat().st_mtime for p in results}
    assert main(args + ["--no-report"]) == 0
    again = capsys.readouterr().out
    assert "0 to do" in again and "done " not in again.replace("done,", "")
    assert {p: p.stat().st_mtime for p in results} == mtimes
    resized = args[:5] + ["--out", str(out), "--n-single", "3", "--slice", "2", "--list"]
    assert main(resized) == 0   # a new size: only the records not yet covered
    listed = capsys.readouterr().out
    assert "to do  single rome records-0002-0003" in listed and "records-0002-0004" not in listed


def test_reproduce_usage_errors(capsys):
    from editbench.cli import main
    assert main(["reproduce", "--model", "factworld", "--editor", "nope", "--list"]) == 4
    assert "--editor 'nope'" in capsys.readouterr().err
    assert main(["reproduce", "--model", "factworld", "--n-single", "0", "--list"]) == 4


@pytest.mark.parametrize("text", ["5:2", "a:b", "3", "-1:4", "2:2"])
def test_bad_record_range_is_one_line(text):
    from editbench.runner.checks import parse_record_range
    from editbench.runner.experiment import ExperimentError
    with pytest.raises(ExperimentError, match="--record-range"):
        parse_record_range(text)
    assert parse_record_range("50:100") == (50, 100)


def test_bad_record_range_is_a_pytest_usage_error():
    from tests.test_plugin import run_pytest
    r = run_pytest("suites", "-m", "single", "--model", "factworld", "--record-range", "9:3", "--collect-only", "-q")
    assert r.returncode == 4 and "--record-range '9:3'" in r.stderr and "Traceback" not in r.stderr
