"""The disabling suite's section of the result schema (docs/results.md, "Per suite"), and the function that
assembles one result (a scan or an isolation) for the pytest module and ``editbench disabling`` alike."""
from __future__ import annotations

from typing import TypedDict

from editbench.gates import check_gates, gate_values, verdict
from editbench.runner.provenance import provenance


class ScanDetails(TypedDict, total=False):
    """``details`` of a scan result (``metrics``: :func:`editbench.suites.disabling.gates.scan_metrics`)."""

    scan: dict
    """:func:`editbench.suites.disabling.isolation.scan`: ``per_edit`` (distance, health, class of every record),
    ``distribution`` (and ``_flagged`` / ``_normal``), ``flagged``, ``confirmed``, ``rule``, ``baseline_health``,
    ``intrinsic_rate`` and ``es`` with intervals, ``all_restored``, ``timings``, ``cost``, ``probe_notes``."""
    intervals: dict
    """``{"post": {"intrinsic_rate": ..., "es": ...}}`` (the pytest module's result)."""


class IsolationDetails(TypedDict):
    """``details`` of an isolation result (``metrics``: ``n_intrinsic_cf``, ``n_cf_edits``)."""

    isolation: dict
    """:func:`editbench.suites.disabling.run.run_isolation`: the run and each of its CF edits with its ``class``
    (``intrinsic`` / ``accumulated``) and ``why``."""


def fields(exp, editor, lm, metrics: dict, gates: dict, details: dict, artefacts: dict, n: int, record_ids: list,
           timings: dict | None = None, cost: dict | None = None) -> dict:
    """The keyword arguments of :func:`editbench.runner.results.make_result` for one scan or isolation, gates
    checked."""
    failures = check_gates(metrics, gates)
    return dict(suite="disabling", experiment=exp.to_dict(), metrics=metrics, n=n, gates=gates,
                gate_values=gate_values(metrics, gates), failures=failures, verdict=verdict(gates, failures),
                timings=timings or {}, cost=cost or {}, artefacts=artefacts, details=details,
                provenance=provenance(editor=editor, model_id=lm.model_id, model_hash=lm.model_hash,
                                      dataset=exp.dataset_name, record_ids=record_ids, seed=exp.seed,
                                      device=str(next(lm.model.parameters()).device)))
