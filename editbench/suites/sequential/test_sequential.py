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

from editbench.gates import check_gates, gates_for, verdict
from editbench.report.plots import plot_summary
from editbench.runner.experiment import run_sequential_sample
from editbench.runner.files import RunLocked, WriteFailed
from editbench.runner.state import CheckpointError, ResumeMismatch
from editbench.runner.summary import most_raised, raised_line

pytestmark = pytest.mark.sequential


def _gate_values(summary: dict) -> dict:
    fin = summary.get("forgetting_final") or {}
    windows = summary.get("final_windows") or {}
    return {
        "no_cf_before": float("inf") if summary["cf_edit"] is None else summary["cf_edit"],
        "forgetting_max": fin.get("forget_argmax_now"),
        "es_window_min": windows.get("es_w50"),
    }


def _check(values: dict, gates: dict) -> list[str]:
    """A gate is a spec (``{min|max: x, from: "..."}``, editbench.gates) or, in short, a bare number: the bar of
    ``*_max`` is a max, of the others a min."""
    spec = {}
    for key, bound in gates.items():
        spec[key] = bound if isinstance(bound, dict) else {"max": bound} if key.endswith("_max") else {"min": bound}
    return check_gates(values, spec)


def test_sequential(capsys, editor_name, eb_sample, eb_session, eb_record):
    exp = eb_session.experiment("sequential", editor_name)
    lm = eb_session.model_for(exp)
    editor = eb_session.make_editor(exp, lm)
    with capsys.disabled():  # a run takes minutes: show the runner's progress bar (edits/s, ETA, ES window)
        try:
            summary, errors = run_sequential_sample(exp, editor, lm, sample=eb_sample)
        except (CheckpointError, ResumeMismatch, RunLocked, WriteFailed) as e:  # a damaged or differing run
            pytest.fail(str(e), pytrace=False)  # directory, another writer, a full disk: one line naming it
    plot_summary(summary)
    gates = gates_for(eb_session.thresholds(), "sequential", lm.model_id, editor.name)
    values = _gate_values(summary)
    failures = _check(values, gates)
    raised = most_raised(summary.get("n_errors") or 0, summary["n_edits"])
    if raised:  # the run measured the errors, not the editor: never a pass
        failures.insert(0, raised_line(summary["n_errors"], summary["n_edits"], summary.get("errors_by_reason") or {})
                        + ": the run measured the errors, not the editor")
    header_prov = {**summary["provenance"], "created": summary["timing"].get("created")}
    wall = (summary.get("timing") or {}).get("wall_s") or 0
    eb_record(suite="sequential", experiment={**exp.to_dict(), "sample": eb_sample},
              metrics={k: v for k, v in summary["immediate_mean"].items() if not k.endswith("_correct")},
              n=summary["n_edits"],
              gates=gates, gate_values=values, failures=failures, verdict=verdict(gates, failures),
              timings={**(summary.get("timing") or {}), "apply_s_mean": wall / max(1, summary["n_edits"])},
              artefacts=dict(summary["paths"]), cost=summary["cost"], record_errors=errors[:20], details={"summary": summary, "intervals": {"post": summary["immediate_intervals"]}},
              provenance=header_prov)
    assert not raised, failures[0]
    assert summary["complete"], (f"run stopped after {summary['n_edits']} of {summary['n_planned']} edits"
                                 + (f": {summary['stopped']} (--on-nonfinite continue goes on)"
                                    if summary.get("stopped") else ""))
    assert gates, f"no sequential gates for editor {editor.name!r} on model {lm.model_id!r} in thresholds.yaml"
    assert not failures, "; ".join(failures)
