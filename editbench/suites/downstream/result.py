"""The downstream suite's section of the result schema (docs/results.md, "Per suite"), and the function that
assembles one result for the pytest module and ``editbench downstream`` alike."""
from __future__ import annotations

from typing import TypedDict

from editbench.gates import check_gates, gates_for, verdict
from editbench.suites.downstream.gates import gate_values, select_gates


class Details(TypedDict):
    """``details`` of a downstream result (``metrics``: ``<task>_f1_before``, ``<task>_f1_after`` and
    ``<task>_<mode>_{f1,macro_f1,mcc,acc}`` per task and answer mode; ``baseline``: ``<task>_f1`` before editing)."""

    downstream: dict
    """Per task: baseline per mode with intervals, F1 before/after, note, verdict (also ``downstream.json``)."""
    intervals: dict
    """``{"baseline": {<task>_<mode>_<stat>: interval}}``."""
    notes: dict
    """Tasks at chance: "cannot show a regression"."""
    summary: dict
    """The sequential run's summary."""


def _metrics(result: dict) -> dict:
    """Flat metrics of a result record: per task the primary F1 before/after and, per mode, the baseline."""
    out = {}
    for t, r in result["tasks"].items():
        out[f"{t}_f1_before"], out[f"{t}_f1_after"] = r["f1_before"], r["f1_after"]
        for mode, m in r["baseline"].items():
            for k in ("f1", "macro_f1", "mcc", "acc"):
                out[f"{t}_{mode}_{k}"] = ((m or {}).get(k) or {}).get("value")
    return out


def fields(exp, result: dict, summary: dict, errors: list, table: dict) -> dict:
    """The fields of the suite's result record (:func:`editbench.runner.results.make_result`), gates checked
    (``table``: the thresholds); used by the pytest suite and ``editbench downstream`` alike."""
    values = gate_values(result)
    gates = select_gates(gates_for(table, "downstream", summary.get("model_id") or exp.model, exp.editor), values)
    failures = check_gates(values, gates)
    intervals = {f"{t}_{mode}_{k}": (r["baseline"].get(mode) or {}).get(k) for t, r in result["tasks"].items()
                 for mode in r["baseline"] for k in ("f1", "macro_f1", "mcc", "acc")}
    return dict(suite="downstream", experiment=exp.to_dict(), metrics=_metrics(result), n=summary["n_edits"],
                baseline={f"{t}_f1": r["f1_before"] for t, r in result["tasks"].items()},
                gates=gates, gate_values=values, failures=failures, verdict=verdict(gates, failures),
                timings=summary.get("timing") or {}, artefacts=dict(summary["paths"]), cost=summary["cost"],
                record_errors=errors[:20],
                details=Details(downstream=result, intervals={"baseline": intervals},
                                notes={t: r["note"] for t, r in result["tasks"].items() if r["note"]},
                                summary=summary),
                provenance={**summary["provenance"], "created": (summary.get("timing") or {}).get("created")})
