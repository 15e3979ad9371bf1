"""Editor A against editor B on the same model, records and seed: per-metric paired differences with intervals and
paired tests, and speed. What ``editbench compare PATH... --editor A --baseline B`` prints and exits on.

Results are taken from the given result sets (session files or directories, merged as in
:mod:`editbench.runner.compare`: the newest result of a suite/editor/model/dataset wins) and paired by (suite, model, dataset, sample). A pair is compared only if both
ran on the **same model** (id and content hash), the **same records** (the provenance's record ids, as a set) and
the **same seed**; anything else is refused with :class:`MismatchError` (one line naming the difference).

For a result with per-record scores (the single suite's ``details.per_record``), over the records both editors
edited and scored (the shared record ids), for every numeric metric ``m`` of the records' ``post`` scores:

* ``d_i = m_A(record i) - m_B(record i)``; the table shows mean(A), mean(B) and mean(d) with a **paired
  bootstrap** 95% interval (records resampled with their pair, 2000 resamples, seed 0: the suites' method,
  :mod:`editbench.metrics.intervals`);
* a two-sided exact **sign test** over the records where A and B differ (ties dropped): ``n+/n-`` and its p-value;
* status ``A worse`` when the interval of mean(d) lies wholly on the worse side of zero by more than
  ``score_tol`` (higher is better, except :data:`~editbench.runner.compare.LOWER_IS_BETTER` names), ``A better``
  for the other side, else ``within noise``. For the ``gate`` metrics (default ES, PS, NS), ``A worse`` is a
  regression (exit status 1).
* **speed**: s/edit is each record's ``apply_s`` (the editor's ``apply`` wall time, :mod:`editbench.runner.cost`);
  the ratio mean(A) / mean(B) with a paired bootstrap interval. A regression only when ``max_slowdown`` is given
  and the interval's lower end exceeds it (timings on a shared machine are noisy; the default reports only).

Results without per-record scores (the sequential suite) are compared by their recorded intervals as in
:func:`editbench.runner.compare.compare_scores` (A as NEW, B as BASE; unpaired).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from editbench.metrics.intervals import LEVEL, N_BOOT, SEED
from editbench.runner.compare import (CompareError, Finding, _created, compare_scores, load_set,
                                      lower_is_better, result_key)

DEFAULT_GATE = ("es", "ps", "ns")


class MismatchError(CompareError):
    """A and B did not run on the same model, records or seed (or one of them has no result): not comparable."""


@dataclass(frozen=True)
class Pair:
    key: str      # "suite model dataset [sample]"
    a: dict
    b: dict


def _editor(r: dict) -> str:
    return str(((r.get("provenance") or {}).get("editor") or {}).get("name") or (r.get("experiment") or {}).get("editor"))


def _group(r: dict) -> str:
    parts = result_key(r).split(" ")
    return " ".join([parts[0], *parts[2:]])  # the key without the editor


def _identity(r: dict) -> dict[str, Any]:
    prov = r.get("provenance") or {}
    model, data = prov.get("model") or {}, prov.get("dataset") or {}
    ids = data.get("record_ids") if isinstance(data, dict) else None
    return {"model": (model.get("id"), model.get("hash")), "records": None if ids is None else sorted(map(str, ids)),
            "seed": prov.get("seed")}


def pair_results(paths: Sequence[str | Path], editor: str, baseline: str) -> list[Pair]:
    """The (A, B) result pairs of the merged sets; MismatchError when none pair up or a pair is not comparable."""
    pool: dict[str, dict] = {}
    for p in paths:
        kind, table = load_set(p)
        if kind != "results":
            raise CompareError(f"{p}: pytest-benchmark JSON cannot be compared editor against editor")
        for key, r in table.items():  # the newest result of a key wins across paths too
            if key not in pool or _created(r) >= _created(pool[key]):
                pool[key] = r
    by_editor: dict[str, dict[str, dict]] = {}
    for r in pool.values():
        by_editor.setdefault(_editor(r), {})[_group(r)] = r
    for name in (editor, baseline):
        if name not in by_editor:
            raise MismatchError(f"no result of editor {name!r} in {', '.join(map(str, paths))} (editors there: "
                                f"{', '.join(sorted(by_editor)) or 'none'})")
    a_side, b_side = by_editor[editor], by_editor[baseline]
    shared = sorted(set(a_side) & set(b_side))
    if not shared:
        raise MismatchError(f"{editor} and {baseline} have no result on the same suite, model and dataset ({editor}: "
                            f"{'; '.join(sorted(a_side))}; {baseline}: {'; '.join(sorted(b_side))})")
    pairs = []
    for key in shared:
        ia, ib = _identity(a_side[key]), _identity(b_side[key])
        for what in ("model", "records", "seed"):
            if ia[what] != ib[what]:
                detail = _difference(what, ia[what], ib[what])
                raise MismatchError(f"{key}: {editor} and {baseline} ran on different {what}: {detail}; run both "
                                    "in one session (pytest ... --editor A --editor B) or with the same --model, "
                                    "--dataset, --n-records and --seed")
        pairs.append(Pair(key, a_side[key], b_side[key]))
    return pairs


def _difference(what: str, a: Any, b: Any) -> str:
    if what == "records" and a is not None and b is not None:
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        return f"{len(only_a)} record(s) only in A (e.g. {only_a[:3]}), {len(only_b)} only in B (e.g. {only_b[:3]})"
    return f"{a!r} vs {b!r}"


# -- statistics ----------------------------------------------------------------------------------------------------
def sign_test(diffs: Sequence[float]) -> tuple[int, int, float]:
    """``(n+, n-, p)``: the two-sided exact sign test of the non-zero differences."""
    pos, neg = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    n = pos + neg
    if n == 0:
        return 0, 0, 1.0
    tail = sum(math.comb(n, k) for k in range(min(pos, neg) + 1)) / 2 ** n
    return pos, neg, min(1.0, 2 * tail)


def _boot_index(n: int) -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, n, size=(N_BOOT, n))


def paired_ci(a: np.ndarray, b: np.ndarray, ratio: bool = False) -> tuple[float, float, float]:
    """``(estimate, lo, hi)`` of mean(a - b), or of mean(a) / mean(b) with ``ratio``: percentile bootstrap over
    pairs (the suites' resamples, seed and level)."""
    idx = _boot_index(len(a))
    if ratio:
        est = float(a.mean() / b.mean())
        stats = a[idx].mean(axis=1) / np.maximum(b[idx].mean(axis=1), 1e-12)
    else:
        d = a - b
        est, stats = float(d.mean()), d[idx].mean(axis=1)
    lo, hi = np.quantile(stats, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return est, float(lo), float(hi)


def _per_record(r: dict) -> dict[str, dict]:
    return {str(p["case_id"]): p for p in (r.get("details") or {}).get("per_record") or []
            if isinstance(p, dict) and isinstance(p.get("post"), dict)}


def compare_pair(pair: Pair, editor: str, baseline: str, *, gate: Sequence[str] = DEFAULT_GATE,
                 score_tol: float = 0.0, max_slowdown: float | None = None) -> list[Finding]:
    pa, pb = _per_record(pair.a), _per_record(pair.b)
    if not pa or not pb:  # no per-record scores: the recorded intervals, unpaired
        return compare_scores(pair.key, pair.b, pair.a, score_tol)
    ids = sorted(set(pa) & set(pb))
    if not ids:
        raise MismatchError(f"{pair.key}: {editor} and {baseline} have no edited and scored record in common")
    out = []
    metrics = [m for m in pa[ids[0]]["post"] if all(isinstance(pa[i]["post"].get(m), (int, float)) and
                                                    isinstance(pb[i]["post"].get(m), (int, float)) for i in ids)]
    for m in metrics:
        a = np.array([float(pa[i]["post"][m]) for i in ids])
        b = np.array([float(pb[i]["post"][m]) for i in ids])
        est, lo, hi = paired_ci(a, b)
        pos, neg, p = sign_test(a - b)
        low = lower_is_better(m)
        worse = lo - score_tol > 0 if low else hi + score_tol < 0
        better = hi + score_tol < 0 if low else lo - score_tol > 0
        status = "A worse" if worse else "A better" if better else "within noise"
        gated = m in gate
        out.append(Finding(pair.key, "paired", m, f"{b.mean():.3f}", f"{a.mean():.3f}",
                           status + (" (gated)" if gated and worse else ""), gated and worse,
                           f"A-B {est:+.3f} [{lo:+.3f}, {hi:+.3f}] n={len(ids)}; sign test {pos}+/{neg}- p={p:.3g}"))
    sa = [pa[i].get("apply_s") for i in ids]
    sb = [pb[i].get("apply_s") for i in ids]
    if all(isinstance(x, (int, float)) for x in sa + sb) and sum(sb) > 0:
        a, b = np.array(sa, dtype=float), np.array(sb, dtype=float)
        est, lo, hi = paired_ci(a, b, ratio=True)
        slow = max_slowdown is not None and lo > max_slowdown
        limit = f"; fail above x{max_slowdown:g}" if max_slowdown is not None else " (reported, not gated)"
        out.append(Finding(pair.key, "speed", "s/edit", f"{b.mean():.4f}", f"{a.mean():.4f}",
                           "A slower (gated)" if slow else "A slower" if lo > 1 else "A faster" if hi < 1 else
                           "within noise", slow, f"A/B x{est:.2f} [{lo:.2f}, {hi:.2f}] n={len(ids)}{limit}"))
    return out


def compare_editors(paths: Sequence[str | Path], editor: str, baseline: str, **kw: Any) -> list[Finding]:
    """Every paired finding of ``editor`` (A) against ``baseline`` (B) in the merged result sets."""
    out: list[Finding] = []
    for pair in pair_results(paths, editor, baseline):
        out += compare_pair(pair, editor, baseline, **kw)
    return out
