"""Step 1 of MEMIT: the target residual vector z_i = h_L + delta_i for one request.

h_L is the residual stream after the last edit layer L at the subject's last token. delta is optimized (like
ROME's v*) so that, added to the residual at the subject's last token of every templated rewrite prompt, the
model predicts the new target:

    loss = mean_t NLL(target | template_t(prompt))                       (rewrite prompts, one per template)
         + kl_factor * KL(P_delta || P_0)  on "{subject} is a" at the subject's last token   (essence drift)
         + v_weight_decay * |delta| / |h_L|^2                             (the reference code's decay form)

Adam (v_lr), at most ``v_num_grad_steps`` loop iterations (the last one only evaluates), stop once the loss is
below ``early_stop_loss``; after each step |delta| is clamped to ``clamp_norm_factor * |h_L|``, where h_L is
read on the bare ("{}") template. The loss is read through the final norm and the (possibly tied) LM head.

Two equivalent ways to evaluate the loss (``hparams.fast_z``):
* fast: the blocks up to L do not depend on delta, so they run once (:class:`~.runner.Suffix`); each step
  replays only blocks L+1..N-1 and applies the LM head only at the scored positions;
* slow: a full forward pass per step with a hook adding delta at block L (the reference code's way).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from editbench.data.schema import EditRequest
from editbench.editors.common import (encode_prefix, encode_target, fill_template, pad_right, pad_token_id,
                                      subject_last_token_index)
from editbench.editors.memit.hparams import MEMITHParams
from editbench.editors.memit.runner import Suffix, add_at, adding_hook, forward_until
from editbench.models.adapter import ModelAdapter

KL_PROMPT = "{} is a"


@dataclass
class ZBatch:
    """All rows of one request's z optimization: rewrite prompts (one per template), then the KL prompt."""

    inputs: dict[str, torch.Tensor]  # input_ids, attention_mask (right padded)
    lookup: torch.Tensor             # (B,) subject's last token in each row
    tgt_rows: torch.Tensor           # (n_rewrite*T,) row of each scored target token
    tgt_cols: torch.Tensor           # position whose logits predict that token
    tgt_ids: torch.Tensor            # the token
    n_rewrite: int
    n_target: int                    # T, tokens of " " + target_new

    @property
    def kl_rows(self) -> torch.Tensor:
        return torch.arange(self.n_rewrite, self.inputs["input_ids"].shape[0])


def build_z_batch(tok: Any, request: EditRequest, templates: Sequence[str]) -> ZBatch:
    """Rows ``template.format(prompt) + " " + target[:-1]`` for each template, plus ``"{subject} is a"``.

    ``templates[0]`` must be the bare "{}" template: h_L for the clamp and for z is read on it.
    """
    if templates[0] != "{}":
        raise ValueError(f"the first context template must be the bare '{{}}', got {templates[0]!r}")
    target = encode_target(tok, request.target_new.lstrip(" "))
    seqs, lookup, rows, cols, ids = [], [], [], [], []
    for r, tpl in enumerate(templates):
        prompt_tpl = fill_template(tpl, request.prompt)[0]          # "<prefix>. {} is located in"
        prefix = encode_prefix(tok, fill_template(prompt_tpl, request.subject)[0])
        seqs.append(prefix + target[:-1])
        lookup.append(subject_last_token_index(tok, prompt_tpl, request.subject))
        for j, t in enumerate(target):
            rows.append(r)
            cols.append(len(prefix) - 1 + j)
            ids.append(t)
    seqs.append(encode_prefix(tok, fill_template(KL_PROMPT, request.subject)[0]))
    lookup.append(subject_last_token_index(tok, KL_PROMPT, request.subject))
    input_ids, attention_mask = pad_right(seqs, pad_token_id(tok))
    as_long = lambda x: torch.tensor(x, dtype=torch.long)
    return ZBatch({"input_ids": input_ids, "attention_mask": attention_mask}, as_long(lookup), as_long(rows),
                  as_long(cols), as_long(ids), len(templates), len(target))


@dataclass
class ZResult:
    z: torch.Tensor          # (d_model,) float32 target residual at layer L
    h_init: torch.Tensor     # (d_model,) h_L on the bare prompt before editing
    delta: torch.Tensor
    nll_init: float          # mean target NLL over the rewrite prompts, before (delta = 0) ...
    nll_final: float         # ... and at the last evaluated iteration
    loss_final: float
    iterations: int          # loop iterations evaluated

    def stats(self) -> dict:
        return {"nll_init": self.nll_init, "nll_final": self.nll_final, "loss_final": self.loss_final,
                "iterations": self.iterations, "delta_norm": float(self.delta.norm()),
                "h_norm": float(self.h_init.norm())}


def _frozen_params(model: torch.nn.Module):
    """Context manager: no parameter requires grad inside (only delta is optimized); restores the flags."""
    class _Ctx:
        def __enter__(self):
            self.flags = [(p, p.requires_grad) for p in model.parameters()]
            for p, _ in self.flags:
                p.requires_grad_(False)

        def __exit__(self, *exc):
            for p, f in self.flags:
                p.requires_grad_(f)
    return _Ctx()


def optimize_delta(logits_fn: Callable[[torch.Tensor], torch.Tensor], batch: ZBatch, h_init: torch.Tensor,
                   hp: MEMITHParams) -> ZResult:
    """The delta loop; ``logits_fn(delta)`` returns logits at the target positions then at the KL positions."""
    n_tgt = batch.tgt_ids.numel()
    delta = torch.zeros_like(h_init, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=hp.v_lr)
    max_norm = hp.clamp_norm_factor * h_init.float().norm()
    kl_init = None
    nll_init = None
    for it in range(hp.v_num_grad_steps):
        opt.zero_grad()
        logits = logits_fn(delta).float()
        logp = F.log_softmax(logits[:n_tgt], dim=-1)
        tok_lp = logp.gather(1, batch.tgt_ids[:, None]).squeeze(1)
        nll_each = -tok_lp.view(batch.n_rewrite, batch.n_target).sum(1) / batch.n_target
        nll = nll_each.mean()
        kl_logp = F.log_softmax(logits[n_tgt:], dim=-1)
        if kl_init is None:
            kl_init, nll_init = kl_logp.detach().clone(), nll.item()
        kl = hp.kl_factor * F.kl_div(kl_init, kl_logp, log_target=True, reduction="batchmean")
        decay = hp.v_weight_decay * (delta.norm() / h_init.float().norm() ** 2)
        loss = nll + kl + decay
        if loss.item() < hp.early_stop_loss or it == hp.v_num_grad_steps - 1:
            break
        loss.backward()
        opt.step()
        with torch.no_grad():
            if delta.norm() > max_norm:
                delta.mul_(max_norm / delta.norm())
    delta = delta.detach()
    return ZResult(h_init.float() + delta, h_init.float(), delta, nll_init, nll.item(), loss.item(), it + 1)


def compute_z(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, request: EditRequest,
              templates: Sequence[str], hp: MEMITHParams, layer: int | None = None,
              fast: bool | None = None) -> ZResult:
    """z for one request at ``layer`` (default: the last edit layer) over the flat list ``templates``."""
    layer = hp.layers[-1] if layer is None else layer
    fast = hp.fast_z if fast is None else fast
    batch = build_z_batch(tok, request, templates)
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.inputs.items()}
    lk_rows = torch.arange(len(batch.lookup), device=device)
    lk_cols = batch.lookup.to(device)
    rows = torch.cat([batch.tgt_rows, batch.kl_rows]).to(device)
    cols = torch.cat([batch.tgt_cols, batch.lookup[batch.n_rewrite:]]).to(device)
    batch.tgt_ids = batch.tgt_ids.to(device)

    with _frozen_params(model):
        if fast:
            suffix = Suffix(model, adapter, layer, inputs)
            h_init = suffix.h[0, batch.lookup[0]].clone()

            def logits_fn(delta):
                return suffix.logits(add_at(suffix.h, lk_rows, lk_cols, delta), rows, cols)
        else:
            _, (h,) = forward_until(model, inputs, outputs_of=[adapter.block(layer)])
            h_init = h[0, batch.lookup[0]].clone()

            def logits_fn(delta):
                handle = adapter.block(layer).register_forward_hook(adding_hook(lk_rows, lk_cols, lambda: delta))
                try:
                    return model(**inputs, use_cache=False).logits[rows, cols]
                finally:
                    handle.remove()

        return optimize_delta(logits_fn, batch, h_init, hp)
