"""Bootstrap intervals over records: how far a rate measured on N records could move on N other records.

Every rate of the single suite is a mean over records (ES, PS, NS, ... of :mod:`editbench.metrics.counterfact`)
and the Score is the harmonic mean of three such means. A percentile bootstrap resamples the *records* with
replacement ``n_boot`` times, recomputes the statistic on each resample and takes the ``(1 - level) / 2`` and
``(1 + level) / 2`` quantiles (numpy's default linear interpolation) as the interval. It is seeded, so the same
values give the same interval on every machine.

- :func:`bootstrap_ci` — the interval of the mean of a list of per-record values (``None`` skipped; no values:
  ``None``; one value, or all equal: ``(v, v)``).
- :func:`aggregate_intervals` — for each metric of ``METRICS`` plus ``"score"``, ``{"mean", "lo", "hi", "n"}``
  over per-record metric dicts (the ``mean`` equals :func:`editbench.metrics.counterfact.aggregate`'s). The Score's
  interval resamples records jointly: each resample's Score is the harmonic mean of that resample's ES, PS and NS
  means, the same formula as the point estimate.

The point estimate is always inside its interval (a percentile interval of a skewed statistic, such as the
harmonic mean, can otherwise miss it by a hair). With 10 records a rate has steps of 0.1 and its interval is wide
(e.g. 9 of 10 -> 0.90 [0.70, 1.00]): that width is the honest size of what a 10-record gate can tell apart.
"""
from __future__ import annotations

from statistics import mean
from typing import Iterable, Sequence

import numpy as np

from editbench.metrics.counterfact import EXTRA_METRICS, METRICS, aggregate

N_BOOT = 2000
LEVEL = 0.95
SEED = 0
_CHUNK = 4_000_000  # resample indices held at once (n_boot x n), to bound memory for large n


def _quantiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [a, 1.0 - a])
    return float(lo), float(hi)


def _resample_means(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Row means of ``arr[idx]`` ignoring NaN (a row of only NaN gives NaN)."""
    taken = arr[idx]
    ok = ~np.isnan(taken)
    cnt = ok.sum(axis=1)
    tot = np.where(ok, taken, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def _index_chunks(n: int, n_boot: int, rng: np.random.Generator) -> Iterable[np.ndarray]:
    rows = max(1, _CHUNK // max(n, 1))
    done = 0
    while done < n_boot:
        k = min(rows, n_boot - done)
        yield rng.integers(0, n, size=(k, n))
        done += k


def _check(n_boot: int, level: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def bootstrap_ci(values: Sequence[float | None], n_boot: int = N_BOOT, seed: int = SEED,
                 level: float = LEVEL) -> tuple[float, float] | None:
    """Percentile bootstrap ``level`` interval of the mean of ``values`` (``None`` entries skipped), seeded.

    No values: ``None``. One value, or all values equal: ``(v, v)``. The mean is always inside ``(lo, hi)``.
    """
    _check(n_boot, level)
    arr = np.asarray([float(v) for v in values if v is not None], dtype=float)
    n = arr.size
    if n == 0:
        return None
    point = float(mean(arr.tolist()))  # the same (correctly rounded) mean as counterfact.aggregate
    if n == 1 or float(arr.min()) == float(arr.max()):
        return (float(arr[0]), float(arr[0]))
    rng = np.random.default_rng(seed)
    stats = np.concatenate([arr[idx].mean(axis=1) for idx in _index_chunks(n, n_boot, rng)])
    lo, hi = _quantiles(stats, level)
    return (min(lo, point), max(hi, point))


def interval(values: Sequence[float | None], n_boot: int = N_BOOT, seed: int = SEED, level: float = LEVEL) -> dict:
    """``{"mean", "lo", "hi", "n"}`` of the non-None ``values`` (all ``None`` but ``n`` = 0 when there are none)."""
    vals = [float(v) for v in values if v is not None]
    ci = bootstrap_ci(vals, n_boot=n_boot, seed=seed, level=level)
    if ci is None:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    return {"mean": float(mean(vals)), "lo": ci[0], "hi": ci[1], "n": len(vals)}


def _harmonic_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Row-wise :func:`~editbench.metrics.counterfact.harmonic_score` of (ES, PS, NS) resample means (NaN = missing)."""
    m = np.stack(parts, axis=1)  # (rows, 3)
    present = ~np.isnan(m)
    cnt = present.sum(axis=1)
    nonpos = (present & (np.where(present, m, 1.0) <= 0)).any(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(present, 1.0 / np.where(present & (m > 0), m, 1.0), 0.0).sum(axis=1)
        hm = np.where(cnt > 0, cnt / np.where(inv > 0, inv, 1.0), np.nan)
    return np.where(cnt == 0, np.nan, np.where(nonpos, 0.0, hm))


def score_interval(per_record: Sequence[dict], n_boot: int = N_BOOT, seed: int = SEED,
                   level: float = LEVEL) -> dict:
    """``{"mean", "lo", "hi", "n"}`` of the harmonic Score, resampling records jointly (n = records resampled)."""
    _check(n_boot, level)
    point = aggregate(per_record)["score"] if per_record else None
    if point is None:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    n = len(per_record)
    cols = [np.asarray([np.nan if r.get(k) is None else float(r[k]) for r in per_record]) for k in ("es", "ps", "ns")]
    rng = np.random.default_rng(seed)
    stats = []
    for idx in _index_chunks(n, n_boot, rng):
        stats.append(_harmonic_rows([_resample_means(c, idx) for c in cols]))
    s = np.concatenate(stats)
    s = s[~np.isnan(s)]
    if s.size == 0 or n == 1:
        return {"mean": point, "lo": point, "hi": point, "n": n}
    lo, hi = _quantiles(s, level)
    return {"mean": point, "lo": min(lo, point), "hi": max(hi, point), "n": n}


def aggregate_intervals(per_record: Sequence[dict], n_boot: int = N_BOOT, seed: int = SEED,
                        level: float = LEVEL) -> dict[str, dict]:
    """For each metric of ``METRICS`` and ``"score"``: ``{"mean", "lo", "hi", "n"}`` over the per-record dicts
    (``n`` = records that have the metric; the ``mean`` is :func:`~editbench.metrics.counterfact.aggregate`'s)."""
    out = {k: interval([r.get(k) for r in per_record], n_boot=n_boot, seed=seed, level=level) for k in METRICS}
    out["score"] = score_interval(per_record, n_boot=n_boot, seed=seed, level=level)
    return out


def method(n_boot: int = N_BOOT, seed: int = SEED, level: float = LEVEL) -> dict:
    """How the intervals were made, for the result JSON beside them."""
    return {"kind": "percentile bootstrap over records", "n_boot": n_boot, "seed": seed, "level": level}


def format_rate(value: float | None, ci: dict | None = None, n_row: int | None = None, digits: int = 2) -> str | None:
    """A table cell: ``0.90 [0.70, 1.00]`` (the value and its interval), with `` n=9`` when the metric is over a
    different number of records than the row's ``n_row``; the value alone, to 3 decimals, without an interval;
    ``None`` when not measured."""
    if value is None:
        return None
    if not ci or ci.get("lo") is None or ci.get("hi") is None:
        return f"{value:.3f}"
    cell = f"{value:.{digits}f} [{ci['lo']:.{digits}f}, {ci['hi']:.{digits}f}]"
    n = ci.get("n")
    if n is not None and n_row is not None and n != n_row:
        cell += f" n={n}"
    return cell


def record_intervals(per_record: list[dict]) -> dict:
    """Intervals of METRICS and the Score, plus those of the token_acc / gen keys the records carry."""
    out = aggregate_intervals(per_record)
    for k in EXTRA_METRICS:
        if any(k in r for r in per_record):
            out[k] = interval([r.get(k) for r in per_record])
    return out
