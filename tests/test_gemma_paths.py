"""Gemma 3's architecture on the editors' fast paths and in scoring, on a tiny random ``gemma3_text`` model
built here from transformers' own config class (no download, seconds).

Gemma 3 normalises each MLP output before the residual add (``post_feedforward_layernorm``), mixes sliding-window
and global attention layers, scales its embeddings, and (Gemma 2, and any config that sets it) soft-caps the final
logits. The fast paths must give the straightforward forward pass's numbers: ROME's δ on the MLP output (through
the post-MLP norm), MEMIT's δ on the residual, and scoring with the head applied at the scored positions only.
"""
from __future__ import annotations

import pytest
import torch

from editbench.data.schema import EditRequest
from editbench.editors.memit import MEMITHParams
from editbench.editors.memit.compute_z import compute_z
from editbench.editors.rome import ROMEHParams
from editbench.editors.rome.compute_v import compute_v
from editbench.editors.toolkit.forward import FastForward, SlowForward, build_batch
from editbench.metrics.scoring import score_targets, score_targets_one_by_one
from editbench.models.adapter import ModelAdapter
from editbench.models.tiny import build_tokenizer
from editbench.models.tokens import pad_token_id

from test_rome import assert_same_logits_and_gradient  # tests/ is on sys.path (rootdir-relative test modules)

REQ = EditRequest("cf-0", "The mother tongue of {} is", "Danielle Darrieux", "English", "French")
TEMPLATES = ["{}", "Hello world. {}", "A b c d e. {}"]


def tiny_gemma3(softcap: float | None = None, window: int = 64, seed: int = 0):
    """A 4-layer gemma3_text model (d 32, sliding-window and global attention layers), float32."""
    from transformers import AutoModelForCausalLM, Gemma3TextConfig

    tok = build_tokenizer("llama")
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=1, head_dim=8, sliding_window=window,
                           layer_types=["sliding_attention", "sliding_attention", "full_attention",
                                        "sliding_attention"],
                           max_position_embeddings=256, final_logit_softcapping=softcap,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        with torch.no_grad():  # random norms (Gemma's RMSNorm weight is an offset from 1) so the norm matters
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.normal_(0, 0.5)
    return model.eval(), tok


@pytest.fixture(scope="module", params=[None, 2.0], ids=["plain", "softcap"])
def gemma(request):
    return tiny_gemma3(softcap=request.param)


@pytest.mark.parametrize("layer", [0, 2, 3])
def test_fast_forward_equals_slow_forward_through_the_post_mlp_norm(gemma, layer):
    model, tok = gemma
    ad = ModelAdapter(model)
    batch, _ = build_batch(tok, REQ, TEMPLATES, "subject_last", torch.device("cpu"))
    fast = FastForward(model, ad, layer, ad.n_layers - 1, batch, pad_token_id(tok))
    slow = SlowForward(model, ad, layer, ad.n_layers - 1, batch, pad_token_id(tok))
    assert fast.post_norm is not None  # the Gemma route, not h + δ
    assert_same_logits_and_gradient(fast, slow, torch.randn(ad.hidden_size,
                                                            generator=torch.Generator().manual_seed(1)) * 3)


def test_rome_v_star_fast_equals_slow(gemma):
    model, tok = gemma
    ad = ModelAdapter(model)
    hp = ROMEHParams(layer=1, v_num_grad_steps=6)
    a = compute_v(model, tok, ad, REQ, hp, TEMPLATES, fast=True)
    b = compute_v(model, tok, ad, REQ, hp, TEMPLATES, fast=False)
    assert (a.path, b.path) == ("fast", "slow") and a.delta.norm() > 0
    torch.testing.assert_close(a.delta, b.delta, rtol=1e-4, atol=1e-5)


def test_memit_z_fast_equals_full_forward(gemma):
    model, tok = gemma
    ad = ModelAdapter(model)
    hp = MEMITHParams(layers=(1, 2), clamp_norm_factor=4, v_num_grad_steps=6)
    fast = compute_z(model, tok, ad, REQ, TEMPLATES, hp, fast=True)
    slow = compute_z(model, tok, ad, REQ, TEMPLATES, hp, fast=False)
    assert fast.delta.norm() > 0
    torch.testing.assert_close(fast.z, slow.z, rtol=1e-5, atol=1e-5)


def test_scoring_applies_the_models_own_head(gemma):
    """Head at the scored positions only, soft-capped like the model's forward: the full-forward reference."""
    model, tok = gemma
    prefixes = ["The mother tongue of Danielle Darrieux is", "Paris is the capital of", "a"]
    targets = ["French", "France and more", "b c"]
    fast = score_targets(model, tok, prefixes, targets)
    ref = score_targets_one_by_one(model, tok, prefixes, targets)
    torch.testing.assert_close(fast.nll, ref.nll, rtol=1e-5, atol=1e-5)
    assert torch.equal(fast.correct, ref.correct)


def test_a_reachable_sliding_window_takes_the_slow_path():
    """Sliding-window masks count cache slots, and the fast layout leaves pad slots between prefix and suffix:
    when a row could reach the window, the fast path is not used (same result as the slow one)."""
    model, tok = tiny_gemma3(window=3)
    ad = ModelAdapter(model)
    hp = ROMEHParams(layer=1, v_num_grad_steps=3)
    a = compute_v(model, tok, ad, REQ, hp, TEMPLATES)
    assert a.path == "slow"
