"""FT and FT-C: fine-tune one (or a few) MLP output matrices on the edit, the baselines of ROME/MEMIT papers.

The algorithm (Meng et al. 2022a, appendix; the seed paper's FT-C, section 3 and appendix A.2):

1. Freeze every parameter except ``W_l`` = the MLP output (down-projection) weight of each layer ``l`` in
   ``hparams.layers``; remember ``W0_l``.
2. Loss = mean over requests of the mean NLL of ``target_new``'s tokens after the filled rewrite prompt, with
   teacher forcing (the same quantity the scorer reports as NLL(new)).
3. Up to ``num_steps`` times: if loss < ``stop_loss`` stop; else one Adam step on the W_l, then (FT-C) clamp
   ``W_l`` elementwise into ``[W0_l - eps, W0_l + eps]`` (projection onto the L-infinity ball).

Differences from the ROME repository's ``ft_main.py``:

- that code scores every target token from the *last prompt position* (it never feeds the target back in); we
  use teacher forcing as ALGORITHMS.md and the scorer do. For single-token targets the two are the same.
- its parameter filter (``"transformer.h.{l}.mlp.c_proj" in name``) also trains and clamps c_proj's **bias** on
  GPT-2. editbench trains the weight matrix only, by decision: the seed paper describes FT-C as fine-tuning the
  edited layer's weight under an L-infinity bound, the default model's family (Llama: ``down_proj``) has no bias,
  so the same edit budget means the same thing on every architecture, and the weight-distance measure (the seed
  paper's ``‖W - W0‖``) then covers everything FT changed. On GPT-2 this leaves FT slightly weaker than the
  reference (d_model more free parameters there).

The weights are edited in place; the returned :class:`EditResult` holds copies of exactly the trained weights, so
:func:`editbench.editors.base.restore` gives back the byte-identical model. ``requires_grad`` of every parameter
and the ``.grad`` of the trained ones are put back as they were.

Precision: the weights are optimized in their own dtype. In float16/bfloat16 an Adam step of 5e-4 (and GPT-J's
epsilon 5e-5) is below the resolution of typical weights (~1e-4 around 0.02), so run FT/FT-C in float32.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import EditResult, Editor, save_originals
from editbench.models.tokens import target_nll, tokenize_prompt_target
from editbench.editors.ft.hparams import FTCHyperParams, FTHyperParams
from editbench.models.adapter import ModelAdapter


def fine_tune(model: torch.nn.Module, tok: Any, requests: Sequence[EditRequest], hp: FTHyperParams) -> EditResult:
    """Run FT / FT-C in place on ``model`` for all ``requests`` at once; return the originals and a few stats."""
    if not requests:
        return EditResult(stats={"steps": 0, "loss_history": []})
    adapter = ModelAdapter(model)
    bad = [layer for layer in hp.layers if not 0 <= layer < adapter.n_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range for a {adapter.n_layers}-layer {adapter.model_type} model")
    names = [adapter.mlp_out_weight_name(layer) for layer in hp.layers]
    originals = save_originals(model, names)

    params = dict(model.named_parameters())
    trained = [params[n] for n in names]
    device = trained[0].device
    prompts, targets = [r.rewrite_prompt for r in requests], [r.target_new for r in requests]
    batch = tokenize_prompt_target(tok, prompts, targets).to(device)

    was_trainable = {n: p.requires_grad for n, p in params.items()}
    old_grads = {n: params[n].grad for n in names}
    losses: list[float] = []
    try:
        for p in params.values():
            p.requires_grad_(False)
        for p in trained:
            p.requires_grad_(True)
            p.grad = None
        opt = torch.optim.Adam(trained, lr=hp.lr, weight_decay=hp.weight_decay)
        with torch.enable_grad():
            for _ in range(hp.num_steps):
                logits = model(**batch.model_inputs()).logits
                loss = target_nll(logits, batch).mean()  # per-request mean over tokens, then over requests
                losses.append(float(loss.detach()))
                if losses[-1] < hp.stop_loss:
                    break
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if hp.norm_constraint is not None:
                    _clamp_linf(trained, [originals[n] for n in names], hp.norm_constraint)
    finally:
        for n, p in params.items():
            p.requires_grad_(was_trainable[n])
        for n in names:
            params[n].grad = old_grads[n]

    with torch.no_grad():
        max_delta = {n: float((params[n] - originals[n].to(device)).abs().max()) for n in names}
    steps = len(losses) - (1 if losses and losses[-1] < hp.stop_loss else 0)
    stats = {"steps": steps, "loss_history": losses, "stopped_early": bool(losses) and losses[-1] < hp.stop_loss,
             "max_abs_delta": max_delta, "layers": list(hp.layers)}
    return EditResult(originals=originals, stats=stats)


@torch.no_grad()
def _clamp_linf(weights: Sequence[torch.Tensor], originals: Sequence[torch.Tensor], eps: float) -> None:
    """Project each weight onto the L-infinity ball of radius ``eps`` around its original (elementwise clamp)."""
    for w, w0 in zip(weights, originals):
        w0 = w0.to(w.device, w.dtype)
        w.copy_(torch.clamp(w, min=w0 - eps, max=w0 + eps))


class FTEditor(Editor):
    """Unconstrained fine-tuning of the MLP output weight of the configured layer(s)."""

    name = "ft"
    hparams_class = FTHyperParams
    supports_batch = True

    def apply(self, model: torch.nn.Module, tok: Any, requests: Sequence[EditRequest]) -> EditResult:
        self.check_batch(requests)
        requests = [r.validate() for r in requests]  # a malformed request: RecordError before any weight changes
        return fine_tune(model, tok, requests, self.hparams)


class FTCEditor(FTEditor):
    """FT-C: fine-tuning with every step projected onto the L-infinity ball ``|W - W0| <= norm_constraint``."""

    name = "ft-c"
    hparams_class = FTCHyperParams
