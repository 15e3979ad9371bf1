"""Downstream regression (the seed paper's section 3.3 and appendix A.3): does editing cost the model its tasks?

Per editor: the unedited baseline on GLUE SST-2, MRPC, CoLA and RTE (few-shot, the paper's exact prompts of
tables 4-7, class-balanced sets; on ``--model factworld`` the fact world's four in-world tasks), in both answer
modes — ``gen`` (greedy decode, parse the label word: the paper's) and ``loglik`` (label-word log-likelihood) —
with F1 (the paper's weighted F1), macro F1, MCC and accuracy, each with a 95% bootstrap interval; then
``--n-edits`` sequential edits (default 20) with the tasks re-evaluated every ``--downstream-every`` edits
(default 10, the paper's). A task the unedited model does not do above chance cannot show a regression and is
reported as such; on the others the gate (thresholds.yaml, suite ``downstream``) bounds the F1 drop in points
after the N edits. Results: the session JSON (eb_record), ``downstream.json`` and ``downstream.png`` (F1 per
task against edits) beside the run's results.jsonl, whose figure gains the downstream panel.

    pytest suites -m downstream --editor memit                       # SmolLM2, 20 edits, GLUE every 10
    pytest suites -m downstream --model factworld --editor ft-c      # seconds
    pytest suites -m downstream --editor rome --n-edits 100 --downstream-task sst2 --downstream-n 100
"""
import dataclasses

import pytest

from editbench.report.plots import plot_summary
from editbench.runner.experiment import make_editor
from editbench.runner.state import CheckpointError
from editbench.suites.downstream.figure import plot_downstream
from editbench.suites.downstream.result import fields as record_fields
from editbench.suites.downstream.run import DEFAULT_EVERY, format_table, run_downstream

pytestmark = pytest.mark.downstream


def test_downstream(capsys, editor_name, eb_session, eb_record):
    exp = eb_session.experiment("downstream", editor_name)
    if not exp.downstream_every:
        exp = dataclasses.replace(exp, downstream_every=DEFAULT_EVERY)
    lm = eb_session.model_for(exp)
    editor = make_editor(exp, lm)
    with capsys.disabled():
        try:
            result, summary, errors = run_downstream(exp, editor, lm)
        except CheckpointError as e:
            pytest.fail(str(e), pytrace=False)
    plot_summary(summary)
    png = plot_downstream(summary, summary["paths"]["downstream"].replace(".json", ".png"))
    summary["paths"]["downstream_plot"] = str(png)
    fields = record_fields(exp, result, summary, errors, eb_session.thresholds())
    eb_record(**fields)
    print("\n".join(format_table(result)))
    gates, failures = fields["gates"], fields["failures"]
    assert summary["complete"], f"run stopped after {summary['n_edits']} of {summary['n_planned']} edits: " \
                                f"{summary.get('stopped')}"
    if not result["above_chance"]:
        pytest.skip(f"{lm.model_id}: every task at chance on the unedited model ({', '.join(result['at_chance'])}): "
                    "cannot show a regression")
    assert gates, f"no downstream gates for editor {editor.name!r} on model {lm.model_id!r} in thresholds.yaml"
    assert not failures, "; ".join(failures)
