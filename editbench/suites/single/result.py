"""The single suite's section of the result schema (docs/results.md, "Per suite"): what one result of suite
``single`` records beyond the common fields (:data:`editbench.runner.results.FIELDS`), and the function that
assembles it for the pytest module and any other front end."""
from __future__ import annotations

from typing import TypedDict

from editbench.gates import verdict
from editbench.runner.provenance import provenance
from editbench.suites.single.run import SingleEditResult


class Details(TypedDict):
    """``details`` of a single result."""

    per_record: list[dict]
    """One entry per record: ``case_id``, ``subject``, ``target_new``, ``target_true``, ``pre``/``post`` (that
    record's metrics), ``apply_s``, ``touched``, ``edit_stats``, ``restored``; ``error`` instead of ``post`` when
    the edit raised."""
    all_restored: bool
    """Every restore was byte-identical (whole-model sha256)."""
    intervals: dict
    """``{"post" | "pre": {metric: {"mean", "lo", "hi", "n"}}, "method": ...}``: bootstrap 95% over records."""


class Section(TypedDict):
    """The suite's own fields of a result: ``metrics`` = post-edit means (:mod:`editbench.metrics.counterfact`),
    ``baseline`` = the unedited model's on the same records, ``n`` = records."""

    metrics: dict
    baseline: dict
    n: int
    details: Details


def fields(exp, editor, lm, result: SingleEditResult, records: list, errors: list, gates: dict,
           checked: dict, failures: list[str]) -> dict:
    """The keyword arguments of :func:`editbench.runner.results.make_result` for one editor's run."""
    return dict(suite="single", experiment=exp.to_dict(), metrics=result.post, n=len(records), baseline=result.pre,
                gates=gates, gate_values=checked, failures=failures,
                verdict=verdict(gates, failures), timings=result.timings, cost=result.cost, record_errors=errors,
                details=Details(per_record=result.per_record, all_restored=result.all_restored,
                                intervals=result.intervals),
                provenance=provenance(editor=editor, model_id=lm.model_id, model_hash=lm.model_hash,
                                      dataset=exp.dataset_name, record_ids=[r.case_id for r in records],
                                      seed=exp.seed, device=str(next(lm.model.parameters()).device)))
