"""Batched, padding-side-independent scoring of (prefix, target) pairs under teacher forcing.

The ROME/CounterFact convention: tokenize the prefix as the tokenizer normally does (BOS included where the
tokenizer adds one), tokenize ``" " + target`` without special tokens, concatenate the ids, and read the
log-probability of each target token at the position before it. The score of a pair is the **mean over target
tokens** of the negative log-likelihood; a pair is *correct* (argmax exact match) when every target token is the
argmax at its position, and its *token accuracy* (EasyEdit's convention) is the share of target tokens that are
the argmax at their position (teacher forcing: earlier target tokens given, whatever the model predicted).

Padding never depends on ``tok.padding_side``: sequences are right-padded by hand (``models.tokens.pad_right``),
so every real token sits at the same position with the same causal context whether the batch holds one pair or
many. The LM head is applied only at the positions that predict target tokens (a large-vocabulary head over the
whole sequence is most of the cost of scoring otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from editbench.models.head import trunk_and_head
from editbench.models.tokens import encode_prefix, encode_target, pad_right, pad_token_id


@dataclass
class TargetScores:
    """Per-pair results: ``nll`` (mean NLL over target tokens), ``correct`` (argmax exact match) and
    ``token_acc`` (share of target tokens that are the argmax at their position, teacher-forced)."""

    nll: torch.Tensor
    correct: torch.Tensor
    n_target_tokens: torch.Tensor
    token_acc: torch.Tensor | None = None

    @property
    def prob(self) -> torch.Tensor:
        """exp(−mean NLL): the per-token geometric-mean probability used for the magnitudes."""
        return torch.exp(-self.nll)


def encode_pair(tok, prefix: str, target: str) -> tuple[list[int], int]:
    """Ids of ``prefix + " " + target`` (ROME convention) and the number of prefix ids."""
    p = encode_prefix(tok, prefix)
    return p + encode_target(tok, target), len(p)


def _base_and_head(model):
    """The transformer trunk (with final norm) and the model's LM head (soft-capping included where it has one)."""
    return trunk_and_head(model)


@torch.no_grad()
def score_ids(model, encoded: Sequence[tuple[list[int], int]], pad_id: int = 0,
              batch_size: int = 64) -> TargetScores:
    """Score pre-tokenized pairs ``(ids, n_prefix)``; the target is ``ids[n_prefix:]``."""
    n = len(encoded)
    nll = torch.empty(n, dtype=torch.float32)
    correct = torch.empty(n, dtype=torch.bool)
    token_acc = torch.empty(n, dtype=torch.float32)
    ntok = torch.tensor([len(ids) - k for ids, k in encoded], dtype=torch.long)
    if n == 0:
        return TargetScores(nll, correct, ntok, token_acc)
    device = next(model.parameters()).device
    base, head = _base_and_head(model)
    # Sort by length so each batch carries little padding; results go back to input order.
    order = sorted(range(n), key=lambda i: len(encoded[i][0]))
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        ids, mask = pad_right([encoded[i][0] for i in idx], pad_id)
        rows, pos, tgt = [], [], []
        for r, i in enumerate(idx):
            seq, k = encoded[i]
            rows += [r] * (len(seq) - k)
            pos += range(k - 1, len(seq) - 1)
            tgt += seq[k:]
        out = base(input_ids=ids.to(device), attention_mask=mask.to(device))
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        h = hidden[torch.tensor(rows, device=device), torch.tensor(pos, device=device)]
        idx_t = torch.tensor(idx)
        nll[idx_t], correct[idx_t], token_acc[idx_t] = _per_target(head(h), torch.arange(len(tgt)), tgt,
                                                                   torch.tensor(rows), len(idx))
    return TargetScores(nll, correct, ntok, token_acc)


def _per_target(logits: torch.Tensor, at: torch.Tensor, tgt: Sequence[int], owner: torch.Tensor, n: int):
    """(mean NLL, argmax exact match, token accuracy) of ``n`` targets from the LM-head ``logits`` of the scored
    positions: target token j is read at row ``at[j]`` of ``logits``, must be ``tgt[j]`` and belongs to target
    ``owner[j]`` (0..n-1)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    at_d = at.to(logp.device)
    tgt_t = torch.tensor(tgt, device=logp.device)
    tok_nll = -logp[at_d, tgt_t].cpu()
    tok_ok = (logp.argmax(-1)[at_d] == tgt_t).cpu()
    sums = torch.zeros(n).index_add_(0, owner, tok_nll)
    oks = torch.zeros(n, dtype=torch.long).index_add_(0, owner, tok_ok.long())
    counts = torch.bincount(owner, minlength=n)
    return sums / counts, oks == counts, oks.float() / counts


def _branch_rows(prefix: list[int], branches: Sequence[list[int]]):
    """One packed row for a prefix shared by several targets: ``prefix + b[:-1]`` for each branch ``b`` (a target's
    last token is never an input), with each token's position id, its segment (-1 = the shared prefix, else the
    branch index) and, per branch, the row indices whose outputs predict its tokens."""
    k = len(prefix)
    ids, pos, seg = list(prefix), list(range(k)), [-1] * k
    reads = []
    for b, tgt in enumerate(branches):
        start = len(ids)
        ids += tgt[:-1]
        pos += range(k, k + len(tgt) - 1)
        seg += [b] * (len(tgt) - 1)
        reads.append([k - 1] + list(range(start, start + len(tgt) - 1)))
    return ids, pos, seg, reads


def _tree_mask(segs: Sequence[Sequence[int]], width: int, dtype, device) -> torch.Tensor:
    """Additive (B, 1, width, width) mask: a token sees the earlier tokens of the shared prefix and of its own
    branch; a padding slot sees only itself (so no attention row is empty)."""
    seg = torch.full((len(segs), width), -2, dtype=torch.long)
    for r, s in enumerate(segs):
        seg[r, :len(s)] = torch.tensor(s, dtype=torch.long)
    i = torch.arange(width)
    causal = i[None, :] <= i[:, None]
    same = (seg[:, None, :] == -1) | (seg[:, None, :] == seg[:, :, None])
    real = seg >= -1
    allowed = causal & same & real[:, None, :] & real[:, :, None]
    allowed |= torch.eye(width, dtype=torch.bool)[None]
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None].to(device)


@torch.no_grad()
def score_branches(model, groups: Sequence[tuple[list[int], Sequence[list[int]]]], pad_id: int = 0,
                   batch_size: int = 64) -> TargetScores:
    """Score several targets that share one prefix, running the prefix once: ``groups`` = [(prefix ids,
    [target ids, ...]), ...]; results in the order (group 0 target 0, group 0 target 1, ..., group 1 target 0, ...),
    the same numbers as :func:`score_ids` on the pairs ``(prefix + target, len(prefix))`` up to float rounding.

    Each group is one packed row, ``prefix + t0[:-1] + t1[:-1] + ...``, with position ids that restart after the
    prefix for every target and an attention mask under which a target's tokens see the prefix and their own
    earlier tokens only: the forward pass covers each distinct token once (the prefix once, not once per target).
    """
    flat = [(g, b) for g, (_p, ts) in enumerate(groups) for b in range(len(ts))]
    n = len(flat)
    nll = torch.empty(n, dtype=torch.float32)
    correct = torch.empty(n, dtype=torch.bool)
    token_acc = torch.empty(n, dtype=torch.float32)
    ntok = torch.tensor([len(groups[g][1][b]) for g, b in flat], dtype=torch.long)
    if n == 0:
        return TargetScores(nll, correct, ntok, token_acc)
    first = [0]
    for _p, ts in groups:
        first.append(first[-1] + len(ts))
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    base, head = _base_and_head(model)
    packed = []
    for prefix, ts in groups:
        if not prefix:
            raise ValueError("score_branches needs a non-empty prefix")
        if any(not t for t in ts):
            raise ValueError("score_branches: a target has no tokens")
        packed.append(_branch_rows(list(prefix), [list(t) for t in ts]))
    order = sorted(range(len(groups)), key=lambda g: len(packed[g][0]))
    for start in range(0, len(order), batch_size):
        gidx = order[start:start + batch_size]
        ids, _ = pad_right([packed[g][0] for g in gidx], pad_id)
        width = ids.shape[1]
        pos = torch.zeros_like(ids)
        for r, g in enumerate(gidx):
            p = packed[g][1]
            pos[r, :len(p)] = torch.tensor(p)
        mask = _tree_mask([packed[g][2] for g in gidx], width, dtype, device)
        rows, cols, tgt, owner, slots = [], [], [], [], []
        for r, g in enumerate(gidx):
            for b, (read, t) in enumerate(zip(packed[g][3], groups[g][1])):
                rows += [r] * len(t)
                cols += read
                tgt += list(t)
                owner += [len(slots)] * len(t)
                slots.append(first[g] + b)
        out = base(input_ids=ids.to(device), attention_mask=mask, position_ids=pos.to(device))
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        # every target's first token is read at the prompt's last position: the LM head runs once per position
        where, at = torch.unique(torch.tensor(rows) * width + torch.tensor(cols), return_inverse=True)
        h = hidden.reshape(-1, hidden.shape[-1])[where.to(device)]
        slots_t = torch.tensor(slots)
        nll[slots_t], correct[slots_t], token_acc[slots_t] = _per_target(head(h), at, tgt, torch.tensor(owner),
                                                                         len(slots))
    return TargetScores(nll, correct, ntok, token_acc)


@torch.no_grad()
def score_targets(model, tok, prefixes: Sequence[str], targets: Sequence[str],
                  batch_size: int = 64) -> TargetScores:
    """Mean target NLL and argmax exact match of each ``(prefix, target)`` pair, batched."""
    if len(prefixes) != len(targets):
        raise ValueError(f"{len(prefixes)} prefixes but {len(targets)} targets")
    encoded = [encode_pair(tok, p, t) for p, t in zip(prefixes, targets)]
    return score_ids(model, encoded, pad_id=pad_token_id(tok), batch_size=batch_size)


@torch.no_grad()
def score_targets_one_by_one(model, tok, prefixes: Sequence[str], targets: Sequence[str]) -> TargetScores:
    """Reference implementation: one full forward per pair, logits over the whole sequence. For tests/benchmarks."""
    nll, correct, ntok, acc = [], [], [], []
    device = next(model.parameters()).device
    for p, t in zip(prefixes, targets):
        seq, k = encode_pair(tok, p, t)
        logits = model(input_ids=torch.tensor([seq], device=device)).logits[0].float()
        logp = torch.log_softmax(logits[k - 1:len(seq) - 1], dim=-1)
        tgt = torch.tensor(seq[k:], device=device)
        nll.append(float(-logp.gather(1, tgt[:, None]).mean()))
        correct.append(bool((logp.argmax(-1) == tgt).all()))
        acc.append(float((logp.argmax(-1) == tgt).float().mean()))
        ntok.append(len(seq) - k)
    return TargetScores(torch.tensor(nll), torch.tensor(correct), torch.tensor(ntok), torch.tensor(acc))

