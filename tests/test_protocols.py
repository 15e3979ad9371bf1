"""The three scoring protocols: prob (unchanged), token_acc (teacher-forced token accuracy), gen (free greedy
generation, batched with left padding and a KV cache) — definitions, batch invariance, the match rule, and the
runners' use of them."""
from __future__ import annotations

import json

import pytest
import torch

from editbench.data.schema import EditRequest
from editbench.metrics.counterfact import (GEN_METRICS, METRICS, PROTOCOLS, TOKEN_ACC_METRICS, _token_acc_from,
                                           aggregate, check_protocols, gen_items, probe_pairs, score_requests)
from editbench.metrics.generation import (GEN_EXTRA, GEN_MAX_NEW, GenForgetting, PromptGenerator, greedy_generate,
                                          greedy_generate_one_by_one, n_new_tokens, normalize,
                                          starts_with_target)
from editbench.metrics.scoring import encode_pair, score_ids, score_targets
from editbench.models.loader import load_model
from editbench.models.tokens import pad_left
from editbench.models.tokens import encode_prefix, encode_target, pad_token_id

PROMPTS = ["The city of", "Danielle Darrieux was born in the city of Paris and she", "a",
           "Toko Yasuda plays the", "The mother tongue of Thomas is", "He works for"]


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def lm(request):
    return load_model(request.param)


def _greedy_ids(lm, prefix: list[int], n: int) -> list[int]:
    seq = list(prefix)
    with torch.no_grad():
        for _ in range(n):
            seq.append(int(lm.model(torch.tensor([seq])).logits[0, -1].argmax()))
    return seq[len(prefix):]


def _hand_token_acc(lm, ids: list[int], k: int) -> float:
    """Share of ids[k:] that are the argmax of the full-sequence logits one position earlier."""
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0]
    hits = [int(logits[j - 1].argmax()) == ids[j] for j in range(k, len(ids))]
    return sum(hits) / len(hits)


# -- token_acc ---------------------------------------------------------------------------------------------------
def test_token_acc_equals_hand_computation_on_ids(lm):
    prefix = encode_prefix(lm.tok, "the city of")
    g1 = _greedy_ids(lm, prefix, 1)[0]
    with torch.no_grad():
        wrong = int(lm.model(torch.tensor([prefix + [g1]])).logits[0, -1].argmin())  # never the argmax
    g3 = _greedy_ids(lm, prefix + [g1, wrong], 1)[0]
    seq = prefix + [g1, wrong, g3]          # hit, miss, hit (teacher-forced after the miss): 2/3
    k = len(prefix)
    s = score_ids(lm.model, [(seq, k), (prefix + [g1], k), (prefix + [wrong], k)], pad_id=pad_token_id(lm.tok))
    assert s.token_acc.tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert s.token_acc[0].item() == pytest.approx(_hand_token_acc(lm, seq, k))
    assert s.correct.tolist() == [False, True, False]  # exact match is the all-tokens special case


def test_token_acc_per_probe_kind_equals_hand_computation(lm):
    # targets made of greedy tokens, so the accuracies are not all zero on a random model
    cont = lm.tok.decode(_greedy_ids(lm, encode_prefix(lm.tok, "He works for"), 2))
    req = EditRequest("1", "{} works for", "He", target_new=cont.strip() or "Paris", target_true="Paris",
                      paraphrase_prompts=("He works for", "The city of"), neighborhood_prompts=("She works for",
                                                                                              "a river in"))
    m = score_requests(lm.model, lm.tok, [req], protocols=("token_acc",))[0]
    assert set(m) == set(TOKEN_ACC_METRICS)

    def acc(prompt, target):
        ids, k = encode_pair(lm.tok, prompt, target)
        return _hand_token_acc(lm, ids, k)

    assert m["es_tok"] == pytest.approx(acc(req.rewrite_prompt, req.target_new), abs=1e-6)
    assert m["ps_tok"] == pytest.approx(sum(acc(p, req.target_new) for p in req.paraphrase_prompts) / 2, abs=1e-6)
    # neighborhood: target_true's token accuracy (not agreement with the unedited model, as EasyEdit's locality)
    assert m["ns_tok"] == pytest.approx(sum(acc(p, "Paris") for p in req.neighborhood_prompts) / 2, abs=1e-6)


def test_token_acc_definitions_by_kind():
    req = EditRequest(case_id="1", prompt="{} is in", subject="X", target_new="Rome", target_true="Paris",
                      paraphrase_prompts=("X lies in", "X is found in"), neighborhood_prompts=("Y is in", "Z in"))
    pairs = probe_pairs(req)  # rewrite new/true, 2 x paraphrase new/true, 2 x neighborhood new/true
    acc = [0.5, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.5]
    m = _token_acc_from(pairs, acc)
    assert m == {"es_tok": 0.5, "ps_tok": 0.5, "ns_tok": 0.75}
    no_true = EditRequest(case_id="2", prompt="{} is in", subject="X", target_new="Rome",
                          neighborhood_prompts=("Y is in",))
    assert _token_acc_from(probe_pairs(no_true), [1.0, 0.0])["ns_tok"] is None


# -- prob: unchanged ---------------------------------------------------------------------------------------------
def test_prob_keys_and_values_do_not_depend_on_the_other_protocols(lm):
    reqs = [EditRequest(str(i), "{} is in the city of", s, "Rome", "Paris", paraphrase_prompts=(f"{s} music of",),
                        neighborhood_prompts=("a river in", "The city of")) for i, s in enumerate(["France", "Tokyo"])]
    prob = score_requests(lm.model, lm.tok, reqs, batch_size=3, protocols=("prob",))
    every = score_requests(lm.model, lm.tok, reqs, batch_size=3)
    assert all(set(p) == set(METRICS) for p in prob)
    assert all(set(e) == set(METRICS) | set(TOKEN_ACC_METRICS) | set(GEN_METRICS) for e in every)
    assert [{k: e[k] for k in METRICS} for e in every] == prob
    agg = aggregate(every)
    assert {k: agg[k] for k in METRICS} == {k: v for k, v in aggregate(prob).items() if k in METRICS}
    assert "es_gen" not in aggregate(prob) and "es_tok" in agg and agg["score"] == aggregate(prob)["score"]


def test_protocol_selection_is_checked():
    assert check_protocols(["gen", "prob"]) == ("prob", "gen") and check_protocols(PROTOCOLS) == PROTOCOLS
    for bad in (("bleu",), ()):
        with pytest.raises(ValueError, match="protocol"):
            check_protocols(bad)


# -- gen: the match rule -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("generated", ["Paris.", " paris", "Paris, France", "  PARIS  is", "Paris", "\n Paris!"])
def test_starts_with_target(generated):
    assert starts_with_target(generated, "Paris")


@pytest.mark.parametrize("generated", ["Parisian", "the Paris", "Pari s", "", "Par"])
def test_does_not_start_with_target(generated):
    assert not starts_with_target(generated, "Paris")


def test_normalize():
    assert normalize("  \"New   York\",\n") == "new york"
    assert starts_with_target(" new york city", "New York") and not starts_with_target("New Yorker", "New York")
    assert starts_with_target("U.S. Army", "U.S.") and starts_with_target("C++ and", "C++")
    assert not starts_with_target("anything", "...")  # an empty normalized target never matches


# -- gen: batched, left-padded, cached ---------------------------------------------------------------------------
def test_pad_left():
    ids, mask = pad_left([[1, 2, 3], [4]], pad_id=9)
    assert ids.tolist() == [[1, 2, 3], [9, 9, 4]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


@pytest.mark.parametrize("batch_size", [2, 16])
def test_generation_is_batch_invariant(lm, batch_size):
    enc = [encode_prefix(lm.tok, p) for p in PROMPTS]
    n_new = [5, 3, 6, 4, 7, 2]
    batched = greedy_generate(lm.model, enc, n_new, pad_id=pad_token_id(lm.tok), batch_size=batch_size)
    alone = greedy_generate_one_by_one(lm.model, enc, n_new)
    assert batched == alone
    assert [len(g) for g in batched] == n_new  # no EOS given: exactly n_new tokens each


def test_generation_feeds_the_prompt_once_then_one_token_per_step(lm):
    seen = []

    def hook(_m, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        seen.append((tuple(ids.shape), any(kwargs.get(k) is not None for k in ("cache", "past_key_values")),
                     ids.tolist(), kwargs["attention_mask"].tolist()))

    enc = [encode_prefix(lm.tok, p) for p in PROMPTS[:3]]
    h = lm.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        greedy_generate(lm.model, enc, [4, 4, 2], pad_id=pad_token_id(lm.tok), batch_size=8)
    finally:
        h.remove()
    width = max(len(e) for e in enc)
    assert [s[0] for s in seen] == [(3, width)] + [(3, 1)] * 3   # the prompt once, then one token per step
    assert [s[1] for s in seen] == [False, True, True, True]     # ... through the KV cache
    first_ids, first_mask = seen[0][2], seen[0][3]
    rows = sorted(([t for t, m in zip(row, mask) if m], mask) for row, mask in zip(first_ids, first_mask))
    for (real, mask), e in zip(rows, sorted(enc)):             # left padding; the prompt only, no target tokens
        assert real == e and mask == [0] * (width - len(e)) + [1] * len(e)


def test_generation_stops_at_eos(lm):
    enc = [encode_prefix(lm.tok, p) for p in PROMPTS]
    ref = greedy_generate_one_by_one(lm.model, enc, [6] * len(enc))
    eos = {ref[1][2]}  # pretend the third token of prompt 1's continuation is EOS
    got = greedy_generate(lm.model, enc, [6] * len(enc), pad_id=pad_token_id(lm.tok), eos_ids=eos)
    assert got == greedy_generate_one_by_one(lm.model, enc, [6] * len(enc), eos_ids=eos)
    assert got[1] == ref[1][:ref[1].index(ref[1][2])]


def test_generated_length_is_sized_for_both_targets(lm):
    req = EditRequest("1", "{} is in", "X", target_new="Rome", target_true="Danielle Darrieux of Paris",
                      paraphrase_prompts=("X lies in",), neighborhood_prompts=("Y is in",))
    items = gen_items(req)
    assert [(k, w) for k, _p, _s, w in items] == [("rewrite", "Rome"), ("paraphrase", "Rome"),
                                                  ("neighborhood", "Danielle Darrieux of Paris")]
    sized = {n_new_tokens(lm.tok, s) for _k, _p, s, _w in items}  # one length whatever the wanted target
    longest = max(len(encode_target(lm.tok, t)) for t in (req.target_new, req.target_true))
    assert sized == {min(longest + GEN_EXTRA, GEN_MAX_NEW)}
    assert n_new_tokens(lm.tok, ["word " * 100]) == GEN_MAX_NEW


def test_prompt_generator_checks_texts_batched_as_alone(lm):
    gen = PromptGenerator(lm.tok, batch_size=4)
    texts = gen.generate(lm.model, PROMPTS, [4] * len(PROMPTS))
    assert texts == [gen.generate(lm.model, [p], [4])[0] for p in PROMPTS]
    items = [(p, ("Paris",), t) for p, t in zip(PROMPTS, texts)] + [(PROMPTS[0], ("Paris",), "Parisian Zork")]
    oks, got = gen.check(lm.model, items)
    assert got[:len(PROMPTS)] == [gen.generate(lm.model, [p], [n_new_tokens(lm.tok, ["Paris"])])[0]
                                  for p in PROMPTS]
    assert oks == [starts_with_target(g, w) for g, (_p, _s, w) in zip(got, items)]


def test_gen_metrics_on_a_model_that_knows_its_facts():
    lm = load_model("factworld")
    from editbench.data import load_records

    recs, _ = load_records("factworld", n=4, seed=0, on_error="collect")
    m = score_requests(lm.model, lm.tok, recs)
    agg = aggregate(m)
    # the unedited fact world generates the true object (neighbours intact) and never the counterfactual one
    assert agg["ns_gen"] == 1.0 and agg["es_gen"] == 0.0 and agg["ns_tok"] == 1.0 and agg["es_tok"] == 0.0
    gen = PromptGenerator(lm.tok)
    texts = gen.generate(lm.model, [r.rewrite_prompt for r in recs], [4] * len(recs))
    assert all(starts_with_target(t, r.target_true) for t, r in zip(texts, recs)), texts


# -- runners -----------------------------------------------------------------------------------------------------
def test_gen_forgetting_tracker_and_state():
    g = GenForgetting()
    for ok in (True, True, False):
        g.add(ok)
    assert g.to_recheck() == [0, 1]
    g.update([0, 1], [False, True])
    assert g.fractions() == {"learned_gen": 2, "forgotten_gen_now": 1, "forgotten_gen_ever": 1,
                             "forget_gen_now": 0.5, "forget_gen_ever": 0.5}
    g.update([0, 1], [True, True])
    f = g.fractions()
    assert f["forget_gen_now"] == 0.0 and f["forget_gen_ever"] == 0.5
    assert GenForgetting.from_state(json.loads(json.dumps(g.state()))).fractions() == f
    old = GenForgetting.from_state(None, n=3)  # a checkpoint from before the tracker: earlier edits not learned
    assert old.to_recheck() == [] and len(old.ok) == 3 and GenForgetting().fractions()["forget_gen_now"] is None


def test_single_runner_reports_every_protocol():
    from editbench.editors.null import NullEditor
    from editbench.suites.single.run import run_single

    lm = load_model("tiny-gpt2")
    reqs = [EditRequest(str(i), "{} is located in the city of", s, "Rome", "Paris",
                        paraphrase_prompts=(f"The capital near {s} is",), neighborhood_prompts=("Lyon is in",))
            for i, s in enumerate(["Toko Yasuda", "Danielle Darrieux"])]
    res = run_single(NullEditor(), lm, reqs, progress=False)
    for k in TOKEN_ACC_METRICS + GEN_METRICS:
        assert k in res.post and k in res.pre and res.intervals["post"][k]["n"] == 2
    only = run_single(NullEditor(), lm, reqs, progress=False, protocols=("prob",))
    assert {k: only.post[k] for k in METRICS} == {k: res.post[k] for k in METRICS}
    assert not set(only.post) & set(GEN_METRICS)


def test_sequential_history_check_records_gen_forgetting(tmp_path):
    from editbench.registry import create
    from editbench.runner import SequentialConfig, run_sequential
    from editbench.runner.jsonl import read_jsonl

    lm = load_model("tiny-gpt2")
    reqs = [EditRequest(str(i), "{} is located in the city of", s, t, "Paris")
            for i, (s, t) in enumerate([("Toko Yasuda", "Rome"), ("Danielle Darrieux", "Tokyo"),
                                        ("Thomas", "Berlin"), ("Peter", "Madrid")])]
    editor = create("ft", ["tiny-gpt2"], num_steps=4, lr=0.05)
    cfg = SequentialConfig(n_edits=4, history_every=2, checkpoint_every=None, out_dir=str(tmp_path / "run"),
                           progress=False, order="given")
    summary = run_sequential(editor, lm, reqs, cfg, restore_model=False)  # a fresh model: left edited
    recs = read_jsonl(tmp_path / "run" / "results.jsonl")
    edits = [r for r in recs if r["type"] == "edit"]
    checks = [r for r in recs if r["type"] == "check" and "forgetting" in r]
    assert all(k in e["immediate"] for e in edits for k in GEN_METRICS + TOKEN_ACC_METRICS)
    learned = [e for e in edits if e["immediate"]["es_gen"] == 1.0]
    assert learned, "FT with these settings makes the rewrite prompt generate the target"
    last = checks[-1]
    assert last["forgetting_gen"]["learned_gen"] == len(learned) and "history_gen_s" in last["timing"]
    # the last check equals regenerating the learned edits' rewrite prompts on the final model by hand
    gen = PromptGenerator(lm.tok)
    by_id = {r.case_id: r for r in reqs}
    still = [gen.check(lm.model, [gen_items(by_id[e["case_id"]])[0][1:]])[0][0] for e in learned]
    assert last["forgetting_gen"]["forgotten_gen_now"] == still.count(False)
    assert summary["forgetting_gen_final"] == last["forgetting_gen"]
    assert "es_gen" in summary["immediate_mean"]


def test_table_has_one_row_per_protocol_with_intervals():
    from types import SimpleNamespace

    from editbench.metrics.intervals import interval
    from editbench.pytest_plugin import TABLE_HEADERS, EditbenchSession

    m = {"es": 1.0, "ps": 0.5, "ns": 1.0, "es_tok": 1.0, "ps_tok": 0.75, "ns_tok": None, "es_gen": 0.9,
         "ps_gen": 0.4, "ns_gen": 1.0}
    cis = {"es_gen": interval([1.0] * 9 + [0.0])}
    res = {"suite": "single", "n": 10, "metrics": m, "verdict": "pass", "timings": {},
           "provenance": {"editor": {"name": "rome"}, "model": {"id": "m"}}, "details": {"intervals": {"post": cis}}}
    rows = [dict(zip(TABLE_HEADERS, r)) for r in EditbenchSession.table_rows(SimpleNamespace(results=[res]))]
    assert [r["protocol"] for r in rows] == ["prob", "token_acc", "gen"] and rows[1]["editor"] == ""
    assert rows[1]["PS"] == "0.750" and rows[1]["NS"] is None  # no interval recorded: the value; not measured: empty
    assert rows[2]["ES"] == "0.90 [0.70, 1.00]" and rows[2]["em"] is None
    only_prob = {**res, "metrics": {"es": 1.0, "ps": 0.5, "ns": 1.0}}
    assert len(EditbenchSession.table_rows(SimpleNamespace(results=[only_prob]))) == 1  # scored without the others