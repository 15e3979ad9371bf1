"""Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT", Sec. 2) for one fact.

Three runs of the model on a fact prompt such as "The mother tongue of Danielle Darrieux is" → " French":

1. **clean**: the plain prompt; we record the states we may restore and p_clean = p(answer's first token).
2. **corrupted**: Gaussian noise N(0, σ²) is added to the *input embeddings of the subject's tokens* (the token
   embedding module's output; GPT-2's position embeddings are added after it, untouched), so the model can no
   longer tell who the subject is: p drops to p_corrupted. ``n_samples`` noise draws per fact, p averaged over
   them (ROME: 10). The draws come from a ``torch.Generator`` seeded with ``seed`` and are the same for every
   restored run of the fact, so differences between restorations are never noise.
3. **restored**: the corrupted run again, but at layer l and token position t one state is put back to its clean
   value: ``"hidden"`` the block's output (residual stream), ``"mlp"`` the MLP output projection's output,
   ``"attn"`` the attention module's output. For ``"mlp"`` and ``"attn"`` ROME restores a *window* of layers
   around l: ``range(max(0, l - w//2), min(L, l - (-w//2)))`` (w = 10: layers l-5 … l+4); ``"hidden"`` restores
   one layer (the residual stream already carries everything below it).

The **indirect effect** of (l, t) is p_restored − p_corrupted; the total effect is p_clean − p_corrupted.

Batching. One fact's restorations are independent, so a forward pass carries many of them: a *patch set* (a list
of (layer, position) pairs) takes ``n_samples`` rows, rows of all patch sets are stacked (at most ``max_rows``
per forward), every row gets the same noise, and one forward hook per patched module writes the clean state into
exactly its rows and positions with one indexed assignment. The clean states come from a separate batch-1 run.
Hooks go on the modules the :class:`~editbench.models.adapter.ModelAdapter` names; a block returning a tuple
(transformers < 5, some families) or a tensor (transformers 5) is handled either way.
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch

from editbench.models.hooks import hidden_of, with_hidden
from editbench.models.tokens import encode_prefix, encode_target

KINDS = ("hidden", "mlp", "attn")


@dataclass(frozen=True)
class TraceFact:
    """A prompt containing ``subject`` whose next token should be the first token of ``" " + answer``."""

    prompt: str
    subject: str
    answer: str
    case_id: str = ""


def as_trace_fact(fact: Any) -> TraceFact:
    """A :class:`TraceFact` from a TraceFact, a known_1000 :class:`~editbench.data.known.KnownFact` (prompt,
    attribute) or an :class:`~editbench.data.schema.EditRequest` (the filled rewrite prompt, ``target_true``)."""
    if isinstance(fact, TraceFact):
        return fact
    if hasattr(fact, "attribute") and hasattr(fact, "prompt"):  # KnownFact
        return TraceFact(fact.prompt, fact.subject, fact.attribute, str(fact.case_id))
    if hasattr(fact, "rewrite_prompt"):  # EditRequest: the true fact it would overwrite
        if not fact.target_true:
            raise ValueError(f"record {fact.case_id!r} has no target_true: nothing the model should already know")
        return TraceFact(fact.rewrite_prompt, fact.subject, fact.target_true, str(fact.case_id))
    raise TypeError(f"cannot trace a {type(fact).__name__}: need prompt/subject/answer")


# ----------------------------------------------------------------------------------------------------------
# tokens
# ----------------------------------------------------------------------------------------------------------
def subject_token_range(tok: Any, prompt: str, subject: str) -> tuple[int, int]:
    """[start, end) of the tokens of ``encode_prefix(tok, prompt)`` that overlap the first occurrence of
    ``subject`` (leading special tokens such as BOS counted). ``end - 1`` is the subject's last token, the same
    position as :func:`editbench.models.tokens.subject_last_token_index`."""
    s0 = prompt.find(subject)
    if s0 < 0 or not subject:
        raise ValueError(f"subject {subject!r} does not occur in prompt {prompt!r}")
    s1 = s0 + len(subject)
    n_keep = len(encode_prefix(tok, prompt))
    if getattr(tok, "is_fast", False):
        enc = tok(prompt, return_offsets_mapping=True, return_special_tokens_mask=True)
        spans = zip(enc["offset_mapping"][:n_keep], enc["special_tokens_mask"][:n_keep])
        hit = [i for i, ((a, b), sp) in enumerate(spans) if not sp and b > a and a < s1 and b > s0]
    else:
        return range_by_decoding(tok, encode_prefix(tok, prompt), subject)
    if not hit:
        raise ValueError(f"no token of {prompt!r} covers the subject {subject!r}")
    return hit[0], hit[-1] + 1


def range_by_decoding(tok: Any, ids: Sequence[int], subject: str) -> tuple[int, int]:
    """ROME's ``find_token_range`` (for tokenizers without character offsets): decode token by token, find the
    subject in the concatenation, return the tokens whose decoded characters overlap it."""
    pieces = [tok.decode([i]) for i in ids]
    at = "".join(pieces).find(subject)
    if at < 0:
        raise ValueError(f"subject {subject!r} not found in the decoded tokens {pieces!r}")
    start = end = None
    loc = 0
    for i, piece in enumerate(pieces):
        loc += len(piece)
        if start is None and loc > at:
            start = i
        if end is None and loc >= at + len(subject):
            end = i + 1
            break
    return start, end


@dataclass
class Encoded:
    """A fact as the model sees it."""

    ids: list[int]
    subject: tuple[int, int]  # [start, end) token range
    answer_id: int

    @property
    def subject_last(self) -> int:
        return self.subject[1] - 1

    @property
    def last(self) -> int:
        return len(self.ids) - 1


def encode_fact(tok: Any, fact: TraceFact) -> Encoded:
    return Encoded(encode_prefix(tok, fact.prompt), subject_token_range(tok, fact.prompt, fact.subject),
                   encode_target(tok, fact.answer)[0])


# ----------------------------------------------------------------------------------------------------------
# noise
# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def embedding_std(lm, subjects: Sequence[str] | None = None) -> float:
    """Standard deviation of the token embeddings the model sees — the embedding module's *output*, where the noise
    is added (Gemma scales its embeddings by sqrt(d) inside the module; elsewhere output = weight rows): over the
    tokens of ``subjects`` (ROME's ``collect_embedding_std``: each subject encoded alone, all its token embeddings
    pooled) or, with no subjects, over the whole embedding matrix (times that scale)."""
    emb = lm.adapter.embed
    w = emb.weight
    if not subjects:
        probe = torch.tensor([0], device=w.device)
        row = w[probe].float().norm()
        scale = float(emb(probe).float().norm() / row) if float(row) > 0 else 1.0
        return float(w.float().std()) * scale
    ids = [i for s in subjects for i in lm.tok(s, add_special_tokens=False)["input_ids"]]
    return float(emb(torch.tensor(ids, device=w.device)).float().std())


def make_noise(n_samples: int, n_tokens: int, dim: int, std: float, seed: int) -> torch.Tensor:
    """(n_samples, n_tokens, dim) Gaussian noise of standard deviation ``std`` from a generator seeded ``seed``."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(n_samples, n_tokens, dim, generator=g) * std


# ----------------------------------------------------------------------------------------------------------
# hooks
# ----------------------------------------------------------------------------------------------------------
def traced_module(adapter, kind: str, layer: int) -> torch.nn.Module:
    """The module whose output a restoration of ``kind`` at ``layer`` replaces."""
    if kind == "hidden":
        return adapter.block(layer)
    if kind == "mlp":
        return adapter.mlp_out(layer)
    if kind == "attn":
        return adapter.attn(layer)
    raise ValueError(f"unknown trace kind {kind!r}; expected one of {KINDS}")


def window_layers(layer: int, n_layers: int, kind: str, window: int) -> list[int]:
    """The layers a restoration "at ``layer``" restores (ROME's window; one layer for ``hidden``)."""
    if kind == "hidden" or window <= 1:
        return [layer]
    return list(range(max(0, layer - window // 2), min(n_layers, layer - (-window // 2))))


@contextmanager
def _hooks(pairs: Sequence[tuple[torch.nn.Module, Any]]) -> Iterator[None]:
    handles = [m.register_forward_hook(fn) for m, fn in pairs]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _keep_last_kwargs(model) -> dict:
    """Ask for last-position logits only when the model's forward supports it (saves the LM head elsewhere)."""
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}


@torch.no_grad()
def clean_run(lm, enc: Encoded, kind: str) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """The clean forward: (last-position probabilities (V,), {layer: clean output of ``kind`` (T, d)})."""
    model, adapter = lm.model, lm.adapter
    states: dict[int, torch.Tensor] = {}

    def recorder(layer):
        def fn(_m, _i, out):
            states[layer] = hidden_of(out)[0].detach().clone()
        return fn

    dev = next(model.parameters()).device
    ids = torch.tensor([enc.ids], device=dev)
    with _hooks([(traced_module(adapter, kind, l), recorder(l)) for l in range(adapter.n_layers)]):
        logits = model(input_ids=ids, use_cache=False).logits
    return torch.softmax(logits[0, -1].float(), -1), states


@torch.no_grad()
def restored_probs(lm, enc: Encoded, kind: str, clean: dict[int, torch.Tensor], noise: torch.Tensor | None,
                   patch_sets: Sequence[Sequence[tuple[int, int]]], max_rows: int = 256) -> torch.Tensor:
    """p(answer) averaged over the noise samples, one value per patch set: (len(patch_sets),).

    ``noise`` (S, subject tokens, d) is added to the subject's token embeddings in every row (None: no
    corruption); patch set k restores ``clean[layer][position]`` for each of its (layer, position) pairs in its
    S rows. An empty patch set gives p_corrupted.
    """
    model, adapter = lm.model, lm.adapter
    dev = next(model.parameters()).device
    S = 1 if noise is None else noise.shape[0]
    per_fwd = max(1, max_rows // S)
    s0, s1 = enc.subject
    kw = _keep_last_kwargs(model)
    out = []
    for c0 in range(0, len(patch_sets), per_fwd):
        chunk = patch_sets[c0:c0 + per_fwd]
        B = len(chunk) * S
        where: dict[int, tuple[list[int], list[int]]] = {}  # layer -> (rows, positions)
        for k, patches in enumerate(chunk):
            for layer, pos in patches:
                rows, poss = where.setdefault(layer, ([], []))
                rows.extend(range(k * S, (k + 1) * S))
                poss.extend([pos] * S)

        def embed_hook(_m, _i, o, _B=B):
            if noise is None:
                return o
            o = o.clone()
            o[:, s0:s1] += noise.to(o.device, o.dtype).repeat(_B // S, 1, 1)
            return o

        def restorer(layer, rows, poss):
            r = torch.tensor(rows, device=dev)
            p = torch.tensor(poss, device=dev)

            def fn(_m, _i, o):
                h = hidden_of(o).clone()
                h[r, p] = clean[layer][p].to(h.dtype)
                return with_hidden(o, h)
            return fn

        pairs = [(adapter.embed, embed_hook)]
        pairs += [(traced_module(adapter, kind, l), restorer(l, *rp)) for l, rp in where.items()]
        ids = torch.tensor([enc.ids], device=dev).expand(B, -1)
        with _hooks(pairs):
            logits = model(input_ids=ids, use_cache=False, **kw).logits[:, -1]
        p = torch.softmax(logits.float(), -1)[:, enc.answer_id]
        out.append(p.view(len(chunk), S).mean(1).cpu())
    return torch.cat(out) if out else torch.zeros(0)
