"""The zsre suite's gates (thresholds.yaml, suite ``zsre``): any flat metric of the run
(:func:`editbench.suites.zsre.metrics.flat_metrics`), usually ``transfer_<d>_<p>`` and ``transfer_novel_<d>_<p>``
(of the edits that succeed in the format they were made in, the share that also succeed in the other format;
``d`` = ``q2c`` / ``c2q``, ``p`` = ``prob`` / ``tok`` / ``gen``), with bound bars on their bootstrap intervals. A
rate with no edit-format success is undefined and fails as "not measured". A restore that was not byte-identical,
and edits that raised, fail the run whatever the gates say."""
from __future__ import annotations

from editbench.gates import check_gates, gate_values


def check(result, gates: dict) -> tuple[dict, list[str]]:
    """(the values the gates read, failures) of one run (a :class:`editbench.suites.zsre.run.TransferResult`)."""
    failures = check_gates(result.metrics, gates, intervals=result.intervals)
    if not result.all_restored:
        failures.append("restore was not byte-identical for: " + ", ".join(
            f"{r['case_id']} ({r['direction']})" for r in result.edits if r.get("restored") is False))
    if result.errors:
        failures.append(f"{len(result.errors)} edit(s) raised: {result.errors[:3]}")
    return gate_values(result.metrics, gates, intervals=result.intervals), failures
