"""Step 2 of MEMIT, once per edit layer l: the keys K_l and the current residual h_L of every request.

The key of a request at layer l is the input of the MLP output matrix (the MLP's hidden activation) at the
subject's last token, averaged over the context templates the way the reference code does: first the mean
within each template group (the bare "{}" is a group of its own, then each group of generated prefixes), then
the mean of the group means. With MEMIT's templates ["{}"] + 5 prefixes, K = 0.5 k("{}") + 0.5 mean(prefixed).

The same forward pass also yields h_L at the subject's last token of the bare prompt (the "{}" row), which the
update needs to measure the remaining residual z - h_L *after the lower edit layers were already written*.
The pass stops after the deeper of the two modules it reads; the layers above are never run.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from editbench.data.schema import EditRequest
from editbench.models.tokens import (encode_prefix, fill_template, pad_right, pad_token_id,
                                      subject_last_token_index)
from editbench.models.hooks import forward_until
from editbench.models.adapter import ModelAdapter


def group_mean(x: torch.Tensor, group_sizes: Sequence[int]) -> torch.Tensor:
    """Mean of the per-group means along dim 0 of ``x`` (rows ordered group by group)."""
    if sum(group_sizes) != x.shape[0]:
        raise ValueError(f"group sizes {list(group_sizes)} do not cover {x.shape[0]} rows")
    return torch.stack([g.mean(0) for g in torch.split(x, list(group_sizes), dim=0)]).mean(0)


def keys_and_hidden(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, requests: Sequence[EditRequest],
                    template_groups: Sequence[Sequence[str]], key_layer: int,
                    z_layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K, H)``: K (n_requests, d_mlp) template-averaged keys at ``key_layer``; H (n_requests, d_model) the
    residual after block ``z_layer`` on the bare prompt. Both at the subject's last token, float32."""
    templates = [t for g in template_groups for t in g]
    if templates[0] != "{}":
        raise ValueError(f"the first context template must be the bare '{{}}', got {templates[0]!r}")
    seqs, lookup = [], []
    for req in requests:
        for tpl in templates:
            prompt_tpl = fill_template(tpl, req.prompt)[0]
            seqs.append(encode_prefix(tok, fill_template(prompt_tpl, req.subject)[0]))
            lookup.append(subject_last_token_index(tok, prompt_tpl, req.subject))
    input_ids, attention_mask = pad_right(seqs, pad_token_id(tok))
    device = next(model.parameters()).device
    inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
    (keys,), (hidden,) = forward_until(model, inputs, inputs_of=[adapter.mlp_out(key_layer)],
                                       outputs_of=[adapter.block(z_layer)])
    rows = torch.arange(len(seqs), device=device)
    cols = torch.tensor(lookup, dtype=torch.long, device=device)
    k_at = keys[rows, cols].float()                    # (n_req * n_templates, d_mlp)
    h_at = hidden[rows, cols].float()
    n_t = len(templates)
    sizes = [len(g) for g in template_groups]
    K = torch.stack([group_mean(k_at[i * n_t:(i + 1) * n_t], sizes) for i in range(len(requests))])
    H = h_at[::n_t]                                    # the bare "{}" row of each request
    return K, H
