"""ENCORE: MEMIT with most-probable early stopping and a norm-constrained update (Gupta et al. 2025,
"Lifelong Sequential Knowledge Editing without Model Degradation"; reference implementation
scalable-model-editing/knowledge-editing-regularization, ``encore/encore_main.py`` and ``encore/compute_z.py``).

Everything but two steps is MEMIT's (:class:`~editbench.editors.memit.MEMITEditor`: templates, keys, the layer loop
that gives each edit layer its share ``R`` of the residuals z - h_L, covariances):

1. **MPES** (z step). The value optimization of each request stops as soon as every target token is the argmax,
   teacher-forced, on every context template, instead of running on towards MEMIT's loss threshold
   (``prob_cutoff`` = -k: at the k-th such iteration; :func:`editbench.editors.memit.compute_z.optimize_deltas`).
   The iteration each request stopped at and why are in ``stats["z"]`` (``iterations``, ``stop``) and summarised
   in ``stats["mpes"]``. (The reference skips the first, bare "{}" template in this check; here every template
   counts, as the paper describes.)

2. **Norm-constrained least squares** (update step, :meth:`ENCOREEditor.update_rule`). With W the layer's
   current MLP output matrix (out, in), K (d_mlp, n) the edit keys, R = V - W K this layer's share of the
   residuals, C = E[k k^T] the key second moment, lambda = ``mom2_update_weight``, mu = ``update_norm_lambda`` and
   K_p the keys of this run's earlier edits (``add_prev_edits``; accumulated per layer, kept in the editor's state):

       min_dW   lambda |dW K_0|^2  +  |dW K_p|^2  +  |(W + dW) K - V|^2  +  mu |dW|_F^2      (lambda C = lambda K_0 K_0^T)

   whose normal equations  dW (lambda C + K_p K_p^T + mu I + K K^T) = R K^T  give

       dW = R K^T (lambda C + K_p K_p^T + mu I + K K^T)^-1                                  (:func:`encore_delta`)

   in float64, one linear solve. The penalty is on the update (the distance of the new matrix from the one
   before this edit), which is what keeps the edited matrix's norm from growing over a sequence of edits. This is
   the reference's ``execute_encore``: ``cov = mom2_update_weight * C + update_norm_lambda * I`` (+ the
   accumulated ``K K^T`` of previous edits when ``add_prev_edits``), then ``solve(cov + K K^T, K)``. With mu = 0
   and no earlier keys it is MEMIT's update exactly (:func:`~editbench.editors.memit.memit_delta`).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import EditResult
from editbench.editors.encore.hparams import ENCOREHParams
from editbench.editors.memit.apply import MEMITEditor
from editbench.editors.toolkit.linalg import solve_psd
from editbench.models.adapter import ModelAdapter

_PREV = "prev_keys."


def encore_delta(keys: torch.Tensor, resid: torch.Tensor, cov: torch.Tensor, lam: float, mu: float,
                 prev_kkt: torch.Tensor | None = None) -> torch.Tensor:
    """dW = resid K^T (lam C + K_p K_p^T + mu I + K K^T)^-1 in float64, an (out, in) = (d_model, d_mlp) matrix.

    ``keys`` K (d_mlp, n), ``resid`` R (d_model, n), ``cov`` C (d_mlp, d_mlp), ``prev_kkt`` K_p K_p^T (d_mlp, d_mlp)
    or None. mu = 0 and no ``prev_kkt`` is :func:`~editbench.editors.memit.memit_delta`, bit for bit.
    """
    K, Rs, C = keys.double(), resid.double(), cov.double().to(keys.device)
    a = lam * C + K @ K.T
    if prev_kkt is not None:
        a = a + prev_kkt.double().to(a.device)
    if mu:
        a = a + mu * torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    return Rs @ solve_psd(a, K).T


class ENCOREEditor(MEMITEditor):
    """ENCORE (Gupta et al. 2025): MEMIT + most-probable early stopping + a Frobenius-norm penalty on the update.

    State (sequential runs, :meth:`state_dict`): with ``add_prev_edits``, the per-layer sum K_p K_p^T of the keys
    of every earlier edit since the last :meth:`reset`, which later updates preserve (the reference's
    ``SEQ_CACHE``). An edit that fails adds nothing to it.
    """

    name = "encore"
    hparams_class = ENCOREHParams
    supports_batch = True

    def __init__(self, hparams: ENCOREHParams | None = None, **kwargs: Any):
        super().__init__(hparams, **kwargs)
        self._prev_kkt: dict[int, torch.Tensor] = {}   # layer -> sum of K K^T of earlier edits (float64, CPU)
        self._pending: dict[int, torch.Tensor] = {}    # this edit's K K^T, committed when the edit succeeds

    def update_rule(self, adapter: ModelAdapter, layer: int, keys: torch.Tensor, resid: torch.Tensor,
                    cov: torch.Tensor) -> torch.Tensor:
        hp: ENCOREHParams = self.hparams
        prev = self._prev_kkt.get(layer) if hp.add_prev_edits else None
        if hp.add_prev_edits:
            k = keys.double()
            self._pending[layer] = (k @ k.T).cpu()
        return encore_delta(keys, resid, cov, hp.mom2_update_weight, hp.update_norm_lambda, prev)

    def apply(self, model: torch.nn.Module, tok: Any, requests: Sequence[EditRequest]) -> EditResult:
        self._pending = {}
        result = super().apply(model, tok, requests)
        for layer, kkt in self._pending.items():
            self._prev_kkt[layer] = kkt if layer not in self._prev_kkt else self._prev_kkt[layer] + kkt
        self._pending = {}
        adapter = ModelAdapter(model)
        zs = result.stats["z"]
        result.stats["mpes"] = {
            "prob_cutoff": self.hparams.prob_cutoff,
            "iterations": [z["iterations"] for z in zs],
            "stop": [z.get("stop") for z in zs],
            "n_most_probable": sum(z.get("stop") == "most_probable" for z in zs)}
        result.stats["weight_norm"] = {
            l: {"before": float(result.originals[adapter.mlp_out_weight_name(l)].double().norm()),
                "after": float(adapter.weight_out_in(l).detach().double().norm())}
            for l in self.hparams.layers}
        return result

    def reset(self) -> None:
        self._prev_kkt, self._pending = {}, {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{_PREV}{l}": t.clone() for l, t in self._prev_kkt.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        bad = [k for k in state if not k.startswith(_PREV)]
        if bad:
            raise TypeError(f"editor {self.name!r}: unexpected state key(s) {sorted(bad)}")
        self._prev_kkt = {int(k[len(_PREV):]): v.double().cpu().clone() for k, v in state.items()}
