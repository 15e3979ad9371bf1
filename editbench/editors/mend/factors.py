"""The rank-1 factors of the fine-tuning gradient of each edited weight, and applying updates to the model.

For a linear map ``y_t = W u_t`` applied at every token ``t``, the gradient of a loss is
``dL/dW = sum_t delta_t u_t^T`` with ``delta_t = dL/dy_t``: a sum of rank-1 terms, one per token (MEND, sec. 3.1).
:func:`gradient_factors` runs the model on the edit prompt + target once, keeps each edited module's input ``u``
(forward hook) and the gradient of the edit loss with respect to its output ``delta`` (``autograd.grad``, so no
``.grad`` is written anywhere), flattened to one row per token, and drops the rows where either is all zero
(padding and positions after the last target token: the reference's ``nz_mask``).

The edit loss is the mean NLL of ``target_new`` after the filled rewrite prompt with teacher forcing (per request,
mean over its target tokens; then mean over requests), the loss FT and the scorer use.

Orientation: factors and updates are (out, in); GPT-2's ``Conv1D`` stores (in, out), :func:`as_param` turns an
(out, in) update into the parameter's layout.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from editbench.models.adapter import ModelAdapter
from editbench.models.tokens import target_nll, tokenize_prompt_target


def weight_names(adapter: ModelAdapter, layers: Sequence[int], modules: Sequence[str]) -> list[str]:
    """Parameter names of the edited weights: ``modules`` among ``mlp_out`` / ``mlp_in`` of each layer."""
    bad = [layer for layer in layers if not 0 <= layer < adapter.n_layers]
    if bad:
        raise ValueError(f"MEND layers {bad} out of range for a {adapter.n_layers}-layer {adapter.model_type} model")
    names = []
    for layer in layers:
        for m in modules:
            if m == "mlp_out":
                names.append(adapter.mlp_out_weight_name(layer))
            elif m == "mlp_in":
                names.append(f"{adapter.mlp_in_name(layer)}.weight")
            else:
                raise ValueError(f"MEND modules must be 'mlp_out' or 'mlp_in', got {m!r}")
    return names


def out_in_shape(adapter: ModelAdapter, param: torch.Tensor) -> tuple[int, int]:
    return (param.shape[1], param.shape[0]) if adapter.conv1d else (param.shape[0], param.shape[1])


def as_param(adapter: ModelAdapter, update_out_in: torch.Tensor) -> torch.Tensor:
    return update_out_in.T if adapter.conv1d else update_out_in


def edit_batch(tok: Any, prompts: Sequence[str], targets: Sequence[str], device: torch.device):
    return tokenize_prompt_target(tok, list(prompts), list(targets)).to(device)


def gradient_factors(model: torch.nn.Module, tok: Any, names: Sequence[str], prompts: Sequence[str],
                     targets: Sequence[str]) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], float]:
    """``{param name: (u (n, d_in), delta (n, d_out))}`` of the edit loss on ``prompts[i] + targets[i]``, and the loss.

    The edited weights are made to require grad for this pass only (their ``requires_grad`` is put back).
    """
    params = dict(model.named_parameters())
    mods = dict(model.named_modules())
    modules = [mods[n.rsplit(".", 1)[0]] for n in names]
    device = params[names[0]].device
    batch = edit_batch(tok, prompts, targets, device)
    inputs: dict[int, torch.Tensor] = {}
    outputs: dict[int, torch.Tensor] = {}

    def hook(i):
        def fn(_m, args, out):
            inputs[i], outputs[i] = args[0].detach(), out
        return fn

    was = {n: params[n].requires_grad for n in names}
    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(modules)]
    try:
        for n in names:
            params[n].requires_grad_(True)
        with torch.enable_grad():
            logits = model(**batch.model_inputs(), use_cache=False).logits
            loss = target_nll(logits, batch).mean()
            grads = torch.autograd.grad(loss, [outputs[i] for i in range(len(names))])
    finally:
        for h in handles:
            h.remove()
        for n in names:
            params[n].requires_grad_(was[n])
    factors = {}
    for i, n in enumerate(names):
        u = inputs[i].reshape(-1, inputs[i].shape[-1])
        d = grads[i].detach().reshape(-1, grads[i].shape[-1])
        keep = (u != 0).any(-1) & (d != 0).any(-1)
        factors[n] = (u[keep], d[keep])
    return factors, float(loss.detach())
