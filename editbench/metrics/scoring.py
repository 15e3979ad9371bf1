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
    """The transformer trunk (with final norm) and the output projection of a causal LM."""
    return model.base_model, model.get_output_embeddings()


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
        logp = torch.log_softmax(head(h).float(), dim=-1)
        tgt_t = torch.tensor(tgt, device=device)
        tok_nll = -logp.gather(1, tgt_t[:, None]).squeeze(1).cpu()
        tok_ok = (logp.argmax(-1) == tgt_t).cpu()
        owner_t = torch.tensor(rows)
        sums = torch.zeros(len(idx)).index_add_(0, owner_t, tok_nll)
        oks = torch.zeros(len(idx), dtype=torch.long).index_add_(0, owner_t, tok_ok.long())
        counts = torch.bincount(owner_t, minlength=len(idx))
        idx_t = torch.tensor(idx)
        nll[idx_t] = sums / counts
        correct[idx_t] = oks == counts
        token_acc[idx_t] = oks.float() / counts
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

