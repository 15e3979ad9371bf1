"""The paired NS drop: how much neighbourhood success one editor's single edits cost, on the same records.

The single suite scores every record on the unedited model before its edit (``pre``) and right after it
(``post``), so the drop is a mean of per-record differences, and its interval resamples *records* with both of
their scores (a paired bootstrap): the record-to-record spread in how hard the neighbours are cancels out, which an
unpaired comparison of two NS rates would keep as noise.
"""
from __future__ import annotations

import statistics
from typing import Any


def paired_ns_drop(entry: Any) -> dict | None:
    """``{"drop", "lo", "hi", "n", "pre", "post"}``: mean over records of NS(unedited) - NS(edited) in points, with
    a paired bootstrap interval (records resampled with both their scores), from a single result's per-record
    results; None without them."""
    from editbench.metrics.intervals import bootstrap_ci
    pairs = [(r["pre"]["ns"], r["post"]["ns"]) for r in entry.details.get("per_record") or []
             if (r.get("pre") or {}).get("ns") is not None and (r.get("post") or {}).get("ns") is not None]
    if not pairs:
        return None
    diffs = [100 * (a - b) for a, b in pairs]
    lo, hi = bootstrap_ci(diffs)
    return {"drop": statistics.fmean(diffs), "lo": lo, "hi": hi, "n": len(pairs),
            "pre": statistics.fmean(a for a, _ in pairs), "post": statistics.fmean(b for _, b in pairs)}
