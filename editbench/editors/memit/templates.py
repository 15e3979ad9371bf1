"""MEMIT's context templates: "{}" plus short texts the model writes after a few fixed opening words.

The reference MEMIT (kmeng01/memit ``get_context_templates``) differs from ROME's: it samples from the prompts
"The", "Therefore", "Because", "I", "You" (``count // 5`` texts each), ``length`` tokens per text *including*
the opening word, top-k 5, and turns each text into ``"<text>. {}"`` with braces replaced by spaces. Its
sampling is not seeded; here a ``torch.Generator`` seeded with ``seed`` makes it deterministic.

Result: groups ``[["{}"], [texts of group 1...], ...]`` (MEMIT averages keys per group, then over groups).
With no opening words the texts start from the start token, exactly as ROME's
:func:`editbench.editors.rome.templates.context_templates`, which is then used. Cached per model object, so
later edits of an (increasingly edited) model reuse the first templates, as in the reference.
"""
from __future__ import annotations

import unicodedata
import weakref
from typing import Any, Sequence

import torch

from editbench.models.tokens import encode_prefix

MEMIT_OPENINGS = ("The", "Therefore", "Because", "I", "You")

_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


@torch.no_grad()
def sample_after(model: torch.nn.Module, tok: Any, openings: Sequence[str], n: int, length: int, top_k: int,
                 generator: torch.Generator) -> list[str]:
    """``n`` texts per opening, continued by top-k sampling until ``length`` tokens long (the opening's tokens,
    BOS included where the tokenizer adds one, count towards the length); openings of equal token length are
    sampled together in one batch. Texts come back opening by opening."""
    dev = next(model.parameters()).device
    encoded = [encode_prefix(tok, o) for o in openings]
    out: dict[int, list[str]] = {}
    for size in sorted({len(e) for e in encoded}):
        which = [i for i, e in enumerate(encoded) if len(e) == size]
        ids = torch.tensor([encoded[i] for i in which for _ in range(n)], dtype=torch.long, device=dev)
        while ids.shape[1] < length:
            logits = model(input_ids=ids, use_cache=False).logits[:, -1, :].float()
            top_p, top_i = torch.softmax(logits, dim=-1).topk(top_k, dim=-1)
            choice = torch.multinomial((top_p / top_p.sum(-1, keepdim=True)).cpu(), 1, generator=generator)
            ids = torch.cat([ids, top_i.gather(1, choice.to(dev))], dim=1)
        texts = tok.batch_decode(ids.tolist(), skip_special_tokens=True)
        for j, i in enumerate(which):
            out[i] = [unicodedata.normalize("NFKD", t).replace("\n\n", " ").replace("<|endoftext|>", "")
                      for t in texts[j * n:(j + 1) * n]]
    return [t for i in range(len(openings)) for t in out[i]]


def memit_context_templates(model: torch.nn.Module, tok: Any, *, seed: int,
                            spec: Sequence[Sequence[int]] = ((10, 5),), top_k: int = 5,
                            openings: Sequence[str] = MEMIT_OPENINGS) -> list[list[str]]:
    """Template groups ``[["{}"], ["<text>. {}", ...], ...]``, one group per (length, count) in ``spec``."""
    spec = tuple((int(a), int(b)) for a, b in spec)
    openings = tuple(openings)
    key = (int(seed), spec, int(top_k), openings)
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        if not openings:
            from editbench.editors.rome.templates import context_templates
            flat = context_templates(model, tok, seed=seed, spec=spec, top_k=top_k)
            groups, at = [["{}"]], 1
            for _length, count in spec:
                groups.append(flat[at:at + count])
                at += count
        else:
            gen = torch.Generator().manual_seed(int(seed))
            was_training = model.training
            model.eval()
            try:
                groups = [["{}"]]
                for length, count in spec:
                    texts = sample_after(model, tok, openings, count // len(openings), length, top_k, gen)
                    groups.append([t.replace("{", " ").replace("}", " ") + ". {}" for t in texts])
            finally:
                model.train(was_training)
        per_model[key] = groups
    return [list(g) for g in per_model[key]]
