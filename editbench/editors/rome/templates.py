"""Context templates: "{}" plus short model-generated prefixes (ROME §3.1, MEMIT §4.2).

ROME averages the key k* and optimizes the value v* over the edit prompt placed after several random
prefixes, so the edit does not depend on the exact preceding text. The reference (kmeng01/rome
``get_context_templates``) samples them from the model itself starting at ``<|endoftext|>``: 10 texts of
5 tokens and 10 of 10 tokens (lengths *include* the start token), top-k 5 sampling, and turns each text into
``"<text>. {}"``. It is not seeded; here a ``torch.Generator`` seeded with ``seed`` makes it deterministic.

Templates are cached in memory per (model object, seed, spec, top_k): as in the reference, the templates of
the first call are reused for later edits of the same (increasingly edited) model.
"""
from __future__ import annotations

import unicodedata
import weakref
from typing import Any

import torch

_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def start_token_id(tok: Any) -> int:
    """The token the reference starts generating from: ``<|endoftext|>`` if the vocabulary has it as one token,
    else BOS, else EOS."""
    vocab = tok.get_vocab()
    if "<|endoftext|>" in vocab:
        return int(vocab["<|endoftext|>"])
    for t in (tok.bos_token_id, tok.eos_token_id):
        if t is not None:
            return int(t)
    raise ValueError("tokenizer has neither <|endoftext|>, BOS nor EOS to start context templates from")


@torch.no_grad()
def sample_texts(model: torch.nn.Module, tok: Any, n: int, length: int, top_k: int,
                 generator: torch.Generator) -> list[str]:
    """Sample ``n`` texts of ``length`` tokens (start token included) with top-k sampling."""
    dev = next(model.parameters()).device
    ids = torch.full((n, 1), start_token_id(tok), dtype=torch.long, device=dev)
    while ids.shape[1] < length:
        logits = model(input_ids=ids, use_cache=False).logits[:, -1, :].float()
        probs = torch.softmax(logits, dim=-1)
        top_p, top_i = probs.topk(top_k, dim=-1)
        top_p = top_p / top_p.sum(dim=-1, keepdim=True)
        choice = torch.multinomial(top_p.cpu(), 1, generator=generator).to(dev)
        ids = torch.cat([ids, top_i.gather(1, choice)], dim=1)
    texts = tok.batch_decode(ids.tolist(), skip_special_tokens=True)
    return [unicodedata.normalize("NFKD", t).replace("\n\n", " ").replace("<|endoftext|>", "") for t in texts]


def context_templates(model: torch.nn.Module, tok: Any, *, seed: int,
                      spec: tuple[tuple[int, int], ...] = ((5, 10), (10, 10)), top_k: int = 5) -> list[str]:
    """``["{}"] + ["<sampled text>. {}", ...]``; ``spec`` is ((length, count), ...) as in the reference.

    Deterministic for a given (model weights, seed, spec, top_k); cached per model object.
    """
    spec = tuple((int(a), int(b)) for a, b in spec)
    key = (int(seed), spec, int(top_k))
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        gen = torch.Generator().manual_seed(int(seed))
        was_training = model.training
        model.eval()
        try:
            texts = []
            for length, count in spec:
                texts += sample_texts(model, tok, count, length, top_k, gen)
        finally:
            model.train(was_training)
        per_model[key] = ["{}"] + [t.replace("{", "").replace("}", "") + ". {}" for t in texts]
    return list(per_model[key])


def clear_cache() -> None:
    _CACHE.clear()
