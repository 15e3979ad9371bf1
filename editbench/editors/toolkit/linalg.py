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


class FactoredPSD:
    """A fixed symmetric PSD matrix B, Cholesky-factored once (float64), for the solves MEMIT-family updates
    repeat on every edit with the same B = lambda C (C: the unedited model's key covariance, fixed for a run).

    :meth:`solve_plus_low_rank` gives X = (B + K Kᵀ)⁻¹ K -- MEMIT's ``adj_k`` -- by the Woodbury identity,
    X = Y (I + Kᵀ Y)⁻¹ with Y = B⁻¹ K: two triangular solves against the kept factor and an n x n solve, instead
    of a fresh d x d solve per layer per edit (d = 1536 for SmolLM2: ~0.2 s -> ~0.01 s; equal to
    :func:`solve_psd` of the summed matrix up to float64 rounding, ~1e-14 relative on SmolLM2's covariances,
    tested). Where the factor cannot be used -- B has dead dimensions on which K is non-zero, or B is not
    numerically positive definite -- it falls back to :func:`solve_psd` of B + K Kᵀ, so the result is always
    the one :func:`solve_psd` defines.
    """

    def __init__(self, b: torch.Tensor):
        self.b = b.double()
        self.live = torch.diagonal(self.b) != 0
        self.idx = self.live.nonzero().squeeze(-1)
        self.all_live = bool(self.live.all())
        sub = self.b if self.all_live else self.b[self.idx][:, self.idx]
        chol, info = torch.linalg.cholesky_ex(sub) if sub.numel() else (None, torch.tensor(1))
        self.chol = chol if int(info) == 0 else None   # None: not positive definite -> always the direct solve

    @property
    def factored(self) -> bool:
        return self.chol is not None

    def solve_plus_low_rank(self, k: torch.Tensor) -> torch.Tensor:
        """(B + K Kᵀ)⁻¹ K for ``k`` K (d, n), float64 (zero on dead dimensions, as :func:`solve_psd`)."""
        k = k.double()
        if self.chol is None or (not self.all_live and bool((k[~self.live] != 0).any())):
            return solve_psd(self.b.to(k.device) + k @ k.T, k)
        chol = self.chol.to(k.device)
        ks = k if self.all_live else k[self.idx]
        y = torch.cholesky_solve(ks, chol)                                     # B⁻¹ K
        s = torch.eye(ks.shape[1], dtype=torch.float64, device=k.device) + ks.T @ y
        x = torch.linalg.solve(s, y.T).T                                       # Y S⁻¹ (S symmetric)
        if self.all_live:
            return x
        out = torch.zeros_like(k)
        out[self.idx] = x
        return out
