"""Automatic detection of the catastrophic-forgetting (CF) point of a sequential editing run.

The seed paper (Sec. 3.4, 4) sees two phases: *gradual* forgetting while the edited weights drift slowly, then
— for ROME early, for MEMIT late — an edit at which the distance of the edited layer from its original jumps and,
at the same time, new edits stop working, earlier edits are forgotten en masse and the model loses its general
abilities. This module turns that picture into a precise rule.

**The rule.** Let D_n be the weight distance after edit n (normalized L2 of all edited weights together,
:mod:`editbench.metrics.distance`) and Δ_n = D_n − D_{n−1} its increments (D_0 = 0). Edit n is a **distance
jump** when, with the median m and MAD of the ``lookback`` increments before it (at least ``min_history`` of
them),

    z_n = (Δ_n − m) / σ ≥ ``z``        with σ = max(1.4826·MAD, ``sigma_floor_rel``·|m|, tiny)

and Δ_n ≥ ``min_jump_rel`` · D_{n−1} (the step is large against the drift accumulated so far too, so a noisy but
gradual series never qualifies). The floor on σ keeps a perfectly regular series (MAD = 0) from calling any
wobble a jump.

A distance jump at n is the **CF point** when at least ``min_signals`` of the available functional signals
(all of them if fewer are available) collapse in the window [n − ``tol_before``, n + ``tol_after``]:

- **efficacy**: mean ES of the ``es_window`` edits from n on, minus mean ES of the ``es_window`` edits before
  n, ≤ −``es_drop``;
- **forgetting**: the forgetting fraction at the first check at or after n (within ``tol_after``) minus the
  last check before n (within ``tol_before``, or 0 if none) ≥ ``forget_rise`` (checks where fewer than
  ``min_learned`` edits had been learned are skipped: 1 of 1 forgotten is not a collapse);
- **health**: the same before/after comparison of the health signal falls by ≥ ``health_drop`` (relative:
  (before − after)/|before|; for lower-is-better signals like perplexity, a rise by a factor ≥
  1/(1 − health_drop)).

- **downstream** (when the run evaluated downstream tasks, :mod:`editbench.metrics.downstream`): the mean F1 of
  the tasks the unedited model does above chance, before/after n as for health, falls by ≥ ``health_drop``
  (relative; the paper: at the CF point F1 drops to zero). A run without downstream checks, or whose model is
  at chance on every task, has no such signal.

A signal is *available* at n when it has values on both sides *and room to collapse*: efficacy only when the
ES window before n is at least ``es_min_before`` (0.5: an editor that was not working cannot stop working), forgetting
only when the fraction before n is at most 1 − ``forget_rise``. So when edits never worked, a distance jump
with a collapse of health alone is the CF point (the model broke, e.g. perplexity 6 → 10⁵). The first edit that satisfies the rule is the CF
point — unless a larger confirmed jump follows within ``tol_after`` (the same functional collapse confirms both;
the larger distance step is the one that caused it); its case id is the *disabling edit* (for a batch, all of the
batch's case ids). A jump that is not
confirmed is reported among ``jumps`` with ``confirmed: False``.

**Non-finite weights.** A step after which an edited weight holds NaN or inf (``nonfinite``, per step: the
runner checks every edited parameter after each edit) disabled the model outright, whatever the signals say and
however little history there is: the first such step is a CF point even at edit 1 (``min_history`` does not
apply; ``z`` is None, the distance ratio infinite). It is listed among ``jumps`` with ``nonfinite: True``. An
earlier confirmed distance jump stays the CF point.

With batch editing the series are per *step* (one batch) and n is the edit count after the batch. The
sequential runner passes the argmax-based "now" forgetting fraction (the paper's curves use argmax
correctness), its health key, and widens ``tol_before``/``tol_after`` to at least the check interval, so a
check always falls on each side. Defaults: a jump must be ≥ 8 robust sigmas and ≥ 10% of the distance so far;
it must coincide with ≥ 2 of: ES window −0.3, forgetting +0.2, health −20%. A gradual editor (FT-C) whose
distance never jumps has no CF point however much it forgets — that is gradual forgetting, by definition.

**Phases.** Before the CF point (or over the whole run without one) the *gradual* forgetting rate is the least-
squares slope of forgetting against the edit count, per edit (the summary also gives it per 100 edits). At the
point, the *catastrophic* jump is the change of each signal across it and the distance ratio D_n / D_{n−1}.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import median
from typing import Sequence


@dataclass(frozen=True)
class CollapseRule:
    """Parameters of the CF-point rule (see the module docstring for their meaning)."""

    z: float = 8.0
    lookback: int = 50
    min_history: int = 5
    sigma_floor_rel: float = 0.1
    min_jump_rel: float = 0.1
    tol_before: int = 10
    tol_after: int = 20
    es_window: int = 10
    es_drop: float = 0.3
    es_min_before: float = 0.5  # efficacy is a live signal only if the editor worked this often before n
    forget_rise: float = 0.2
    health_drop: float = 0.2
    min_signals: int = 2
    min_learned: int = 5


def _mean(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def distance_jumps(distance: Sequence[float], rule: CollapseRule = CollapseRule(),
                   steps: Sequence[int] | None = None) -> list[dict]:
    """Steps whose distance increment is a robust outlier. ``distance[i]`` is D after step i, which ends at edit
    count ``steps[i]`` (default i+1: one edit per step; with batches, the count after each batch)."""
    steps = list(steps) if steps is not None else list(range(1, len(distance) + 1))
    jumps = []
    if not distance:
        return jumps
    # a weight that overflowed has no finite distance (recorded as None): an infinite one, i.e. the largest jump
    distance = [math.inf if d is None or not math.isfinite(d) else d for d in distance]
    inc = [distance[0]] + [0.0 if math.isinf(distance[i]) and math.isinf(distance[i - 1])
                           else distance[i] - distance[i - 1] for i in range(1, len(distance))]
    for i in range(len(distance)):
        past = inc[max(0, i - rule.lookback):i]
        if len(past) < rule.min_history:
            continue
        if any(math.isinf(x) for x in past):
            continue  # the weights already overflowed before this step: nothing later can jump further
        m = median(past)
        mad = median(abs(x - m) for x in past)
        scale = max((abs(x) for x in distance[:i + 1] if math.isfinite(x)), default=1.0) or 1.0
        sigma = max(1.4826 * mad, rule.sigma_floor_rel * abs(m), 1e-12 * scale)
        zn = (inc[i] - m) / sigma
        prev = distance[i - 1] if i > 0 else 0.0
        if zn >= rule.z and inc[i] >= rule.min_jump_rel * prev:
            jumps.append({"edit": steps[i], "step": i, "z": zn, "increment": inc[i], "before": prev,
                          "after": distance[i],
                          "ratio": distance[i] / prev if prev > 0 else math.inf})
    return jumps


def _around(points: Sequence[tuple[int, float]], n: int, rule: CollapseRule) -> tuple[float | None, float | None]:
    """Checkpoint value just before edit n (within tol_before) and the first one at/after n (within tol_after)."""
    before = [v for e, v in points if n - rule.tol_before <= e < n and v is not None]
    after = [v for e, v in points if n <= e <= n + rule.tol_after and v is not None]
    return (before[-1] if before else None), (after[0] if after else None)


def signal_changes(i: int, n: int, es: Sequence[float | None] | None, forgetting: Sequence[tuple[int, float]] | None,
                   health: Sequence[tuple[int, float]] | None, health_lower_is_better: bool,
                   rule: CollapseRule, downstream: Sequence[tuple[int, float]] | None = None) -> dict[str, dict]:
    """For each available signal: its value before/after step ``i`` (= edit count ``n``), and whether it
    collapsed there. ``es`` is per step; forgetting and health are (edit count, value) checkpoints."""
    out: dict[str, dict] = {}
    if es:
        before = _mean(es[max(0, i - rule.es_window):i])
        after = _mean(es[i:i + rule.es_window])
        if before is not None and after is not None:
            out["efficacy"] = {"before": before, "after": after, "collapsed": after - before <= -rule.es_drop,
                               "available": before >= max(rule.es_drop, rule.es_min_before)}
    if forgetting:
        before, after = _around(forgetting, n, rule)
        if before is None and after is not None and not any(e < n for e, _ in forgetting):
            before = 0.0  # no check before the first edits: nothing was forgotten yet
        if before is not None and after is not None:
            out["forgetting"] = {"before": before, "after": after, "collapsed": after - before >= rule.forget_rise,
                                 "available": before <= 1.0 - rule.forget_rise}
    if health:
        before, after = _around(health, n, rule)
        if before is not None and after is not None:
            if health_lower_is_better:
                bad = after >= before / (1.0 - rule.health_drop) if before > 0 else after > before
            else:
                bad = (before - after) >= rule.health_drop * abs(before) if before != 0 else after < before
            out["health"] = {"before": before, "after": after, "collapsed": bool(bad),
                             "available": before > 0 if health_lower_is_better else before != 0}
    if downstream:
        before, after = _around(downstream, n, rule)
        if before is not None and after is not None:
            out["downstream"] = {"before": before, "after": after, "available": before > 0,
                                 "collapsed": bool(before - after >= rule.health_drop * abs(before))}
    return out


def gradual_rate(forgetting: Sequence[tuple[int, float]], until: int | None = None) -> float | None:
    """Least-squares slope (forgetting fraction per edit) of checks at edits < ``until`` (all if None)."""
    pts = [(e, v) for e, v in forgetting if v is not None and (until is None or e < until)]
    if len(pts) < 2:
        return None
    mx = sum(e for e, _ in pts) / len(pts)
    my = sum(v for _, v in pts) / len(pts)
    sxx = sum((e - mx) ** 2 for e, _ in pts)
    return sum((e - mx) * (v - my) for e, v in pts) / sxx if sxx > 0 else None


def detect_collapse(distance: Sequence[float], es: Sequence[float | None] | None = None,
                    forgetting: Sequence[tuple[int, float]] | None = None,
                    health: Sequence[tuple[int, float]] | None = None, *, health_lower_is_better: bool = False,
                    case_ids: Sequence | None = None, steps: Sequence[int] | None = None,
                    rule: CollapseRule = CollapseRule(), nonfinite: Sequence[bool] | None = None,
                    downstream: Sequence[tuple[int, float]] | None = None) -> dict:
    """Find the CF point. ``distance``/``es``/``case_ids`` are per step (step i ends at edit count ``steps[i]``,
    default i+1; with batch editing a step is a batch and its case id entry the batch's ids); ``forgetting`` and
    ``health`` are ``(edit count, value)`` checkpoints. Returns a JSON-able dict: ``cf_edit`` (1-based, or None),
    ``case_id``, ``signals`` at the point, ``jumps`` (all distance jumps, confirmed or not), ``gradual``
    (forgetting rate before the point) and ``catastrophic`` (the changes across it). ``nonfinite`` (per step)
    marks steps after which the weights were not finite: the first is a CF point at any position. ``downstream``
    ``(edit count, mean F1 of the tasks above chance)`` checkpoints add the downstream signal."""
    jumps = distance_jumps(distance, rule, steps)
    first_bad = next((i for i, bad in enumerate(nonfinite or ()) if bad), None)
    if first_bad is not None:
        j = next((j for j in jumps if j["step"] == first_bad), None)
        if j is None:
            step_list = list(steps) if steps is not None else list(range(1, len(distance) + 1))
            prev = distance[first_bad - 1] if first_bad > 0 else 0.0
            prev = prev if prev is not None and math.isfinite(prev) else math.inf
            j = {"edit": step_list[first_bad], "step": first_bad, "z": None, "increment": math.inf, "before": prev,
                 "after": math.inf, "ratio": math.inf}
            jumps.append(j)
            jumps.sort(key=lambda x: x["step"])
        j["nonfinite"] = True
    cf = None
    for j in jumps:
        sig = signal_changes(j["step"], j["edit"], es, forgetting, health, health_lower_is_better, rule, downstream)
        live = [s for s in sig.values() if s["available"]]
        need = min(rule.min_signals, len(live))
        j["signals"] = sig
        j["confirmed"] = bool(j.get("nonfinite")) or (need > 0 and sum(s["collapsed"] for s in live) >= need)
        if j["confirmed"] and cf is None:
            cf = j
    if cf is not None and not cf.get("nonfinite"):
        # one functional collapse confirms every jump near it: the CF point is the largest confirmed jump within
        # tol_after of the first (a noise blip with little history just before the real spike must not win)
        near = [j for j in jumps if j["confirmed"] and cf["edit"] <= j["edit"] <= cf["edit"] + rule.tol_after]
        cf = max(near, key=lambda j: (j["increment"], -j["edit"]))
    out = {"cf_edit": None, "case_id": None, "signals": {}, "jumps": jumps, "rule": asdict(rule),
           "nonfinite": bool(cf and cf.get("nonfinite"))}
    until = cf["edit"] if cf else None
    rate = gradual_rate(forgetting or [], until)
    last = (steps[-1] if steps is not None and len(steps) else len(distance)) or None
    out["gradual"] = {"until_edit": until if cf else last, "forget_rate_per_edit": rate,
                      "forget_rate_per_100": rate * 100 if rate is not None else None}
    out["catastrophic"] = None
    if cf:
        out["cf_edit"] = cf["edit"]
        out["case_id"] = case_ids[cf["step"]] if case_ids is not None else None
        out["signals"] = cf["signals"]
        out["catastrophic"] = {"distance_ratio": cf["ratio"], "distance_before": cf["before"],
                               "distance_after": cf["after"], "z": cf["z"], "nonfinite": bool(cf.get("nonfinite")),
                               **{f"{k}_change": s["after"] - s["before"] for k, s in cf["signals"].items()}}
    return out


def milestones(forgetting: Sequence[tuple[int, float | None]], health: Sequence[tuple[int, float]], *,
               health_lower_is_better: bool, health_factors: Sequence[float] = (2.0, 10.0),
               forget_levels: Sequence[float] = (0.5, 0.9)) -> dict:
    """Where a run crosses fixed levels of damage: descriptive landmarks, *not* a CF point (no jump is needed).

    A run can break down without one disabling edit: MEMIT on SmolLM2 drifts smoothly while its perplexity grows
    from 19.5 to 10⁵ and it forgets nearly everything, so the detector above reports no CF point. To compare
    editors on such runs, this gives, from the run's checks (``(edit count, value)``; a check is every
    ``history_every`` edits, so each landmark is known to within that interval):

    - ``health_x<f>``: the first check whose health is ``f`` times worse than at the first check (lower-is-better
      signals such as perplexity: value ≥ f · first; higher-is-better ones: value ≤ first / f);
    - ``forget_<level>``: the first check whose forgetting fraction (the argmax "now" fraction the detector uses)
      is at least ``level``;
    - ``checked_until``: the last check's edit count (a landmark that is None was not reached by then).
    """
    out: dict = {"checked_until": max([n for n, _ in forgetting] + [n for n, _ in health], default=None)}
    h = [(n, v) for n, v in health if v is not None]
    h0 = next((v for _, v in h if math.isfinite(v)), None)

    def worse(v: float, f: float) -> bool:
        if not math.isfinite(v):  # an overflowed perplexity is as bad as it gets
            return health_lower_is_better
        if h0 is None or h0 <= 0:
            return False
        return v >= f * h0 if health_lower_is_better else v <= h0 / f

    for f in health_factors:
        out[f"health_x{f:g}"] = next((n for n, v in h if worse(v, f)), None)
    for level in forget_levels:
        out[f"forget_{level:g}"] = next((n for n, v in forgetting if v is not None and v >= level), None)
    return out
