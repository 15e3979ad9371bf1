"""ROME step 3: the rank-one update, and the editors.

With C = E[kkᵀ] (second moment of the layer's keys), the update that maps key k to value v* while changing
the output on other keys least (in the C-weighted sense) is

    u = C⁻¹ k*   (normalised; solved in float64)
    Λ = (v* − (W k + b)) / (uᵀ k)
    W ← W + Λ uᵀ          ((out, in) orientation; the adapter handles GPT-2's transposed Conv1D)

**ROME** (original code, ``original_rome_key=True``): k in W k and uᵀk is the *raw* prompt's key while u is built
from the template-averaged k*. **r-ROME** (Gupta et al. 2024, ``original_rome_key=False``): k = k* everywhere,
which removes most "disabling" edits. W k + b is evaluated by the MLP output module itself (bias included).
"""
from __future__ import annotations

import os
import time
from typing import Any, Sequence

import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import Editor, EditResult, save_originals
from editbench.editors.rome.compute_k import compute_keys
from editbench.editors.rome.compute_v import compute_v
from editbench.editors.rome.hparams import ROMEHParams
from editbench.editors.toolkit.covariance import CovarianceCache, stats_cache_dir
from editbench.editors.toolkit.linalg import solve_psd
from editbench.editors.toolkit.templates import context_templates
from editbench.models.adapter import ModelAdapter


def left_vector(k_star: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor:
    """u = C⁻¹k* / ‖C⁻¹k*‖ (float64 solve), or k*/‖k*‖ without the second-moment adjustment."""
    u = k_star.double() if cov is None else solve_psd(cov.to(k_star.device), k_star)
    return (u / u.norm()).to(torch.promote_types(k_star.dtype, torch.float32))


@torch.no_grad()
def rank_one_update(adapter: ModelAdapter, layer: int, u: torch.Tensor, k: torch.Tensor,
                    v_star: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """ΔW (out, in) = Λ uᵀ with Λ = (v* − mlp_out(k)) / (uᵀk)."""
    w_k = adapter.mlp_out(layer)(k.to(adapter.weight_out_in(layer).dtype)[None])[0].to(u.dtype)
    denom = torch.dot(u, k.to(u.dtype))
    lam = (v_star.to(u.dtype) - w_k) / denom
    return torch.outer(lam, u), {"u_dot_k": float(denom), "lambda_norm": float(lam.norm())}


class ROMEEditor(Editor):
    """ROME (Meng et al. 2022a): one rank-one edit of one MLP output matrix per request.

    ``supports_batch`` is False: a list of requests is applied one after another (each sees the previous
    edits), and the returned originals are those before the first. Context templates (seeded) and the
    second moment C are computed once per model object and reused for later edits, like the reference code;
    :meth:`prepare` computes C up front (else the first ``apply`` does). ``model_hash`` / ``stats_cache_dir`` key
    the on-disk statistics cache (default: the loader's hash or a fingerprint, and ``<cache root>/stats``);
    ``covariance`` {layer: C} can be given directly (tests).
    """

    name = "rome"
    hparams_class = ROMEHParams
    supports_batch = False

    def __init__(self, hparams: ROMEHParams | None = None, *, covariance: dict[int, torch.Tensor] | None = None,
                 model_hash: str | None = None, stats_cache_dir: str | None = None, progress: bool = True):
        super().__init__(hparams)
        self.covariance = dict(covariance or {})
        self.model_hash = model_hash
        self.stats_cache_dir = stats_cache_dir
        self.progress = progress
        self._covs = CovarianceCache()  # C computed per model object (the unedited weights)
        self.last: dict[str, torch.Tensor] = {}
        """Vectors of the last edit, for inspection: u, k_star, k_raw, k (the one used), v0, v_star, delta_w."""

    @property
    def original_key(self) -> bool:
        return self.hparams.original_rome_key

    def prepare(self, model: torch.nn.Module, tok: Any, cache_dir: str | os.PathLike | None = None) -> None:
        """Compute (or load from the disk cache) C of the edit layer for the unedited ``model``."""
        self._cov(model, tok, ModelAdapter(model), cache_dir)

    def _cov(self, model, tok, adapter: ModelAdapter, cache_dir=None) -> torch.Tensor | None:
        hp = self.hparams
        if not hp.mom2_adjustment:
            return None
        return self._covs.get(model, tok, adapter, [hp.layer], given=self.covariance, corpus=hp.mom2_corpus,
                              n_samples=hp.mom2_n_samples, max_length=hp.mom2_max_length,
                              model_hash=self.model_hash, cache_dir=stats_cache_dir(self.stats_cache_dir, cache_dir),
                              progress=self.progress)[hp.layer]

    def apply(self, model: torch.nn.Module, tok: Any, requests: Sequence[EditRequest]) -> EditResult:
        hp: ROMEHParams = self.hparams
        requests = [r.validate() for r in requests]
        if not requests:
            raise ValueError("no requests")
        adapter = ModelAdapter(model)
        if not 0 <= hp.layer < adapter.n_layers:
            raise ValueError(f"ROME layer {hp.layer} out of range for a {adapter.n_layers}-layer model")
        wname = adapter.mlp_out_weight_name(hp.layer)
        result = EditResult(originals=save_originals(model, [wname]))
        was_training = model.training
        model.eval()
        t0 = time.perf_counter()
        try:
            templates = context_templates(model, tok, seed=hp.seed, spec=hp.context_template_spec,
                                          top_k=hp.context_template_top_k)
            t1 = time.perf_counter()
            cov = self._cov(model, tok, adapter)
            t2 = time.perf_counter()
            edits = [self._edit_one(model, tok, adapter, r, templates, cov) for r in requests]
        finally:
            model.train(was_training)
        result.stats = {**{k: v for k, v in edits[-1].items() if not isinstance(v, list)},
                        "n_edits": len(edits), "edits": edits, "layer": hp.layer, "weight": wname,
                        "key": "raw" if self.original_key else "averaged",
                        "templates_time_s": t1 - t0, "stats_time_s": t2 - t1,
                        "total_time_s": time.perf_counter() - t0}
        return result

    def _edit_one(self, model, tok, adapter: ModelAdapter, req: EditRequest, templates, cov) -> dict:
        hp = self.hparams
        t0 = time.perf_counter()
        keys = compute_keys(model, tok, adapter, hp.layer, req, templates, hp.fact_token)
        u = left_vector(keys.k_star, cov)
        t1 = time.perf_counter()
        v = compute_v(model, tok, adapter, req, hp, templates)
        t2 = time.perf_counter()
        k = keys.k_raw if self.original_key else keys.k_star
        delta_w, info = rank_one_update(adapter, hp.layer, u, k, v.v_star)
        adapter.add_delta(hp.layer, delta_w)
        self.last = {"u": u, "k_star": keys.k_star, "k_raw": keys.k_raw, "k": k, "v0": v.v0, "v_star": v.v_star,
                     "delta_w": delta_w}
        return {"case_id": req.case_id, "delta_norm": float(delta_w.norm()), **info, **v.stats(),
                "v_loss_final": v.losses[-1], "v_target_prob_final": v.target_prob[-1],
                "k_time_s": t1 - t0, "v_time_s": t2 - t1, "edit_time_s": time.perf_counter() - t0}


class RROMEEditor(ROMEEditor):
    """r-ROME: ROME with the template-averaged key k* used everywhere (``original_rome_key=False``)."""

    name = "r-rome"

    def __init__(self, hparams: ROMEHParams | None = None, **kwargs):
        hparams = hparams if hparams is not None else ROMEHParams()
        super().__init__(hparams.replace(original_rome_key=False), **kwargs)
