"""The disabling suite's gates (thresholds.yaml, suite ``disabling``): counts of confirmed disabling edits.

- scan (``test_disabling_scan``, ``editbench disabling``): every gate but ``n_intrinsic_cf``, on the scan's
  metrics (:func:`scan_metrics`; ``n_intrinsic``: records whose single edit disables the fresh model);
- isolation (``--from-run``): ``n_intrinsic_cf`` only, on :func:`isolation_metrics` (CF edits of a sequential
  run that are intrinsic, i.e. disable a fresh model too)."""
from __future__ import annotations

ISOLATION_GATES = ("n_intrinsic_cf",)
"""The gates of the isolation of a run's CF edits; the scan gets every other gate of the suite."""


def scan_metrics(scan: dict) -> dict:
    """The metrics a scan records and its gates read."""
    return {"n_intrinsic": scan["n_intrinsic"], "n_flagged": scan["n_flagged"],
            "intrinsic_rate": scan["intrinsic_rate"]["mean"], "es": scan["es"]["mean"],
            "distance_median": scan["distribution"].get("median"), "distance_max": scan["distribution"].get("max"),
            "n_errors": scan["n_errors"]}


def isolation_metrics(iso: dict) -> dict:
    """The metrics an isolation records and its gate reads."""
    return {"n_intrinsic_cf": iso["n_intrinsic"], "n_cf_edits": iso["n_cf_edits"]}


def scan_gates(gates: dict) -> dict:
    return {k: v for k, v in gates.items() if k not in ISOLATION_GATES}


def isolation_gates(gates: dict) -> dict:
    return {k: v for k, v in gates.items() if k in ISOLATION_GATES}
