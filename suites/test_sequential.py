"""Sequential editing at scale (the seed paper's sections 3–4): edits accumulate on one model.

Per editor and sample (edit order): a run of ``--n-edits`` edits, scored immediately, with the edit history
re-scored every k = 10 edits (fact forgetting), weight distance after every edit, and a model-health probe
(recall of unedited facts + perplexity on generic text) at every check. The catastrophic-forgetting (CF) point is
detected automatically (:mod:`editbench.metrics.collapse`). Results: ``<reports>/runs/sequential/<editor>/
<model>/sample_<s>/`` (results.jsonl, summary.json, PNG), resumable with ``--resume``.

Gates (suites/thresholds.yaml, suite ``sequential``): ``no_cf_before`` (no CF point before that many edits),
``forgetting_max`` (argmax forgetting at the end), ``es_window_min`` (the 50-edit ES window at the end).

    pytest suites -m sequential --editor memit                  # SmolLM2, default --n-edits (the README main job)
    pytest suites -m sequential --editor rome --n-edits 1000 --samples 4
"""
import pytest

from editbench.gates import check_gates, gates_for, verdict
from editbench.runner.experiment import run_experiment

pytestmark = pytest.mark.sequential

# Sized for the README main job (`pytest suites -m sequential --editor memit`, SmolLM2 on CounterFact): measured
# 13 min 43 s for 100 edits on the 2-core CPU machine (2026-11-26), inside the 15-minute budget.
DEFAULT_N_EDITS = 100


def _gate_values(summary: dict) -> dict:
    fin = summary.get("forgetting_final") or {}
    windows = summary.get("final_windows") or {}
    return {
        "no_cf_before": float("inf") if summary["cf_edit"] is None else summary["cf_edit"],
        "forgetting_max": fin.get("forget_argmax_now"),
        "es_window_min": windows.get("es_w50"),
    }


def _check(values: dict, gates: dict) -> list[str]:
    spec = {}
    for key, bound in gates.items():
        spec[key] = {"max": bound} if key.endswith("_max") else {"min": bound}
    return check_gates(values, spec)


def test_sequential(request, capsys, editor, editor_name, eb_dataset_name, eb_seed, eb_sample, thresholds,
                    eb_record):
    config = request.config
    n_edits = config.getoption("--n-edits") or DEFAULT_N_EDITS
    with capsys.disabled():  # a run takes minutes: show the runner's progress bar (edits/s, ETA, ES window)
        summary, errors = run_experiment(editor, config.getoption("--model"), eb_dataset_name, n_edits=n_edits,
                                         sample=eb_sample, seed=eb_seed, out_root=config.getoption("--reports-dir"),
                                         resume=config.getoption("--resume"), device=config.getoption("--device"))
    model_id = summary["model_id"]
    gates = gates_for(thresholds, "sequential", model_id, editor.name)
    values = _gate_values(summary)
    failures = _check(values, gates)
    eb_record(suite="sequential", editor=editor.describe(), model={"id": model_id, "hash": summary["model_hash"]},
              metrics={"n": summary["n_edits"], "es": summary["immediate_mean"].get("es"),
                       "ps": summary["immediate_mean"].get("ps"), "ns": summary["immediate_mean"].get("ns")},
              summary=summary, gate_values=values, gates=gates, failures=failures, sample=eb_sample,
              timings={**(summary.get("timing") or {}),  # apply_s_mean: the table's s/edit (the whole run's)
                       "apply_s_mean": ((summary.get("timing") or {}).get("wall_s") or 0) / max(1, summary["n_edits"])},
              record_errors=[str(e) for e in errors[:20]], verdict=verdict(gates, failures))
    assert summary["complete"], f"run stopped after {summary['n_edits']} of {summary['n_planned']} edits"
    assert gates, f"no sequential gates for editor {editor.name!r} on model {model_id!r} in suites/thresholds.yaml"
    assert not failures, "; ".join(failures)
