"""Single-suite record slices merged into one result over all their records.

``--record-range START:STOP`` runs records START..STOP-1 of the seeded record order, so a long single-suite run
can be cut into pieces that each finish (and are committed) on their own. The report merges the slices of one
run -- same suite, editor, model, dataset, seed, hyperparameters and scoring protocols -- into one entry whose
rates and bootstrap intervals are recomputed over the union of their per-record results (a record met twice, in
overlapping slices, counts once), exactly as one run over those records would give them
(:func:`editbench.runner.single.record_intervals`). Runs without ``record_range`` are left as they are.
"""
from __future__ import annotations

import json
from dataclasses import replace

from editbench.report.collect import Entry, digest


def slice_group_key(e: Entry) -> str | None:
    """What the slices of one run share (None: not a record slice)."""
    exp = e.experiment or {}
    if e.suite != "single" or not exp.get("record_range"):
        return None
    return digest([e.editor, e.model, e.dataset, exp.get("seed"),
                   json.dumps(exp.get("hparams"), sort_keys=True, default=str),
                   sorted(exp.get("protocols") or [])])


def _start(e: Entry) -> int:
    return int(str(e.experiment.get("record_range")).split(":")[0])


def merge_slices(slices: list[Entry]) -> Entry:
    """One entry over the union of the slices' records, ordered by slice start."""
    from editbench.metrics.counterfact import aggregate
    from editbench.metrics.intervals import method
    from editbench.runner.single import record_intervals

    slices = sorted(slices, key=lambda e: (_start(e), e.created or ""))
    seen, per_record = set(), []
    for e in slices:
        for r in e.details.get("per_record") or []:
            cid = str(r.get("case_id"))
            if cid not in seen:
                seen.add(cid)
                per_record.append(r)
    scored = [r for r in per_record if "post" in r]
    post = [r["post"] for r in scored]
    ivs = {"post": record_intervals(post), "pre": record_intervals([r["pre"] for r in scored]), "method": method()}
    apply_s = [r["apply_s"] for r in scored if r.get("apply_s") is not None]
    ranges = [str(e.experiment.get("record_range")) for e in slices]
    verdicts = {e.verdict for e in slices}
    first = slices[0]
    return replace(
        first, n=len(per_record), metrics=aggregate(post), baseline=aggregate([r["pre"] for r in scored]),
        intervals={k: (v["lo"], v["hi"]) for k, v in ivs["post"].items() if v.get("lo") is not None},
        verdict=verdicts.pop() if len(verdicts) == 1 else "mixed",
        failures=[f for e in slices for f in e.failures],
        s_per_edit=sum(apply_s) / len(apply_s) if apply_s else None,
        details={"per_record": per_record, "intervals": ivs,
                 "all_restored": all(e.details.get("all_restored", True) for e in slices),
                 "slices": [{"record_range": rr, "n": e.n, "source": str(e.source) if e.source else None}
                            for rr, e in zip(ranges, slices)]},
        created=max(e.created or "" for e in slices) or None,
        experiment={**first.experiment, "record_range": None, "record_ranges": ranges},
        key=digest(["single-merged", [e.key for e in slices]]))


def merge_record_slices(entries: list[Entry]) -> list[Entry]:
    """``entries`` with every group of record slices replaced by its merged entry (at the first slice's place);
    a group of one slice is merged too (its rates are then the slice's own)."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        k = slice_group_key(e)
        if k is not None:
            groups.setdefault(k, []).append(e)
    if not groups:
        return entries
    out, done = [], set()
    for e in entries:
        k = slice_group_key(e)
        if k is None:
            out.append(e)
        elif k not in done:
            done.add(k)
            out.append(merge_slices(groups[k]))
    return out
