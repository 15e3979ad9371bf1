"""MEMIT: batch edits work, touch only the edit layers' MLP output matrices, restore exactly; the float64 solve,
the template-averaged keys and the fast z path agree with straightforward computations.

Test models are editbench.models.tiny's random models with their 2-D weights re-drawn at std 0.15. At the
families' own 0.02 init the residual stream has norm ~0.2, where the reference decay term |delta| / |h|^2 swamps
every other loss term and no edit can move the model; at 0.15 the residual norms are O(10) as in real LMs.
Random weights have no learned route from the subject to later positions, so the rewrite prompts here end with
the subject: the new target is then read from the edited position itself (through the blocks above it).
Covariances are injected (C from random token sequences, full rank), templates are fixed strings.
"""
from __future__ import annotations

import pytest
import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import restore
from editbench.models.tokens import tokenize_prompt_target, target_argmax_correct, target_nll
from editbench.editors.memit import MEMITEditor, MEMITHParams, memit_delta
from editbench.editors.toolkit.templates import memit_context_templates
from editbench.editors.memit.compute_ks import keys_and_hidden
from editbench.editors.memit.compute_z import compute_z, compute_zs
from editbench.models.hooks import forward_until, hidden_of
from editbench.models.adapter import ModelAdapter
from editbench.models.tiny import build_tiny

TEMPLATES = [["{}"], ["The city of Paris. {}", "I speak French. {}", "Because it was good. {}"]]
REQUESTS = [
    EditRequest("0", "The mother tongue of {}", "Danielle Darrieux", "German", "French"),
    EditRequest("1", "The headquarters of {}", "Toyota", "Tokyo", "Japan"),
    EditRequest("2", "The language of {}", "Thomas Edward", "Spanish", "English"),
]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run several times faster on one thread than on two contended cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_model(name: str, tie: bool = False):
    model, tok = build_tiny(name)
    if tie:  # like SmolLM2: the LM head *is* the input embedding
        model.lm_head.weight = model.get_input_embeddings().weight
        model.config.tie_word_embeddings = True
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.15, generator=g)
    return model, tok


def covariances(model, layers) -> dict[int, torch.Tensor]:
    """C = E[k k^T] of the MLP-out keys over random token sequences (2048 tokens >> d_mlp)."""
    ad = ModelAdapter(model)
    ids = torch.randint(0, model.config.vocab_size, (64, 32), generator=torch.Generator().manual_seed(1))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    keys, _ = forward_until(model, inputs, inputs_of=[ad.mlp_out(l) for l in layers])
    return {l: (k.flatten(0, 1).T @ k.flatten(0, 1) / k.shape[0] / k.shape[1]).float() for l, k in zip(layers, keys)}


def rewrite_scores(model, tok, requests):
    b = tokenize_prompt_target(tok, [r.rewrite_prompt for r in requests], [r.target_new for r in requests])
    with torch.no_grad():
        logits = model(**b.model_inputs()).logits
    return target_nll(logits, b), target_argmax_correct(logits, b)


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("name,tie", [("tiny-gpt2", False), ("tiny-llama", False), ("tiny-llama", True)],
                         ids=["gpt2-tied", "llama", "llama-tied"])
def test_batch_edit(name, tie):
    model, tok = make_model(name, tie)
    adapter = ModelAdapter(model)
    if name == "tiny-gpt2" or tie:
        assert adapter.tied_lm_head
    editor = MEMITEditor.from_preset([name])
    layers = editor.hparams.layers
    editor.covariances = covariances(model, layers)
    editor.context_templates = TEMPLATES
    before = snapshot(model)
    nll0, ok0 = rewrite_scores(model, tok, REQUESTS)
    assert not ok0.any()

    result = editor.apply(model, tok, REQUESTS)

    nll1, ok1 = rewrite_scores(model, tok, REQUESTS)
    assert (nll1 < nll0 - 1.0).all(), (nll0, nll1)
    assert ok1.all(), (nll1, result.stats["z"])
    # exactly the edit layers' MLP output matrices changed, and they are what EditResult saved
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    expected = {adapter.mlp_out_weight_name(l) for l in layers}
    assert changed == expected
    assert set(result.originals) == expected
    assert set(result.stats["delta_norm"]) == set(layers) and all(v > 0 for v in result.stats["delta_norm"].values())
    # the residual z - h_L is recomputed after each layer is written, so it shrinks layer by layer
    errs = [result.stats["z_error"][l] for l in layers]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    # restore is byte-identical
    restore(model, result.originals)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_memit_delta_is_the_float64_formula():
    g = torch.Generator().manual_seed(0)
    d_out, d_in, n, lam = 5, 7, 3, 3.5
    A = torch.randn(d_in, 2 * d_in, generator=g)
    M = A @ A.T / (2 * d_in)
    C = ((M + M.T) / 2).float()  # exactly symmetric, as a covariance is (a float32 A @ A.T may not be, by BLAS kernel)
    K = torch.randn(d_in, n, generator=g).float()
    R = torch.randn(d_out, n, generator=g).float()
    dW = memit_delta(K, R, C, lam)
    assert dW.dtype == torch.float64 and dW.shape == (d_out, d_in)
    Kd, Cd = K.double(), C.double()
    direct = R.double() @ K.T.double() @ torch.linalg.inv(lam * Cd + Kd @ Kd.T)
    torch.testing.assert_close(dW, direct, rtol=1e-10, atol=1e-12)
    # the normal equations of  min |dW K - R|^2 + lam tr(dW C dW^T)
    torch.testing.assert_close(dW @ (lam * Cd + Kd @ Kd.T), R.double() @ Kd.T, rtol=1e-10, atol=1e-12)


def test_batch_edit_with_a_dead_neuron():
    """A neuron dead on every token (GELU of a huge negative pre-activation is exactly 0) zeroes a row and column of
    C; the edit still goes through (the fact world's layer 3 has one) and leaves that neuron's column alone."""
    model, tok = make_model("tiny-gpt2")
    adapter = ModelAdapter(model)
    editor = MEMITEditor.from_preset(["tiny-gpt2"])
    layers = editor.hparams.layers
    with torch.no_grad():
        for l in layers:
            model.transformer.h[l].mlp.c_fc.bias[7] = -1e4
    editor.covariances = covariances(model, layers)
    assert all(float(editor.covariances[l][7, 7]) == 0.0 for l in layers)
    editor.context_templates = TEMPLATES
    nll0, _ = rewrite_scores(model, tok, REQUESTS)
    result = editor.apply(model, tok, REQUESTS)
    nll1, ok1 = rewrite_scores(model, tok, REQUESTS)
    assert (nll1 < nll0 - 1.0).all() and ok1.all(), (nll0, nll1)
    for l in layers:
        orig = result.originals[adapter.mlp_out_weight_name(l)]
        delta = adapter.weight_out_in(l) - (orig.T if adapter.conv1d else orig)
        assert delta.abs().sum() > 0 and torch.all(delta[:, 7] == 0)


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama", "tiny-gptj", "tiny-neox"])
def test_fast_z_equals_full_forward(name):
    model, tok = make_model(name)
    adapter = ModelAdapter(model)
    hp = MEMITHParams(layers=(1, 2), clamp_norm_factor=4, v_num_grad_steps=8)
    req = EditRequest("m", "The mother tongue of {} is", "Danielle Darrieux", "Autonomous University", "French")
    flat = [t for g in TEMPLATES for t in g]
    fast = compute_z(model, tok, adapter, req, flat, hp, fast=True)
    slow = compute_z(model, tok, adapter, req, flat, hp, fast=False)
    assert fast.iterations == slow.iterations == 8
    assert fast.delta.norm() > 0
    torch.testing.assert_close(fast.z, slow.z, rtol=1e-5, atol=1e-5)
    assert abs(fast.nll_final - slow.nll_final) < 1e-4


def test_joint_z_equals_one_request_at_a_time():
    """All requests share one forward pass per step; a request that stops early is frozen, so each z equals the
    one its own loop would give (here two requests run all 25 iterations and one stops after 5)."""
    model, tok = make_model("tiny-llama")
    adapter = ModelAdapter(model)
    hp = MEMITHParams(layers=(1, 2), clamp_norm_factor=4, v_num_grad_steps=25, early_stop_loss=6.5)
    reqs = [EditRequest("0", "The mother tongue of {} is", "Danielle Darrieux", "German French", "French"),
            EditRequest("1", "{} is headquartered in", "Toyota", "Tokyo", "Japan"),
            EditRequest("2", "{} plays the", "Thomas Edward", "guitar", "piano")]
    flat = ["{}", "The city of Paris. {}", "I speak French. {}"]
    alone = [compute_z(model, tok, adapter, r, flat, hp) for r in reqs]
    assert [z.iterations for z in alone] == [25, 25, 5]
    for fast in (True, False):
        joint = compute_zs(model, tok, adapter, reqs, flat, hp, fast=fast)
        for j, a in zip(joint, alone):
            assert j.iterations == a.iterations
            torch.testing.assert_close(j.z, a.z, rtol=1e-5, atol=2e-5)


def test_keys_are_group_means_of_single_prompt_keys():
    """K = mean over template groups of the group means, each key read on its prompt alone (no padding effect)."""
    model, tok = make_model("tiny-llama")
    adapter = ModelAdapter(model)
    req = REQUESTS[0]
    K, H = keys_and_hidden(model, tok, adapter, [REQUESTS[1], req], TEMPLATES, key_layer=1, z_layer=2)
    from editbench.models.tokens import encode_prefix, subject_last_token_index
    singles = []
    for tpl in [t for g in TEMPLATES for t in g]:
        prompt_tpl = tpl.replace("{}", req.prompt)
        ids = torch.tensor([encode_prefix(tok, prompt_tpl.replace("{}", req.subject))])
        i = subject_last_token_index(tok, prompt_tpl, req.subject)
        (k,), (h,) = forward_until(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                                   inputs_of=[adapter.mlp_out(1)], outputs_of=[adapter.block(2)])
        singles.append((k[0, i], h[0, i]))
    expected_k = 0.5 * singles[0][0] + 0.5 * torch.stack([k for k, _ in singles[1:]]).mean(0)
    torch.testing.assert_close(K[1], expected_k, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(H[1], singles[0][1], rtol=1e-5, atol=1e-5)


def test_hidden_of_never_indexes_a_tensor():
    t = torch.randn(3, 4, 5)
    assert hidden_of(t) is t
    assert hidden_of((t, None)) is t


def test_bad_layers_leave_model_untouched():
    model, tok = make_model("tiny-gpt2")
    before = snapshot(model)
    editor = MEMITEditor(MEMITHParams(layers=(2, 9)), context_templates=TEMPLATES)
    with pytest.raises(ValueError, match="out of range"):
        editor.apply(model, tok, REQUESTS[:1])
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    with pytest.raises(ValueError, match="ascending"):
        MEMITHParams(layers=(3, 2))


def test_failure_midway_restores(monkeypatch):
    """An error after the first layer was written puts the original weights back."""
    model, tok = make_model("tiny-gpt2")
    before = snapshot(model)
    editor = MEMITEditor.from_preset(["tiny-gpt2"])
    editor.context_templates = TEMPLATES
    editor.covariances = {1: covariances(model, [1])[1]}  # layer 2 missing -> stats would be asked for it

    def no_stats(*a, **k):
        raise RuntimeError("no stats in this test")
    monkeypatch.setattr(MEMITEditor, "covariance", lambda self, *a: no_stats())
    with pytest.raises(RuntimeError, match="no stats"):
        editor.apply(model, tok, REQUESTS[:1])
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_update_rule_is_the_extension_point():
    """A subclass changes the per-layer update by overriding update_rule only: it is called once per edit layer,
    lowest first, with K (d_mlp, n), this layer's residual share (d_model, n) and C, and its dW is what is written."""
    model, tok = make_model("tiny-gpt2")
    adapter = ModelAdapter(model)
    calls = []

    class HalfMEMIT(MEMITEditor):
        def update_rule(self, adapter, layer, keys, resid, cov):
            calls.append((layer, tuple(keys.shape), tuple(resid.shape), tuple(cov.shape)))
            return 0.5 * super().update_rule(adapter, layer, keys, resid, cov)

    hp = MEMITEditor.from_preset(["tiny-gpt2"]).hparams
    covs = covariances(model, hp.layers)
    editor = HalfMEMIT(hp, covariances=covs, context_templates=TEMPLATES)
    result = editor.apply(model, tok, REQUESTS[:2])
    d_mlp, d_model = adapter.mlp_width, adapter.hidden_size
    assert calls == [(l, (d_mlp, 2), (d_model, 2), (d_mlp, d_mlp)) for l in hp.layers]
    assert set(result.originals) == {adapter.mlp_out_weight_name(l) for l in hp.layers}
    restore(model, result.originals)


def test_context_templates_are_seeded_groups_after_opening_words():
    model, tok = build_tiny("tiny-gpt2")
    groups = memit_context_templates(model, tok, seed=3, spec=((6, 5),))
    assert groups[0] == ["{}"] and len(groups) == 2 and len(groups[1]) == 5
    for text, opening in zip(groups[1], ("The", "Therefore", "Because", "I", "You")):
        assert text.startswith(opening) and text.endswith(". {}") and text.count("{}") == 1
    other, _ = build_tiny("tiny-gpt2")  # same weights, another object: no cache hit, same samples
    assert memit_context_templates(other, tok, seed=3, spec=((6, 5),)) == groups
    assert memit_context_templates(other, tok, seed=4, spec=((6, 5),)) != groups
    rome_style = memit_context_templates(model, tok, seed=3, spec=((4, 2), (6, 3)), openings=())
    assert [len(g) for g in rome_style] == [1, 2, 3]


def test_presets():
    xl = MEMITEditor.from_preset(["gpt2-xl", "gpt2"]).hparams
    assert xl.layers == (13, 14, 15, 16, 17) and xl.mom2_update_weight == 20000 and xl.clamp_norm_factor == 0.75
    gj = MEMITEditor.from_preset(["gpt-j-6b", "gptj"]).hparams
    assert gj.layers == (3, 4, 5, 6, 7, 8) and gj.mom2_update_weight == 15000 and gj.v_num_grad_steps == 25
    sm = MEMITEditor.from_preset(["smollm2-135m", "llama"]).hparams
    assert sm.layers == (2, 3, 4, 5, 6) and sm.mom2_update_weight == 1400
    assert MEMITEditor.supports_batch and MEMITEditor.name == "memit"


def _psd(d: int, rank: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, rank, generator=g, dtype=torch.float64)
    return a @ a.T / rank


@pytest.mark.parametrize("n", [1, 4])
def test_factored_solve_equals_fresh_solve(n):
    """MEMIT's kept factor of lam C (Woodbury) gives solve_psd(lam C + K K^T, K) up to float64 rounding."""
    from editbench.editors.toolkit.linalg import FactoredPSD, solve_psd
    g = torch.Generator().manual_seed(1)
    b = 1400.0 * _psd(64, 200, 0)
    k = torch.randn(64, n, generator=g, dtype=torch.float64) * 3
    f = FactoredPSD(b)
    assert f.factored
    torch.testing.assert_close(f.solve_plus_low_rank(k), solve_psd(b + k @ k.T, k), rtol=1e-10, atol=1e-12)


def test_factored_solve_dead_dimensions_and_fallbacks():
    from editbench.editors.toolkit.linalg import FactoredPSD, solve_psd
    g = torch.Generator().manual_seed(2)
    b = _psd(32, 100, 3)
    b[5] = 0
    b[:, 5] = 0                                   # a dead key dimension
    k = torch.randn(32, 2, generator=g, dtype=torch.float64)
    k[5] = 0                                      # keys dead there too: factor used, zero update on dim 5
    f = FactoredPSD(b)
    x = f.solve_plus_low_rank(k)
    torch.testing.assert_close(x, solve_psd(b + k @ k.T, k), rtol=1e-10, atol=1e-12)
    assert torch.all(x[5] == 0)
    k[5] = 1.0                                    # a key on a dimension C never saw: the direct solve decides
    torch.testing.assert_close(f.solve_plus_low_rank(k), solve_psd(b + k @ k.T, k))
    singular = _psd(16, 4, 4)                     # PSD, rank 4 < 16, non-zero diagonal: not factorable
    k2 = torch.randn(16, 1, generator=g, dtype=torch.float64)
    fs = FactoredPSD(singular)
    assert not fs.factored
    torch.testing.assert_close(fs.solve_plus_low_rank(k2), solve_psd(singular + k2 @ k2.T, k2))


def test_memit_fast_solve_gives_the_same_edit():
    """The whole edit with the kept factor (default) and with a fresh solve per layer: same weights."""
    model, tok = make_model("tiny-llama")
    adapter = ModelAdapter(model)
    layers = (1, 2)
    d = adapter.weight_out_in(1).shape[1]
    covs = {l: _psd(d, 4 * d, 10 + l).float() for l in layers}
    weights = []
    for fast in (True, False):
        hp = MEMITHParams(layers=layers, clamp_norm_factor=4, v_num_grad_steps=5, mom2_update_weight=50.0,
                          fast_solve=fast)
        editor = MEMITEditor(hp, covariances=covs, context_templates=TEMPLATES)
        res = editor.apply(model, tok, REQUESTS)
        weights.append({l: adapter.weight_out_in(l).clone() for l in layers})
        if fast:
            assert all(editor._factors[l][2].factored for l in layers)
        restore(model, res.originals)
    for l in layers:
        torch.testing.assert_close(weights[0][l], weights[1][l], rtol=1e-5, atol=1e-6)
        assert not torch.equal(weights[0][l], adapter.weight_out_in(l))
