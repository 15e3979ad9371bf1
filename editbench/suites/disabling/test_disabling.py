"""Disabling-edit isolation (the seed paper's Sec. 3.4.1, Table 2): are catastrophic edits intrinsic or accumulated?

**Scan** (``test_disabling_scan``): each of ``--n-records`` records (default 20; the published CounterFact edit
order, so the first N edits of a sequential run) is applied alone to a fresh model and restored byte for byte. The
normalized weight distance of every edit is recorded, outliers are flagged (robust z of log10 distance ≥ 3.5 and
≥ 10× the median) and each flagged edit is confirmed as *disabling* when the fresh model's health collapses (recall
of unedited facts, perplexity, generation entropy; :mod:`editbench.suites.disabling.rules`). Gate: no confirmed
(intrinsically) disabling edit among the N records (``n_intrinsic``).

**Isolation** (``test_disabling_isolation``, with ``--from-run DIR``: a sequential run directory or its
summary.json): every CF edit of the run is applied as the first edit of a fresh model and classified intrinsic
(the fresh model is disabled too, distance within 10× of the run's spike) or accumulated. Gate: ``n_intrinsic_cf``.

JSON and a figure per editor: ``<reports>/runs/disabling/<editor>/<model>/`` (scan.json, isolation.json, scan.png).

    pytest suites -m disabling --editor rome --n-records 60 --dataset counterfact-1k
    pytest suites -m disabling --editor rome --dataset counterfact-1k --from-run reports/runs/sequential/rome/smollm2-135m/sample_0
    pytest suites -m disabling --model factworld --n-records 5       # seconds per edit
"""
import dataclasses

import pytest

from editbench.gates import gates_for
from editbench.runner.experiment import make_editor
from editbench.suites.disabling import run as dis
from editbench.suites.disabling.figure import plot_scan
from editbench.suites.disabling.gates import isolation_gates, isolation_metrics, scan_gates, scan_metrics
from editbench.suites.disabling.result import IsolationDetails, ScanDetails, fields

pytestmark = pytest.mark.disabling


def _experiment(eb_session, editor_name):
    exp = eb_session.experiment("disabling", editor_name)
    return dataclasses.replace(exp, n=eb_session.n_records)  # --n-records (None: DEFAULT_N["disabling"])


def test_disabling_scan(capsys, editor_name, eb_session, eb_record):
    exp = _experiment(eb_session, editor_name)
    lm = eb_session.model_for(exp)
    editor = make_editor(exp, lm)
    with capsys.disabled():
        scan, records, _errors = dis.run_scan(exp, editor, lm)
    where = dis.out_dir(exp, lm.model_id)
    js = dis.write_json({"experiment": exp.to_dict(), **scan}, where / "scan.json")
    png = plot_scan(scan, where / "scan.png", title=f"{editor.name} on {lm.model_id}: {scan['n']} single edits "
                                                    f"({exp.dataset_name})")
    gates = scan_gates(gates_for(eb_session.thresholds(), "disabling", lm.model_id, editor.name))
    rec = eb_record(**fields(exp, editor, lm, scan_metrics(scan), gates,
                             ScanDetails(scan=scan, intervals={"post": {"intrinsic_rate": scan["intrinsic_rate"],
                                                                        "es": scan["es"]}}),
                             {"json": str(js), "figure": str(png)}, scan["n"], [r.case_id for r in records],
                             scan["timings"], scan["cost"]))
    assert scan["all_restored"], "the model was not restored byte for byte after a scanned edit"
    assert gates, f"no disabling gates for editor {editor.name!r} on model {lm.model_id!r} in thresholds.yaml"
    assert not rec["failures"], "; ".join(rec["failures"]) + f" (confirmed disabling: {scan['confirmed']})"


def test_disabling_isolation(capsys, editor_name, eb_session, eb_record):
    path = eb_session.config.getoption("--from-run")
    if not path:
        pytest.skip("isolation needs a sequential run: --from-run DIR (its directory or summary.json)")
    summary = dis.read_summary(path)
    exp = dis.run_experiment(_experiment(eb_session, editor_name), summary)
    lm = eb_session.model_for(exp)
    why = dis.check_run_matches(summary, exp, lm.model_id)
    if why:
        pytest.skip(why)
    editor = make_editor(exp, lm)
    with capsys.disabled():
        iso = dis.run_isolation(exp, editor, lm, summary)
    where = dis.out_dir(exp, lm.model_id)
    js = dis.write_json({"experiment": exp.to_dict(), **iso}, where / "isolation.json")
    gates = isolation_gates(gates_for(eb_session.thresholds(), "disabling", lm.model_id, editor.name))
    rec = eb_record(**fields(exp, editor, lm, isolation_metrics(iso), gates, IsolationDetails(isolation=iso),
                             {"json": str(js)}, iso["n_cf_edits"],
                             [c for e in iso["edits"] for c in e["run_edit"]["case_ids"]]))
    if not iso["n_cf_edits"]:
        pytest.skip(f"the run at --from-run has no CF point to isolate (cf_edit {summary.get('cf_edit')})")
    assert gates, f"no disabling gate n_intrinsic_cf for editor {editor.name!r} on {lm.model_id!r}"
    assert not rec["failures"], "; ".join(rec["failures"]) + "; " + "; ".join(
        f"edit {e['run_edit']['edit']} {e['run_edit']['case_ids']}: {e['class']} ({e['why']})" for e in iso["edits"])
