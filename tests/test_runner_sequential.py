"""The sequential runner and its metrics on tiny models: streams, schedules, forgetting, distance, health,
batched history re-scoring (checked against one-at-a-time scoring), JSONL durability and determinism."""
from __future__ import annotations

import json
import math
from typing import Sequence

import pytest
import torch

from editbench.data import load_edit_orders, load_records
from editbench.data.schema import EditRequest
from editbench.editors.base import EditResult, Editor
from editbench.editors.ft import FTEditor
from editbench.editors.ft.hparams import FTHyperParams
from editbench.metrics.distance import DistanceTracker, layer_label, weight_distance
from editbench.metrics.forgetting import ForgettingTracker, Windows
from editbench.metrics.health import PerplexityProbe, RecallProbe, combine, lower_is_better
from editbench.metrics.scoring import score_ids, score_targets_one_by_one
from editbench.models.tokens import pad_token_id
from editbench.models.loader import load_model
from editbench.models.loader import state_hash
from editbench.registry import create
from editbench.report.plots import plot_summary
from editbench.runner.jsonl import JsonlWriter, read_jsonl, strip_timing, truncate
from editbench.runner import SequentialConfig, make_stream, run_sequential
from editbench.runner.schedule import batches, crossed, unique_subjects

TEXTS = ["The capital of France is Paris and the capital of Germany is Berlin .",
         "He was born in London and works for the BBC as a journalist ."]


@pytest.fixture(scope="module")
def pool():
    return load_records("counterfact-1k", n=200)


def fresh():
    return load_model("tiny-gpt2")


def ft(**kw):
    """Unconstrained FT with few, large steps: cheap, edits stick, and forgets earlier edits (what we test)."""
    return create("ft", ["tiny-gpt2"], **{"num_steps": 4, "lr": 0.05, **kw})


def cfg(tmp_path, **kw):
    base = dict(n_edits=12, history_every=4, checkpoint_every=None, out_dir=str(tmp_path / "run"), progress=False)
    return SequentialConfig(**{**base, **kw})


# -- pure parts -------------------------------------------------------------------------------------------------
def test_forgetting_tracker_now_ever_and_state():
    t = ForgettingTracker()
    t.add(1, "a", True, True)
    t.add(2, "b", True, False)
    t.add(3, "c", False, False)   # never learned: not counted as forgotten
    assert t.to_recheck() == [0, 1]
    t.update([0, 1], [False, True], [False, False])
    f = t.fractions()
    assert f["forget_prob_now"] == 0.5 and f["forget_argmax_now"] == 1.0 and f["learned_argmax"] == 1
    t.update([0, 1], [True, True], [True, False])  # edit a comes back
    f = t.fractions()
    assert f["forget_prob_now"] == 0.0 and f["forget_prob_ever"] == 0.5 and f["forget_argmax_ever"] == 1.0
    assert ForgettingTracker.from_state(json.loads(json.dumps(t.state()))).fractions() == f
    assert ForgettingTracker().fractions()["forget_argmax_now"] is None


def test_windows_trailing_means_and_survive_state():
    vals = [1, 0, None, 1, 1, 0, 1, 0, 0, 1, 1]
    w = Windows((2, 5))
    for v in vals:
        w.push({"es": v})
    assert w.means()["es_w5"] == pytest.approx(0.6)  # last five non-None values: 1, 0, 0, 1, 1
    assert w.means()["es_w2"] == 1.0
    assert Windows.from_state(json.loads(json.dumps(w.state()))).means() == w.means()


def test_distance_is_frobenius_over_numel():
    w0 = torch.zeros(4, 8)
    d = weight_distance(torch.full((4, 8), 0.5), w0)
    assert d["fro"] == pytest.approx(0.5 * math.sqrt(32)) and d["dist"] == pytest.approx(d["fro"] / 32)
    assert layer_label("transformer.h.3.mlp.c_proj.weight") == "L3 mlp.c_proj"
    lin = torch.nn.Linear(8, 4, bias=False)
    tr = DistanceTracker()
    tr.track({"weight": lin.weight.detach().clone()})
    with torch.no_grad():
        lin.weight.add_(1.0)
    m = tr.measure(lin)
    assert m["weight"]["fro"] == pytest.approx(math.sqrt(32))
    assert m["total"]["dist"] == pytest.approx(m["weight"]["dist"])
    # the edited matrix's own norm and its growth against the original (AlphaEdit/ENCORE's norm plots)
    w = lin.weight.detach()
    assert m["weight"]["norm"] == pytest.approx(float(w.norm()))
    assert m["weight"]["norm_ratio"] == pytest.approx(float(w.norm() / (w - 1.0).norm()))
    assert m["total"]["norm_ratio"] == pytest.approx(m["weight"]["norm_ratio"])
    d = weight_distance(torch.full((4, 8), 1.0), torch.full((4, 8), 0.5))
    assert d["norm"] == pytest.approx(math.sqrt(32)) and d["norm_ratio"] == pytest.approx(2.0)


def test_streams_are_seeded_subject_unique_and_published_orders_are_restricted(pool):
    dup = [pool[0], EditRequest("dup", "{} is", pool[0].subject, "x", "y")] + list(pool[1:5])
    assert [r.case_id for r in unique_subjects(dup)] == [pool[i].case_id for i in range(5)]
    a, b = make_stream(pool, "seeded", 0, 0), make_stream(pool, "seeded", 0, 0)
    assert [r.case_id for r in a] == [r.case_id for r in b]
    assert [r.case_id for r in a] != [r.case_id for r in make_stream(pool, "seeded", 0, 1)]
    assert len({r.subject for r in a}) == len(a)
    full = load_records("counterfact-1k")
    pub = make_stream(full, "published", sample=2)
    order = load_edit_orders()[2]
    have = {r.case_id for r in full}
    assert [r.case_id for r in pub] == [c for c in order if c in have][:len(pub)]
    with pytest.raises(ValueError, match="unique subjects"):
        make_stream(pool, n_edits=10_000)


def test_batches_and_crossing():
    assert [(p, len(b)) for p, b in batches(list(range(7)), 3)] == [(0, 3), (3, 3), (6, 1)]
    assert crossed(8, 11, 10) and not crossed(10, 13, 10) and crossed(9, 10, 10) and not crossed(3, 4, None)


def test_jsonl_is_durable_and_truncatable(tmp_path):
    p = tmp_path / "r.jsonl"
    with JsonlWriter(p, truncate_to=0) as w:
        w.write({"a": 1, "x": float("nan"), "timing": {"t": 1.0}})
        off = w.write({"a": 2, "t": (1, 2)})
        w.write({"a": 3})
    with open(p, "ab") as f:
        f.write(b'{"a": 4, "torn')  # a write cut by a kill
    assert [r["a"] for r in read_jsonl(p)] == [1, 2, 3]
    assert read_jsonl(p)[0]["x"] is None and strip_timing(read_jsonl(p)[0]) == {"a": 1, "x": None}
    truncate(p, off)
    assert [r["a"] for r in read_jsonl(p)] == [1, 2]


def test_health_probes():
    lm = fresh()
    ppl = PerplexityProbe(lm.tok, TEXTS)(lm.model, lm.tok)["ppl"]
    assert 1 < ppl < 5 * lm.model.config.vocab_size  # a random tiny model: about uniform over the vocabulary
    rec = RecallProbe(lm.tok, ["The capital of France is"], ["Paris"])
    both = combine(PerplexityProbe(lm.tok, TEXTS), rec)(lm.model, lm.tok)
    assert set(both) == {"ppl", "recall"} and both["recall"] in (0.0, 1.0)
    assert lower_is_better("ppl") and lower_is_better("wiki_ppl") and not lower_is_better("recall")
    pool = load_records("counterfact-1k", n=30)
    unedited = RecallProbe.unedited(lm.tok, pool, pool[:20], n=5)
    assert len(unedited.encoded) == 5 and unedited(lm.model, lm.tok)["recall"] in [i / 5 for i in range(6)]
    with pytest.raises(ValueError, match="no unedited facts"):
        RecallProbe.unedited(lm.tok, pool, pool)


# -- the runner -------------------------------------------------------------------------------------------------
def test_run_records_schedules_and_batched_history_matches_one_by_one(pool, tmp_path):
    lm = fresh()
    probe = combine(PerplexityProbe(lm.tok, TEXTS), RecallProbe(lm.tok, ["The capital of France is"], ["Paris"]))
    c = cfg(tmp_path, n_edits=10, schedules=("immediate", "history", "final"))
    s = run_sequential(ft(), lm, pool, c, health_probe=probe, dataset="counterfact-1k", restore_model=False)
    plot_summary(s)  # the figure is the report layer's
    recs = read_jsonl(s["paths"]["jsonl"])
    kinds = [r["type"] for r in recs]
    assert kinds[0] == "run" and kinds.count("edit") == 10 and kinds.count("final") == 10
    checks = [r for r in recs if r["type"] == "check"]
    assert [c["n"] for c in checks] == [0, 4, 8, 10]          # baseline health, every 4 edits, and the end
    assert "forgetting" not in checks[0] and all("health" in c for c in checks)
    edits = [r for r in recs if r["type"] == "edit"]
    assert [e["n"] for e in edits] == list(range(1, 11))
    assert all(set(e["immediate"]) >= {"es", "ps", "ns", "em", "es_correct"} for e in edits)
    name = "transformer.h.1.mlp.c_proj.weight"  # FT's layer on tiny-gpt2
    assert all(set(e["distance"]) == {name, "total"} and e["distance"][name]["dist"] > 0 for e in edits)
    # the batched history check agrees with scoring every rewrite prompt one at a time
    stream = {r.case_id: r for r in pool}
    learned = [e for e in edits if e["ok"]["argmax"]]
    ref = score_targets_one_by_one(lm.model, lm.tok, [stream[e["case_id"]].rewrite_prompt for e in learned],
                                   [stream[e["case_id"]].target_new for e in learned])
    last = checks[-1]["forgetting"]
    assert last["learned_argmax"] == len(learned)
    assert last["forgotten_argmax_now"] == int((~ref.correct).sum())
    assert s["forgetting_at"]["10"]["at_edit"] == 10
    assert s["final"]["n"] == 10 and s["health_key"] == "ppl"  # a random model knows no facts: recall is no signal
    for key in ("cf_edit", "cf_case_id", "final_windows", "gradual_forget_rate_per_100", "collapse", "milestones"):
        assert key in s
    assert s["milestones"]["checked_until"] == 10
    # drift at every check and after the last edit: the edited matrix's distance and norm growth
    assert [d["n"] for d in s["drift"]] == [4, 8, 10]
    assert s["drift"][-1]["dist"] == pytest.approx(edits[-1]["distance"]["total"]["dist"])
    assert s["drift"][-1]["norm_ratio"] == pytest.approx(edits[-1]["distance"]["total"]["norm_ratio"])
    assert all(d["norm_ratio"] > 0 for d in s["drift"])
    assert s["paths"]["plot"].endswith(".png") and (tmp_path / "run" / "summary.json").exists()


def test_same_seed_same_results_and_other_sample_differs(pool, tmp_path):
    runs = []
    for i, sample in enumerate((0, 0, 1)):
        c = cfg(tmp_path, n_edits=5, sample=sample, out_dir=str(tmp_path / f"r{i}"))
        s = run_sequential(ft(), fresh(), pool, c)
        recs = [strip_timing(r) for r in read_jsonl(s["paths"]["jsonl"])]
        recs[0]["config"].pop("out_dir")
        runs.append(recs)
    assert runs[0] == runs[1]
    assert runs[0][0]["stream"] != runs[2][0]["stream"]


def test_batch_editing_applies_batches_in_sequence(pool, tmp_path):
    s = run_sequential(ft(), fresh(), pool, cfg(tmp_path, n_edits=7, batch_size=3, history_every=5))
    recs = read_jsonl(s["paths"]["jsonl"])
    assert [e["batch"] for e in recs if e["type"] == "edit"] == [0, 0, 0, 1, 1, 1, 2]
    assert [c["n"] for c in recs if c["type"] == "check"] == [6, 7]  # crossed 5 during the 2nd batch; the end
    assert s["n_edits"] == 7 and s["complete"]


class Flaky(Editor):
    """Edits nothing; raises on every third call (a failing edit must not stop a run)."""
    name = "flaky"

    def __init__(self):
        super().__init__()
        self.calls = 0

    def apply(self, model, tok, requests):
        self.calls += 1
        if self.calls % 3 == 0:
            raise RuntimeError("no key found")
        return EditResult()


def test_failing_edits_are_recorded_and_null_edits_forget_nothing(pool, tmp_path):
    s = run_sequential(Flaky(), fresh(), pool, cfg(tmp_path, n_edits=6))
    edits = [r for r in read_jsonl(s["paths"]["jsonl"]) if r["type"] == "edit"]
    assert [bool(e["error"]) for e in edits] == [False, False, True, False, False, True]
    assert s["n_errors"] == 2 and all(e["distance"] == {} for e in edits)
    assert s["forgetting_final"]["forget_prob_now"] in (None, 0.0) and s["cf_edit"] is None


def test_resume_refuses_other_config_or_edited_model(pool, tmp_path):
    c = cfg(tmp_path, n_edits=4, checkpoint_every=2)
    lm = fresh()
    h0 = state_hash(lm.model)
    run_sequential(ft(), lm, pool, c)
    assert state_hash(lm.model) == h0  # the run hands the model back unedited (one model serves a session)
    ft().apply(lm.model, lm.tok, pool[:1])  # now it is edited: resuming onto it must be refused
    with pytest.raises(ValueError, match="config differs"):
        run_sequential(ft(), fresh(), pool, SequentialConfig(**{**c.to_dict(), "history_every": 3, "resume": True,
                                                                 "collapse": c.collapse}))
    with pytest.raises(ValueError, match="not the unedited original"):
        run_sequential(ft(), lm, pool, SequentialConfig(**{**c.to_dict(), "resume": True, "collapse": c.collapse}))
    with pytest.raises(ValueError, match="unknown schedule"):
        SequentialConfig(schedules=("immediate", "periodic"))
    with pytest.raises(ValueError, match="does not support batch"):
        run_sequential(Flaky(), lm, pool, cfg(tmp_path, batch_size=2))


class AgreementProbe:
    """(A test probe for random tiny models, which know no facts.) Share of fixed prompts whose greedy next token is still the one the *unedited* model predicted.

    Built from the model before any edit (it records that model's argmax after each prompt); needs no labelled
    facts, so it works for any model, random test models included, as a measure of how far the model's behaviour
    has drifted (``{"agreement": ...}``)."""

    def __init__(self, model, tok, prompts: Sequence[str], key: str = "agreement", batch_size: int = 64):
        if not prompts:
            raise ValueError("AgreementProbe needs at least one prompt")
        self.key = key
        self.batch_size = batch_size
        self.pad_id = pad_token_id(tok)
        ids = [list(tok(p)["input_ids"]) for p in prompts]
        self.encoded = [(p + [0], len(p)) for p in ids]  # placeholder target, replaced just below
        first = self._argmax(model)
        self.encoded = [(p + [t], len(p)) for p, t in zip(ids, first)]

    @torch.no_grad()
    def _argmax(self, model) -> list[int]:
        """Greedy next token after each prompt (reads the hidden state before the placeholder target)."""
        device = next(model.parameters()).device
        base, head = model.base_model, model.get_output_embeddings()
        out = []
        for start in range(0, len(self.encoded), self.batch_size):
            chunk = [s[:k] for s, k in self.encoded[start:start + self.batch_size]]
            width = max(len(s) for s in chunk)
            ids = torch.tensor([s + [self.pad_id] * (width - len(s)) for s in chunk])
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in chunk])
            hidden = base(input_ids=ids.to(device), attention_mask=mask.to(device))[0]
            last = hidden[torch.arange(len(chunk), device=device), torch.tensor([len(s) - 1 for s in chunk],
                                                                                   device=device)]
            out += head(last).argmax(-1).tolist()
        return out

    def __call__(self, model, tok=None) -> dict[str, float]:
        s = score_ids(model, self.encoded, pad_id=self.pad_id, batch_size=self.batch_size)
        return {self.key: float(s.correct.float().mean())}


class Disabling(FTEditor):
    """FT-C (L-inf 2e-3) that turns one chosen request into a disabling edit: after fine-tuning it adds a
    rank-one update 30× the norm of the edited weight — a stand-in for ROME's disabling edits (paper Table 2)."""
    name = "ft-c-disabling"

    def __init__(self, bad_case: str | None):
        super().__init__(FTHyperParams(layers=(1,), lr=0.05, num_steps=10, norm_constraint=2e-3))
        self.bad_case = bad_case

    def apply(self, model, tok, requests):
        res = super().apply(model, tok, requests)
        if any(r.case_id == self.bad_case for r in requests):
            w = dict(model.named_parameters())["transformer.h.1.mlp.c_proj.weight"]
            g = torch.Generator().manual_seed(0)
            u, v = torch.randn(w.shape[0], generator=g), torch.randn(w.shape[1], generator=g)
            with torch.no_grad():
                w.add_(torch.outer(u, v) * (30 * w.norm() / (u.norm() * v.norm())))
        return res


def test_planted_disabling_edit_is_found_in_a_real_run(pool, tmp_path):
    """End to end on a real (tiny) model: the runner's distance, ES, forgetting and health series locate the
    disabling edit and name its case id; the same stream without it has no CF point."""
    stream = make_stream(pool, n_edits=20)
    bad = stream[11].case_id  # edit 12
    found = []
    for name, bad_case in (("planted", bad), ("control", None)):
        lm = fresh()
        probe = AgreementProbe(lm.model, lm.tok, [r.rewrite_prompt for r in pool[150:200]])
        c = cfg(tmp_path, n_edits=20, history_every=2, out_dir=str(tmp_path / name))
        found.append(run_sequential(Disabling(bad_case), lm, pool, c, health_probe=probe,
                                    health_directions={"agreement": "higher"}))
    planted, control = found
    assert planted["cf_edit"] == 12 and planted["cf_case_id"] == bad
    assert planted["collapse"]["signals"]["health"]["collapsed"] and planted["catastrophic"]["distance_ratio"] > 5
    assert planted["health_key"] == "agreement"
    assert control["cf_edit"] is None and control["collapse"]["jumps"] == []


def test_factworld_health_probe_survives_one_edit_per_subject():
    # 1,000 edits touch every subject of the fact world; the probe still has 7,000 unedited (subject, relation)
    # facts to draw from (the CounterFact-style pool has one record per subject and would run dry).
    from editbench.data import load_records
    from editbench.factworld.world import load_world
    from editbench.metrics.probes import ProbeContext
    from editbench.models.loader import load_model
    from editbench.registry import PROBES

    lm = load_model("factworld")
    stream = load_records("factworld")
    assert len({r.subject for r in stream}) == len(load_world().subjects)
    probe = PROBES.get("factworld-recall").build(ProbeContext(tok=lm.tok, model_id="factworld", stream=stream))
    edited = {(r.subject.strip(), r.relation_id) for r in stream}
    assert len(probe.inner.encoded) == 200
    assert probe(lm.model)["recall"] >= 0.9  # the shipped model knows the unedited facts
    world = load_world()
    free = [f for f in world.facts if (f.subject, f.relation) not in edited]
    assert len(free) == len(world.facts) - len(edited)


def test_health_key_is_recall_only_where_the_model_knows_the_facts():
    from editbench.runner.summary import pick_health_key
    fact_world = [{"health": {"recall": 1.0, "ppl": 5.8}}, {"health": {"recall": 0.6, "ppl": 6.3}}]
    smollm2 = [{"health": {"recall": 0.025, "ppl": 19.5}}, {"health": {"recall": 0.015, "ppl": 20.7}}]
    assert pick_health_key(fact_world) == "recall"
    assert pick_health_key(smollm2) == "ppl"  # a recall of 0.03 -> 0.01 is noise, not a collapse
    assert pick_health_key(smollm2, "recall") == "recall"
    assert pick_health_key([{"health": {"agreement": 1.0}}]) == "agreement"
