"""FT / FT-C editors, the null editor and the shared tokenization helpers (editbench.models.tokens).

Everything runs on the tiny random models of :mod:`editbench.models.tiny`: tiny-gpt2 (Conv1D weights, no pad
token, right padding, no BOS) and tiny-llama (Linear weights, left padding, BOS) between them cover both weight
orientations and both tokenizer conventions.
"""
from __future__ import annotations

import pytest
import torch

from editbench import registry
from editbench.data.schema import EditRequest
from editbench.editors.base import restore
from editbench.models.tokens import (encode_prefix, encode_target, subject_last_token_index,
                                      target_argmax_correct, target_nll, tokenize_prompt_target)
from editbench.editors.ft import FTCEditor, FTCHyperParams, FTEditor, FTHyperParams
from editbench.editors.null import NullEditor
from editbench.models.adapter import ModelAdapter
from editbench.models.tiny import build_tiny

TINY = ["tiny-gpt2", "tiny-llama"]
REQS = [
    EditRequest("r1", "The mother tongue of {} is", "Danielle Darrieux", "English", "French"),
    EditRequest("r2", "{} is located in the city of", "Toko Yasuda", "Tokyo", "Paris"),
]


@pytest.fixture(params=TINY)
def tiny(request):
    model, tok = build_tiny(request.param)
    return request.param, model, tok


def _batch(tok, reqs):
    return tokenize_prompt_target(tok, [r.rewrite_prompt for r in reqs], [r.target_new for r in reqs])


@torch.no_grad()
def _nll(model, tok, reqs) -> torch.Tensor:
    b = _batch(tok, reqs)
    return target_nll(model(**b.model_inputs()).logits, b)


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _identical(model, before) -> bool:
    after = model.state_dict()
    return after.keys() == before.keys() and all(
        after[k].dtype == before[k].dtype and torch.equal(after[k], before[k]) for k in before)


# ---------------------------------------------------------------------------------------------------------------
# common: prompt + target tokenization
# ---------------------------------------------------------------------------------------------------------------
def test_prompt_target_layout_and_right_padding(tiny):
    name, model, tok = tiny
    prompts = ["The capital of France is", "Paris is the capital of the country of"]
    targets = ["Paris", "Zqxv Wombat"]  # the second spells out in many byte tokens: rows get different lengths
    b = tokenize_prompt_target(tok, prompts, targets)
    for i, (p, t) in enumerate(zip(prompts, targets)):
        pre, tg = encode_prefix(tok, p), encode_target(tok, t)
        n = len(pre) + len(tg)
        assert b.input_ids[i, :n].tolist() == pre + tg
        assert b.attention_mask[i].tolist() == [1] * n + [0] * (b.input_ids.shape[1] - n)  # always right-padded
        assert b.prompt_lens[i] == len(pre)
        k = len(tg)
        assert b.target_ids[i, :k].tolist() == tg and b.target_mask[i].sum() == k
        assert b.target_pos[i, :k].tolist() == list(range(len(pre) - 1, len(pre) - 1 + k))
    # Llama keeps its BOS, GPT-2 adds none
    assert (encode_prefix(tok, "The")[0] == tok.bos_token_id) == (name == "tiny-llama")
    assert tok.bos_token_id not in encode_target(tok, "The")  # the target never gets special tokens


def test_target_nll_matches_manual_and_is_batch_independent(tiny):
    _, model, tok = tiny
    prompts = ["The capital of France is", "Danielle Darrieux speaks", "Where is Zqx located? In"]
    targets = ["Paris", "French and Latin", "Tokyo"]
    b = tokenize_prompt_target(tok, prompts, targets)
    with torch.no_grad():
        batched = target_nll(model(**b.model_inputs()).logits, b)
        for i, (p, t) in enumerate(zip(prompts, targets)):
            pre, tg = encode_prefix(tok, p), encode_target(tok, t)
            logp = torch.log_softmax(model(torch.tensor([pre + tg])).logits[0].double(), -1)
            manual = -sum(logp[len(pre) - 1 + j, tg[j]] for j in range(len(tg))) / len(tg)
            single = tokenize_prompt_target(tok, [p], [t])
            alone = target_nll(model(**single.model_inputs()).logits, single)[0]
            assert batched[i].item() == pytest.approx(manual.item(), abs=1e-4)
            assert batched[i].item() == pytest.approx(alone.item(), abs=1e-4)
    # the editors optimize exactly what the scorer reports
    from editbench.metrics.scoring import score_targets
    assert torch.allclose(batched, score_targets(model, tok, prompts, targets).nll, atol=1e-4)
    assert encode_target(tok, "  Paris") == encode_target(tok, "Paris")  # one leading space, like the scorer


def test_argmax_correct_uses_teacher_forcing(tiny):
    _, model, tok = tiny
    b = tokenize_prompt_target(tok, ["The capital of France is"], ["Paris"])
    with torch.no_grad():
        logits = model(**b.model_inputs()).logits
    pos, tid = b.target_pos[0, 0], b.target_ids[0, 0]
    assert target_argmax_correct(logits, b)[0].item() == (logits[0, pos].argmax().item() == tid.item())
    forced = logits.clone()
    forced[0, pos, tid] = forced.max() + 1
    assert target_argmax_correct(forced, b)[0]


# ---------------------------------------------------------------------------------------------------------------
# common: subject position
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("template,subject,last", [
    ("The mother tongue of {} is", "Danielle Darrieux", "\u0120Darrieux"),
    ("{} is located in the city of", "Toko Yasuda", "\u0120Yasuda"),
    ("{} is located in", "Paris", "Paris"),                 # subject first: no leading space
    ("What does {} speak? {", "Zqxv", "v"),                 # unknown word spelled in bytes; a stray brace
])
def test_subject_last_token_index(tiny, template, subject, last):
    name, _, tok = tiny
    idx = subject_last_token_index(tok, template, subject)
    text = template.replace("{}", subject, 1)
    ids = encode_prefix(tok, text)
    assert tok.convert_ids_to_tokens(ids[idx]) == last
    # everything up to the subject's end re-tokenizes to the same ids (no token after idx belongs to the subject)
    assert ids[:idx + 1] == encode_prefix(tok, text[:text.index(subject) + len(subject)])
    if name == "tiny-llama":
        assert ids[0] == tok.bos_token_id  # the index counts the BOS the model sees


class _SlowView:
    """The same tokenizer, seen as a slow one (no offsets): exercises ROME's prefix-length fallback."""

    is_fast = False

    def __init__(self, tok):
        self._tok = tok

    def __call__(self, text, **kw):
        return self._tok(text, **kw)


def test_subject_index_slow_fallback_agrees(tiny):
    _, _, tok = tiny
    templates = ["The mother tongue of {} is", "{} is located in", "In {}, the capital"]
    subjects = ["Danielle Darrieux", "Toko Yasuda", "Zqx Wv"]
    assert [subject_last_token_index(_SlowView(tok), t, s) for t, s in zip(templates, subjects)] == \
        [subject_last_token_index(tok, t, s) for t, s in zip(templates, subjects)]


# ---------------------------------------------------------------------------------------------------------------
# FT-C and FT
# ---------------------------------------------------------------------------------------------------------------
def test_ftc_lowers_nll_within_linf_ball_and_restores(tiny):
    name, model, tok = tiny
    ModelAdapter(model).embed.weight.requires_grad_(False)  # a mixed requires_grad state to give back
    trainable = {n: p.requires_grad for n, p in model.named_parameters()}
    before, nll0 = _state(model), _nll(model, tok, REQS[:1])

    editor = registry.create("ft-c", [name], num_steps=10)  # the preset, fewer steps (CPU time)
    assert isinstance(editor, FTCEditor) and editor.hparams.layers == (1,)
    eps = editor.hparams.norm_constraint
    result = editor.apply(model, tok, REQS[:1])

    adapter = ModelAdapter(model)
    wname = adapter.mlp_out_weight_name(1)
    assert set(result.originals) == {wname}  # exactly the configured layer's MLP-out weight, nothing else
    params = dict(model.named_parameters())
    w, w0 = params[wname].detach(), result.originals[wname]
    assert (w >= w0 - eps).all() and (w <= w0 + eps).all()  # exactly the clamp's bounds
    assert (w - w0).abs().max().item() == pytest.approx(eps, rel=1e-3)  # and the constraint was active
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {wname}
    assert (_nll(model, tok, REQS[:1]) < nll0).all()
    assert {n: p.requires_grad for n, p in model.named_parameters()} == trainable
    assert all(p.grad is None for p in model.parameters())

    restore(model, result.originals)
    assert _identical(model, before)


def test_ft_works_on_both_orientations(tiny):
    """Conv1D stores (in, out), Linear (out, in): the adapter's name is the one trained either way."""
    name, model, tok = tiny
    adapter = ModelAdapter(model)
    result = FTEditor(FTHyperParams(layers=(0, 2), num_steps=3, lr=1e-2)).apply(model, tok, REQS[:1])
    assert set(result.originals) == {adapter.mlp_out_weight_name(0), adapter.mlp_out_weight_name(2)}
    for layer in (0, 2):
        delta = adapter.weight_out_in(layer).detach() - (
            result.originals[adapter.mlp_out_weight_name(layer)].T if adapter.conv1d
            else result.originals[adapter.mlp_out_weight_name(layer)])
        assert delta.shape == (adapter.hidden_size, adapter.mlp_width) and delta.abs().max() > 0
    assert adapter.conv1d == (name == "tiny-gpt2")


def test_ft_unconstrained_reaches_target():
    model, tok = build_tiny("tiny-gpt2")
    b = _batch(tok, REQS[:1])
    with torch.no_grad():
        assert not target_argmax_correct(model(**b.model_inputs()).logits, b)[0]
    editor = registry.create("ft", ["tiny-gpt2"])
    assert editor.hparams.norm_constraint is None
    editor.apply(model, tok, REQS[:1])
    with torch.no_grad():
        assert target_argmax_correct(model(**b.model_inputs()).logits, b)[0]


def test_batch_of_two(tiny):
    name, model, tok = tiny
    before, nll0 = _state(model), _nll(model, tok, REQS)
    editor = registry.create("ft-c", [name], num_steps=10)
    assert editor.supports_batch
    result = editor.apply(model, tok, REQS)
    assert (_nll(model, tok, REQS) < nll0).all()  # both edits move, one shared update
    assert result.stats["steps"] == 10 and len(result.stats["loss_history"]) == 10
    restore(model, result.originals)
    assert _identical(model, before)


def test_early_stop_before_any_step():
    model, tok = build_tiny("tiny-llama")
    before = _state(model)
    result = FTCEditor(FTCHyperParams(layers=(1,), stop_loss=1e9)).apply(model, tok, REQS)
    assert result.stats["steps"] == 0 and result.stats["stopped_early"]
    assert _identical(model, before)


def test_hparams_validation_and_presets():
    assert FTHyperParams(layers=[3]).layers == (3,)  # YAML lists become tuples
    with pytest.raises(ValueError):
        FTCHyperParams(norm_constraint=None)
    with pytest.raises(ValueError):
        FTHyperParams(layers=())
    with pytest.raises(TypeError):
        FTEditor.from_preset(["tiny-gpt2"], no_such_knob=1)
    gptj = FTCEditor.from_preset(["gpt-j-6b", "gptj"])
    assert gptj.hparams.norm_constraint == 5e-5 and gptj.hparams.layers == (5,)  # seed paper: ROME's layer
    xl = FTCEditor.from_preset(["gpt2-xl", "gpt2"])
    assert xl.hparams.norm_constraint == 5e-4 and xl.hparams.lr == 5e-4 and xl.hparams.num_steps == 25
    assert FTCEditor.from_preset(["unknown-model"]).hparams.layers == (0,)  # reference constrained config
    model, tok = build_tiny("tiny-gpt2")
    with pytest.raises(ValueError, match="out of range"):
        FTEditor(FTHyperParams(layers=(7,))).apply(model, tok, REQS[:1])


def test_null_editor_touches_nothing(tiny):
    _, model, tok = tiny
    before = _state(model)
    result = NullEditor().apply(model, tok, REQS)
    assert result.originals == {} and _identical(model, before)


def test_editor_contract_defaults(tiny):
    """prepare/reset are no-ops, the state is empty, and non-empty state is refused with a clear TypeError."""
    _, model, tok = tiny
    ed = FTEditor(FTHyperParams(layers=(1,)))
    before = _state(model)
    assert ed.prepare(model, tok, cache_dir=None) is None and ed.reset() is None and _identical(model, before)
    assert ed.state_dict() == {}
    ed.load_state_dict({})
    with pytest.raises(TypeError, match="keeps no state"):
        ed.load_state_dict({"x": torch.zeros(1)})
