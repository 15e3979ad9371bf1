"""The LM head applied to chosen hidden states only: what a causal LM's forward does after its trunk.

Scoring and the editors' optimisation loops need logits at a few positions (the ones predicting target tokens,
a fact token), not at every position: with a 262k vocabulary (Gemma 3) the head over a whole batch is most of the
cost. :func:`head_logits` reproduces the model's own last step on given vectors — the output projection, then
the final-logit soft-capping ``cap · tanh(logits / cap)`` when the config has ``final_logit_softcapping`` (Gemma 2;
the same three operations in the same order as ``Gemma2ForCausalLM.forward``). :func:`trunk_and_head` splits a
model into the trunk whose ``last_hidden_state`` is already final-normed and that function.
"""
from __future__ import annotations

import torch


def softcap_of(model: torch.nn.Module) -> float | None:
    """The config's ``final_logit_softcapping`` (None or 0: no capping)."""
    cap = getattr(getattr(model, "config", None), "final_logit_softcapping", None)
    return float(cap) if cap else None


def head_logits(model: torch.nn.Module, hidden: torch.Tensor, head: torch.nn.Module | None = None) -> torch.Tensor:
    """Logits of already final-normed ``hidden`` (..., d): ``head`` (default the model's output embeddings),
    soft-capped as the model's forward does."""
    head = head if head is not None else model.get_output_embeddings()
    logits = head(hidden)
    cap = softcap_of(model)
    if cap is not None:
        logits = logits / cap
        logits = torch.tanh(logits)
        logits = logits * cap
    return logits


def trunk_and_head(model: torch.nn.Module):
    """(trunk, head): ``trunk(**inputs).last_hidden_state`` is final-normed; ``head(h)`` gives the model's logits."""
    out = model.get_output_embeddings()
    return model.base_model, (lambda h: head_logits(model, h, out))


def keep_last_kwargs(model: torch.nn.Module) -> dict:
    """``{"logits_to_keep": 1}`` when the model's forward takes it (the head then runs at the last position only)."""
    import inspect

    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
