"""AlphaEdit's per-edit solve: the reference's d x d solve against the kept r x r Woodbury form (fast_solve).

    pytest benchmarks/bench_alphaedit_solve.py -k factworld
    EDITBENCH_RUN_SLOW=1 OMP_NUM_THREADS=1 pytest benchmarks/bench_alphaedit_solve.py -k smollm2 \
        --benchmark-min-rounds 30                                   # docs/speed.md: SmolLM2, 30 edits, 1 thread

Uses the real key covariances C_l of the model's edit layers (editbench stats cache; computed on first use) and
the preset's projectors, and a stream of synthetic edits: each edit's key is drawn from N(0, C_l) (the
distribution C describes), its residual at random (drawn untimed, before each round). Each round is one edit over
every edit layer, timing what ``update_rule`` and the post-edit state update do on each path -- ``reference``:
P (K K^T + K_p K_p^T) + alpha I solved afresh and K K^T added; ``fast``: dW from the kept M^-1 and the Woodbury
downdate of M^-1 -- over ``--benchmark-min-rounds`` edits (the state grows from edit to edit, as in a run). The
``fast`` benchmark also checks that the two paths' dW agree on a few edits (``max_rel_diff_dW`` in
``extra_info``). What it does not time (z optimization, the key forward passes) is the same on both paths; see
profile_sequential.py for the whole edit.
"""
from __future__ import annotations

import pytest
import torch
from benchlib import model_name, rounds

from editbench.editors.alphaedit import (AlphaEditEditor, alphaedit_delta, alphaedit_delta_reduced, reduced_inverse,
                                         woodbury_downdate)


@pytest.fixture(scope="module")
def layers(lm):
    """Per edit layer: (Cholesky factor of C, projector P, basis U, output dimension); and the editor."""
    editor = AlphaEditEditor.from_preset(lm.preset_keys)
    editor.prepare(lm.model, lm.tok)
    covs = editor.covariance(lm.model, lm.tok, lm.adapter)
    out = {}
    for layer in editor.hparams.layers:
        C = covs[layer].double()
        L = torch.linalg.cholesky(C + 1e-9 * torch.eye(C.shape[0], dtype=torch.float64))
        out[layer] = (L, editor.projector(layer, covs[layer]), editor.basis(layer, covs[layer]),
                      lm.adapter.weight_out_in(layer).shape[0])
    return editor, out


def edits(layers, n: int, seed: int = 0):
    """``n`` synthetic edits: per layer a key K ~ N(0, C) and a random residual R, both (dim, 1) float64."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        yield {layer: (L @ torch.randn(L.shape[0], 1, generator=g, dtype=torch.float64),
                       torch.randn(d_out, 1, generator=g, dtype=torch.float64))
               for layer, (L, _, _, d_out) in layers.items()}


class Reference:
    def __init__(self, layers, alpha):
        self.layers, self.alpha, self.prev = layers, alpha, {layer: None for layer in layers}

    def __call__(self, edit):
        out = {}
        for layer, (K, R) in edit.items():
            out[layer] = alphaedit_delta(K, R, self.layers[layer][1], self.prev[layer], self.alpha)
            self.prev[layer] = K @ K.T if self.prev[layer] is None else self.prev[layer] + K @ K.T
        return out


class Fast:
    def __init__(self, layers, alpha):
        self.layers = layers
        self.m_inv = {layer: reduced_inverse(U, None, alpha) for layer, (_, _, U, _) in layers.items()}

    def __call__(self, edit):
        out = {}
        for layer, (K, R) in edit.items():
            U = self.layers[layer][2]
            out[layer] = alphaedit_delta_reduced(K, R, U, self.m_inv[layer])
            self.m_inv[layer] = woodbury_downdate(self.m_inv[layer], U, K)
        return out


PATHS = {"reference": Reference, "fast": Fast}


@pytest.mark.parametrize("path", list(PATHS))
def test_alphaedit_solve(benchmark, request, lm, layers, path):
    editor, per_layer = layers
    step = PATHS[path](per_layer, editor.hparams.L2)
    stream = edits(per_layer, rounds(request) + 1)
    benchmark.group = f"alphaedit solve {model_name(lm)}"
    benchmark.extra_info.update(path=path, layers=list(per_layer),
                                nullspace_dims={str(k): int(v[2].shape[1]) for k, v in per_layer.items()})
    benchmark.pedantic(step, setup=lambda: ((next(stream),), {}), rounds=rounds(request), warmup_rounds=1)
    if path == "fast":  # the two paths give the same dW (same edits, same state)
        ref, fast = Reference(per_layer, editor.hparams.L2), Fast(per_layer, editor.hparams.L2)
        worst = 0.0
        for edit in edits(per_layer, 3, seed=1):
            a, b = ref(edit), fast(edit)
            worst = max(worst, *(float((b[k] - a[k]).norm() / a[k].norm().clamp_min(1e-300)) for k in a))
        benchmark.extra_info["max_rel_diff_dW"] = worst
        assert worst < 1e-6
