"""The sequential suite's gates (thresholds.yaml, suite ``sequential``), read from the run's summary:

- ``no_cf_before``: the catastrophic-forgetting edit (:mod:`editbench.metrics.collapse`) comes no earlier than
  this (no CF point at all reads as infinity);
- ``forgetting_max``: argmax forgetting of the edit history at the end;
- ``es_window_min``: ES over the last 50 edits at the end.

A bare number stands for ``{max: x}`` on a ``*_max`` key and ``{min: x}`` on the others. A run where most edits
raised is never a pass (the run measured the errors, not the editor)."""
from __future__ import annotations

from editbench.gates import check_gates
from editbench.runner.summary import most_raised, raised_line


def gate_values(summary: dict) -> dict:
    """The values the gates read, from a run's summary."""
    fin = summary.get("forgetting_final") or {}
    windows = summary.get("final_windows") or {}
    return {
        "no_cf_before": float("inf") if summary["cf_edit"] is None else summary["cf_edit"],
        "forgetting_max": fin.get("forget_argmax_now"),
        "es_window_min": windows.get("es_w50"),
    }


def check_values(values: dict, gates: dict) -> list[str]:
    """A gate is a spec (``{min|max: x, from: "..."}``, editbench.gates) or, in short, a bare number: the bar of
    ``*_max`` is a max, of the others a min."""
    spec = {}
    for key, bound in gates.items():
        spec[key] = bound if isinstance(bound, dict) else {"max": bound} if key.endswith("_max") else {"min": bound}
    return check_gates(values, spec)


def check(summary: dict, gates: dict) -> tuple[dict, list[str], str | None]:
    """(gate values, failures, the raised-edits line when most edits raised, else None) of one run."""
    values = gate_values(summary)
    failures = check_values(values, gates)
    raised = most_raised(summary.get("n_errors") or 0, summary["n_edits"])
    if raised:  # the run measured the errors, not the editor: never a pass
        failures.insert(0, raised_line(summary["n_errors"], summary["n_edits"], summary.get("errors_by_reason") or {})
                        + ": the run measured the errors, not the editor")
    return values, failures, raised
