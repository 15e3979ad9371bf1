"""ROME step 2: the value v* = v₀ + δ that makes the model say the new target.

δ (size d_model) is added to the edited MLP's output at the fact token of every row and optimised with Adam:

    loss = mean_r NLL(target | template_r(prompt))            (mean over target tokens, then over templates)
         + kl_factor · KL(P_δ ‖ P_0)  at the subject's last token of "{subject} is a"   (essence drift)
         + v_weight_decay · ‖δ‖ / ‖v₀‖²                          (as in the reference code)

The rows are ``template(prompt) + target[:-1]`` (teacher forcing) and the KL prompt. As in kmeng01/rome the loop
runs ``v_num_grad_steps`` iterations, stops when the loss < ``early_stop_loss``, never steps on the last
iteration, and after each Adam step projects δ into the ball ‖δ‖ ≤ clamp_norm_factor·‖v₀‖. v₀ is the MLP output
at the fact token of the bare prompt. The rows and forward passes come from :mod:`editbench.editors.toolkit.forward`
(fast or slow: same result).

Weight decay: ALGORITHMS.md writes ‖δ‖²/‖v₀‖²; the reference code (kmeng01/rome and scalable-model-editing
rebuilding-rome, ``compute_v.py``) computes ``torch.norm(delta) / torch.norm(target_init) ** 2``, i.e. ‖δ‖/‖v₀‖².
The published numbers come from that code, so we follow it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from editbench.data.schema import EditRequest
from editbench.editors.rome.hparams import ROMEHParams
from editbench.editors.toolkit.forward import FastForward, SlowForward, build_batch, fast_path_ok
from editbench.models.adapter import ModelAdapter
from editbench.models.tokens import pad_token_id


def _at_least_f32(x: torch.Tensor) -> torch.Tensor:
    """Loss arithmetic in float32, or float64 for a float64 model."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


@dataclass
class VResult:
    v_star: torch.Tensor
    v0: torch.Tensor
    delta: torch.Tensor
    losses: list[float] = field(default_factory=list)
    nlls: list[float] = field(default_factory=list)
    kls: list[float] = field(default_factory=list)
    target_prob: list[float] = field(default_factory=list)
    steps: int = 0  # Adam steps taken
    path: str = "fast"  # which forward pass ran: "fast" or "slow"

    def stats(self) -> dict:
        return {"v_loss": self.losses, "v_nll": self.nlls, "v_kl": self.kls, "v_target_prob": self.target_prob,
                "v_steps": self.steps, "v_path": self.path, "v0_norm": float(self.v0.norm()),
                "delta_v_norm": float(self.delta.norm())}


def compute_v(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, request: EditRequest, hp: ROMEHParams,
              templates: Sequence[str], fast: bool | None = None) -> VResult:
    """Optimise δ; ``fast`` overrides ``hp.fast`` (the slow path is the straightforward reference loop).

    Model types outside :data:`~editbench.editors.toolkit.forward.FAST_FAMILIES` (and rows longer than a sliding
    attention window) always take the slow path (:func:`~editbench.editors.toolkit.forward.fast_path_ok`)."""
    layer = hp.layer
    last = adapter.n_layers - 1
    loss_layer = max(last if hp.v_loss_layer is None else hp.v_loss_layer, layer)
    dev = next(model.parameters()).device
    batch, target = build_batch(tok, request, templates, hp.fact_token, dev)
    use_fast = (hp.fast if fast is None else fast) and fast_path_ok(model, adapter, batch)  # else: not validated
    Fwd = FastForward if use_fast else SlowForward
    fwd = Fwd(model, adapter, layer, loss_layer, batch, pad_token_id(tok))
    v0 = _at_least_f32(fwd.v0)
    tgt = torch.tensor(target, device=dev)

    delta = torch.zeros(adapter.hidden_size, device=dev, dtype=v0.dtype, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=hp.v_lr)
    res = VResult(v_star=v0, v0=v0, delta=delta.detach(), path="fast" if use_fast else "slow")
    kl_init = None
    max_norm = hp.clamp_norm_factor * v0.norm()
    params = list(model.parameters())
    was_grad = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        for it in range(hp.v_num_grad_steps):
            opt.zero_grad()
            tgt_logits, kl_logits = fwd(delta)
            lp = torch.log_softmax(_at_least_f32(tgt_logits), dim=-1)           # (R, T, V)
            tok_lp = lp.gather(-1, tgt.expand(lp.shape[0], -1).unsqueeze(-1)).squeeze(-1)  # (R, T)
            nll_each = -tok_lp.sum(1) / len(target)
            nll = nll_each.mean()
            kl_lp = torch.log_softmax(_at_least_f32(kl_logits), dim=-1)
            if kl_init is None:
                kl_init = kl_lp.detach().clone()
            kl = hp.kl_factor * F.kl_div(kl_init, kl_lp, log_target=True, reduction="batchmean")
            wd = hp.v_weight_decay * (delta.norm() / v0.norm() ** 2)
            loss = nll + kl + wd
            res.losses.append(loss.item())
            res.nlls.append(nll.item())
            res.kls.append(kl.item())
            res.target_prob.append(torch.exp(-nll_each).mean().item())
            if loss < hp.early_stop_loss or it == hp.v_num_grad_steps - 1:
                break
            loss.backward()
            opt.step()
            res.steps += 1
            with torch.no_grad():
                if delta.norm() > max_norm:
                    delta.mul_(max_norm / delta.norm())
    finally:
        for p, g in zip(params, was_grad):
            p.requires_grad_(g)
    res.delta = delta.detach().clone()
    res.v_star = v0 + res.delta
    return res
