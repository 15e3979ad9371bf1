"""Step 1 of MEMIT: the target residual vector z_i = h_L + delta_i for one request.

h_L is the residual stream after the last edit layer L at the subject's last token. delta is optimized (like
ROME's v*) so that, added to the residual at the subject's last token of every templated rewrite prompt, the
model predicts the new target:

    loss = mean_t NLL(target | template_t(prompt))                       (rewrite prompts, one per template)
         + kl_factor * KL(P_delta || P_0)  on "{subject} is a" at the subject's last token   (essence drift)
         + v_weight_decay * |delta| / |h_L|^2                             (the reference code's decay form)

Adam (v_lr), at most ``v_num_grad_steps`` loop iterations (the last one only evaluates), stop once the loss is
below ``early_stop_loss``; after each step |delta| is clamped to ``clamp_norm_factor * |h_L|``, where h_L is
read on the bare ("{}") template. The loss is read through the final norm and the (possibly tied) LM head at
the last layer.

The rows and the fast forward pass are ROME's (:mod:`editbench.editors.rome.forward`): adding delta to the
residual after block L is what ROME's v* does too (an MLP output is added straight into the residual), so its
``FastForward`` — prefix before the subject's last token run once into a KV cache, blocks up to L run once, each
step replays only blocks L+1..N-1 on the suffix and applies the LM head at the scored positions — serves both.
The slow path (``hparams.fast_z=False``) is the reference MEMIT's: a full forward pass per step with a hook
adding delta to block L's output. Both give the same z (tested).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from editbench.data.schema import EditRequest
from editbench.editors.common import pad_right, pad_token_id
from editbench.editors.memit.hparams import MEMITHParams
from editbench.editors.memit.runner import adding_hook, forward_until
from editbench.editors.rome.compute_v import build_batch
from editbench.editors.rome.forward import FAST_FAMILIES, FastForward
from editbench.models.adapter import ModelAdapter

Logits = tuple[torch.Tensor, torch.Tensor]  # (rewrite rows, target tokens, vocab), (KL rows, vocab)


@dataclass
class ZResult:
    z: torch.Tensor          # (d_model,) target residual at layer L
    h_init: torch.Tensor     # (d_model,) h_L on the bare prompt before editing
    delta: torch.Tensor
    nll_init: float          # mean target NLL over the rewrite prompts at delta = 0 ...
    nll_final: float         # ... and at the last evaluated iteration
    loss_final: float
    iterations: int          # loop iterations evaluated (Adam steps = iterations - 1 unless stopped early)

    def stats(self) -> dict:
        return {"nll_init": self.nll_init, "nll_final": self.nll_final, "loss_final": self.loss_final,
                "iterations": self.iterations, "delta_norm": float(self.delta.norm()),
                "h_norm": float(self.h_init.norm())}


def optimize_delta(logits_fn: Callable[[torch.Tensor], Logits], target: Sequence[int], h_init: torch.Tensor,
                   hp: MEMITHParams) -> ZResult:
    """The delta loop. ``logits_fn(delta)`` gives the logits predicting each target token of each rewrite row
    and the logits at the subject's last token of the KL rows."""
    h0 = h_init.to(torch.promote_types(h_init.dtype, torch.float32))
    tgt = torch.tensor(list(target), device=h0.device)
    delta = torch.zeros_like(h0, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=hp.v_lr)
    max_norm = hp.clamp_norm_factor * h0.norm()
    kl_init = nll_init = None
    for it in range(hp.v_num_grad_steps):
        opt.zero_grad()
        tgt_logits, kl_logits = logits_fn(delta)
        logp = F.log_softmax(tgt_logits.to(h0.dtype), dim=-1)                    # (R, T, V)
        nll = -logp.gather(2, tgt.expand(logp.shape[0], -1)[..., None]).squeeze(2).mean(1).mean()
        kl_logp = F.log_softmax(kl_logits.to(h0.dtype), dim=-1)
        if kl_init is None:
            kl_init, nll_init = kl_logp.detach().clone(), nll.item()
        kl = hp.kl_factor * F.kl_div(kl_init, kl_logp, log_target=True, reduction="batchmean")
        decay = hp.v_weight_decay * (delta.norm() / h0.norm() ** 2)
        loss = nll + kl + decay
        if loss.item() < hp.early_stop_loss or it == hp.v_num_grad_steps - 1:
            break
        loss.backward()
        opt.step()
        with torch.no_grad():
            if delta.norm() > max_norm:
                delta.mul_(max_norm / delta.norm())
    delta = delta.detach()
    return ZResult(h0 + delta, h0, delta, nll_init, nll.item(), loss.item(), it + 1)


def compute_z(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, request: EditRequest,
              templates: Sequence[str], hp: MEMITHParams, layer: int | None = None,
              fast: bool | None = None) -> ZResult:
    """z for one request at ``layer`` (default: the last edit layer) over the flat list ``templates``
    (``templates[0]`` must be the bare "{}": h_L is read there)."""
    if templates[0] != "{}":
        raise ValueError(f"the first context template must be the bare '{{}}', got {templates[0]!r}")
    layer = hp.layers[-1] if layer is None else layer
    last = adapter.n_layers - 1
    fast = (hp.fast_z if fast is None else fast) and adapter.model_type in FAST_FAMILIES
    dev = next(model.parameters()).device
    b, target = build_batch(tok, request, templates, "subject_last", dev)
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:  # only delta is optimized: no parameter gradients
        p.requires_grad_(False)
    try:
        if fast:
            fwd = FastForward(model, adapter, layer, last, b, pad_token_id(tok))
            h_init = fwd.h_L[0, 0]          # FastForward's suffix position 0 is each row's subject token
            return optimize_delta(fwd, target, h_init, hp)

        ids, mask = pad_right(b.seqs, pad_token_id(tok))
        inputs = {"input_ids": ids.to(dev), "attention_mask": mask.to(dev)}
        rows = torch.arange(len(b.seqs), device=dev)
        _, (h,) = forward_until(model, inputs, outputs_of=[adapter.block(layer)])
        h_init = h[0, b.s[0]]

        def full_forward(delta: torch.Tensor) -> Logits:
            handle = adapter.block(layer).register_forward_hook(adding_hook(rows, b.s, lambda: delta))
            try:
                logits = model(**inputs, use_cache=False).logits
            finally:
                handle.remove()
            return logits[rows[:b.R, None], b.tgt_pos], logits[b.kl_rows, b.s[b.kl_rows]]

        return optimize_delta(full_forward, target, h_init, hp)
    finally:
        for p, f in flags:
            p.requires_grad_(f)
