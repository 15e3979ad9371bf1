"""Sequential editing at scale (the seed paper's sections 3–4): edits accumulate on one model.

Per editor and sample (edit order): a run of ``--n-edits`` edits, scored immediately, with the edit history
re-scored every k = 10 edits (fact forgetting), weight distance after every edit, and the model-health probes
(recall of unedited facts + perplexity on generic text) at every check. The catastrophic-forgetting (CF) point is
detected automatically (:mod:`editbench.metrics.collapse`). Results: ``<reports>/runs/sequential/<editor>/
<model>/sample_<s>/`` (results.jsonl, summary.json, PNG), resumable with ``--resume``. Every run edits the
session's one copy of the model and hands it back unedited.

Gates (thresholds.yaml, suite ``sequential``): ``no_cf_before`` (no CF point before that many edits),
``forgetting_max`` (argmax forgetting at the end), ``es_window_min`` (the 50-edit ES window at the end).

    pytest suites -m sequential --editor memit                  # SmolLM2, 100 edits (the README main job)
    pytest suites -m sequential --editor rome --n-edits 1000 --samples 4
"""
import pytest

from editbench.gates import gates_for
from editbench.runner.files import RunLocked, WriteFailed
from editbench.runner.state import CheckpointError, ResumeMismatch
from editbench.suites.sequential.figure import figure
from editbench.suites.sequential.gates import check
from editbench.suites.sequential.result import fields
from editbench.suites.sequential.run import run

pytestmark = pytest.mark.sequential


def test_sequential(capsys, editor_name, eb_sample, eb_session, eb_record):
    exp = eb_session.experiment("sequential", editor_name)
    lm = eb_session.model_for(exp)
    editor = eb_session.make_editor(exp, lm)
    with capsys.disabled():  # a run takes minutes: show the runner's progress bar (edits/s, ETA, ES window)
        try:
            summary, errors = run(exp, editor, lm, sample=eb_sample)
        except (CheckpointError, ResumeMismatch, RunLocked, WriteFailed) as e:  # a damaged or differing run
            pytest.fail(str(e), pytrace=False)  # directory, another writer, a full disk: one line naming it
    figure(summary)
    gates = gates_for(eb_session.thresholds(), "sequential", lm.model_id, editor.name)
    values, failures, raised = check(summary, gates)
    eb_record(**fields(exp, eb_sample, summary, errors, gates, values, failures))
    assert not raised, failures[0]
    assert summary["complete"], (f"run stopped after {summary['n_edits']} of {summary['n_planned']} edits"
                                 + (f": {summary['stopped']} (--on-nonfinite continue goes on)"
                                    if summary.get("stopped") else ""))
    assert gates, f"no sequential gates for editor {editor.name!r} on model {lm.model_id!r} in thresholds.yaml"
    assert not failures, "; ".join(failures)
