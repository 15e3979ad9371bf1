"""The sequential suite's section of the result schema (docs/results.md, "Per suite"), and the function that
assembles one result from a run's summary (:func:`editbench.runner.summary.summarize`)."""
from __future__ import annotations

from typing import TypedDict

from editbench.gates import verdict


class Details(TypedDict):
    """``details`` of a sequential result."""

    summary: dict
    """The run's ``summary.json`` (docs/results.md, "summary.json")."""
    intervals: dict
    """``{"post": summary.immediate_intervals}``: bootstrap 95% intervals of the immediate scores."""


class Section(TypedDict):
    """The suite's own fields: ``metrics`` = the summary's ``immediate_mean`` without the ``*_correct`` keys,
    ``n`` = edits done."""

    metrics: dict
    n: int
    details: Details


def fields(exp, sample: int, summary: dict, errors: list, gates: dict, values: dict, failures: list[str]) -> dict:
    """The keyword arguments of :func:`editbench.runner.results.make_result` for one sample of one editor."""
    wall = (summary.get("timing") or {}).get("wall_s") or 0
    return dict(suite="sequential", experiment={**exp.to_dict(), "sample": sample},
                metrics={k: v for k, v in summary["immediate_mean"].items() if not k.endswith("_correct")},
                n=summary["n_edits"],
                gates=gates, gate_values=values, failures=failures, verdict=verdict(gates, failures),
                timings={**(summary.get("timing") or {}), "apply_s_mean": wall / max(1, summary["n_edits"])},
                artefacts=dict(summary["paths"]), cost=summary["cost"], record_errors=errors[:20],
                details=Details(summary=summary, intervals={"post": summary["immediate_intervals"]}),
                provenance={**summary["provenance"], "created": summary["timing"].get("created")})
