"""The shared PSD solve of ROME and MEMIT: exactly torch.linalg.solve on a full-support matrix, and a well-defined
answer (zero on the dead dimensions, the exact solution on the rest) when a dead MLP neuron zeroes a row and
column of C -- which torch.linalg.solve rejects as singular (seen on the fact world's layer 3)."""
from __future__ import annotations

import pytest
import torch

from editbench.editors.toolkit.linalg import solve_psd
from editbench.editors.memit import memit_delta
from editbench.editors.rome import left_vector


def _psd(d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, 2 * d, generator=g, dtype=torch.float64)
    return a @ a.T / (2 * d)


def _kill(c: torch.Tensor, dead: list[int]) -> torch.Tensor:
    c = c.clone()
    c[dead, :] = 0
    c[:, dead] = 0
    return c


@pytest.mark.parametrize("shape", [(6,), (6, 3)])
def test_full_support_is_exactly_linalg_solve(shape):
    a = _psd(6)
    b = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(solve_psd(a, b), torch.linalg.solve(a, b))
    assert solve_psd(a.float(), b.float()).dtype == torch.float64


def test_memit_delta_with_dead_key_dimensions():
    d_in, d_out, n, lam, dead = 8, 5, 3, 2.0, [2, 5]
    g = torch.Generator().manual_seed(2)
    C = _kill(_psd(d_in), dead)
    K = torch.randn(d_in, n, generator=g, dtype=torch.float64)
    K[dead] = 0  # a dead neuron is zero on the edit prompts as well
    R = torch.randn(d_out, n, generator=g, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="singular"):
        torch.linalg.solve(lam * C + K @ K.T, K)
    dW = memit_delta(K, R, C, lam)
    assert torch.isfinite(dW).all()
    assert torch.equal(dW[:, dead], torch.zeros(d_out, len(dead), dtype=torch.float64))
    # MEMIT's normal equations hold (on the dead rows both sides are zero)
    torch.testing.assert_close(dW @ (lam * C + K @ K.T), R @ K.T, rtol=1e-10, atol=1e-12)
    # and it is the reduced problem's solution
    live = [i for i in range(d_in) if i not in dead]
    reduced = memit_delta(K[live], R, C[live][:, live], lam)
    torch.testing.assert_close(dW[:, live], reduced, rtol=1e-12, atol=1e-12)


def test_rome_left_vector_with_a_dead_dimension():
    d, dead = 7, [3]
    C = _kill(_psd(d, seed=3), dead)
    k = torch.randn(d, generator=torch.Generator().manual_seed(4))
    u = left_vector(k, C.float())
    assert torch.isfinite(u).all() and u[3] == 0
    torch.testing.assert_close(float(u.norm()), 1.0)
    # on the live dimensions u is proportional to C^-1 k (the least-squares / pseudo-inverse answer)
    live = [i for i in range(d) if i not in dead]
    ref = torch.linalg.solve(C[live][:, live], k.double()[live])
    torch.testing.assert_close(u.double()[live], ref / ref.norm(), rtol=1e-5, atol=1e-6)
