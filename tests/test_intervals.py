"""Bootstrap intervals over records (editbench.metrics.intervals), their place in the single runner's result and in
the terminal table."""
from types import SimpleNamespace

import numpy as np
import pytest

from editbench.metrics import intervals as iv
from editbench.metrics.counterfact import EXTRA_METRICS, METRICS, aggregate
from editbench.metrics.intervals import aggregate_intervals, bootstrap_ci, format_rate, interval


def test_seeded_and_deterministic():
    vals = list(np.random.default_rng(1).random(30))
    assert bootstrap_ci(vals, seed=0) == bootstrap_ci(vals, seed=0)
    assert bootstrap_ci(vals, seed=0) != bootstrap_ci(vals, seed=1)  # the seed is what fixes it


def test_interval_contains_the_mean():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(2, 40))
        vals = (rng.random(n) < rng.random()).astype(float) if trial % 2 else rng.random(n) ** 3  # rates, skewed
        lo, hi = bootstrap_ci(list(vals), n_boot=200, seed=trial)
        assert lo <= float(np.mean(vals)) <= hi and lo >= vals.min() and hi <= vals.max()


def test_width_shrinks_with_n():
    rng = np.random.default_rng(0)
    widths = []
    for n in (10, 40, 160, 640):
        lo, hi = bootstrap_ci(list((rng.random(n) < 0.5).astype(float)))
        widths.append(hi - lo)
    assert widths == sorted(widths, reverse=True) and widths[-1] < widths[0] / 3  # ~1/sqrt(n)


def test_degenerate_cases_and_none_skipped():
    assert bootstrap_ci([]) is None and bootstrap_ci([None, None]) is None
    assert bootstrap_ci([0.7]) == (0.7, 0.7) and bootstrap_ci([None, 0.3, None]) == (0.3, 0.3)
    assert bootstrap_ci([0.1] * 10) == (0.1, 0.1)  # all equal: no spread to resample
    assert bootstrap_ci([1.0, None, 0.0, 1.0]) == bootstrap_ci([1.0, 0.0, 1.0])
    assert interval([None]) == {"mean": None, "lo": None, "hi": None, "n": 0}
    with pytest.raises(ValueError):
        bootstrap_ci([0.0, 1.0], level=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([0.0, 1.0], n_boot=0)


def test_nine_of_ten():
    # the size of what a 10-record gate can tell apart: 9 of 10 edits succeeding is 0.90 [0.70, 1.00]
    lo, hi = bootstrap_ci([1.0] * 9 + [0.0])
    assert (round(lo, 2), round(hi, 2)) == (0.7, 1.0)


def test_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    p, n, reps, hits = 0.7, 50, 300, 0
    for r in range(reps):
        lo, hi = bootstrap_ci(list((rng.random(n) < p).astype(float)), n_boot=500, seed=r)
        hits += lo <= p <= hi
    assert 0.88 <= hits / reps <= 0.99, hits / reps


def test_chunked_resampling_draws_the_same_stream(monkeypatch):
    vals = list(np.random.default_rng(2).random(25))
    whole = bootstrap_ci(vals, n_boot=300, seed=3)
    monkeypatch.setattr(iv, "_CHUNK", 60)  # 2 resamples per chunk: the memory bound for large n
    assert bootstrap_ci(vals, n_boot=300, seed=3) == whole


def _records(n, seed=0):
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        r = {k: float(rng.random() < 0.8) for k in METRICS}
        r["em"], r["pm"], r["nm"] = (float(x) for x in rng.normal(0.2, 0.3, 3))
        if i % 4 == 0:
            r["ps"] = None  # a record without paraphrases
        recs.append(r)
    return recs


def test_aggregate_intervals_match_the_plain_means():
    recs = _records(20)
    out, agg = aggregate_intervals(recs), aggregate(recs)
    assert set(out) == set(METRICS) | {"score"}
    for k, ci in out.items():
        assert set(ci) == {"mean", "lo", "hi", "n"}
        assert ci["mean"] == agg[k] and ci["lo"] <= ci["mean"] <= ci["hi"]
    assert out["es"]["n"] == 20 and out["ps"]["n"] == 15  # n counts the records that have the metric
    assert aggregate_intervals(recs) == out  # seeded
    assert all(v == {"mean": None, "lo": None, "hi": None, "n": 0} for v in aggregate_intervals([]).values())


def test_score_interval_resamples_records_jointly():
    recs = [{"es": 1.0, "ps": 1.0, "ns": 1.0}] * 5 + [{"es": 1.0, "ps": 0.0, "ns": 1.0}] * 5
    ci = iv.score_interval(recs)
    assert ci["mean"] == aggregate(recs)["score"] == pytest.approx(0.75)
    assert ci["lo"] < 0.75 < ci["hi"] <= 1.0 and ci["n"] == 10
    zero = iv.score_interval([{"es": 0.0, "ps": 1.0, "ns": 1.0}] * 3)
    assert zero == {"mean": 0.0, "lo": 0.0, "hi": 0.0, "n": 3}  # harmonic mean with a zero part is 0


def test_format_rate():
    ci = {"mean": 0.9, "lo": 0.7, "hi": 1.0, "n": 10}
    assert format_rate(0.9, ci, 10) == "0.90 [0.70, 1.00]"
    assert format_rate(0.9, {**ci, "n": 9}, 10) == "0.90 [0.70, 1.00] n=9"  # over fewer records than the row
    assert format_rate(0.9123, None, 10) == "0.912" and format_rate(None, ci, 10) is None


def test_table_shows_intervals_and_n():
    from editbench.pytest_plugin import TABLE_HEADERS, EditbenchSession
    recs = [{"es": 1.0, "ps": 1.0, "ns": 1.0, "em": 0.5}] * 9 + [{"es": 0.0, "ps": None, "ns": 1.0, "em": 0.1}]
    cis = aggregate_intervals(recs)
    single = {"suite": "single", "n": 10, "metrics": aggregate(recs), "verdict": "pass",
              "provenance": {"editor": {"name": "rome"}, "model": {"id": "m"}}, "timings": {"apply_s_mean": 1.0},
              "details": {"intervals": {"post": cis}}}
    seq = {"suite": "sequential", "n": 100, "metrics": {"es": 0.955, "ps": None, "ns": 0.5}, "verdict": "FAIL",
           "provenance": {"editor": {"name": "memit"}, "model": {"id": "m"}}, "timings": {}, "details": {}}
    rows = [dict(zip(TABLE_HEADERS, r)) for r in EditbenchSession.table_rows(SimpleNamespace(results=[single, seq]))]
    cols = rows[0]
    assert cols["n"] == 10 and cols["ES"] == "0.90 [0.70, 1.00]" and cols["protocol"] == "prob"
    assert cols["PS"] == "1.00 [1.00, 1.00] n=9"  # one record had no paraphrase prompts
    assert cols["em"] == 0.46  # magnitudes: the value (their intervals are in the JSON)
    seq_cols = rows[1]
    assert seq_cols["ES"] == "0.955" and seq_cols["PS"] is None  # no interval: the value as before


def test_single_runner_result_carries_intervals():
    from editbench.data.schema import EditRequest
    from editbench.editors.null import NullEditor
    from editbench.models.loader import load_model
    from editbench.suites.single.run import run_single

    lm = load_model("tiny-gpt2")
    reqs = [EditRequest(str(i), "{} is located in the city of", s, "Rome", "Paris",
                        paraphrase_prompts=(f"The capital near {s} is",), neighborhood_prompts=("Lyon is in",))
            for i, s in enumerate(["Toko Yasuda", "Danielle Darrieux", "Marc Chagall"])]
    res = run_single(NullEditor(), lm, reqs, progress=False)
    assert isinstance(res.post["es"], float) and set(res.post) == set(METRICS) | set(EXTRA_METRICS) | {"score", "n"}
    assert set(res.intervals) == {"post", "pre", "method"} and res.intervals["method"]["seed"] == 0
    # the null editor changes nothing: equal up to float noise (the same prompt scored in differently padded
    # batches may differ in the last bits, depending on the CPU's BLAS kernels)
    post, pre = res.intervals["post"], res.intervals["pre"]
    assert set(post) == set(pre)
    for k in post:
        assert post[k]["n"] == pre[k]["n"]
        for b in ("mean", "lo", "hi"):
            assert (post[k][b] is None and pre[k][b] is None) or post[k][b] == pytest.approx(pre[k][b], rel=1e-5,
                                                                                               abs=1e-8), k
    assert res.intervals["post"]["es"]["mean"] == res.post["es"] and res.intervals["post"]["es"]["n"] == 3
    assert "intervals" in res.to_dict()
