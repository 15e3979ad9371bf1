"""ENCORE: the norm-constrained closed form (normal equations, MEMIT at mu = 0, smaller updates for larger mu),
most-probable early stopping (stops before MEMIT's loss threshold, with the target on top on every template), and
an edit on a tiny model (raises the target, touches only the edit layers, restores byte for byte).

Tiny models as in tests/test_memit.py: random weights re-drawn at std 0.15, rewrite prompts ending with the
subject, injected covariances and fixed templates.
"""
from __future__ import annotations

import pytest
import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import restore
from editbench.editors.encore import ENCOREEditor, ENCOREHParams, encore_delta
from editbench.editors.memit import MEMITEditor, memit_delta
from editbench.editors.memit.compute_z import compute_z
from editbench.editors.toolkit.forward import build_batch
from editbench.models.adapter import ModelAdapter
from editbench.models.hooks import adding_hook
from editbench.models.tokens import pad_right, pad_token_id, target_nll, tokenize_prompt_target

from test_memit import _one_thread, covariances, make_model  # noqa: E402,F401 (shared helpers; autouse fixture)

TEMPLATES = [["{}"], ["The city of Paris. {}", "I speak French. {}", "Because it was good. {}"]]
FLAT = [t for g in TEMPLATES for t in g]
REQUESTS = [
    EditRequest("0", "The mother tongue of {}", "Danielle Darrieux", "German", "French"),
    EditRequest("1", "The headquarters of {}", "Toyota", "Tokyo", "Japan"),
]


def editor_for(cls, name, model, **overrides):
    e = cls.from_preset([name], **overrides)
    e.covariances = covariances(model, e.hparams.layers)
    e.context_templates = TEMPLATES
    return e


def problem(seed=0, d_out=5, d_in=7, n=3):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d_in, 2 * d_in, generator=g, dtype=torch.float64)
    C = A @ A.T / (2 * d_in)
    C = ((C + C.T) / 2).float()
    K = torch.randn(d_in, n, generator=g).float()
    R = torch.randn(d_out, n, generator=g).float()
    Kp = torch.randn(d_in, 4, generator=g, dtype=torch.float64)
    return K, R, C, Kp @ Kp.T


def test_closed_form_satisfies_its_normal_equations():
    K, R, C, P = problem()
    lam, mu = 3.5, 2.0
    dW = encore_delta(K, R, C, lam, mu, P)
    assert dW.dtype == torch.float64 and dW.shape == (R.shape[0], K.shape[0])
    Kd = K.double()
    A = lam * C.double() + P + mu * torch.eye(K.shape[0], dtype=torch.float64) + Kd @ Kd.T
    # gradient of lam|dW K0|^2 + |dW Kp|^2 + |dW K - R|^2 + mu|dW|^2 vanishes: dW A = R K^T
    torch.testing.assert_close(dW @ A, R.double() @ Kd.T, rtol=1e-10, atol=1e-10)


def test_no_penalty_is_memit_exactly():
    K, R, C, _ = problem(1)
    assert torch.equal(encore_delta(K, R, C, 3.5, 0.0), memit_delta(K, R, C, 3.5))
    assert torch.equal(encore_delta(K, R, C, 3.5, 0.0, None), memit_delta(K, R, C, 3.5))


def test_larger_penalty_gives_smaller_update():
    K, R, C, P = problem(2)
    norms = [float(encore_delta(K, R, C, 3.5, mu, P).norm()) for mu in (0.0, 0.1, 1.0, 10.0, 100.0)]
    assert all(a > b for a, b in zip(norms, norms[1:])), norms


def test_editor_reduces_to_memit_without_its_changes():
    """prob_cutoff 0, mu 0, no earlier keys: the same weights as MEMIT, bit for bit."""
    model, tok = make_model("tiny-gpt2")
    memit = editor_for(MEMITEditor, "tiny-gpt2", model)
    r1 = memit.apply(model, tok, REQUESTS)
    w_memit = {n: p.detach().clone() for n, p in model.named_parameters()}
    restore(model, r1.originals)
    enc = editor_for(ENCOREEditor, "tiny-gpt2", model, prob_cutoff=0, update_norm_lambda=0, add_prev_edits=False)
    r2 = enc.apply(model, tok, REQUESTS)
    assert all(torch.equal(w_memit[n], p) for n, p in model.named_parameters())
    assert all("stop" not in z for z in r2.stats["z"])   # MPES off: no stop reason tracked
    restore(model, r2.originals)


def top_on_every_template(model, tok, request, z, layer):
    """Independent check: add z - h_L at block ``layer``'s output (subject's last token) of each templated rewrite
    prompt, teacher-force the target, and ask whether every target token is the argmax."""
    ad = ModelAdapter(model)
    b, target = build_batch(tok, request, FLAT, "subject_last", torch.device("cpu"))
    ids, mask = pad_right(b.seqs[:b.R], pad_token_id(tok))
    rows = torch.arange(b.R)
    handle = ad.block(layer).register_forward_hook(adding_hook(rows, b.s[:b.R], lambda: z.delta.to(torch.float32)))
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    finally:
        handle.remove()
    pred = logits[rows[:, None], b.tgt_pos].argmax(-1)                       # (R, T)
    return bool((pred == torch.tensor(target)[None]).all())


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_mpes_stops_earlier_with_the_target_on_top(name):
    model, tok = make_model(name)
    ad = ModelAdapter(model)
    hp = ENCOREHParams(layers=(1, 2), v_num_grad_steps=25, clamp_norm_factor=4, prob_cutoff=-1)
    layer = hp.layers[-1]
    for r in REQUESTS:
        full = compute_z(model, tok, ad, r, FLAT, hp, prob_cutoff=0.0)      # MEMIT's rule: loss threshold
        mpes = compute_z(model, tok, ad, r, FLAT, hp)                        # hp.prob_cutoff = -1
        assert full.stop is None and mpes.stop == "most_probable", (full.stats(), mpes.stats())
        assert mpes.iterations < full.iterations, (mpes.iterations, full.iterations)
        assert mpes.stats()["stop"] == "most_probable"
        assert top_on_every_template(model, tok, r, mpes, layer)
        # one step earlier it was not yet on top everywhere (-1: the first such iteration)
        if mpes.iterations > 1:
            early = compute_z(model, tok, ad, r, FLAT, hp.replace(v_num_grad_steps=mpes.iterations - 1),
                              prob_cutoff=0.0)
            assert not top_on_every_template(model, tok, r, early, layer)
        # -2 counts one more iteration on top
        two = compute_z(model, tok, ad, r, FLAT, hp, prob_cutoff=-2.0)
        assert two.iterations > mpes.iterations


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_edit_raises_target_and_restores(name):
    model, tok = make_model(name)
    ad = ModelAdapter(model)
    editor = editor_for(ENCOREEditor, name, model)
    layers = editor.hparams.layers
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    b = tokenize_prompt_target(tok, [r.rewrite_prompt for r in REQUESTS], [r.target_new for r in REQUESTS])
    with torch.no_grad():
        nll0 = target_nll(model(**b.model_inputs()).logits, b)
    result = editor.apply(model, tok, REQUESTS)
    with torch.no_grad():
        nll1 = target_nll(model(**b.model_inputs()).logits, b)
    assert (nll1 < nll0 - 1.0).all(), (nll0, nll1, result.stats["mpes"])
    assert result.stats["mpes"]["stop"] == ["most_probable"] * len(REQUESTS), result.stats["mpes"]
    assert set(result.stats["weight_norm"]) == set(layers)
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == set(result.originals) == {ad.mlp_out_weight_name(l) for l in layers}
    # the edit's keys are kept for the next edit (add_prev_edits), and survive state_dict round trips
    state = editor.state_dict()
    assert sorted(state) == [f"prev_keys.{l}" for l in layers]
    other = ENCOREEditor(editor.hparams)
    other.load_state_dict(state)
    assert all(torch.equal(state[k], v) for k, v in other.state_dict().items())
    editor.reset()
    assert editor.state_dict() == {}
    restore(model, result.originals)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_previous_keys_enter_the_next_update():
    model, tok = make_model("tiny-gpt2")
    editor = editor_for(ENCOREEditor, "tiny-gpt2", model)
    r1 = editor.apply(model, tok, REQUESTS[:1])
    kkt = editor.state_dict()
    editor.apply(model, tok, REQUESTS[1:])
    grown = editor.state_dict()
    assert all(not torch.equal(kkt[k], grown[k]) for k in kkt)
    restore(model, r1.originals)   # r1 saved the weights before both edits
