"""The catastrophic-forgetting (CF) point rule on synthetic runs (hypothesis): gradual noisy runs have none, a
planted collapse is found where it was planted whatever the noise, and the phases are measured separately."""
from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editbench.metrics.collapse import CollapseRule, detect_collapse, distance_jumps, gradual_rate, milestones

K = 10  # history checks every K edits, like the paper


def synth(n: int, seed: int, collapse_at: int | None = None, *, shape: str = "linear", jump_rel: float = 3.0,
          es_after: float = 0.2, forget_after: float = 0.85, recall_after: float = 0.1, heavy_tail: bool = False,
          functional_collapse: bool = True):
    """A sequential run's series: per-edit distance (gradual noisy drift, optionally one jump at ``collapse_at``
    that adds ``jump_rel`` times the distance accumulated so far, and at least 20 typical increments) and ES
    (Bernoulli), checks every K edits of forgetting and recall."""
    rng = random.Random(seed)
    dist, d = [], 0.0
    for i in range(1, n + 1):
        base = 1e-4 if shape == "linear" else 1e-4 / math.sqrt(i)  # ROME-like sqrt growth for "sqrt"
        noise = rng.lognormvariate(0, 0.5) if heavy_tail else rng.uniform(0.5, 1.5)
        d += base * noise
        if collapse_at is not None and i == collapse_at:
            d += max(jump_rel * d, 20 * base) if jump_rel > 0 else 0.0
        dist.append(d)
    after = lambda i: collapse_at is not None and functional_collapse and i >= collapse_at  # noqa: E731
    es = [float(rng.random() < (es_after if after(i) else 0.95)) for i in range(1, n + 1)]
    forgetting, health = [], []
    for c in range(K, n + 1, K):
        f = forget_after if after(c) else 0.0008 * c
        forgetting.append((c, min(1.0, max(0.0, f + rng.uniform(-0.03, 0.03)))))
        h = recall_after if after(c) else 0.95 - 0.0003 * c
        health.append((c, min(1.0, max(0.0, h + rng.uniform(-0.03, 0.03)))))
    return dist, es, forgetting, health


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(30, 400), seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(["linear", "sqrt"]),
       heavy=st.booleans())
def test_gradual_noisy_run_has_no_cf_point(n, seed, shape, heavy):
    dist, es, fg, hl = synth(n, seed, shape=shape, heavy_tail=heavy)
    out = detect_collapse(dist, es, fg, hl, case_ids=[f"c{i}" for i in range(n)])
    assert out["cf_edit"] is None
    assert out["case_id"] is None and out["catastrophic"] is None
    assert all(not j["confirmed"] for j in out["jumps"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(80, 400), seed=st.integers(0, 2**31 - 1),
       shape=st.sampled_from(["linear", "sqrt"]), heavy=st.booleans(), jump_rel=st.floats(0.15, 1000.0))
def test_planted_collapse_is_found_where_planted(data, n, seed, shape, heavy, jump_rel):
    at = data.draw(st.integers(12, n - 25), label="collapse_at")
    dist, es, fg, hl = synth(n, seed, at, shape=shape, heavy_tail=heavy, jump_rel=jump_rel)
    ids = [f"case{i + 1}" for i in range(n)]
    out = detect_collapse(dist, es, fg, hl, case_ids=ids)
    assert out["cf_edit"] == at  # the distance jump pins the edit exactly
    assert out["case_id"] == f"case{at}"
    assert out["signals"]["forgetting"]["collapsed"] and out["signals"]["health"]["collapsed"]
    cat = out["catastrophic"]
    assert cat["distance_ratio"] == pytest.approx(dist[at - 1] / dist[at - 2])
    assert cat["forgetting_change"] > 0.5 and cat["health_change"] < -0.5
    assert out["gradual"]["until_edit"] == at


@settings(max_examples=25, deadline=None)
@given(seeds=st.lists(st.integers(0, 2**31 - 1), min_size=3, max_size=3, unique=True), at=st.integers(15, 150))
def test_detection_is_invariant_to_the_noise_seed(seeds, at):
    found = {detect_collapse(*synth(200, s, at))["cf_edit"] for s in seeds}
    assert found == {at}


def test_distance_jump_alone_is_not_a_cf_point():
    """A weight jump that leaves efficacy, forgetting and health intact is reported but not confirmed."""
    dist, es, fg, hl = synth(200, 1, 100, functional_collapse=False)
    out = detect_collapse(dist, es, fg, hl)
    assert out["cf_edit"] is None
    assert [j["edit"] for j in out["jumps"]] == [100] and out["jumps"][0]["confirmed"] is False


def test_functional_collapse_without_a_distance_jump_is_not_a_cf_point():
    """The paper's CF point is a jump in weight distance; a functional drop alone (e.g. a gradual editor)
    is gradual forgetting, not a catastrophic point."""
    dist, es, fg, hl = synth(200, 2, 100, jump_rel=0.0)
    assert detect_collapse(dist, es, fg, hl)["cf_edit"] is None


def test_one_signal_is_not_enough_two_are():
    dist, es, fg, hl = synth(200, 3, 100)
    flat_es = [0.95] * 200
    flat_fg = [(n, 0.0008 * n) for n, _ in fg]
    assert detect_collapse(dist, flat_es, flat_fg, hl)["cf_edit"] is None            # health only
    assert detect_collapse(dist, flat_es, fg, hl)["cf_edit"] == 100                  # forgetting + health
    assert detect_collapse(dist, es, None, None)["cf_edit"] == 100                   # only ES available: 1 of 1
    assert detect_collapse(dist, flat_es, None, None)["cf_edit"] is None


def test_perplexity_health_rises_at_collapse():
    dist, es, fg, _ = synth(200, 4, 90)
    ppl = [(n, 20.0 if n < 90 else 5000.0) for n, _ in fg]
    out = detect_collapse(dist, [0.95] * 200, [(n, 0.0) for n, _ in fg], ppl, health_lower_is_better=True)
    assert out["cf_edit"] is None  # health alone
    out = detect_collapse(dist, es, fg, ppl, health_lower_is_better=True)
    assert out["cf_edit"] == 90 and out["signals"]["health"]["collapsed"]


def test_batched_steps_report_the_batch():
    """With batch editing a step is a batch: the CF point is the edit count after it, its case ids the batch's."""
    n_steps, b, at = 60, 4, 30
    dist, es, _, _ = synth(n_steps, 5, at)
    steps = [b * (i + 1) for i in range(n_steps)]
    fg = [(b * s, 0.001 * s if s < at else 0.9) for s in range(1, n_steps + 1)]
    ids = [[f"c{b * i + j}" for j in range(b)] for i in range(n_steps)]
    out = detect_collapse(dist, es, fg, None, case_ids=ids, steps=steps)
    assert out["cf_edit"] == b * at and out["case_id"] == ids[at - 1]


def test_regular_series_with_zero_mad_is_not_a_jump():
    dist = [1e-4 * i for i in range(1, 101)]
    dist[50:] = [d + 1e-6 for d in dist[50:]]  # a 1% wobble of one increment
    assert distance_jumps(dist) == []


def test_min_history_needed_before_a_jump_can_be_called():
    rule = CollapseRule()
    dist = [1e-4 * i for i in range(1, rule.min_history)] + [1.0] * 10
    assert distance_jumps(dist, rule) == []


def test_gradual_rate_is_the_slope_before_the_point():
    pts = [(n, 0.002 * n) for n in range(10, 101, 10)] + [(n, 0.9) for n in range(110, 201, 10)]
    assert gradual_rate(pts, until=101) == pytest.approx(0.002)
    assert gradual_rate(pts[:1]) is None


def test_health_alone_confirms_a_jump_when_edits_never_worked():
    # Measured on the fact world (ROME at published hparams never flips its facts): ES ~0 from the start, the
    # layer's distance goes 1.5 -> 11 -> 143 and perplexity 6 -> 202 -> 127,000. Efficacy cannot collapse (it was
    # never up) and no edit was learned (no forgetting signal), so the health collapse decides.
    dist = [0.1 * i for i in range(1, 26)] + [2.5 + 140.0] + [142.6 + 0.01 * i for i in range(1, 25)]
    es = [0.0] * 50
    health = [(0, 5.8), (10, 6.3), (20, 6.6), (30, 127000.0), (40, 160000.0), (50, 161000.0)]
    # (the runner drops forgetting checks with fewer than min_learned learned edits: none here)
    out = detect_collapse(dist, es, forgetting=[], health=health,
                          health_lower_is_better=True, rule=CollapseRule(tol_before=10, tol_after=10))
    assert out["cf_edit"] == 26
    assert out["signals"]["efficacy"]["available"] is False and out["signals"]["health"]["collapsed"]
    # the same jump without a health collapse is not confirmed
    calm = [(e, 6.0) for e, _ in health]
    out = detect_collapse(dist, es, health=calm, health_lower_is_better=True,
                          rule=CollapseRule(tol_before=10, tol_after=10))
    assert out["cf_edit"] is None and out["jumps"] and not out["jumps"][0]["confirmed"]


def test_efficacy_that_was_up_still_needs_a_second_signal():
    dist = [0.1 * i for i in range(1, 26)] + [2.5 + 140.0] + [142.6 + 0.01 * i for i in range(1, 25)]
    es = [1.0] * 25 + [0.0] * 25
    calm = [(e, 6.0) for e in range(0, 51, 10)]
    out = detect_collapse(dist, es, health=calm, health_lower_is_better=True,
                          rule=CollapseRule(tol_before=10, tol_after=10))
    assert out["cf_edit"] is None  # efficacy alone (of two live signals) is not enough
    bad = [(0, 6.0), (10, 6.0), (20, 6.0), (30, 900.0), (40, 900.0), (50, 900.0)]
    out = detect_collapse(dist, es, health=bad, health_lower_is_better=True,
                          rule=CollapseRule(tol_before=10, tol_after=10))
    assert out["cf_edit"] == 26


def test_overflowed_weights_are_the_largest_jump():
    # Measured on the fact world: MEMIT's accumulated updates overflowed after ~470 edits (distance 1e13, then
    # not finite, recorded as None). The first non-finite step is a jump; the steps after it are not new jumps.
    dist = [0.1 * i for i in range(1, 31)] + [None] * 10
    jumps = distance_jumps(dist)
    assert [j["edit"] for j in jumps] == [31] and math.isinf(jumps[0]["ratio"])
    health = [(0, 1.0), (30, 1.0), (40, 0.0)]
    out = detect_collapse(dist, [1.0] * 30 + [0.0] * 10, health=health, rule=CollapseRule(tol_after=10))
    assert out["cf_edit"] == 31


def test_first_nonfinite_step_is_a_cf_point_at_any_position():
    # An edit that writes NaN/inf disabled the model: a CF point even at edit 1, with no history at all, and
    # whatever the functional signals say (the runner flags it per step; its distance is None).
    dist = [None] * 8
    out = detect_collapse(dist, [0.0] * 8, nonfinite=[True] * 8, case_ids=[f"c{i + 1}" for i in range(8)])
    assert out["cf_edit"] == 1 and out["case_id"] == "c1" and out["nonfinite"] is True
    assert out["catastrophic"]["nonfinite"] is True and math.isinf(out["catastrophic"]["distance_ratio"])
    assert [j["edit"] for j in out["jumps"]] == [1] and out["jumps"][0]["confirmed"]
    # later in a run: the first flagged step, also where the distance jump alone would not be confirmed
    dist = [0.1 * i for i in range(1, 31)] + [None] * 10
    calm = [(e, 1.0) for e in range(0, 41, 10)]
    flags = [False] * 30 + [True] * 10
    assert detect_collapse(dist, [1.0] * 40, health=calm)["cf_edit"] is None
    out = detect_collapse(dist, [1.0] * 40, health=calm, nonfinite=flags)
    assert out["cf_edit"] == 31 and out["jumps"][0]["nonfinite"] and out["gradual"]["until_edit"] == 31
    # batches: the edit count after the batch
    out = detect_collapse([1.0, None], nonfinite=[False, True], steps=[4, 8], case_ids=[["a", "b"], ["c", "d"]])
    assert out["cf_edit"] == 8 and out["case_id"] == ["c", "d"]


def test_an_earlier_confirmed_jump_stays_the_cf_point_before_a_nonfinite_step():
    dist, es, fg, hl = synth(200, 3, 100)
    flags = [False] * 150 + [True] * 50
    out = detect_collapse(dist, es, fg, hl, nonfinite=flags)
    assert out["cf_edit"] == 100 and out["nonfinite"] is False
    assert any(j["edit"] == 151 and j.get("nonfinite") for j in out["jumps"])
    assert detect_collapse(dist, es, fg, hl, nonfinite=[False] * 200)["cf_edit"] == 100


def test_milestones_mark_the_first_check_past_each_damage_level():
    # MEMIT-like: perplexity grows smoothly then explodes, forgetting climbs, no distance jump
    ppl = [(n, 20.0 * 1.012 ** n) for n in range(10, 610, 10)]
    forget = [(n, min(1.0, n / 500)) for n in range(10, 610, 10)]
    m = milestones(forget, ppl, health_lower_is_better=True)
    first = ppl[0][1]
    assert m["health_x2"] == next(n for n, v in ppl if v >= 2 * first)
    assert m["health_x10"] == next(n for n, v in ppl if v >= 10 * first)
    assert m["health_x2"] < m["health_x10"]
    assert m["forget_0.5"] == 250 and m["forget_0.9"] == 450 and m["checked_until"] == 600
    # the same run's detector: no distance jump, so no CF point -- the landmarks are what describes it
    assert detect_collapse([1e-5 * i for i in range(1, 601)], [1.0] * 600, forget, ppl,
                           health_lower_is_better=True)["cf_edit"] is None


def test_milestones_not_reached_higher_is_better_and_nonfinite():
    recall = [(10, 0.8), (20, 0.7), (30, 0.5), (40, 0.3)]
    m = milestones([(10, 0.0), (20, 0.1), (30, None), (40, 0.2)], recall, health_lower_is_better=False)
    assert m["health_x2"] == 40 and m["health_x10"] is None            # 0.3 <= 0.8/2; never <= 0.08
    assert m["forget_0.5"] is None and m["checked_until"] == 40
    m = milestones([], [(10, 19.5), (20, 25.0), (30, math.inf)], health_lower_is_better=True)
    assert m["health_x2"] == 30 and m["health_x10"] == 30               # an overflowed perplexity counts
    assert milestones([], [], health_lower_is_better=True) == {
        "checked_until": None, "health_x2": None, "health_x10": None, "forget_0.5": None, "forget_0.9": None}
