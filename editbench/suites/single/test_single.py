"""Single-edit reliability: one edit at a time, scored, then restored byte for byte.

For every selected editor and N records: apply one edit, score ES/PS/NS and magnitudes (ROME convention, see
editbench.metrics.counterfact), restore the touched parameters, check the model hash equals the unedited one,
and gate on thresholds.yaml (suite ``single``): absolute bars, bars relative to the unedited model on the same
records, and bars on the bootstrap 95% interval over records (its ``details.intervals`` in the result JSON).

    pytest suites -m single --editor ft-c                                 # SmolLM2 on real CounterFact, N = 20
    pytest suites -m single --model factworld --n-records 5               # the fast fact-world fixture
    pytest --pyargs editbench.suites -m single --editor my-editor         # from any directory, once installed
"""
import pytest

from editbench.gates import check_gates, gate_values, gates_for, verdict
from editbench.runner.experiment import run_single
from editbench.runner.provenance import provenance
from editbench.runner.summary import raised_line, raised_reasons

pytestmark = pytest.mark.single


def test_single_edit(capsys, editor_name, eb_session, eb_record):
    exp = eb_session.experiment("single", editor_name)
    lm = eb_session.model_for(exp)
    editor = eb_session.make_editor(exp, lm)
    with capsys.disabled():  # show the per-edit progress bar (large models take seconds per edit)
        result, records, errors = run_single(exp, editor, lm)
    gates = gates_for(eb_session.thresholds(), "single", lm.model_id, editor.name)
    # relative bars compare with the unedited model on the same (edited and scored) records; bound-based bars read
    # the bootstrap intervals over records (thresholds.yaml, editbench.gates)
    post_ci = result.intervals.get("post", {})
    same_baseline = {k: v["mean"] for k, v in result.intervals.get("pre", {}).items()}
    failures = check_gates(result.post, gates, baseline=same_baseline, intervals=post_ci)
    checked = gate_values(result.post, gates, baseline=same_baseline, intervals=post_ci)
    if not result.all_restored:
        failures.append("restore was not byte-identical for: "
                        + ", ".join(str(r["case_id"]) for r in result.per_record if r.get("restored") is False))
    if result.errors:  # never a pass: the summary says how many raised and why
        reasons = raised_reasons([str(e.get("error", e)) if isinstance(e, dict) else str(e) for e in result.errors])
        failures.insert(0, raised_line(len(result.errors), len(records), reasons))
    eb_record(suite="single", experiment=exp.to_dict(), metrics=result.post, n=len(records), baseline=result.pre,
              gates=gates, gate_values=checked, failures=failures,
              verdict=verdict(gates, failures), timings=result.timings, cost=result.cost, record_errors=errors,
              details={"per_record": result.per_record, "all_restored": result.all_restored,
                       "intervals": result.intervals},
              provenance=provenance(editor=editor, model_id=lm.model_id, model_hash=lm.model_hash,
                                    dataset=exp.dataset_name, record_ids=[r.case_id for r in records],
                                    seed=exp.seed, device=str(next(lm.model.parameters()).device)))
    assert not result.errors, failures[0]  # before the gates: a run of errors measured nothing to gate
    assert gates, (f"no gates for editor {editor.name!r} on model {lm.model_id!r} in thresholds.yaml "
                   "(add a 'default' entry or one for this editor)")
    assert not failures, "; ".join(failures)
