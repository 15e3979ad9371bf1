"""Free greedy generation from a prompt, and the rule that says whether a continuation "is" a target.

The ``gen`` scoring protocol (:mod:`editbench.metrics.counterfact`) asks what a user of the edited model would
see: the model is given the **prompt alone** (no target tokens, so nothing about the answer leaks in), generates
greedily, and the continuation is compared with the target as text.

**How much is generated.** For a prompt scored against targets ``t_1 .. t_k`` (target_new and target_true of a
CounterFact prompt) the model generates ``max_i len(encode_target(t_i)) + GEN_EXTRA`` tokens, at most
``GEN_MAX_NEW`` — the same number whichever target the prompt is checked against, so the length does not tell the
model which answer is expected either. Generation of a row stops early at EOS; tokens after EOS are dropped.

**Batched with left padding and a KV cache.** Prompts are tokenized as the scorer does
(:func:`editbench.models.tokens.encode_prefix`: the tokenizer's leading BOS kept) and left-padded *by hand*
(:func:`pad_left`, whatever ``tok.padding_side`` says), with the attention mask masking the pads and explicit
``position_ids`` (0 for the first real token of every row), so every real token has the same position and causal
context as when its prompt is generated alone. The prompt is run once, then one token per step through the
model's KV cache (:func:`editbench.models.hooks.cache_kwarg` names the cache argument of the installed
``transformers``). :func:`greedy_generate_one_by_one` is the cache-free, one-prompt-at-a-time reference the tests
compare with.

**Match rule** (:func:`starts_with_target`). Both texts are normalized by :func:`normalize`: Unicode case folding
(``str.casefold``), every run of whitespace collapsed to one space, and punctuation and whitespace stripped at
both ends (punctuation = Unicode categories P*, e.g. ``. , ; : ! ? ' " ( ) -``; symbols such as ``+`` or ``$``
are kept). The continuation matches when its normalized text starts with the normalized target **at a word
boundary**: the character right after the target, if any, is not a letter or digit (``str.isalnum``). So
``"Paris."``, ``" paris"`` and ``"Paris, France"`` start with ``"Paris"``; ``"Parisian"`` does not; an empty
normalized target never matches.
"""
from __future__ import annotations

import inspect
import re
import unicodedata
from typing import Any, Sequence

import torch

from editbench.models.hooks import cache_kwarg, output_cache
from editbench.models.tokens import encode_prefix, encode_target, pad_left, pad_token_id

GEN_EXTRA = 2       # tokens generated beyond the longest target of a prompt
GEN_MAX_NEW = 24    # cap on the tokens generated for one prompt

_WS = re.compile(r"\s+")


# ----------------------------------------------------------------------------------------------------------
# the match rule
# ----------------------------------------------------------------------------------------------------------
def _is_edge(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch).startswith("P")


def normalize(text: str) -> str:
    """Casefold, collapse whitespace runs to one space, strip punctuation (Unicode P*) and spaces at both ends."""
    s = _WS.sub(" ", text.casefold())
    a, b = 0, len(s)
    while a < b and _is_edge(s[a]):
        a += 1
    while b > a and _is_edge(s[b - 1]):
        b -= 1
    return s[a:b]


def starts_with_target(generated: str, target: str) -> bool:
    """Whether the continuation ``generated`` starts with ``target`` after :func:`normalize`, at a word boundary
    (the next character, if any, is not alphanumeric)."""
    g, t = normalize(generated), normalize(target)
    if not t or not g.startswith(t):
        return False
    return len(g) == len(t) or not g[len(t)].isalnum()


# ----------------------------------------------------------------------------------------------------------
# generation
# ----------------------------------------------------------------------------------------------------------
def n_new_tokens(tok: Any, targets: Sequence[str]) -> int:
    """Tokens to generate for a prompt checked against ``targets``: longest target + GEN_EXTRA, at most
    GEN_MAX_NEW."""
    longest = max(len(encode_target(tok, t)) for t in targets)
    return min(longest + GEN_EXTRA, GEN_MAX_NEW)


def _accepts(model, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - an unusual forward
        return False


def _eos_ids(tok: Any) -> set[int]:
    eos = getattr(tok, "eos_token_id", None)
    if eos is None:
        return set()
    return {int(e) for e in eos} if isinstance(eos, (list, tuple)) else {int(eos)}


def _cut(ids: list[int], n: int, eos: set[int]) -> list[int]:
    ids = ids[:n]
    for j, t in enumerate(ids):
        if t in eos:
            return ids[:j]
    return ids


@torch.no_grad()
def greedy_generate(model, prompts: Sequence[Sequence[int]], n_new: Sequence[int], *, pad_id: int = 0,
                    eos_ids: set[int] | frozenset = frozenset(), batch_size: int = 64) -> list[list[int]]:
    """Greedy continuations of pre-tokenized ``prompts``: row i gets at most ``n_new[i]`` tokens, cut before the
    first EOS. Batched (prompts of similar length together), left-padded by hand, KV cache."""
    n = len(prompts)
    if len(n_new) != n:
        raise ValueError(f"{n} prompts but {len(n_new)} lengths")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("an empty prompt gives nothing to generate from")
    out: list[list[int]] = [[] for _ in range(n)]
    if n == 0:
        return out
    device = next(model.parameters()).device
    ckw = cache_kwarg(model)
    keep = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
    eos_t = torch.tensor(sorted(eos_ids), dtype=torch.long, device=device)
    order = sorted(range(n), key=lambda i: (len(prompts[i]), n_new[i]))
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        steps = max(n_new[i] for i in idx)
        if steps <= 0:
            continue
        ids, mask = pad_left([prompts[i] for i in idx], pad_id)
        ids, mask = ids.to(device), mask.to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        res = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **keep)
        nxt = res.logits[:, -1].argmax(-1)
        gen = [nxt]
        done = torch.isin(nxt, eos_t) if len(eos_t) else torch.zeros_like(nxt, dtype=torch.bool)
        for _ in range(steps - 1):
            if bool(done.all()):
                break
            cache = output_cache(res)
            mask = torch.cat([mask, mask.new_ones((len(idx), 1))], 1)
            pos = pos[:, -1:] + 1
            res = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos, use_cache=True,
                        **{ckw: cache}, **keep)
            nxt = res.logits[:, -1].argmax(-1)
            gen.append(nxt)
            if len(eos_t):
                done |= torch.isin(nxt, eos_t)
        rows = torch.stack(gen, 1).tolist()
        for r, i in enumerate(idx):
            out[i] = _cut(rows[r], n_new[i], set(eos_ids))
    return out


@torch.no_grad()
def greedy_generate_one_by_one(model, prompts: Sequence[Sequence[int]], n_new: Sequence[int], *,
                               eos_ids: set[int] | frozenset = frozenset()) -> list[list[int]]:
    """Reference: one prompt at a time, no padding, no cache (a full forward per generated token). For tests."""
    device = next(model.parameters()).device
    out = []
    for p, k in zip(prompts, n_new):
        seq = list(p)
        for _ in range(k):
            logits = model(input_ids=torch.tensor([seq], device=device), use_cache=False).logits
            seq.append(int(logits[0, -1].argmax()))
            if seq[-1] in eos_ids:
                break
        out.append(_cut(seq[len(p):], k, set(eos_ids)))
    return out


def decode(tok: Any, ids: Sequence[int]) -> str:
    return tok.decode(list(ids), skip_special_tokens=True)


class PromptGenerator:
    """Generate greedily from text prompts and check continuations against targets; each prompt is tokenized
    once per instance (the sequential runner re-checks the same rewrite prompts at every history check)."""

    def __init__(self, tok: Any, batch_size: int = 64):
        self.tok, self.batch_size = tok, batch_size
        self.pad_id = pad_token_id(tok)
        self.eos = _eos_ids(tok)
        self._enc: dict[str, list[int]] = {}
        self._n: dict[tuple[str, ...], int] = {}

    def n_new(self, targets: Sequence[str]) -> int:
        key = tuple(targets)
        if key not in self._n:
            self._n[key] = n_new_tokens(self.tok, key)
        return self._n[key]

    def encode(self, prompt: str) -> list[int]:
        if prompt not in self._enc:
            self._enc[prompt] = encode_prefix(self.tok, prompt)
        return self._enc[prompt]

    def generate(self, model, prompts: Sequence[str], n_new: Sequence[int]) -> list[str]:
        """Decoded greedy continuations of ``prompts`` (``n_new[i]`` tokens at most for prompt i)."""
        ids = greedy_generate(model, [self.encode(p) for p in prompts], list(n_new), pad_id=self.pad_id,
                              eos_ids=self.eos, batch_size=self.batch_size)
        return [decode(self.tok, g) for g in ids]

    def check(self, model, items: Sequence[tuple[str, Sequence[str], str]]) -> tuple[list[bool], list[str]]:
        """``items`` = [(prompt, targets the length is sized for, target to match), ...] -> (matches, texts).
        Prompts repeated in ``items`` (one prompt checked against two targets) are generated once."""
        uniq: dict[tuple[str, int], int] = {}
        keys = []
        for prompt, sized_for, _want in items:
            key = (prompt, self.n_new(sized_for))
            uniq.setdefault(key, len(uniq))
            keys.append(key)
        texts = self.generate(model, [p for p, _ in uniq], [k for _, k in uniq])
        got = [texts[uniq[k]] for k in keys]
        return [starts_with_target(g, want) for g, (_p, _s, want) in zip(got, items)], got


# ----------------------------------------------------------------------------------------------------------
# fact forgetting under the gen protocol (the sequential runner's history checks)
# ----------------------------------------------------------------------------------------------------------
class GenForgetting:
    """Fact forgetting by free generation: of the edits whose rewrite prompt generated target_new right after they
    were made, the share whose rewrite prompt no longer does (``now``: at the latest check; ``ever``: at some
    check so far) — :class:`editbench.metrics.forgetting.ForgettingTracker`'s definitions with the ``gen``
    protocol's notion of success. Edits are added in stream order; a plain JSON-able state for checkpoints."""

    def __init__(self):
        self.ok: list[bool] = []
        self.now: list[bool] = []
        self.ever_failed: list[bool] = []

    def add(self, ok: bool) -> None:
        self.ok.append(bool(ok))
        self.now.append(bool(ok))
        self.ever_failed.append(False)

    def to_recheck(self) -> list[int]:
        """Positions of the edits that generated their target right after they were made."""
        return [i for i, ok in enumerate(self.ok) if ok]

    def update(self, positions: Sequence[int], oks: Sequence[bool]) -> None:
        for p, ok in zip(positions, oks, strict=True):
            self.now[p] = bool(ok)
            if self.ok[p] and not ok:
                self.ever_failed[p] = True

    def fractions(self) -> dict[str, float | int | None]:
        learned = [i for i, ok in enumerate(self.ok) if ok]
        n_now = sum(1 for i in learned if not self.now[i])
        n_ever = sum(1 for i in learned if self.ever_failed[i])
        return {"learned_gen": len(learned), "forgotten_gen_now": n_now, "forgotten_gen_ever": n_ever,
                "forget_gen_now": n_now / len(learned) if learned else None,
                "forget_gen_ever": n_ever / len(learned) if learned else None}

    def held(self) -> str:
        """Per edit in stream order: ``1`` generates its target at the latest check, ``0`` no longer, ``-`` never
        did (the ``gen`` row of the retention heatmap)."""
        return "".join("-" if not ok else ("1" if now else "0") for ok, now in zip(self.ok, self.now))

    def state(self) -> dict:
        return {"ok": list(self.ok), "now": list(self.now), "ever_failed": list(self.ever_failed)}

    @classmethod
    def from_state(cls, st: dict | None, n: int = 0) -> "GenForgetting":
        """From :meth:`state`; ``n`` edits already made: a state without them (a checkpoint written before this
        tracker existed) counts them as never learned, so positions stay aligned with the stream."""
        g = cls()
        if st:
            g.ok, g.now, g.ever_failed = list(st["ok"]), list(st["now"]), list(st["ever_failed"])
        while len(g.ok) < n:
            g.ok.append(False), g.now.append(False), g.ever_failed.append(False)
        return g
