"""Scoring: batched results equal one-at-a-time results, whatever the tokenizer's padding side."""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editbench.data.schema import EditRequest
from editbench.metrics.counterfact import _metrics_from, aggregate, harmonic_score, probe_pairs, score_requests
from editbench.metrics.scoring import encode_pair, score_branches, score_ids, score_targets, score_targets_one_by_one
from editbench.models.loader import load_model
from editbench.models.tokens import encode_prefix, encode_target, pad_token_id

WORDS = "the a of is in city river music born France Paris Rome language English French plays works at".split()


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def lm(request):
    return load_model(request.param)


def test_padding_sides_are_as_real_models(lm):
    # GPT-2 has no pad token; Llama pads on the left: the scorer must not care either way.
    if lm.model_id == "tiny-gpt2":
        assert lm.tok.pad_token_id is None
    else:
        assert lm.tok.padding_side == "left"


phrases = st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(phrases, st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)),
                      min_size=1, max_size=9),
       batch_size=st.integers(1, 6))
def test_batched_equals_one_by_one(lm, pairs, batch_size):
    prefixes = [p for p, _ in pairs]
    targets = [t for _, t in pairs]
    batched = score_targets(lm.model, lm.tok, prefixes, targets, batch_size=batch_size)
    single = score_targets_one_by_one(lm.model, lm.tok, prefixes, targets)
    torch.testing.assert_close(batched.nll, single.nll, atol=1e-4, rtol=1e-4)
    assert torch.equal(batched.correct, single.correct)
    assert torch.equal(batched.n_target_tokens, single.n_target_tokens)
    torch.testing.assert_close(batched.token_acc, single.token_acc)  # the token_acc protocol's per-pair value


targets = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(groups=st.lists(st.tuples(phrases, st.lists(targets, min_size=1, max_size=3)), min_size=1, max_size=7),
       batch_size=st.integers(1, 5))
def test_shared_prefix_scoring_equals_pairwise(lm, groups, batch_size):
    """score_branches runs each prefix once for all its targets (a tree attention mask, restarted positions): the
    same numbers as scoring every (prefix, target) pair on its own, for groups of 1-3 targets of 1+ tokens."""
    enc = [(encode_prefix(lm.tok, p), [encode_target(lm.tok, t) for t in ts]) for p, ts in groups]
    pad = pad_token_id(lm.tok)
    shared = score_branches(lm.model, enc, pad_id=pad, batch_size=batch_size)
    pairwise = score_ids(lm.model, [(p + t, len(p)) for p, ts in enc for t in ts], pad_id=pad, batch_size=3)
    torch.testing.assert_close(shared.nll, pairwise.nll, atol=1e-4, rtol=1e-4)
    assert torch.equal(shared.correct, pairwise.correct)
    assert torch.equal(shared.n_target_tokens, pairwise.n_target_tokens)
    torch.testing.assert_close(shared.token_acc, pairwise.token_acc)


@pytest.mark.parametrize("family", ["tiny-gptj", "tiny-neox"])
def test_shared_prefix_scoring_on_rotary_families(family):
    """GPT-J and NeoX (rotary positions, parallel blocks) read the restarted position ids as Llama does."""
    lm = load_model(family)
    enc = [(encode_prefix(lm.tok, "the city of music is"), [encode_target(lm.tok, "Paris"),
                                                             encode_target(lm.tok, "the river in Rome")]),
           (encode_prefix(lm.tok, "a"), [encode_target(lm.tok, "French plays")])]
    pad = pad_token_id(lm.tok)
    shared = score_branches(lm.model, enc, pad_id=pad)
    pairwise = score_ids(lm.model, [(p + t, len(p)) for p, ts in enc for t in ts], pad_id=pad)
    torch.testing.assert_close(shared.nll, pairwise.nll, atol=1e-4, rtol=1e-4)
    assert torch.equal(shared.correct, pairwise.correct)


def test_target_is_tokenized_with_leading_space(lm):
    ids, k = encode_pair(lm.tok, "The city of", "Paris")
    assert ids[:k] == lm.tok("The city of")["input_ids"]
    assert ids[k:] == lm.tok(" Paris", add_special_tokens=False)["input_ids"]


def test_argmax_correct_matches_greedy_decoding(lm):
    # Work on ids, not strings: a decoded greedy token need not re-encode to itself, and a test that only asserts
    # when it does could pass without checking anything.
    prefix = encode_prefix(lm.tok, "the city of")
    greedy = list(prefix)
    with torch.no_grad():
        for _ in range(3):  # greedy-decode a 3-token target
            greedy.append(int(lm.model(torch.tensor([greedy])).logits[0, -1].argmax()))
        logits = lm.model(torch.tensor([greedy])).logits[0]
    k = len(prefix)
    worst = int(logits[k].argmin())  # never the argmax: the second target token made wrong
    pairs = [(greedy, k), (greedy[:k + 1], k), (greedy[:k + 1] + [worst] + greedy[k + 2:], k)]
    s = score_ids(lm.model, pairs, pad_id=pad_token_id(lm.tok))
    assert s.correct.tolist() == [True, True, False]
    assert s.n_target_tokens.tolist() == [3, 1, 3]
    logp = torch.log_softmax(logits.float(), dim=-1)
    want = -(logp[k - 1, greedy[k]] + logp[k, greedy[k + 1]] + logp[k + 1, greedy[k + 2]]) / 3
    torch.testing.assert_close(s.nll[0], want, atol=1e-4, rtol=1e-4)


def test_counterfact_metric_definitions():
    req = EditRequest(case_id="1", prompt="{} is in", subject="X", target_new="Rome", target_true="Paris",
                      paraphrase_prompts=("X lies in", "X is found in"), neighborhood_prompts=("Y is in",))
    pairs = probe_pairs(req)
    kinds = [k for k, _, _ in pairs]
    assert kinds == ["rewrite:new", "rewrite:true", "paraphrase:new", "paraphrase:true", "paraphrase:new",
                     "paraphrase:true", "neighborhood:new", "neighborhood:true"]
    # NLLs: rewrite prefers new; paraphrase 1 prefers new, 2 prefers true; neighbor keeps true.
    nll = [0.1, 2.0, 0.5, 1.0, 3.0, 0.2, 4.0, 0.3]
    correct = [True, False, True, False, False, True, False, True]
    m = _metrics_from(pairs, nll, correct)
    assert m["es"] == 1.0 and m["ps"] == 0.5 and m["ns"] == 1.0
    assert math.isclose(m["em"], math.exp(-0.1) - math.exp(-2.0))
    assert math.isclose(m["pm"], ((math.exp(-0.5) - math.exp(-1.0)) + (math.exp(-3.0) - math.exp(-0.2))) / 2)
    assert math.isclose(m["nm"], math.exp(-0.3) - math.exp(-4.0))  # P(true) - P(new): positive is good
    assert m["es_correct"] == 1.0 and m["ps_correct"] == 0.5 and m["ns_correct"] == 1.0


def test_aggregate_is_mean_of_records_and_harmonic_score():
    agg = aggregate([{"es": 1.0, "ps": 0.5, "ns": 1.0}, {"es": 0.0, "ps": 0.5, "ns": 0.5}])
    assert agg["es"] == 0.5 and agg["ps"] == 0.5 and agg["ns"] == 0.75 and agg["n"] == 2
    assert math.isclose(agg["score"], 3 / (1 / 0.5 + 1 / 0.5 + 1 / 0.75))
    assert harmonic_score(1.0, 0.0, 1.0) == 0.0


def test_score_requests_matches_pairwise_scoring(lm):
    reqs = [EditRequest(case_id=str(i), prompt="{} is in the city of", subject=s, target_new="Rome",
                        target_true="Paris", paraphrase_prompts=(f"{s} music of",),
                        neighborhood_prompts=("a river in",)) for i, s in enumerate(["France", "English river"])]
    out = score_requests(lm.model, lm.tok, reqs, batch_size=3)
    for req, m in zip(reqs, out):
        s = score_targets_one_by_one(lm.model, lm.tok, [req.rewrite_prompt] * 2, ["Rome", "Paris"])
        assert m["es"] == float(s.nll[1] > s.nll[0])


def _llama2_style_tokenizer():
    """A tiny SentencePiece-style BPE tokenizer as Llama-2's fast tokenizer is built (legacy): the normalizer
    prepends "▁" and turns spaces into "▁", so a target tokenized after a space starts with a bare "▁"."""
    from tokenizers import Tokenizer, decoders, models, normalizers
    from transformers import PreTrainedTokenizerFast

    chars = ["▁", "P", "a", "r", "i", "s", "T", "h", "e"]
    merges = [("▁", "P"), ("▁P", "a"), ("▁Pa", "r"), ("▁Par", "i"), ("▁Pari", "s"), ("▁", "T"), ("▁T", "h"),
              ("▁Th", "e")]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for t in chars + [a + b for a, b in merges]:
        vocab[t] = len(vocab)
    tk = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def test_sentencepiece_target_has_no_stray_space_token():
    from editbench.models.tokens import encode_target

    tok = _llama2_style_tokenizer()
    raw = tok(" Paris", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(raw) == ["▁", "▁Paris"]  # the stray marker the fix removes
    target = encode_target(tok, "Paris")
    assert tok.convert_ids_to_tokens(target) == ["▁Paris"]
    # ... which is how the target appears after a prompt in one piece of text
    joint = tok("The Paris", add_special_tokens=False)["input_ids"]
    assert joint == tok("The", add_special_tokens=False)["input_ids"] + target
