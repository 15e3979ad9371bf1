"""AlphaEdit hyperparameters (Fang et al., ICLR 2025, "AlphaEdit: Null-Space Constrained Knowledge Editing for
Language Models").

MEMIT's hyperparameters (where to write, the target z, the covariance statistics, the context templates) plus the
two of the null-space update. ``mom2_update_weight`` (MEMIT's lambda) is inherited but unused: AlphaEdit's update
has no lambda C term. ``fast_solve`` here switches AlphaEdit's own solve: the r x r Woodbury form with M^-1 kept
across edits (True) or the reference's d x d solve (False); equal up to float64 rounding. Per-model presets: ``editbench/editors/hparams/alphaedit.yaml`` (``inherit: memit``).
"""
from __future__ import annotations

from dataclasses import dataclass

from editbench.editors.memit.hparams import MEMITHParams
from editbench.editors.ranges import hp


@dataclass(frozen=True)
class AlphaEditHParams(MEMITHParams):
    nullspace_threshold: float = hp(2e-2, ge=0)
    """Eigen-directions of the key covariance C with eigenvalue below this span the null space that the update is
    projected onto (the reference's ``nullspace_threshold``). Absolute, so it depends on the scale of C."""
    L2: float = hp(10.0, gt=0)
    """alpha in  dW = R K^T P (K K^T P + K_p K_p^T P + alpha I)^-1  (the reference's ``L2``): the ridge term that
    keeps the update small and the solve well posed."""

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "nullspace_threshold", float(self.nullspace_threshold))
        object.__setattr__(self, "L2", float(self.L2))
        if self.nullspace_threshold < 0:
            raise ValueError(f"nullspace_threshold must be >= 0, got {self.nullspace_threshold}")
        if self.L2 <= 0:
            raise ValueError(f"L2 (alpha) must be > 0, got {self.L2}")
