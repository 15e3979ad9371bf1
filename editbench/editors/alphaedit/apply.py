"""AlphaEdit's update rule and editor: MEMIT's layer loop with a null-space-projected, ridge-regularised solve.

Per edit layer l (weights are (out, in) = (d_model, d_mlp) here, keys are columns):

    P_l   = U U^T, U = the eigenvectors of C_l (the key covariance MEMIT uses) with eigenvalue < threshold
    dW_l  = R K^T P (K K^T P + K_p K_p^T P + alpha I)^-1                 (float64, one linear solve)

where K (d_mlp, n) are this edit's keys, R (d_model, n) the layer's share of the residual (as in MEMIT) and
K_p K_p^T the accumulated keys of all earlier edits of this run. The reference solves the transposed system
(P (K K^T + K_p K_p^T) + alpha I) X = P K R^T and adds X^T; :func:`alphaedit_delta` does the same. From that
system alpha X = P (K R^T - (K K^T + K_p K_p^T) X), so X = P X and dW = dW P: the update lies in the null space of
the preserved keys (dW k = 0 for k in the span of C's large-eigenvalue directions), and in the null space's part
reached by earlier edits it is held back by K_p K_p^T.

The editor's state is K_p K_p^T per layer (:meth:`AlphaEditEditor.state_dict`). As in the reference, after an edit
the requests' keys are recomputed on the *edited* model at every edit layer and K K^T is added; :meth:`reset`
clears it (independent edits share nothing).

**Fast solve** (``fast_solve=True``, the default; ``False`` is the reference's d x d solve, same result up to
float64 rounding, tests/test_alphaedit.py). With P = U U^T (U: d x r, orthonormal), every solution has X = U Y, and
multiplying the system by U^T gives the r x r system (U^T A U + alpha I) Y = U^T K R^T, A = K K^T + K_p K_p^T.
Keeping M^-1 = (U^T K_p K_p^T U + alpha I)^-1 per layer, this edit's keys are a rank-n term V V^T (V = U^T K), so
by the Woodbury identity

    dW = R S^-1 (U M^-1 V)^T,        S = I_n + V^T M^-1 V                         (:func:`alphaedit_delta_reduced`)

and after the edit M^-1 absorbs the recomputed keys the same way (:func:`woodbury_downdate`): O(d r n + r^2 n)
per layer instead of two d x d x d products (on SmolLM2, d = 1536, r = 1225..1375: the solve was ~15% of an
edit). M^-1 is rebuilt from K_p K_p^T every ``REFRESH_EVERY`` accumulated edits (bounding rounding drift) and is
part of the state, so a resumed run continues bit for bit.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import torch

from editbench.data.schema import EditRequest
from editbench.editors.alphaedit.hparams import AlphaEditHParams
from editbench.editors.base import EditResult, restore
from editbench.editors.memit.apply import MEMITEditor
from editbench.editors.memit.compute_ks import keys_and_hidden
from editbench.models.adapter import ModelAdapter

STATE_PREFIX = "prev_kkt."
REDUCED_PREFIX = "reduced_inv."
"""State keys: ``prev_kkt.<layer>`` -> K_p K_p^T (d_mlp, d_mlp) float64, ``n_edits`` (a 0-d int64) and, with the fast
solve, ``reduced_inv.<layer>`` -> M^-1 (r, r) float64 (derived from the others; kept so a resume is exact)."""
REFRESH_EVERY = 100
"""The fast solve rebuilds M^-1 from K_p K_p^T whenever the accumulated edit count crosses a multiple of this."""


def covariance_eigh(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of the key covariance ``cov``, in float64, made exactly symmetric
    first (a float32 A @ A^T need not be)."""
    c = cov.double()
    return torch.linalg.eigh((c + c.T) / 2)


def nullspace_basis(cov: torch.Tensor, threshold: float) -> torch.Tensor:
    """U (float64, d x r, orthonormal columns): the eigenvectors of the symmetric PSD ``cov`` whose eigenvalue is
    below ``threshold``."""
    evals, evecs = covariance_eigh(cov)
    return evecs[:, evals < threshold].contiguous()


def nullspace_projector(cov: torch.Tensor, threshold: float) -> tuple[torch.Tensor, int]:
    """``(P, rank)``: the orthogonal projector (float64, d x d) onto the span of the eigenvectors of the symmetric
    PSD ``cov`` whose eigenvalue is below ``threshold``, and that span's dimension."""
    u = nullspace_basis(cov, threshold)
    return u @ u.T, int(u.shape[1])


def reduced_inverse(basis: torch.Tensor, prev_kkt: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """M^-1 = (U^T K_p K_p^T U + alpha I)^-1 (r x r, float64; I / alpha without earlier edits)."""
    U = basis.double()
    r = U.shape[1]
    eye = torch.eye(r, dtype=torch.float64, device=U.device)
    if prev_kkt is None:
        return eye / alpha
    m = U.T @ prev_kkt.double().to(U.device) @ U
    m = (m + m.T) / 2 + alpha * eye
    return torch.cholesky_inverse(torch.linalg.cholesky(m))


def alphaedit_delta_reduced(keys: torch.Tensor, resid: torch.Tensor, basis: torch.Tensor,
                            m_inv: torch.Tensor) -> torch.Tensor:
    """:func:`alphaedit_delta` by the r x r Woodbury form (module docstring): dW = R S^-1 (U M^-1 V)^T with
    V = U^T K, S = I + V^T M^-1 V. ``basis`` U (d_mlp, r), ``m_inv`` M^-1 (r, r); float64, (d_model, d_mlp)."""
    K, Rs, U = keys.double(), resid.double(), basis.double().to(keys.device)
    V = U.T @ K                                   # (r, n)
    A = m_inv.to(K.device) @ V                    # (r, n)
    S = torch.eye(K.shape[1], dtype=torch.float64, device=K.device) + V.T @ A
    return Rs @ torch.linalg.solve(S, (U @ A).T)


def woodbury_downdate(m_inv: torch.Tensor, basis: torch.Tensor, new_keys: torch.Tensor) -> torch.Tensor:
    """M^-1 after K_p K_p^T gains ``new_keys`` (d_mlp, n) K K^T: (M + V V^T)^-1 = M^-1 - A S^-1 A^T, V = U^T K,
    A = M^-1 V, S = I + V^T A (made exactly symmetric)."""
    V = basis.double().T @ new_keys.double().to(basis.device)
    A = m_inv @ V
    S = torch.eye(V.shape[1], dtype=torch.float64, device=V.device) + V.T @ A
    out = m_inv - A @ torch.linalg.solve(S, A.T)
    return (out + out.T) / 2


def alphaedit_delta(keys: torch.Tensor, resid: torch.Tensor, projector: torch.Tensor,
                    prev_kkt: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """dW = R K^T P (K K^T P + K_p K_p^T P + alpha I)^-1 in float64, as an (out, in) = (d_model, d_mlp) matrix.

    ``keys`` K (d_mlp, n), ``resid`` R (d_model, n), ``projector`` P (d_mlp, d_mlp), ``prev_kkt`` K_p K_p^T
    (d_mlp, d_mlp) or None for no earlier edits. Solved as the reference does, transposed:
    (P (K K^T + K_p K_p^T) + alpha I) X = P K R^T, dW = X^T.
    """
    K, Rs = keys.double(), resid.double()
    P = projector.double().to(K.device)
    kkt = K @ K.T
    if prev_kkt is not None:
        kkt = kkt + prev_kkt.double().to(K.device)
    eye = torch.eye(K.shape[0], dtype=torch.float64, device=K.device)
    X = torch.linalg.solve(P @ kkt + alpha * eye, P @ K @ Rs.T)
    return X.T


class AlphaEditEditor(MEMITEditor):
    """AlphaEdit (Fang et al. 2025): MEMIT whose per-layer update is projected onto the null space of the key
    covariance and regularised by the keys of this run's earlier edits (see the module docstring).

    Inherits MEMIT's templates, z, covariances (``covariances`` may be given, as for MEMIT) and layer loop; only
    :meth:`update_rule` differs. Projectors are computed once per covariance tensor (:meth:`projector`;
    :meth:`prepare` computes them up front). State: K_p K_p^T per edit layer, grown after each successful
    :meth:`apply`, saved by :meth:`state_dict`, cleared by :meth:`reset`.
    """

    name = "alphaedit"
    hparams_class = AlphaEditHParams
    supports_batch = True

    def __init__(self, hparams: AlphaEditHParams | None = None, **kwargs: Any):
        super().__init__(hparams, **kwargs)
        self.prev_kkt: dict[int, torch.Tensor] = {}     # layer -> K_p K_p^T, float64 on CPU
        self.n_edits = 0                                # requests accumulated in prev_kkt
        self._bases: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # layer -> (C, U): P = U U^T
        self._projectors: dict[int, torch.Tensor] = {}  # layer -> P, built only for the reference solve
        self.reduced_inv: dict[int, torch.Tensor] = {}  # layer -> M^-1 of the fast solve (r x r), float64

    # -- the projector ------------------------------------------------------------------------------------
    def basis(self, layer: int, cov: torch.Tensor) -> torch.Tensor:
        """U of ``layer`` for covariance ``cov`` (P = U U^T), cached while the same tensor is handed in."""
        hit = self._bases.get(layer)
        if hit is None or hit[0] is not cov:
            hit = self._bases[layer] = (cov, nullspace_basis(cov, self.hparams.nullspace_threshold))
            self._projectors.pop(layer, None)
        return hit[1]

    def projector(self, layer: int, cov: torch.Tensor) -> torch.Tensor:
        """P = U U^T of ``layer`` (d x d), built from :meth:`basis` on first use (the fast solve never needs it)."""
        U = self.basis(layer, cov)
        P = self._projectors.get(layer)
        if P is None:
            P = self._projectors[layer] = U @ U.T
        return P

    def nullspace_dims(self) -> dict[int, int]:
        """Dimension of each cached null space (after :meth:`prepare` or an edit)."""
        return {l: int(U.shape[1]) for l, (_, U) in sorted(self._bases.items())}

    def prepare(self, model: torch.nn.Module, tok: Any, cache_dir: str | os.PathLike | None = None) -> None:
        """MEMIT's covariances of the unedited ``model``, then their null-space bases."""
        covs = self.covariance(model, tok, ModelAdapter(model), cache_dir)
        for layer, cov in covs.items():
            self.basis(layer, cov)

    # -- the update -----------------------------------------------------------------------------------------
    def update_rule(self, adapter: ModelAdapter, layer: int, keys: torch.Tensor, resid: torch.Tensor,
                    cov: torch.Tensor) -> torch.Tensor:
        """dW = R K^T P (K K^T P + K_p K_p^T P + alpha I)^-1: :func:`alphaedit_delta_reduced` with the kept M^-1
        (``fast_solve``), else :func:`alphaedit_delta` (the reference's solve)."""
        if not self.hparams.fast_solve:
            return alphaedit_delta(keys, resid, self.projector(layer, cov), self.prev_kkt.get(layer), self.hparams.L2)
        U = self.basis(layer, cov)
        return alphaedit_delta_reduced(keys, resid, U, self._reduced(layer, U))

    def _reduced(self, layer: int, U: torch.Tensor) -> torch.Tensor:
        """M^-1 of ``layer`` for basis U: the kept one, or rebuilt from K_p K_p^T (also when its size is not r)."""
        m = self.reduced_inv.get(layer)
        if m is None or m.shape != (U.shape[1], U.shape[1]):
            m = self.reduced_inv[layer] = reduced_inverse(U, self.prev_kkt.get(layer), self.hparams.L2)
        return m

    def apply(self, model: torch.nn.Module, tok: Any, requests: Sequence[EditRequest]) -> EditResult:
        result = super().apply(model, tok, requests)   # restores the model itself if it fails
        hp: AlphaEditHParams = self.hparams
        try:
            # As the reference: the keys of this edit, recomputed on the edited model, join K_p K_p^T.
            adapter = ModelAdapter(model)
            groups = self.templates(model, tok)
            valid = [r.validate() for r in requests]
            was_training = model.training
            model.eval()
            try:
                with torch.no_grad():
                    added = {}                                 # layer -> this edit's keys (d_mlp, n)
                    for layer in hp.layers:
                        K, _ = keys_and_hidden(model, tok, adapter, valid, groups, layer, layer)
                        added[layer] = K.double().cpu().T
            finally:
                model.train(was_training)
        except BaseException:
            restore(model, result.originals)
            raise
        refresh = (self.n_edits + len(requests)) // REFRESH_EVERY != self.n_edits // REFRESH_EVERY
        for layer, keys in added.items():
            kkt = keys @ keys.T
            self.prev_kkt[layer] = self.prev_kkt[layer] + kkt if layer in self.prev_kkt else kkt
            m = self.reduced_inv.get(layer)
            U = self._bases[layer][1] if layer in self._bases else None
            if refresh or m is None or U is None or m.shape[0] != U.shape[1]:
                self.reduced_inv.pop(layer, None)   # rebuilt from K_p K_p^T when next needed
            else:
                self.reduced_inv[layer] = woodbury_downdate(m, U, keys)
        self.n_edits += len(requests)
        dims = self.nullspace_dims()
        result.stats["nullspace_dim"] = {l: dims[l] for l in hp.layers if l in dims}
        result.stats["n_prev_edits"] = self.n_edits - len(requests)
        return result

    # -- state ------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the keys of earlier edits (the projectors depend only on C and are kept)."""
        self.prev_kkt = {}
        self.reduced_inv = {}
        self.n_edits = 0

    def state_dict(self) -> dict[str, torch.Tensor]:
        if not self.prev_kkt and not self.n_edits:
            return {}
        state = {f"{STATE_PREFIX}{l}": m.detach().cpu().clone().contiguous() for l, m in sorted(self.prev_kkt.items())}
        state.update({f"{REDUCED_PREFIX}{l}": m.detach().cpu().clone().contiguous()
                      for l, m in sorted(self.reduced_inv.items()) if l in self.prev_kkt})
        state["n_edits"] = torch.tensor(self.n_edits, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        prev: dict[int, torch.Tensor] = {}
        reduced: dict[int, torch.Tensor] = {}
        n_edits = 0
        for key, value in state.items():
            if key == "n_edits":
                n_edits = int(value)
            elif key.startswith(REDUCED_PREFIX) and key[len(REDUCED_PREFIX):].isdigit():
                m = value.detach().cpu().double().clone()
                if m.dim() != 2 or m.shape[0] != m.shape[1]:
                    raise ValueError(f"alphaedit state {key!r} must be a square matrix, got shape {tuple(m.shape)}")
                reduced[int(key[len(REDUCED_PREFIX):])] = m
            elif key.startswith(STATE_PREFIX) and key[len(STATE_PREFIX):].isdigit():
                m = value.detach().cpu().double().clone()
                if m.dim() != 2 or m.shape[0] != m.shape[1]:
                    raise ValueError(f"alphaedit state {key!r} must be a square matrix, got shape {tuple(m.shape)}")
                prev[int(key[len(STATE_PREFIX):])] = m
            else:
                raise KeyError(f"alphaedit state has an unknown key {key!r} (known: '{STATE_PREFIX}<layer>', "
                               f"'{REDUCED_PREFIX}<layer>', 'n_edits')")
        extra = sorted(set(prev) - set(self.hparams.layers))
        if extra:
            raise ValueError(f"alphaedit state holds keys of layer(s) {extra}, not among the edit layers "
                             f"{list(self.hparams.layers)}")
        self.prev_kkt, self.n_edits = prev, n_edits
        self.reduced_inv = {l: m for l, m in reduced.items() if l in prev}
