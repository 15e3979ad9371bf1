"""The LM head applied to chosen hidden states only: what a causal LM's forward does after its trunk.

Scoring and the editors' optimisation loops need logits at a few positions (the ones predicting target tokens,
a fact token), not at every position: with a 262k vocabulary (Gemma 3) the head over a whole batch is most of the
cost. :func:`postprocess_logits` is the config's logit post-processing that no module holds (Granite's
``logits_scaling``, Cohere's ``logit_scale``, Gemma 2's ``final_logit_softcapping``: ``cap · tanh(logits / cap)``,
as in their ``ForCausalLM.forward``); :meth:`editbench.models.adapter.ModelAdapter.head` and :func:`trunk_and_head`
use it.
"""
from __future__ import annotations

import inspect

import torch


def postprocess_logits(config, logits: torch.Tensor) -> torch.Tensor:
    """``logits`` (the output projection's) as the model's forward returns them."""
    scaling = getattr(config, "logits_scaling", None)
    if scaling not in (None, 1, 1.0):
        logits = logits / scaling
    scale = getattr(config, "logit_scale", None)
    if isinstance(scale, (int, float)) and scale != 1:
        logits = logits * scale
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def trunk_and_head(model: torch.nn.Module):
    """(trunk, head): ``trunk(**inputs).last_hidden_state`` is final-normed; ``head(h)`` gives the model's logits."""
    out = model.get_output_embeddings()
    return model.base_model, (lambda h: postprocess_logits(model.config, out(h)))


def keep_last_kwargs(model: torch.nn.Module) -> dict:
    """``{"logits_to_keep": 1}`` when the model's forward takes it (the head then runs at the last position only)."""
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
