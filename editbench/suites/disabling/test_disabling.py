"""Disabling-edit isolation (the seed paper's Sec. 3.4.1, Table 2): are catastrophic edits intrinsic or accumulated?

**Scan** (``test_disabling_scan``): each of ``--n-records`` records (default 20; the published CounterFact edit
order, so the first N edits of a sequential run) is applied alone to a fresh model and restored byte for byte. The
normalized weight distance of every edit is recorded, outliers are flagged (robust z of log10 distance ≥ 3.5 and
≥ 10× the median) and each flagged edit is confirmed as *disabling* when the fresh model's health collapses (recall
of unedited facts, perplexity, generation entropy; :mod:`editbench.metrics.disabling`). Gate: no confirmed
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

from editbench.gates import check_gates, gate_values, gates_for, verdict
from editbench.report.disabling_plots import plot_scan
from editbench.runner import disabling as dis
from editbench.runner.experiment import make_editor
from editbench.runner.provenance import provenance

pytestmark = pytest.mark.disabling


def _experiment(eb_session, editor_name):
    exp = eb_session.experiment("disabling", editor_name)
    return dataclasses.replace(exp, n=eb_session.n_records)  # --n-records (None: DEFAULT_N["disabling"])


def _record(eb_record, exp, editor, lm, suite_metrics, gates, details, artefacts, timings, cost, n, record_ids):
    failures = check_gates(suite_metrics, gates)
    eb_record(suite="disabling", experiment=exp.to_dict(), metrics=suite_metrics, n=n, gates=gates,
              gate_values=gate_values(suite_metrics, gates), failures=failures, verdict=verdict(gates, failures),
              timings=timings, cost=cost, artefacts=artefacts, details=details,
              provenance=provenance(editor=editor, model_id=lm.model_id, model_hash=lm.model_hash,
                                    dataset=exp.dataset_name, record_ids=record_ids, seed=exp.seed,
                                    device=str(next(lm.model.parameters()).device)))
    return failures


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
    metrics = {"n_intrinsic": scan["n_intrinsic"], "n_flagged": scan["n_flagged"],
               "intrinsic_rate": scan["intrinsic_rate"]["mean"], "es": scan["es"]["mean"],
               "distance_median": scan["distribution"].get("median"), "distance_max": scan["distribution"].get("max"),
               "n_errors": scan["n_errors"]}
    gates = gates_for(eb_session.thresholds(), "disabling", lm.model_id, editor.name)
    gates = {k: v for k, v in gates.items() if k != "n_intrinsic_cf"}
    failures = _record(eb_record, exp, editor, lm, metrics, gates,
                       {"scan": scan, "intervals": {"post": {"intrinsic_rate": scan["intrinsic_rate"],
                                                             "es": scan["es"]}}},
                       {"json": str(js), "figure": str(png)}, scan["timings"], scan["cost"], scan["n"],
                       [r.case_id for r in records])
    assert scan["all_restored"], "the model was not restored byte for byte after a scanned edit"
    assert gates, f"no disabling gates for editor {editor.name!r} on model {lm.model_id!r} in thresholds.yaml"
    assert not failures, "; ".join(failures) + f" (confirmed disabling: {scan['confirmed']})"


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
    metrics = {"n_intrinsic_cf": iso["n_intrinsic"], "n_cf_edits": iso["n_cf_edits"]}
    gates = gates_for(eb_session.thresholds(), "disabling", lm.model_id, editor.name)
    gates = {k: v for k, v in gates.items() if k == "n_intrinsic_cf"}
    failures = _record(eb_record, exp, editor, lm, metrics, gates, {"isolation": iso}, {"json": str(js)},
                       {}, {}, iso["n_cf_edits"], [c for e in iso["edits"] for c in e["run_edit"]["case_ids"]])
    if not iso["n_cf_edits"]:
        pytest.skip(f"the run at --from-run has no CF point to isolate (cf_edit {summary.get('cf_edit')})")
    assert gates, f"no disabling gate n_intrinsic_cf for editor {editor.name!r} on {lm.model_id!r}"
    assert not failures, "; ".join(failures) + "; " + "; ".join(
        f"edit {e['run_edit']['edit']} {e['run_edit']['case_ids']}: {e['class']} ({e['why']})" for e in iso["edits"])
