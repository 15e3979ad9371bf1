"""Generation entropy: the fluency metric of ROME (Meng et al. 2022) and the seed paper, as a model-health signal.

**Definition** (ROME's ``experiments/py/eval_utils_counterfact.py``, ``compute_n_gram_entropy``): a text is split
into words, the frequency distribution of its word bigrams and of its word trigrams is taken, and the Shannon
entropy (bits) of each is computed, ``H_n = −Σ p log2 p``. The text's score is the arithmetic mean of the weighted
entropies, ``mean(2/3 · H_2, 4/3 · H_3) = H_2 / 3 + 2 H_3 / 3``; a set of texts scores the arithmetic mean over its
texts (``n_gram_entropy``). An n-gram list that is empty (a text of fewer than n words) has entropy 0, as in the
reference (numpy sums an empty array to 0). A model that repeats itself ("the the the ...") scores near 0; varied
text of 100 tokens scores about 5-6.

**Words.** ROME tokenizes with ``nltk.word_tokenize`` (Punkt sentence splitting, then the Treebank word rules).
editbench does not depend on NLTK (whose Punkt data must be downloaded separately): :func:`word_tokenize` applies
the Treebank rules (quotes, punctuation, brackets, the ``'s n't 're 've 'll 'd 'm`` clitics split off) and splits
a period off every word that ends a sentence (followed by space and an upper-case letter, or at the end of the
text), which is where Punkt splits in the generated texts this metric sees. On such texts the two give the same
words; a disagreement (an abbreviation before a capitalised word) changes one n-gram of ~100.

**Generations** (ROME's ``generate_fast``): each prompt is continued until prompt + continuation are
:data:`MAX_LEN` = 100 tokens (no stop at EOS), and the *whole* text, prompt included, is decoded, NFKD-normalised
and its blank lines ("\\n\\n") replaced by a space. ROME samples with top-k = 5 (:func:`sample_topk`, seeded
here, so a measurement repeats); the greedy variant (:func:`~editbench.metrics.generation.greedy_generate`) is
deterministic and costs the same. :class:`GenerationEntropy` measures both: ``entropy`` (greedy) and
``entropy_sampled`` (ROME's top-5 sampling).
"""
from __future__ import annotations

import math
import random
import re
import unicodedata
from collections import Counter
from typing import Any, Sequence

import torch

from editbench.metrics.generation import greedy_generate
from editbench.metrics.probes import Probe, ProbeContext
from editbench.models.head import keep_last_kwargs
from editbench.models.hooks import cache_kwarg, output_cache
from editbench.models.tokens import encode_prefix, pad_left, pad_token_id

NS = (2, 3)
WEIGHTS = (2 / 3, 4 / 3)
MAX_LEN = 100   # ROME's max_out_len: prompt + continuation, in tokens
TOP_K = 5       # ROME's top_k

# --- Treebank-style word tokenization ------------------------------------------------------------------------
_RULES = [
    (re.compile(r'^"'), " `` "), (re.compile(r"(``)"), r" \1 "), (re.compile(r'([ (\[{<])("|\'{2})'), r"\1 `` "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"), (re.compile(r"([:,])$"), r" \1 "), (re.compile(r"\.\.\."), " ... "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "), (re.compile(r"[?!]"), r" \g<0> "), (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[\]\[\(\)\{\}<>]"), r" \g<0> "), (re.compile(r"--"), " -- "), (re.compile(r'"'), " '' "),
    (re.compile(r"(\S)('')"), r"\1 \2 "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_SENT_END = re.compile(r"(?<=[^\s.])\.(?=\s+[\"'(\[]*[A-Z0-9]|\s*$)")


def word_tokenize(text: str) -> list[str]:
    """Words and punctuation of ``text`` by the Treebank rules, sentence-final periods split off (see above)."""
    s = _SENT_END.sub(" . ", text)
    s = " " + s + " "
    for pattern, repl in _RULES:
        s = pattern.sub(repl, s)
    return s.split()


def ngram_entropy(text: str, ns: Sequence[int] = NS, weights: Sequence[float] = WEIGHTS) -> float:
    """ROME's ``compute_n_gram_entropy`` of one text: mean over n of weight_n · H(n-gram distribution) in bits."""
    if len(ns) != len(weights) or not ns:
        raise ValueError("ns and weights must be equally long and not empty")
    words = word_tokenize(text)
    terms = []
    for n, w in zip(ns, weights):
        counts = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
        total = sum(counts.values())
        h = -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0
        terms.append(w * h)
    return sum(terms) / len(terms)


def mean_ngram_entropy(texts: Sequence[str], **kw: Any) -> float:
    """ROME's ``n_gram_entropy`` (arithmetic aggregation): the mean of :func:`ngram_entropy` over ``texts``."""
    if not texts:
        raise ValueError("no texts")
    return sum(ngram_entropy(t, **kw) for t in texts) / len(texts)


def rome_text(tok: Any, ids: Sequence[int]) -> str:
    """A generation as ROME scores it: decoded (special tokens dropped), NFKD-normalised, blank lines -> space."""
    return unicodedata.normalize("NFKD", tok.decode(list(ids), skip_special_tokens=True)).replace("\n\n", " ")


# --- top-k sampling (ROME's generate_fast), batched with left padding and a KV cache ---------------------------
@torch.no_grad()
def sample_topk(model, prompts: Sequence[Sequence[int]], n_new: Sequence[int], *, pad_id: int = 0, top_k: int = TOP_K,
                seed: int = 0, batch_size: int = 32) -> list[list[int]]:
    """Continuations of pre-tokenized ``prompts`` (row i: exactly ``n_new[i]`` tokens, no EOS stop) sampled from
    the top-``top_k`` next-token distribution renormalised, as ROME's ``generate_fast``; seeded (a
    ``torch.Generator`` on the CPU), so the same model gives the same texts."""
    out: list[list[int]] = [[] for _ in prompts]
    if not prompts:
        return out
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    ckw = cache_kwarg(model)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        steps = max(n_new[i] for i in idx)
        if steps <= 0:
            continue
        ids, mask = pad_left([prompts[i] for i in idx], pad_id)
        ids, mask = ids.to(device), mask.to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        res = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **keep_last_kwargs(model))
        picked = []
        for step in range(steps):
            probs = torch.softmax(res.logits[:, -1].float(), dim=-1)
            probs = torch.nan_to_num(probs, nan=0.0)  # a broken (NaN) model still yields a text to score
            top = torch.topk(probs, min(top_k, probs.shape[-1]), dim=-1)
            w = top.values.cpu()
            w = torch.where(w.sum(-1, keepdim=True) > 0, w, torch.ones_like(w))
            choice = torch.multinomial(w / w.sum(-1, keepdim=True), 1, generator=gen)
            nxt = top.indices.gather(1, choice.to(device))[:, 0]
            picked.append(nxt)
            if step == steps - 1:
                break
            mask = torch.cat([mask, mask.new_ones((len(idx), 1))], 1)
            pos = pos[:, -1:] + 1
            res = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos, use_cache=True,
                        **{ckw: output_cache(res)}, **keep_last_kwargs(model))
        rows = torch.stack(picked, 1).tolist()
        for r, i in enumerate(idx):
            out[i] = rows[r][:n_new[i]]
    return out


class GenerationEntropy:
    """``probe(model, tok) -> {"entropy": ..., "entropy_sampled": ...}``: ROME's n-gram entropy of greedy and of
    top-5-sampled generations from fixed ``prompts`` (each continued to ``max_len`` tokens with its prompt)."""

    def __init__(self, tok: Any, prompts: Sequence[str], max_len: int = MAX_LEN, sampled: bool = True, seed: int = 0,
                 batch_size: int = 32):
        if not prompts:
            raise ValueError("GenerationEntropy needs at least one prompt")
        self.tok, self.sampled, self.seed, self.batch_size = tok, sampled, seed, batch_size
        self.pad_id = pad_token_id(tok)
        self.ids = [encode_prefix(tok, p) for p in prompts]
        self.n_new = [max(1, max_len - len(p)) for p in self.ids]
        self.last_texts: dict[str, list[str]] = {}

    def texts(self, model, kind: str) -> list[str]:
        if kind == "greedy":
            # ROME's generations do not stop at EOS: a fixed length (no eos_ids)
            gen = greedy_generate(model, self.ids, self.n_new, pad_id=self.pad_id, batch_size=self.batch_size)
        else:
            gen = sample_topk(model, self.ids, self.n_new, pad_id=self.pad_id, seed=self.seed,
                              batch_size=self.batch_size)
        return [rome_text(self.tok, list(p) + list(g)) for p, g in zip(self.ids, gen)]

    def __call__(self, model, tok=None) -> dict[str, float]:
        out = {}
        for kind, key in (("greedy", "entropy"), ("sampled", "entropy_sampled")):
            if kind == "sampled" and not self.sampled:
                continue
            self.last_texts[key] = self.texts(model, kind)
            out[key] = mean_ngram_entropy(self.last_texts[key])
        return out


def entropy_prompts(pool: Sequence, stream: Sequence = (), n: int = 10, seed: int = 0) -> list[str]:
    """``n`` fixed prompts from records of ``pool`` whose subjects ``stream`` does not edit: a CounterFact
    record's first generation prompt (ROME's fluency prompts), else its rewrite prompt. Seeded."""
    edited = {r.subject.strip() for r in stream}
    free = [r for r in pool if r.subject.strip() not in edited] or list(pool)
    pick = random.Random(f"entropy-probe:{seed}").sample(free, min(n, len(free)))
    return [(r.generation_prompts[0] if r.generation_prompts else r.rewrite_prompt) for r in pick]


class EntropyProbe(Probe):
    """Generation entropy (ROME's fluency metric) of 10 fixed prompts, greedy and top-5 sampled, 100 tokens."""

    name = "entropy"
    metrics = {"entropy": "higher", "entropy_sampled": "higher"}
    N = 10

    @classmethod
    def build(cls, ctx: ProbeContext) -> "EntropyProbe | None":
        prompts = entropy_prompts(ctx.pool, ctx.stream, n=cls.N, seed=ctx.seed)
        if not prompts:
            ctx.notes.append(f"{cls.name}: no records to take prompts from")
            return None
        return cls(GenerationEntropy(ctx.tok, prompts, seed=ctx.seed))

    def __init__(self, inner: GenerationEntropy):
        self.inner = inner

    def run(self, model, tok) -> dict[str, float]:
        return self.inner(model, tok)
