"""Step 3 of MEMIT: spread the residuals z - h_L over the edit layers with the covariance-weighted solve.

For each edit layer l in R, ascending (i = 0, 1, ...):

    K   = keys at layer l, one column per request (template-averaged; compute_ks.py)
    Res = Z - H_L, H_L recomputed now, i.e. with layers before l already updated
    resid = Res / (|R| - i)                        (this layer takes its share of what remains)
            (Gemma: mapped through the post-MLP norm to the MLP output change that moves the residual by it;
             post_norm.py; ``post_norm_targets=False`` writes it unmapped)
    dW_l  = resid K^T (lambda C_l + K K^T)^-1        (float64; one linear solve, never an inverse; toolkit.linalg)

and dW_l is added to the MLP output matrix of layer l through the adapter (which handles GPT-2's Conv1D).
The last line is the *update rule* (:func:`memit_delta`), the one step the MEMIT family changes:
:meth:`MEMITEditor.update_rule` is the extension point, :func:`spread_updates` the loop around it.
C_l = E[k k^T] comes from :mod:`editbench.editors.toolkit.covariance` unless given to the editor.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping, Sequence

import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import Editor, EditResult, restore, save_originals
from editbench.editors.memit.compute_ks import keys_and_hidden
from editbench.editors.memit.compute_z import compute_zs
from editbench.editors.memit.hparams import MEMITHParams
from editbench.editors.memit.post_norm import mlp_target_change, post_mlp_norm
from editbench.editors.toolkit.covariance import CovarianceCache, stats_cache_dir
from editbench.editors.toolkit.linalg import FactoredPSD, solve_psd
from editbench.editors.toolkit.templates import memit_context_templates
from editbench.models.adapter import ModelAdapter

UpdateRule = Callable[[ModelAdapter, int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``rule(adapter, layer, keys, resid, cov) -> dW``: see :meth:`MEMITEditor.update_rule`."""


def memit_delta(keys: torch.Tensor, resid: torch.Tensor, cov: torch.Tensor, lam: float,
                factor: FactoredPSD | None = None) -> torch.Tensor:
    """dW = resid K^T (lam C + K K^T)^-1 in float64, as an (out, in) = (d_model, d_mlp) matrix.

    ``keys`` K is (d_mlp, n), ``resid`` (d_model, n), ``cov`` C (d_mlp, d_mlp). Since A = lam C + K K^T is
    symmetric, dW = resid (A^-1 K)^T, and A^-1 K is one linear solve. ``factor``: lam C already factored
    (:class:`~editbench.editors.toolkit.linalg.FactoredPSD`, kept by the editor across edits); the same dW up
    to float64 rounding, without a fresh d x d solve.
    """
    K, Rs = keys.double(), resid.double()
    if factor is not None:
        return Rs @ factor.solve_plus_low_rank(K).T
    C = cov.double().to(keys.device)
    adj_k = solve_psd(lam * C + K @ K.T, K)  # dead key dimensions (zero rows of C and K) get no update
    return Rs @ adj_k.T


def spread_updates(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, requests: Sequence[EditRequest],
                   groups: Sequence[Sequence[str]], Z: torch.Tensor, covs: Mapping[int, torch.Tensor],
                   hp: MEMITHParams, rule: UpdateRule | None = None,
                   timing: dict[str, float] | None = None) -> tuple[dict[int, float], dict[int, float]]:
    """Write the targets ``Z`` (d_model, n) into the edit layers, lowest first (edits ``model`` in place).

    ``rule(adapter, layer, K, resid, C)`` computes each layer's dW (default: :func:`memit_delta` with
    ``hp.mom2_update_weight``; :class:`MEMITEditor` passes its :meth:`~MEMITEditor.update_rule`).
    Returns per layer the Frobenius norm of dW and the mean |z - h_L| measured just before that layer's update;
    ``timing`` (a dict) gets the seconds spent on keys (``keys_s``: the forward passes) and on the rule
    (``solve_s``).
    """
    if rule is None:
        def rule(_adapter, _layer, keys, resid, cov):
            return memit_delta(keys, resid, cov, hp.mom2_update_weight)
    z_layer = hp.layers[-1]
    delta_norm, z_error = {}, {}
    timing = {} if timing is None else timing
    timing.setdefault("keys_s", 0.0)
    timing.setdefault("solve_s", 0.0)
    for i, layer in enumerate(hp.layers):
        t = time.perf_counter()
        K, H = keys_and_hidden(model, tok, adapter, requests, groups, layer, z_layer)
        timing["keys_s"] += time.perf_counter() - t
        res = Z.to(H.device) - H.T                               # (d_model, n), after the layers below
        z_error[layer] = float(res.norm(dim=0).mean())
        share = res / (len(hp.layers) - i)
        norm = post_mlp_norm(adapter, layer) if getattr(hp, "post_norm_targets", True) else None
        if norm is not None:  # Gemma: the MLP output is normalised before it joins the residual (post_norm.py)
            mlp = adapter.mlp_out(layer)
            m = adapter.weight_out_in(layer).to(K.dtype) @ K.T
            share = mlp_target_change(norm, m + (mlp.bias[:, None] if getattr(mlp, "bias", None) is not None
                                                 else 0), share)
        t = time.perf_counter()
        dW = rule(adapter, layer, K.T, share, covs[layer])
        timing["solve_s"] += time.perf_counter() - t
        adapter.add_delta(layer, dW)
        delta_norm[layer] = float(dW.norm())
    return delta_norm, z_error


class MEMITEditor(Editor):
    """MEMIT: batch edits spread over several MLP layers (Meng et al. 2022b).

    Optional state, useful for tests and to skip work: ``covariances`` {layer: C} (else computed/cached through
    :mod:`editbench.editors.toolkit.covariance`; :meth:`prepare` does it up front, else the first ``apply``),
    ``context_templates`` as groups ``[["{}"], [prefixed...], ...]`` (else generated once per model by
    :func:`~editbench.editors.toolkit.templates.memit_context_templates`), ``model_hash`` and ``stats_cache_dir``
    for the statistics cache. Templates and covariances computed here are kept per model object, so sequential
    edits reuse the ones of the unedited model, like the reference code.

    **Extension point for the MEMIT family.** The per-layer update is :meth:`update_rule`
    ``(adapter, layer, keys, resid, cov) -> dW``: ``keys`` K (d_mlp, n) are the requests' template-averaged keys
    at ``layer``, ``resid`` (d_model, n) this layer's share of the remaining residuals z - h_L (already divided
    by the number of edit layers left), ``cov`` C (d_mlp, d_mlp) the layer's key covariance, and the result is
    the (out, in) = (d_model, d_mlp) matrix added to the layer's MLP output weight (``adapter`` gives the current
    weights, :meth:`~editbench.models.adapter.ModelAdapter.weight_out_in`). MEMIT's is :func:`memit_delta`;
    a subclass overrides only this method (AlphaEdit: project onto the null space of C; ENCORE: a norm
    constraint) and inherits the layer loop (:func:`spread_updates`), templates, z and covariances. State such a
    rule keeps across edits (e.g. AlphaEdit's accumulated keys) belongs in :meth:`state_dict` /
    :meth:`load_state_dict`; one-off work (e.g. a projection from C) in :meth:`prepare`.
    """

    name = "memit"
    hparams_class = MEMITHParams
    supports_batch = True

    def __init__(self, hparams: MEMITHParams | None = None, *, covariances: Mapping[int, torch.Tensor] | None = None,
                 context_templates: Sequence[Sequence[str]] | None = None, model_hash: str | None = None,
                 stats_cache_dir: str | None = None):
        super().__init__(hparams)
        self.covariances: dict[int, torch.Tensor] = dict(covariances or {})
        self.context_templates = [list(g) for g in context_templates] if context_templates else None
        self.model_hash = model_hash
        self.stats_cache_dir = stats_cache_dir
        self._model_id: int | None = None
        self._generated_templates = False     # True: self.context_templates came from the model, not the caller
        self._covs = CovarianceCache()        # C computed per model object (the unedited weights)
        self._factors: dict[int, tuple[torch.Tensor, float, FactoredPSD]] = {}   # layer -> (C, lam, lam C factored)

    # -- cached inputs ------------------------------------------------------------------------------------
    def _bind(self, model: torch.nn.Module) -> None:
        """Forget lazily generated templates when handed a different model object (covariances are kept per
        model object by the cache)."""
        if self._model_id is not None and self._model_id != id(model):
            if self._generated_templates:
                self.context_templates, self._generated_templates = None, False
        self._model_id = id(model)

    def templates(self, model: torch.nn.Module, tok: Any) -> list[list[str]]:
        if self.context_templates is None:
            hp = self.hparams
            self.context_templates = memit_context_templates(
                model, tok, seed=hp.seed, spec=hp.context_template_spec, top_k=hp.context_template_top_k,
                openings=hp.context_template_openings)
            self._generated_templates = True
        return self.context_templates

    def covariance(self, model: torch.nn.Module, tok: Any, adapter: ModelAdapter,
                   cache_dir: str | os.PathLike | None = None) -> dict[int, torch.Tensor]:
        """{layer: C} for the edit layers: the given ``covariances``, else computed once per model object."""
        hp = self.hparams
        return self._covs.get(model, tok, adapter, hp.layers, given=self.covariances, corpus=hp.mom2_corpus,
                              n_samples=hp.mom2_n_samples, model_hash=self.model_hash,
                              cache_dir=stats_cache_dir(self.stats_cache_dir, cache_dir))

    def prepare(self, model: torch.nn.Module, tok: Any, cache_dir: str | os.PathLike | None = None) -> None:
        """Compute (or load from the disk cache) C of every edit layer for the unedited ``model``."""
        self.covariance(model, tok, ModelAdapter(model), cache_dir)

    def factor(self, layer: int, cov: torch.Tensor, scale: float, shift: float = 0.0) -> FactoredPSD:
        """``scale * C + shift * I`` of ``layer`` Cholesky-factored, kept while the same C tensor and scalars
        come back (C is the unedited model's, fixed for a run): each edit then costs triangular solves, not a
        d x d solve per layer (:class:`~editbench.editors.toolkit.linalg.FactoredPSD`)."""
        key = (float(scale), float(shift))
        got = self._factors.get(layer)
        if got is not None and got[0] is cov and got[1] == key:
            return got[2]
        b = scale * cov.double()
        if shift:
            b = b + shift * torch.eye(b.shape[0], dtype=b.dtype, device=b.device)
        f = FactoredPSD(b)
        self._factors[layer] = (cov, key, f)
        return f

    def update_rule(self, adapter: ModelAdapter, layer: int, keys: torch.Tensor, resid: torch.Tensor,
                    cov: torch.Tensor) -> torch.Tensor:
        """dW of one edit layer (see the class docstring); MEMIT: :func:`memit_delta` with ``mom2_update_weight``
        (lam C factored once per layer and kept, :meth:`factor`; ``fast_solve=False``: a fresh solve, the
        reference code's way)."""
        lam = self.hparams.mom2_update_weight
        f = self.factor(layer, cov, lam) if getattr(self.hparams, "fast_solve", True) else None
        return memit_delta(keys, resid, cov, lam, factor=f)

    # -- the edit -----------------------------------------------------------------------------------------
    def apply(self, model: torch.nn.Module, tok: Any, requests: Sequence[EditRequest]) -> EditResult:
        hp: MEMITHParams = self.hparams
        requests = [r.validate() for r in requests]
        if not requests:
            raise ValueError("no requests")
        adapter = ModelAdapter(model)
        if hp.layers[-1] >= adapter.n_layers:
            raise ValueError(f"MEMIT layers {hp.layers} out of range for a {adapter.n_layers}-layer model")
        self._bind(model)
        was_training = model.training
        model.eval()
        timing: dict[str, float] = {}
        t_all, cpu_all = time.perf_counter(), time.process_time()
        names = [adapter.mlp_out_weight_name(l) for l in hp.layers]
        originals = save_originals(model, names)
        try:
            t = time.perf_counter()
            groups = self.templates(model, tok)
            flat = [s for g in groups for s in g]
            timing["templates_s"] = time.perf_counter() - t

            t = time.perf_counter()
            z_results = compute_zs(model, tok, adapter, requests, flat, hp)
            Z = torch.stack([zr.z for zr in z_results], dim=1)            # (d_model, n)
            timing["z_s"] = time.perf_counter() - t

            t = time.perf_counter()
            covs = self.covariance(model, tok, adapter)
            timing["cov_s"] = time.perf_counter() - t

            t = time.perf_counter()
            delta_norm, z_error = spread_updates(model, tok, adapter, requests, groups, Z, covs, hp,
                                                 rule=self.update_rule, timing=timing)
            timing["update_s"] = time.perf_counter() - t
        except BaseException:
            restore(model, originals)
            raise
        finally:
            model.train(was_training)
        timing["total_s"] = time.perf_counter() - t_all
        timing["total_cpu_s"] = time.process_time() - cpu_all  # CPU seconds of all threads: robust to contention
        stats = {"editor": self.name, "layers": list(hp.layers), "n_requests": len(requests),
                 "delta_norm": delta_norm, "z_error": z_error,
                 "z": [dict(case_id=r.case_id, **zr.stats()) for r, zr in zip(requests, z_results)],
                 "timing": timing}
        return EditResult(originals=originals, stats=stats)
