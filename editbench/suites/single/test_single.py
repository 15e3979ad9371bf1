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

from editbench.gates import gates_for
from editbench.suites.single.gates import check
from editbench.suites.single.result import fields
from editbench.suites.single.run import run

pytestmark = pytest.mark.single


def test_single_edit(capsys, editor_name, eb_session, eb_record):
    exp = eb_session.experiment("single", editor_name)
    lm = eb_session.model_for(exp)
    editor = eb_session.make_editor(exp, lm)
    with capsys.disabled():  # show the per-edit progress bar (large models take seconds per edit)
        result, records, errors = run(exp, editor, lm)
    gates = gates_for(eb_session.thresholds(), "single", lm.model_id, editor.name)
    checked, failures = check(result, len(records), gates)
    eb_record(**fields(exp, editor, lm, result, records, errors, gates, checked, failures))
    assert not result.errors, failures[0]  # before the gates: a run of errors measured nothing to gate
    assert gates, (f"no gates for editor {editor.name!r} on model {lm.model_id!r} in thresholds.yaml "
                   "(add a 'default' entry or one for this editor)")
    assert not failures, "; ".join(failures)
