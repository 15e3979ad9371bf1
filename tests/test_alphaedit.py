"""AlphaEdit: the null-space projector, the update rule's formula and null-space property, an edit on a tiny model,
the editor state (accumulated keys: grows, round-trips, reset clears it) and byte-identical restore.

Models, covariances and templates as in tests/test_memit.py (random tiny models re-drawn at std 0.15, injected
covariances). tiny-gpt2's C has about half its eigenvalues below the reference threshold 2e-2; tiny-llama's has
none, so its tests raise the threshold to leave the update a null space.
"""
from __future__ import annotations

import pytest
import torch

from editbench.editors.alphaedit import AlphaEditEditor, AlphaEditHParams, alphaedit_delta, nullspace_projector
from editbench.editors.base import restore
from editbench.models.adapter import ModelAdapter

from test_memit import (REQUESTS, TEMPLATES, _one_thread, covariances, make_model,  # noqa: F401 (autouse)
                        rewrite_scores, snapshot)


def spectrum_cov(d=12, n_small=5, seed=0):
    """A symmetric PSD C with known eigenvectors Q: n_small eigenvalues in [1e-4, 1e-2], the rest in [0.5, 5]."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    ev = torch.cat([torch.linspace(1e-4, 1e-2, n_small), torch.linspace(0.5, 5.0, d - n_small)]).double()
    return (Q * ev) @ Q.T, Q[:, :n_small], Q[:, n_small:]


def test_projector_is_the_orthogonal_projector_onto_small_eigendirections():
    C, U_small, U_large = spectrum_cov()
    P, rank = nullspace_projector(C.float(), 2e-2)
    assert P.dtype == torch.float64 and rank == U_small.shape[1]
    torch.testing.assert_close(P @ P, P, atol=1e-10, rtol=0)
    torch.testing.assert_close(P, P.T, atol=1e-12, rtol=0)
    torch.testing.assert_close(P, U_small @ U_small.T, atol=1e-6, rtol=0)
    torch.testing.assert_close(P @ U_small, U_small, atol=1e-6, rtol=0)       # keeps the null space
    assert float((P @ U_large).abs().max()) < 1e-6                          # kills the preserved directions
    assert nullspace_projector(C, 0.0)[1] == 0 and nullspace_projector(C, 10.0)[1] == C.shape[0]


def test_delta_is_the_formula_and_lies_in_the_null_space():
    C, U_small, U_large = spectrum_cov()
    P, _ = nullspace_projector(C, 2e-2)
    g = torch.Generator().manual_seed(1)
    d_in, d_out, n, alpha = C.shape[0], 7, 3, 10.0
    K = torch.randn(d_in, n, generator=g)
    R = torch.randn(d_out, n, generator=g)
    Kp = torch.randn(d_in, 4, generator=g).double()
    for prev in (None, Kp @ Kp.T):
        dW = alphaedit_delta(K, R, P, prev, alpha)
        assert dW.dtype == torch.float64 and dW.shape == (d_out, d_in)
        Kd, Rd = K.double(), R.double()
        kpp = torch.zeros(d_in, d_in, dtype=torch.float64) if prev is None else prev
        direct = Rd @ Kd.T @ P @ torch.linalg.inv(Kd @ Kd.T @ P + kpp @ P + alpha * torch.eye(d_in, dtype=torch.float64))
        torch.testing.assert_close(dW, direct, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(dW @ P, dW, rtol=0, atol=1e-10)           # dW = dW P
        assert float((dW @ U_large).abs().max()) < 1e-10                    # preserved keys' outputs unchanged
        assert float(dW.norm()) > 1e-3
    # earlier edits' keys hold the update back along their directions
    k_prev = (P @ Kp[:, :1]).squeeze(1)
    free = alphaedit_delta(K, R, P, None, alpha) @ k_prev
    held = alphaedit_delta(K, R, P, 1e4 * torch.outer(k_prev, k_prev), alpha) @ k_prev
    assert float(held.norm()) < 0.01 * float(free.norm())


def make_editor(name, model, **overrides):
    editor = AlphaEditEditor.from_preset([name], **overrides)
    editor.covariances = covariances(model, editor.hparams.layers)
    editor.context_templates = TEMPLATES
    return editor


@pytest.mark.parametrize("name,overrides", [("tiny-gpt2", {}), ("tiny-llama", {"nullspace_threshold": 0.12})],
                         ids=["gpt2", "llama"])
def test_edit_succeeds_in_the_null_space_and_restores(name, overrides):
    model, tok = make_model(name)
    adapter = ModelAdapter(model)
    editor = make_editor(name, model, **overrides)
    layers = editor.hparams.layers
    editor.prepare(model, tok)
    dims = editor.nullspace_dims()
    assert set(dims) == set(layers) and all(0 < d < adapter.weight_out_in(l).shape[1] for l, d in dims.items())
    before = snapshot(model)
    nll0, _ = rewrite_scores(model, tok, REQUESTS)

    result = editor.apply(model, tok, REQUESTS)

    nll1, ok1 = rewrite_scores(model, tok, REQUESTS)
    assert (nll1 < nll0 - 0.5).all(), (nll0, nll1)           # the target's probability rises for every request
    assert result.stats["nullspace_dim"] == dims and result.stats["n_prev_edits"] == 0
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    expected = {adapter.mlp_out_weight_name(l) for l in layers}
    assert changed == expected and set(result.originals) == expected
    for l in layers:
        orig = result.originals[adapter.mlp_out_weight_name(l)]
        delta = (adapter.weight_out_in(l) - (orig.T if adapter.conv1d else orig)).detach().double()
        evals, evecs = torch.linalg.eigh(editor.covariances[l].double())
        preserved = evecs[:, evals >= editor.hparams.nullspace_threshold]      # the range of C's large directions
        assert float(delta.norm()) > 0
        # preserved keys' outputs unchanged (up to the float32 rounding of writing dW into the weights)
        assert float((delta @ preserved).norm()) < 1e-4 * float(delta.norm()) + 1e-5
    restore(model, result.originals)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_state_accumulates_round_trips_and_resets():
    model, tok = make_model("tiny-gpt2")
    editor = make_editor("tiny-gpt2", model)
    layers = editor.hparams.layers
    assert editor.state_dict() == {}

    editor.apply(model, tok, REQUESTS[:1])
    s1 = editor.state_dict()
    # K_p K_p^T per layer, the edit count, and the fast solve's M^-1 (derived; kept so a resume is exact)
    assert set(s1) == ({f"prev_kkt.{l}" for l in layers} | {f"reduced_inv.{l}" for l in layers} | {"n_edits"})
    assert int(s1["n_edits"]) == 1
    for l in layers:
        m = s1[f"prev_kkt.{l}"]
        assert m.dtype == torch.float64 and torch.linalg.matrix_rank(m) == 1 and torch.equal(m, m.T)

    r2 = editor.apply(model, tok, REQUESTS[1:])
    s2 = editor.state_dict()
    assert int(s2["n_edits"]) == 3 and r2.stats["n_prev_edits"] == 1
    for l in layers:                        # grows by the two new requests' keys
        assert torch.linalg.matrix_rank(s2[f"prev_kkt.{l}"]) == 3
        assert torch.linalg.matrix_rank(s2[f"prev_kkt.{l}"] - s1[f"prev_kkt.{l}"]) == 2

    # round trip through a fresh editor (as --resume does): same state, same update for the next edit
    other = make_editor("tiny-gpt2", model)
    other.load_state_dict(s2)
    s3 = other.state_dict()
    assert set(s3) == set(s2) and all(torch.equal(s3[k], s2[k]) for k in s2)
    g = torch.Generator().manual_seed(3)
    l = layers[0]
    K = torch.randn(editor.covariances[l].shape[0], 2, generator=g)
    R = torch.randn(ModelAdapter(model).weight_out_in(l).shape[0], 2, generator=g)
    cov = editor.covariances[l]
    torch.testing.assert_close(other.update_rule(None, l, K, R, cov), editor.update_rule(None, l, K, R, cov),
                               rtol=0, atol=0)
    fresh = make_editor("tiny-gpt2", model)
    assert not torch.allclose(fresh.update_rule(None, l, K, R, cov), editor.update_rule(None, l, K, R, cov))

    # reset: nothing leaks into the next independent edit
    editor.reset()
    assert editor.state_dict() == {}
    torch.testing.assert_close(editor.update_rule(None, l, K, R, cov), fresh.update_rule(None, l, K, R, cov),
                               rtol=0, atol=0)
    with pytest.raises(KeyError):
        other.load_state_dict({"bogus": torch.zeros(1)})
    with pytest.raises(ValueError):
        other.load_state_dict({"prev_kkt.99": torch.zeros(3, 3)})


def test_failed_edit_leaves_model_and_state_alone(monkeypatch):
    model, tok = make_model("tiny-gpt2")
    editor = make_editor("tiny-gpt2", model)
    before = snapshot(model)
    import editbench.editors.alphaedit.apply as ae

    def boom(*a, **k):
        raise RuntimeError("boom")
    monkeypatch.setattr(ae, "keys_and_hidden", boom)         # fails after the weights were written
    with pytest.raises(RuntimeError):
        editor.apply(model, tok, REQUESTS[:1])
    assert editor.state_dict() == {}
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_hparams_and_presets():
    hp = AlphaEditEditor.from_preset(["factworld"]).hparams
    assert isinstance(hp, AlphaEditHParams)
    assert hp.layers == (1, 2, 3) and hp.nullspace_threshold == 2e-2 and hp.L2 == 10.0
    assert AlphaEditEditor.from_preset(["smollm2-135m"]).hparams.layers == (2, 3, 4, 5, 6)
    assert AlphaEditEditor.from_preset(["gpt2-xl"]).hparams.layers == (13, 14, 15, 16, 17)
    with pytest.raises(ValueError):
        AlphaEditHParams(L2=0.0)


def test_registered():
    from editbench import registry
    assert registry.get("alphaedit") is AlphaEditEditor
    assert registry.create("alphaedit", ["factworld"]).hparams.layers == (1, 2, 3)


def test_fast_solve_is_the_reference_solve_over_a_sequence_of_edits():
    from editbench.editors.alphaedit import (alphaedit_delta_reduced, nullspace_basis, reduced_inverse,
                                             woodbury_downdate)
    C, _, _ = spectrum_cov(d=16, n_small=9)
    U = nullspace_basis(C, 2e-2)
    P = U @ U.T
    g = torch.Generator().manual_seed(5)
    alpha, prev = 10.0, None
    m_inv = reduced_inverse(U, None, alpha)
    for step in range(6):                       # each edit: solve, then its keys join K_p K_p^T
        n = 1 + step % 3
        K = 3 * torch.randn(16, n, generator=g, dtype=torch.float64)
        R = torch.randn(5, n, generator=g, dtype=torch.float64)
        ref = alphaedit_delta(K, R, P, prev, alpha)
        fast = alphaedit_delta_reduced(K, R, U, m_inv)
        torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-12)
        Kn = K + 0.1 * torch.randn(16, n, generator=g, dtype=torch.float64)   # keys recomputed after the edit
        prev = Kn @ Kn.T if prev is None else prev + Kn @ Kn.T
        m_inv = woodbury_downdate(m_inv, U, Kn)
        torch.testing.assert_close(m_inv, reduced_inverse(U, prev, alpha), rtol=1e-9, atol=1e-12)
    # an empty null space: no update at all
    U0 = nullspace_basis(C, 0.0)
    assert U0.shape == (16, 0)
    assert float(alphaedit_delta_reduced(K, R, U0, reduced_inverse(U0, prev, alpha)).abs().max()) == 0.0


def test_fast_and_reference_editors_write_the_same_weights_and_resume_exactly():
    runs = {}
    for fast in (True, False):
        model, tok = make_model("tiny-gpt2")
        editor = make_editor("tiny-gpt2", model, fast_solve=fast)
        for req in REQUESTS:
            editor.apply(model, tok, [req])
        runs[fast] = (snapshot(model), editor)
    for name, w in runs[True][0].items():
        torch.testing.assert_close(w, runs[False][0][name], rtol=1e-5, atol=1e-6)
    fast_state, ref_state = runs[True][1].state_dict(), runs[False][1].state_dict()
    layers = runs[True][1].hparams.layers
    assert {f"reduced_inv.{l}" for l in layers} <= set(fast_state)
    assert not any(k.startswith("reduced_inv.") for k in ref_state)
    for l in layers:
        torch.testing.assert_close(fast_state[f"prev_kkt.{l}"], ref_state[f"prev_kkt.{l}"], rtol=1e-6, atol=1e-9)
    # a resumed editor holds the same M^-1: its next update is bit-identical to the uninterrupted one's
    model, _ = make_model("tiny-gpt2")
    other = make_editor("tiny-gpt2", model)
    other.load_state_dict(fast_state)
    l = layers[0]
    cov = runs[True][1].covariances[l]
    g = torch.Generator().manual_seed(9)
    K = torch.randn(cov.shape[0], 1, generator=g)
    R = torch.randn(ModelAdapter(model).weight_out_in(l).shape[0], 1, generator=g)
    assert torch.equal(other.update_rule(None, l, K, R, cov), runs[True][1].update_rule(None, l, K, R, cov))


def test_kept_inverse_is_rebuilt_at_refresh_points(monkeypatch):
    import editbench.editors.alphaedit.apply as ae
    from editbench.editors.alphaedit import reduced_inverse
    monkeypatch.setattr(ae, "REFRESH_EVERY", 2)
    model, tok = make_model("tiny-gpt2")
    editor = make_editor("tiny-gpt2", model)
    l = editor.hparams.layers[0]
    editor.apply(model, tok, REQUESTS[:1])          # 0 -> 1 edits: M^-1 downdated in place
    assert l in editor.reduced_inv
    editor.apply(model, tok, REQUESTS[1:2])         # 1 -> 2 crosses a refresh point: dropped, rebuilt when used
    assert editor.reduced_inv == {} and editor.n_edits == 2
    editor.apply(model, tok, REQUESTS[2:3])
    U = editor.basis(l, editor.covariances[l])
    torch.testing.assert_close(editor.reduced_inv[l], reduced_inverse(U, editor.prev_kkt[l], editor.hparams.L2),
                               rtol=1e-9, atol=1e-12)
