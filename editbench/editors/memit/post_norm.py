"""MEMIT's layer targets on blocks that normalise the MLP output before the residual add (Gemma 2 and 3).

MEMIT (Meng et al. 2022b, Sec. 4.3) writes into each edit layer l its share r_l of the residual target z - h_L as
a change of that layer's MLP output m = W_out k: on GPT-2, GPT-J and Llama the MLP output joins the residual
unchanged, so "the MLP output moves by r_l" and "the residual moves by r_l" are the same statement. A Gemma block
adds ``post_feedforward_layernorm(m)`` instead, an RMSNorm: o = g * m / rms(m) (gain g per dimension, up to ~800 on
Gemma 3 270M, against rms(m) ~ 0.1-0.4 at the subject's last token). Written as it is, r_l reaches the residual
multiplied by ~g / rms(m): on Gemma 3 270M the residual moved ~44x the target (measured, reports/gemma/README.md).

What the layer's MLP output must become for its *contribution* to move by r_l is, to first order,
dm = J^+ r_l with J = diag(g / rms(m)) (I - m m^T / |m|^2) the norm's Jacobian at m; this module uses the
diagonal part, dm_j = rms(m) * r_j / g_j — the component along m, which the norm divides out, is left as the
solve makes it. Dimensions whose gain is below ``DEAD_GAIN`` x the largest cannot be moved by the MLP at all and
get no target. MEMIT's own loop then re-measures what remains of z - h_L before the next layer, as it does on every
model. The norm module's gain is read by running the module itself on a vector of ones (rms 1), not re-implemented.
"""
from __future__ import annotations

import torch

from editbench.models.adapter import ModelAdapter

NORM_ATTRS = ("post_feedforward_layernorm",)
"""Block children that normalise the MLP output before the residual add (transformers' Gemma 2 / Gemma 3 names)."""
DEAD_GAIN = 1e-3


def post_mlp_norm(adapter: ModelAdapter, layer: int) -> torch.nn.Module | None:
    """The module normalising block ``layer``'s MLP output before the residual add, or None (it adds directly)."""
    block = adapter.block(layer)
    return next((getattr(block, a) for a in NORM_ATTRS if isinstance(getattr(block, a, None), torch.nn.Module)),
                None)


@torch.no_grad()
def mlp_target_change(norm: torch.nn.Module, m: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The MLP output change (d_model, n) that moves ``norm``'s output by ``r`` (d_model, n), to first order, at
    the current MLP outputs ``m`` (d_model, n): rms(m) * r / g per dimension (g the norm's gain; 0 where g is dead).
    """
    p = next(norm.parameters(), None)
    ones = torch.ones(1, m.shape[0], dtype=p.dtype if p is not None else m.dtype, device=m.device)
    g = norm(ones)[0].to(torch.float64)                       # rms(1) = 1: the gain (1/sqrt(1 + eps) aside)
    live = g.abs() > DEAD_GAIN * g.abs().max()
    rms = m.to(torch.float64).pow(2).mean(0, keepdim=True).sqrt()   # (1, n)
    out = torch.where(live[:, None], r.to(torch.float64) / torch.where(live, g, 1.0)[:, None], 0.0) * rms
    return out.to(r.dtype)
