"""MEMIT on blocks that normalise the MLP output before the residual add (Gemma 2/3; editors/memit/post_norm.py):
each layer's residual share is written as the MLP output change that moves the *normalised* contribution by it.
Tiny models, seconds."""
from __future__ import annotations

import pytest
import torch

from editbench.editors.base import restore
from editbench.editors.memit import MEMITEditor, MEMITHParams
from editbench.editors.memit.compute_ks import keys_and_hidden
from editbench.editors.memit.post_norm import mlp_target_change, post_mlp_norm
from editbench.models.adapter import ModelAdapter
from editbench.models.families import build_tiny_family, installed

from test_families import REQ, TEMPLATES, _covariances
from test_memit import _one_thread  # noqa: F401 (autouse fixture)

gemma3 = pytest.mark.skipif(not installed("gemma3_text"), reason="transformers has no gemma3_text")


def _gemma(gain: float = 40.0):
    """Tiny Gemma 3 whose post-MLP norms have Gemma-like large gains (Gemma 3 270M: up to ~800)."""
    model, tok = build_tiny_family("gemma3_text")
    ad = ModelAdapter(model)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for l in range(ad.n_layers):
            w = post_mlp_norm(ad, l).weight
            w.copy_(gain * torch.rand(w.shape, generator=g))
    return model, tok, ad


@gemma3
def test_a_reachable_change_of_the_normalised_output_is_reached():
    model, _tok, ad = _gemma()
    norm = post_mlp_norm(ad, 1)
    g = torch.Generator().manual_seed(0)
    m = torch.randn(ad.hidden_size, 2, generator=g)
    r = (norm((m + 0.01 * torch.randn(m.shape, generator=g)).T) - norm(m.T)).T   # a small, reachable move
    dm = mlp_target_change(norm, m, r)
    got = (norm((m + dm).T) - norm(m.T)).T
    naive = (norm((m + r).T) - norm(m.T)).T                                        # MEMIT's GPT-style write
    assert (got - r).norm() < 0.05 * r.norm()
    assert (naive - r).norm() > 10 * r.norm()                                      # the gain multiplies it


def _h_error(model, tok, ad, post_norm_targets: bool) -> float:
    ed = MEMITEditor(MEMITHParams(layers=(0, 1), v_num_grad_steps=8, clamp_norm_factor=4, mom2_update_weight=60,
                                  mom2_n_samples=256, post_norm_targets=post_norm_targets))
    ed.covariances, ed.context_templates = _covariances(model, ad, [0, 1]), TEMPLATES
    res = ed.apply(model, tok, [REQ])
    z = res.stats["z"][0]
    _, h = keys_and_hidden(model, tok, ad, [REQ], [["{}"]], 0, 1)      # h_L after the edit ...
    restore(model, res.originals)
    _, h_init = keys_and_hidden(model, tok, ad, [REQ], [["{}"]], 0, 1)  # ... and before
    return abs(float((h - h_init).norm()) / z["delta_norm"] - 1.0)     # 0: moved by exactly |z - h_L|


@gemma3
def test_memit_moves_the_residual_by_its_target_on_a_post_norm_block():
    """Without the mapping the residual moves many times the target (Gemma 3 270M: ~44x, reports/gemma)."""
    model, tok, ad = _gemma()
    with_map, without = _h_error(model, tok, ad, True), _h_error(model, tok, ad, False)
    assert with_map < 0.6 < 3 < without, (with_map, without)  # measured 0.32 and 4.8


def test_other_families_are_untouched():
    """No post-MLP norm (llama): the flag changes nothing, byte for byte."""
    model, tok = build_tiny_family("llama")
    ad = ModelAdapter(model)
    assert post_mlp_norm(ad, 0) is None
    out = []
    for flag in (True, False):
        ed = MEMITEditor(MEMITHParams(layers=(0, 1), v_num_grad_steps=4, mom2_update_weight=60,
                                      mom2_n_samples=256, post_norm_targets=flag))
        ed.covariances, ed.context_templates = _covariances(model, ad, [0, 1]), TEMPLATES
        res = ed.apply(model, tok, [REQ])
        out.append({n: p.detach().clone() for n, p in model.named_parameters() if n in res.originals})
        restore(model, res.originals)
    assert out[0].keys() == out[1].keys() and all(torch.equal(out[0][k], out[1][k]) for k in out[0])

