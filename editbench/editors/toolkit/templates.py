"""Context templates: "{}" plus short model-generated prefixes (ROME §3.1, MEMIT §4.2), both sampling schemes.

ROME averages the key k* and optimizes the value v* over the edit prompt placed after several random
prefixes, so the edit does not depend on the exact preceding text; MEMIT does the same per template group.

- **ROME** (:func:`context_templates`; kmeng01/rome ``get_context_templates``): samples from the model itself
  starting at ``<|endoftext|>`` (:func:`start_token_id`): 10 texts of 5 tokens and 10 of 10 tokens (lengths
  *include* the start token), top-k 5 sampling, each text turned into ``"<text>. {}"`` (braces removed).
  Result: a flat list ``["{}", "<text>. {}", ...]``.
- **MEMIT** (:func:`memit_context_templates`; kmeng01/memit ``get_context_templates``): samples after the opening
  words "The", "Therefore", "Because", "I", "You" (``count // 5`` texts each), ``length`` tokens per text
  *including* the opening word, top-k 5, each text turned into ``"<text>. {}"`` with braces replaced by spaces.
  Result: groups ``[["{}"], [texts of group 1...], ...]`` (MEMIT averages keys per group, then over groups).
  With no opening words the texts are ROME's, grouped by ``spec`` entry.

Neither reference seeds its sampling; here a ``torch.Generator`` seeded with ``seed`` makes it deterministic.
Templates are cached in memory per model object (one weak table for both schemes, keyed by the scheme and its
arguments): as in the references, the templates of the first call are reused for later edits of the same
(increasingly edited) model.
"""
from __future__ import annotations

import unicodedata
import weakref
from typing import Any, Sequence

import torch

from editbench.models.head import keep_last_kwargs
from editbench.models.tokens import encode_prefix

MEMIT_OPENINGS = ("The", "Therefore", "Because", "I", "You")

_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKD", text).replace("\n\n", " ").replace("<|endoftext|>", "")


def start_token_id(tok: Any) -> int:
    """The token ROME's reference starts generating from: ``<|endoftext|>`` if the vocabulary has it as one token,
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
    """ROME: sample ``n`` texts of ``length`` tokens (start token included) with top-k sampling."""
    dev = next(model.parameters()).device
    ids = torch.full((n, 1), start_token_id(tok), dtype=torch.long, device=dev)
    while ids.shape[1] < length:
        logits = model(input_ids=ids, use_cache=False, **keep_last_kwargs(model)).logits[:, -1, :].float()
        probs = torch.softmax(logits, dim=-1)
        top_p, top_i = probs.topk(top_k, dim=-1)
        top_p = top_p / top_p.sum(dim=-1, keepdim=True)
        choice = torch.multinomial(top_p.cpu(), 1, generator=generator).to(dev)
        ids = torch.cat([ids, top_i.gather(1, choice)], dim=1)
    texts = tok.batch_decode(ids.tolist(), skip_special_tokens=True)
    return [_clean(t) for t in texts]


@torch.no_grad()
def sample_after(model: torch.nn.Module, tok: Any, openings: Sequence[str], n: int, length: int, top_k: int,
                 generator: torch.Generator) -> list[str]:
    """MEMIT: ``n`` texts per opening, continued by top-k sampling until ``length`` tokens long (the opening's
    tokens, BOS included where the tokenizer adds one, count towards the length); openings of equal token length
    are sampled together in one batch. Texts come back opening by opening."""
    dev = next(model.parameters()).device
    encoded = [encode_prefix(tok, o) for o in openings]
    out: dict[int, list[str]] = {}
    for size in sorted({len(e) for e in encoded}):
        which = [i for i, e in enumerate(encoded) if len(e) == size]
        ids = torch.tensor([encoded[i] for i in which for _ in range(n)], dtype=torch.long, device=dev)
        while ids.shape[1] < length:
            logits = model(input_ids=ids, use_cache=False, **keep_last_kwargs(model)).logits[:, -1, :].float()
            top_p, top_i = torch.softmax(logits, dim=-1).topk(top_k, dim=-1)
            choice = torch.multinomial((top_p / top_p.sum(-1, keepdim=True)).cpu(), 1, generator=generator)
            ids = torch.cat([ids, top_i.gather(1, choice.to(dev))], dim=1)
        texts = tok.batch_decode(ids.tolist(), skip_special_tokens=True)
        for j, i in enumerate(which):
            out[i] = [_clean(t) for t in texts[j * n:(j + 1) * n]]
    return [t for i in range(len(openings)) for t in out[i]]


def _cached(model: torch.nn.Module, key: tuple, make) -> Any:
    """The per-model-object cache of both schemes: ``make()`` runs once per (model, key), in eval mode."""
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        was_training = model.training
        model.eval()
        try:
            per_model[key] = make()
        finally:
            model.train(was_training)
    return per_model[key]


def context_templates(model: torch.nn.Module, tok: Any, *, seed: int,
                      spec: Sequence[Sequence[int]] = ((5, 10), (10, 10)), top_k: int = 5) -> list[str]:
    """ROME's ``["{}"] + ["<sampled text>. {}", ...]``; ``spec`` is ((length, count), ...) as in the reference.

    Deterministic for a given (model weights, seed, spec, top_k); cached per model object.
    """
    spec = tuple((int(a), int(b)) for a, b in spec)

    def make() -> list[str]:
        gen = torch.Generator().manual_seed(int(seed))
        texts = []
        for length, count in spec:
            texts += sample_texts(model, tok, count, length, top_k, gen)
        return ["{}"] + [t.replace("{", "").replace("}", "") + ". {}" for t in texts]

    return list(_cached(model, ("rome", int(seed), spec, int(top_k)), make))


def memit_context_templates(model: torch.nn.Module, tok: Any, *, seed: int,
                            spec: Sequence[Sequence[int]] = ((10, 5),), top_k: int = 5,
                            openings: Sequence[str] = MEMIT_OPENINGS) -> list[list[str]]:
    """MEMIT's template groups ``[["{}"], ["<text>. {}", ...], ...]``, one group per (length, count) in ``spec``;
    with no ``openings``, ROME's :func:`context_templates` grouped the same way. Cached per model object."""
    spec = tuple((int(a), int(b)) for a, b in spec)
    openings = tuple(openings)

    def make() -> list[list[str]]:
        if not openings:
            flat = context_templates(model, tok, seed=seed, spec=spec, top_k=top_k)
            groups, at = [["{}"]], 1
            for _length, count in spec:
                groups.append(flat[at:at + count])
                at += count
            return groups
        gen = torch.Generator().manual_seed(int(seed))
        groups = [["{}"]]
        for length, count in spec:
            texts = sample_after(model, tok, openings, count // len(openings), length, top_k, gen)
            groups.append([t.replace("{", " ").replace("}", " ") + ". {}" for t in texts])
        return groups

    return [list(g) for g in _cached(model, ("memit", int(seed), spec, int(top_k), openings), make)]
