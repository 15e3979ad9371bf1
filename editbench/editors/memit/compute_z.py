"""Step 1 of MEMIT: the target residual vector z_i = h_L,i + delta_i of every request i.

h_L,i is the residual stream after the last edit layer L at the subject's last token of request i's bare
prompt. delta_i is optimized (like ROME's v*) so that, added to the residual at the subject's last token of
every templated rewrite prompt of request i, the model predicts request i's new target:

    loss_i = mean_t NLL(target_i | template_t(prompt_i))              (rewrite prompts, one per template)
           + kl_factor * KL(P_delta || P_0) on "{subject_i} is a" at the subject's last token  (essence drift)
           + v_weight_decay * |delta_i| / |h_L,i|^2                   (the reference code's decay form)

Adam (v_lr), at most ``v_num_grad_steps`` loop iterations (the last one only evaluates), stop once loss_i is
below ``early_stop_loss``; after each step |delta_i| is clamped to ``clamp_norm_factor * |h_L,i|``. The loss
is read through the final norm and the (possibly tied) LM head after the last block. Optional, off for MEMIT:
``prob_cutoff`` (ENCORE's most-probable early stopping, :func:`optimize_deltas`) stops a request sooner.

**All requests are optimized in one batch.** The rows of different requests never interact (each row only
gets its own request's delta), the gradient of sum_i loss_i with respect to delta_i is that of loss_i, and
Adam is elementwise, so this is exactly the reference's one-request-at-a-time loop, with one forward pass per
step for the whole batch. A request that stops early is frozen: excluded from the loss and reset to its final
value after every later Adam step (momentum would otherwise keep moving it).

The rows and the fast forward pass are ROME's (:mod:`editbench.editors.toolkit.forward`), with delta added to
the residual after block L (``at="residual"``; in most families that is what ROME's v* does too, an MLP output
being added straight into the residual — Gemma 3 normalises it first), so its
``FastForward`` — the prefix before the subject's last token run once into a KV cache, blocks up to L run
once, each step replays only blocks L+1..N-1 on the suffix and applies the LM head at the scored positions —
serves both. The slow path (``hparams.fast_z=False``) is the reference MEMIT's: a full forward pass per step
with a hook adding delta to block L's output. Both give the same z (tested).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from editbench.data.schema import EditRequest
from editbench.editors.memit.hparams import MEMITHParams
from editbench.editors.toolkit.forward import FastForward, VBatch, build_batch, fast_path_ok
from editbench.models.adapter import ModelAdapter
from editbench.models.hooks import adding_hook, forward_until
from editbench.models.tokens import pad_right, pad_token_id


@dataclass
class ZResult:
    z: torch.Tensor          # (d_model,) target residual at layer L
    h_init: torch.Tensor     # (d_model,) h_L on the bare prompt before editing
    delta: torch.Tensor
    nll_init: float          # mean target NLL over the rewrite prompts at delta = 0 ...
    nll_final: float         # ... and at the last evaluated iteration
    loss_final: float
    iterations: int          # loop iterations evaluated (Adam steps = iterations - 1)
    stop: str | None = None  # with prob_cutoff on: "most_probable" | "loss" | "max_steps" (None: MEMIT, not tracked)

    def stats(self) -> dict:
        out = {"nll_init": self.nll_init, "nll_final": self.nll_final, "loss_final": self.loss_final,
               "iterations": self.iterations, "delta_norm": float(self.delta.norm()),
               "h_norm": float(self.h_init.norm())}
        if self.stop is not None:
            out["stop"] = self.stop
        return out


@dataclass
class JointBatch:
    """The rows of several requests in one batch: all rewrite rows (request by request), then all KL rows."""

    batch: VBatch            # ROME's batch: seqs, lookup (subject's last token), tgt_pos (R, T_max), kl_rows
    owner: torch.Tensor      # (B,) request index of every row
    tgt_ids: torch.Tensor    # (R, T_max) target token ids, padded
    tgt_mask: torch.Tensor   # (R, T_max) True at real target tokens
    bare_rows: list[int]     # row of each request's bare "{}" prompt


def joint_batch(tok: Any, requests: Sequence[EditRequest], templates: Sequence[str],
                device: torch.device) -> JointBatch:
    per = [build_batch(tok, r, templates, "subject_last", device) for r in requests]
    t_max = max(len(t) for _, t in per)
    seqs, lookup, pos, ids, mask, owner, bare = [], [], [], [], [], [], []
    for i, (b, target) in enumerate(per):            # rewrite rows
        for r in range(b.R):
            bare.append(len(seqs)) if r == 0 else None
            seqs.append(b.seqs[r])
            lookup.append(b.lookup[r])
            p = b.tgt_pos[r].tolist()
            pad = t_max - len(p)
            pos.append(p + [b.lookup[r]] * pad)      # a valid position, masked out of the loss
            ids.append(list(target) + [0] * pad)
            mask.append([True] * len(p) + [False] * pad)
            owner.append(i)
    kl_rows = []
    for i, (b, _) in enumerate(per):                 # KL rows
        for r in b.kl_rows.tolist():
            kl_rows.append(len(seqs))
            seqs.append(b.seqs[r])
            lookup.append(b.lookup[r])
            owner.append(i)
    joint = VBatch(seqs, lookup, torch.tensor(pos), kl_rows, device)
    return JointBatch(joint, torch.tensor(owner, device=device), torch.tensor(ids, device=device),
                      torch.tensor(mask, device=device), bare)


def optimize_deltas(forward, jb: JointBatch, h_init: torch.Tensor, hp: MEMITHParams,
                    prob_cutoff: float = 0.0) -> list[ZResult]:
    """The delta loop for all requests at once. ``forward(delta_rows)`` gives the logits predicting each target
    token of each rewrite row (R, T_max, V) and the logits at the subject's last token of each KL row.

    ``prob_cutoff`` (ENCORE's extra stopping rule, the reference's name; 0: off, MEMIT): negative -k is MPES,
    most-probable early stopping: a request also stops at the k-th evaluated iteration (counted cumulatively, as
    the reference does) at which every target token is the argmax, teacher-forced, on every one of its rewrite
    rows (all context templates); positive p stops it once the mean over its rewrite rows of
    exp(-per-token target NLL) exceeds p. The loss threshold and the step limit still apply."""
    n = h_init.shape[0]
    h0 = h_init.to(torch.promote_types(h_init.dtype, torch.float32))
    b = jb.batch
    rw_owner, kl_owner = jb.owner[:b.R], jb.owner[b.kl_rows]
    rows_per = torch.bincount(rw_owner, minlength=n).to(h0.dtype)
    kl_per = torch.bincount(kl_owner, minlength=n).to(h0.dtype)
    delta = torch.zeros_like(h0, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=hp.v_lr)
    max_norm = hp.clamp_norm_factor * h0.norm(dim=1)
    active = torch.ones(n, dtype=torch.bool, device=h0.device)
    done: dict[int, tuple] = {}
    kl_init = nll_init = None
    n_top = torch.zeros(n, dtype=torch.long, device=h0.device)     # MPES: iterations with the target on top
    for it in range(hp.v_num_grad_steps):
        opt.zero_grad()
        tgt_logits, kl_logits = forward(delta[jb.owner])
        lp = F.log_softmax(tgt_logits.to(h0.dtype), dim=-1).gather(2, jb.tgt_ids[..., None]).squeeze(2)
        nll_row = -(lp * jb.tgt_mask).sum(1) / jb.tgt_mask.sum(1)                 # (R,)
        nll = torch.zeros(n, dtype=h0.dtype, device=h0.device).index_add(0, rw_owner, nll_row) / rows_per
        kl_lp = F.log_softmax(kl_logits.to(h0.dtype), dim=-1)
        if kl_init is None:
            kl_init, nll_init = kl_lp.detach().clone(), nll.detach().clone()
        kl_row = (kl_lp.exp() * (kl_lp - kl_init)).sum(1)                      # KL(P_delta || P_0) per row
        kl = hp.kl_factor * torch.zeros_like(nll).index_add(0, kl_owner, kl_row) / kl_per
        decay = hp.v_weight_decay * delta.norm(dim=1) / h0.norm(dim=1) ** 2
        loss = nll + kl + decay
        cut = None
        if prob_cutoff:
            with torch.no_grad():
                if prob_cutoff < 0:
                    top = (tgt_logits.argmax(-1) == jb.tgt_ids) | ~jb.tgt_mask           # (R, T_max)
                    misses = torch.zeros(n, dtype=torch.long, device=h0.device).index_add(
                        0, rw_owner, (~top.all(1)).long())
                    n_top += (misses == 0).long()
                    cut = n_top >= -prob_cutoff
                else:
                    p_row = torch.exp(-nll_row.detach())
                    cut = torch.zeros_like(nll).index_add(0, rw_owner, p_row) / rows_per > prob_cutoff
        for i in torch.nonzero(active).flatten().tolist():
            reason = None
            if cut is not None and bool(cut[i]):
                reason = "most_probable" if prob_cutoff < 0 else "prob_cutoff"
            elif loss[i].item() < hp.early_stop_loss:
                reason = "loss"
            elif it == hp.v_num_grad_steps - 1:
                reason = "max_steps"
            if reason is not None:
                active[i] = False
                done[i] = (delta[i].detach().clone(), nll[i].item(), loss[i].item(), it + 1,
                           reason if prob_cutoff else None)
        if not active.any():
            break
        loss[active].sum().backward()
        opt.step()
        with torch.no_grad():
            for i in done:
                delta[i] = done[i][0]
            norms = delta.norm(dim=1)
            over = active & (norms > max_norm)
            delta[over] *= (max_norm[over] / norms[over])[:, None]
    return [ZResult(h0[i] + done[i][0], h0[i], done[i][0], nll_init[i].item(), done[i][1], done[i][2], done[i][3],
                    done[i][4]) for i in range(n)]


def compute_zs(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, requests: Sequence[EditRequest],
               templates: Sequence[str], hp: MEMITHParams, layer: int | None = None,
               fast: bool | None = None, prob_cutoff: float | None = None) -> list[ZResult]:
    """z for each request at ``layer`` (default: the last edit layer) over the flat list ``templates``
    (``templates[0]`` must be the bare "{}": h_L is read there). ``prob_cutoff``: the extra stopping rule of
    :func:`optimize_deltas` (default ``hp.prob_cutoff`` where the hyperparameters have one, e.g. ENCORE's; else
    0, off)."""
    if prob_cutoff is None:
        prob_cutoff = float(getattr(hp, "prob_cutoff", 0.0))
    if templates[0] != "{}":
        raise ValueError(f"the first context template must be the bare '{{}}', got {templates[0]!r}")
    layer = hp.layers[-1] if layer is None else layer
    dev = next(model.parameters()).device
    jb = joint_batch(tok, requests, templates, dev)
    b = jb.batch
    fast = (hp.fast_z if fast is None else fast) and fast_path_ok(model, adapter, b)
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:  # only delta is optimized: no parameter gradients
        p.requires_grad_(False)
    try:
        if fast:
            fwd = FastForward(model, adapter, layer, adapter.n_layers - 1, b, pad_token_id(tok), at="residual")
            h_init = fwd.h_L[jb.bare_rows, 0]     # FastForward's suffix position 0 is each row's subject token
            return optimize_deltas(fwd, jb, h_init, hp, prob_cutoff)

        ids, mask = pad_right(b.seqs, pad_token_id(tok))
        inputs = {"input_ids": ids.to(dev), "attention_mask": mask.to(dev)}
        rows = torch.arange(len(b.seqs), device=dev)
        _, (h,) = forward_until(model, inputs, outputs_of=[adapter.block(layer)])
        h_init = h[jb.bare_rows, b.s[jb.bare_rows]]

        def full_forward(delta_rows: torch.Tensor):
            handle = adapter.block(layer).register_forward_hook(adding_hook(rows, b.s, lambda: delta_rows))
            try:
                logits = model(**inputs, use_cache=False).logits
            finally:
                handle.remove()
            return logits[rows[:b.R, None], b.tgt_pos], logits[b.kl_rows, b.s[b.kl_rows]]

        return optimize_deltas(full_forward, jb, h_init, hp, prob_cutoff)
    finally:
        for p, f in flags:
            p.requires_grad_(f)


def compute_z(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, request: EditRequest,
              templates: Sequence[str], hp: MEMITHParams, layer: int | None = None,
              fast: bool | None = None, prob_cutoff: float | None = None) -> ZResult:
    """:func:`compute_zs` for a single request."""
    return compute_zs(model, tok, adapter, [request], templates, hp, layer, fast, prob_cutoff)[0]
