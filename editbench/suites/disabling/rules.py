"""Disabling edits (seed paper, Sec. 3.4.1, Table 2): which single edits break a fresh model, and why a CF edit did.

Three precise rules, all pure functions of measured numbers (the runner :mod:`editbench.suites.disabling.isolation`
measures them):

**Outliers of a scan** (:func:`flag_outliers`). Each of N records is applied as the only edit to a fresh model
and its normalized weight distance d_i (``‖W − W₀‖_F / numel`` of all edited weights together,
:mod:`editbench.metrics.distance`) recorded. Distances of normal edits spread over a factor of a few, a disabling
edit is orders of magnitude away (Table 2: 3.3e-4 against 8.2e-7 on GPT-J), so the rule works on x_i = log10 d_i:
with m the median and MAD the median absolute deviation of the x of the other edits (leave-one-out, so an
outlier does not widen its own yardstick), the robust z-score is z_i = (x_i − m) / max(1.4826·MAD, ``sigma_floor``)
and edit i is **flagged** when z_i ≥ ``z`` (3.5, Iglewicz & Hoaglin's bar for the modified z-score) **and** d_i is
at least ``min_ratio`` (10) times the median distance — an order of magnitude, so a tight distribution cannot
flag a 1.5× wobble. An edit whose distance is not finite, whose weights hold NaN/inf, or that raised is flagged
whatever the statistics say (a finding, never a crash). With fewer than ``min_n`` (5) finite distances only those
are flagged.

**Health collapse** (:func:`health_collapse`): a model is *disabled* when its health signals, measured before and
after the edit, collapse as the CF detector (:mod:`editbench.metrics.collapse`) defines it: a higher-is-better
signal falls by ≥ ``drop`` (20%) of its value before, a lower-is-better one (perplexity) rises by a factor ≥
1/(1 − ``drop``). The signals are recall of unedited facts (available only if the unedited model recalls at least
``min_recall`` = half of them: SmolLM2 knows ~3% of CounterFact's facts, a 0.03 → 0.01 is noise), perplexity on
generic text and generation entropy of greedy generations (the top-5-sampled variant, ROME's, when greedy was
not measured; one entropy signal, not two: sampling among the top 5 keeps n-grams varied even from a broken
model — measured: SmolLM2 after ROME's CF edit 3953, perplexity ×10.5, greedy entropy −30%, sampled −11%). Disabled = at least ``min_signals`` (2) of the available signals collapsed (all of them when fewer are
available); non-finite weights, a non-finite health value or a raised edit count as disabled.

**Intrinsic vs accumulated** (:func:`classify`): a sequential run's disabling edit (the edit of a CF point)
applied as the *first* edit on a fresh model is **intrinsic** when the fresh model is disabled too *and* its
distance is comparable to the spike: d_fresh ≥ increment / ``factor`` (``factor`` = 10), where increment =
D_n − D_{n−1} is the jump of the run's distance at the CF point (a lower bound of that edit's own update norm by
the triangle inequality, so "within an order of magnitude of the spike"). Otherwise it is **accumulated**: the
edit broke the model only because of the edits before it. Both criteria are reported separately.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import median
from typing import Sequence


@dataclass(frozen=True)
class DisablingRule:
    """Parameters of the three rules (module docstring)."""

    z: float = 3.5
    min_ratio: float = 10.0
    sigma_floor: float = 0.05   # decades: a floor on the robust sigma of log10 distances
    min_n: int = 5
    drop: float = 0.2
    min_recall: float = 0.5
    min_signals: int = 2
    factor: float = 10.0

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def flag_outliers(distances: Sequence[float | None], rule: DisablingRule = DisablingRule(),
                  broken: Sequence[bool] | None = None) -> list[dict]:
    """Per edit: ``{"log10", "z", "ratio", "flagged", "why"}`` (z and ratio None where not computable).
    ``broken[i]`` marks an edit that raised or left non-finite weights (flagged outright)."""
    broken = list(broken) if broken is not None else [False] * len(distances)
    logs = [math.log10(d) if _finite(d) and d > 0 else None for d in distances]
    out = []
    for i, (d, x) in enumerate(zip(distances, logs)):
        row = {"log10": x, "z": None, "ratio": None, "flagged": False, "why": None}
        if broken[i] or not _finite(d):
            row.update(flagged=True, why="non-finite weights or a failed edit" if broken[i] else "non-finite distance")
            out.append(row)
            continue
        others = [y for j, y in enumerate(logs) if j != i and y is not None and not broken[j]]
        if len(others) + 1 < rule.min_n or x is None:  # x None: a zero distance (nothing moved) is never an outlier
            out.append(row)
            continue
        m = median(others)
        mad = median(abs(y - m) for y in others)
        row["z"] = (x - m) / max(1.4826 * mad, rule.sigma_floor)
        row["ratio"] = 10 ** (x - m)
        if row["z"] >= rule.z and row["ratio"] >= rule.min_ratio:
            row.update(flagged=True, why=f"robust z {row['z']:.1f} >= {rule.z} and {row['ratio']:.3g}x the median "
                                         f">= {rule.min_ratio}x")
        out.append(row)
    return out


def distribution(distances: Sequence[float | None]) -> dict:
    """Median, quartiles, 5/95% quantiles, min, max and geometric mean of the finite distances (n of them)."""
    xs = sorted(d for d in distances if _finite(d))
    if not xs:
        return {"n": 0}

    def q(p: float) -> float:  # linear interpolation between order statistics (numpy's default)
        k = (len(xs) - 1) * p
        lo, hi = math.floor(k), math.ceil(k)
        return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

    pos = [x for x in xs if x > 0]
    return {"n": len(xs), "n_nonfinite": len(distances) - len(xs), "min": xs[0], "q05": q(0.05), "q25": q(0.25),
            "median": q(0.5), "q75": q(0.75), "q95": q(0.95), "max": xs[-1],
            "geo_mean": 10 ** (sum(math.log10(x) for x in pos) / len(pos)) if pos else None}


ENTROPY_KEYS = ("entropy", "entropy_sampled")  # the first one measured is the entropy signal (greedy)


def health_signals(before: dict, after: dict, directions: dict[str, str],
                   rule: DisablingRule = DisablingRule()) -> dict[str, dict]:
    """``{signal: {"key", "before", "after", "change", "collapsed", "available"}}`` for recall, perplexity and
    entropy (whichever were measured; metric keys as the probes name them)."""
    keys = {"recall": next((k for k in ("recall", "world_recall") if k in before), None),
            "perplexity": next((k for k in before if k == "ppl" or k.endswith("ppl")), None),
            "entropy": next((k for k in ENTROPY_KEYS if k in before), None)}
    out = {}
    for sig, key in keys.items():
        if key is None or key not in after:
            continue
        b, a = before[key], after[key]
        lower = directions.get(key) == "lower" or (key not in directions and key.endswith("ppl"))
        if not _finite(a):
            collapsed = True
        elif lower:
            collapsed = a >= b / (1 - rule.drop) if b > 0 else a > b
        else:
            collapsed = (b - a) >= rule.drop * abs(b) if b != 0 else a < b
        available = _finite(b) and (b >= rule.min_recall if sig == "recall" else (b > 0 if lower else b != 0))
        out[sig] = {"key": key, "before": b, "after": a, "change": (a - b) if _finite(a) and _finite(b) else None,
                    "collapsed": bool(collapsed), "available": bool(available)}
    return out


def health_collapse(signals: dict[str, dict], rule: DisablingRule = DisablingRule(), broken: bool = False) -> dict:
    """``{"disabled", "n_collapsed", "n_available", "need", "why"}`` from :func:`health_signals`."""
    live = {k: s for k, s in signals.items() if s["available"]}
    bad = sorted(k for k, s in live.items() if s["collapsed"])
    nonfinite = sorted(k for k, s in signals.items() if not _finite(s["after"]))
    need = min(rule.min_signals, len(live))
    disabled = broken or bool(nonfinite) or (need > 0 and len(bad) >= need)
    why = ("non-finite weights or a failed edit" if broken else f"non-finite {', '.join(nonfinite)}" if nonfinite
           else f"collapsed: {', '.join(bad)} ({len(bad)} of {len(live)} available, {need} needed)" if disabled
           else f"{len(bad)} of {len(live)} available signals collapsed ({need} needed)")
    return {"disabled": disabled, "collapsed": bad, "n_collapsed": len(bad), "n_available": len(live), "need": need,
            "why": why}


def classify(fresh_distance: float | None, increment: float | None, disabled: bool,
             rule: DisablingRule = DisablingRule(), broken: bool = False) -> dict:
    """Intrinsic or accumulated (module docstring). ``increment``: the run's distance jump at the CF point (None
    if unknown: the distance criterion is then not checked)."""
    if broken:
        return {"class": "intrinsic", "distance_comparable": True, "fresh_over_increment": None,
                "why": "the edit alone leaves non-finite weights or fails"}
    if fresh_distance is None or not _finite(fresh_distance):
        comparable, ratio = True, None
    elif increment is None or not _finite(increment) or increment <= 0:
        comparable, ratio = None, None
    else:
        ratio = fresh_distance / increment
        comparable = ratio >= 1 / rule.factor
    intrinsic = disabled and comparable is not False
    why = (f"fresh distance {'n/a' if ratio is None else f'{ratio:.3g}x'} the spike's increment "
           f"({'>=' if comparable else '<'} 1/{rule.factor:g})" if comparable is not None
           else "no spike increment to compare with") + f"; fresh model {'disabled' if disabled else 'healthy'}"
    return {"class": "intrinsic" if intrinsic else "accumulated", "distance_comparable": comparable,
            "fresh_over_increment": ratio, "why": why}
