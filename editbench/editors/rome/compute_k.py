"""ROME step 1: the key k* — the input of the edited MLP output matrix at the subject's last token.

k* is the mean of that key over the request's prompt placed after every context template
(``template.format(prompt).format(subject)``; the first template is the bare "{}"). The row of the bare
template is the *raw* key k of the un-prefixed prompt, which the original ROME code uses in Wk and uᵀk
(r-ROME uses k* there too). All templates run in one right-padded batch; the forward pass stops at the edited
layer's MLP output, the layers above are never run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from editbench.data.schema import EditRequest
from editbench.editors.toolkit.forward import lookup_index, templated_prompts
from editbench.models.adapter import ModelAdapter
from editbench.models.hooks import StopForward
from editbench.models.tokens import encode_prefix, fill_template, pad_right, pad_token_id


@torch.no_grad()
def keys_at(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, layer: int, prompt_templates: Sequence[str],
            subject: str, fact_token: str = "subject_last") -> torch.Tensor:
    """Keys (n_prompts, d_mlp) at the fact token of each prompt template filled with ``subject``; float32
    (float64 for a float64 model)."""
    seqs = [encode_prefix(tok, fill_template(p, subject)[0]) for p in prompt_templates]
    idx = [lookup_index(tok, p, subject, fact_token) for p in prompt_templates]
    ids, mask = pad_right(seqs, pad_token_id(tok))
    dev = next(model.parameters()).device
    got = {}

    def hook(_m, args):
        got["k"] = args[0]
        raise StopForward

    handle = adapter.mlp_out(layer).register_forward_pre_hook(hook)
    try:
        model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=False)
    except StopForward:
        pass
    finally:
        handle.remove()
    rows = torch.arange(len(seqs), device=dev)
    k = got["k"][rows, torch.tensor(idx, device=dev)]
    return k.to(torch.promote_types(k.dtype, torch.float32))


@dataclass
class Keys:
    k_star: torch.Tensor   # (d_mlp,) mean over templates
    k_raw: torch.Tensor    # (d_mlp,) key of the bare prompt (template "{}")
    per_template: torch.Tensor  # (n_templates, d_mlp)


def compute_keys(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, layer: int, request: EditRequest,
                 templates: Sequence[str], fact_token: str = "subject_last") -> Keys:
    if templates[0] != "{}":
        raise ValueError(f"the first context template must be the bare '{{}}', got {templates[0]!r}")
    ks = keys_at(model, tok, adapter, layer, templated_prompts(templates, request), request.subject, fact_token)
    return Keys(k_star=ks.mean(0), k_raw=ks[0], per_template=ks)
