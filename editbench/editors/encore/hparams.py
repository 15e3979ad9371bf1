"""ENCORE hyperparameters (Gupta et al. 2025, "Lifelong Sequential Knowledge Editing without Model Degradation").

MEMIT's (:class:`~editbench.editors.memit.MEMITHParams`) plus the three of ENCORE's reference implementation
(scalable-model-editing/knowledge-editing-regularization, ``encore/encore_hparams.py``, same names). Defaults are
its GPT-2-XL values (``hparams/ENCORE/gpt2-xl.json``); per-model presets in ``editbench/editors/hparams/encore.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass

from editbench.editors.memit.hparams import MEMITHParams
from editbench.editors.ranges import hp


@dataclass(frozen=True)
class ENCOREHParams(MEMITHParams):
    prob_cutoff: float = hp(-4.0, le=1)
    """Stopping rule of the z optimization (MPES). Negative -k: stop a request at the k-th iteration at which every
    target token is the most probable one (teacher-forced) on every context template (-1: the first such
    iteration). Positive p: stop once the mean target probability exceeds p. 0: off (MEMIT's loss threshold only)."""
    update_norm_lambda: float = hp(10.0, ge=0)
    """mu in  dW = R K^T (lambda C + K_p K_p^T + mu I + K K^T)^-1 : the Frobenius-norm penalty mu |dW|_F^2."""
    add_prev_edits: bool = True
    """Also preserve the keys of this run's earlier edits (K_p K_p^T, accumulated per layer; editor state)."""

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "prob_cutoff", float(self.prob_cutoff))
        object.__setattr__(self, "update_norm_lambda", float(self.update_norm_lambda))
        if self.update_norm_lambda < 0:
            raise ValueError(f"update_norm_lambda must be >= 0, got {self.update_norm_lambda}")
