"""The zsre suite's section of the result schema (docs/results.md, "Per suite"), and the function that assembles
one result for the pytest module and ``editbench zsre`` alike."""
from __future__ import annotations

from typing import Sequence, TypedDict

from editbench.gates import verdict
from editbench.runner.provenance import provenance
from editbench.suites.zsre.gates import check
from editbench.suites.zsre.pairs import pair_source_of


class Details(TypedDict):
    """``details`` of a zsre result (``metrics``: ``<stat>_<direction>_<protocol>`` for stat in ``transfer``,
    ``transfer_novel``, ``edit``, ``probe``, ``baseline_probe``, ``baseline_edit``, plus ``n_transfer_<d>_<p>``;
    ``baseline``: the ``baseline_*`` ones). The run's ``TransferResult.to_dict()``."""

    summary: dict
    """Per direction and protocol: the transfer statistics with intervals and n."""
    metrics: dict
    """The flat metrics, as in ``metrics``."""
    intervals: dict
    """``{metric: {"mean", "lo", "hi", "n"}, "method": ...}``."""
    all_restored: bool
    """Every restore was byte-identical."""
    errors: list
    """Edits that raised."""
    timings: dict
    """Seconds: prepare, baseline, apply and score means, total."""
    baseline: list
    """Per pair: the unedited model on both forms."""
    edits: list
    """One entry per pair and direction."""


def fields(exp, editor, lm, result, pairs: Sequence, errors: Sequence, gates: dict, *, target: str,
                  directions: Sequence[str]) -> dict:
    """The keyword arguments of :func:`editbench.runner.results.make_result` for one transfer run (a
    :class:`~editbench.suites.zsre.run.TransferResult` over ``pairs``), gates checked (bound bars read the
    intervals): what the pytest suite and ``editbench zsre`` both record."""
    values, failures = check(result, gates)
    source = pair_source_of(exp.dataset, exp.model)
    experiment = {**exp.to_dict(), "dataset": source, "zsre_target": target, "directions": list(directions)}
    baseline = {k: v for k, v in result.metrics.items() if k.startswith("baseline_")}
    return dict(suite="zsre", experiment=experiment, metrics=result.metrics, n=len(pairs), baseline=baseline,
                gates=gates, gate_values=values,
                failures=failures, verdict=verdict(gates, failures), timings=result.timings, cost=result.cost,
                record_errors=list(errors), details=Details(**result.to_dict()),
                provenance=provenance(editor=editor, model_id=lm.model_id, model_hash=lm.model_hash, dataset=source,
                                      record_ids=[p.case_id for p in pairs], seed=exp.seed,
                                      device=str(next(lm.model.parameters()).device), zsre_target=target))
