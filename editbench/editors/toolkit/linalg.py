"""The one linear solve ROME and MEMIT share: A x = B for a symmetric positive semi-definite A, in float64.

ROME solves C u = k* and MEMIT (lambda C + K Kᵀ) X = K, where C = E[k kᵀ] is the second moment of an MLP's keys.
A key dimension that is exactly zero on every token the statistics saw -- a *dead* neuron: ReLU models have
many, and GELU underflows to exactly 0 in float32 for pre-activations below about -15 -- gives C an all-zero row
and column, so ``torch.linalg.solve`` fails ("the input matrix is singular") although the edit is well defined:

* MEMIT: a zero diagonal entry of A = lambda C + K Kᵀ means the edit's keys are zero there too, so those rows read
  0 = 0 and every solution agrees on the live dimensions. The minimum-norm one (x = 0 on the dead dimensions)
  changes nothing a key can reach.
* ROME: C⁻¹k* does not exist if k* is non-zero on a dimension C never saw; the pseudo-inverse's answer (u = 0
  there, the least-squares solution) is what is returned.

On a full-support A the result is exactly ``torch.linalg.solve(A, B)``. Near-zero (not exactly zero) diagonals are
left to float64, as in the reference code.
"""
from __future__ import annotations

import torch


def solve_psd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x with A x = B on the dimensions where A's diagonal is non-zero, and x = 0 on the rest (float64).

    ``a`` is (d, d) symmetric PSD; ``b`` is (d,) or (d, n). Returns float64 of ``b``'s shape.
    """
    a, b = a.double(), b.double()
    live = torch.diagonal(a) != 0
    if bool(live.all()):
        return torch.linalg.solve(a, b)
    x = torch.zeros_like(b)
    idx = live.nonzero().squeeze(-1)
    if idx.numel():
        x[idx] = torch.linalg.solve(a[idx][:, idx], b[idx])
    return x
