"""Single-edit reliability: one edit at a time, scored, then restored byte for byte.

For every selected editor and N records: apply one edit, score ES/PS/NS and magnitudes (ROME convention, see
editbench.metrics.counterfact), restore the touched parameters, check the model hash equals the unedited one,
and gate on suites/thresholds.yaml (suite ``single``).

    pytest suites -m single --editor ft-c            # the fact world, default N
    pytest suites -m single --model smollm2-135m --dataset counterfact --n-records 20
"""
import pytest

from editbench.gates import check_gates, gates_for, verdict
from editbench.report.provenance import provenance
from editbench.runner.single import run_single

pytestmark = pytest.mark.single

DEFAULT_N = 20  # CPU-sized: ~1 minute per editor on the fact world with 2 cores


def test_single_edit(capsys, editor, eb_model, eb_load_records, eb_dataset_name, eb_seed, thresholds, eb_record):
    records, errors = eb_load_records(DEFAULT_N)
    assert records, f"no valid records in {eb_dataset_name!r} ({len(errors)} malformed: {errors[:3]})"
    with capsys.disabled():  # show the per-edit progress bar (large models take seconds per edit)
        result = run_single(editor, eb_model, records)
    gates = gates_for(thresholds, "single", eb_model.model_id, editor.name)
    failures = check_gates(result.post, gates)
    if not result.all_restored:
        failures.append("restore was not byte-identical for: "
                        + ", ".join(str(r["case_id"]) for r in result.per_record if r.get("restored") is False))
    if result.errors:
        failures.append(f"{len(result.errors)} edit(s) raised: {result.errors[:3]}")
    eb_record(suite="single", metrics=result.post, baseline=result.pre, gates=gates, failures=failures,
              verdict=verdict(gates, failures), timings=result.timings,
              record_errors=[str(e) for e in errors], per_record=result.per_record,
              **provenance(editor=editor, model_id=eb_model.model_id, model_hash=eb_model.model_hash,
                           dataset=eb_dataset_name, record_ids=[r.case_id for r in records], seed=eb_seed,
                           device=str(next(eb_model.model.parameters()).device)))
    assert gates, (f"no gates for editor {editor.name!r} on model {eb_model.model_id!r} in suites/thresholds.yaml "
                   "(add a 'default' entry or one for this editor)")
    assert not failures, "; ".join(failures)
