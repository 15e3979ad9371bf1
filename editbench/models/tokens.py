"""Tokenization helpers shared by the editors (FT, ROME, MEMIT, ...).

Two conventions from the ROME code base are fixed here once, so every editor agrees with the scorer:

* **prompt + target.** A target ``t`` after a prefix ``p`` is the token sequence
  ``encode(p) + encode(" " + t, no special tokens)``: the prefix keeps the tokenizer's usual leading special
  tokens (Llama's BOS), the target never gets any. Target token ``j`` (0-based) sits at position
  ``len(encode(p)) + j`` and is *predicted* by the logits at position ``len(encode(p)) + j - 1`` (teacher forcing).
* **right padding, always.** We pad by hand on the right whatever ``tok.padding_side`` says (Llama tokenizers pad
  left; GPT-2's has no pad token at all), so the position of a token is the same in a batch as alone and every
  index computed on the unpadded sequence stays valid. Pad ids are arbitrary (masked out by the attention mask).

``subject_last_token_index`` finds the last token of the subject inside a filled prompt, the position where ROME
and MEMIT read keys and insert values. It works on the real tokenization of the *whole* prompt (character offsets
of a fast tokenizer), so BPE merges across the subject boundary and a leading BOS cannot shift it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------------------
# encoding
# ----------------------------------------------------------------------------------------------------------
def pad_token_id(tok: Any) -> int:
    """Any valid id to pad with (it is always masked): the pad token, else EOS, else 0."""
    for tid in (getattr(tok, "pad_token_id", None), getattr(tok, "eos_token_id", None)):
        if tid is not None:
            return int(tid)
    return 0


def encode_prefix(tok: Any, text: str) -> list[int]:
    """Token ids of ``text`` with the tokenizer's *leading* special tokens (e.g. BOS) and no trailing ones.

    A tokenizer configured to append EOS would put it between a prompt and its continuation; we keep whatever it
    adds in front of the text and drop what it adds after.
    """
    full = list(tok(text)["input_ids"])
    plain = list(tok(text, add_special_tokens=False)["input_ids"])
    n = len(plain)
    for start in range(len(full) - n + 1):
        if full[start:start + n] == plain:
            return full[:start] + plain
    return full  # the special-token wrapping changed the text's own tokens; trust the full encoding


def encode_target(tok: Any, target: str) -> list[int]:
    """Token ids of ``" " + target`` without special tokens (the ROME/CounterFact convention).

    A target that already starts with spaces gets exactly one (as :mod:`editbench.metrics.scoring` does).
    """
    ids = list(tok(" " + target.lstrip(" "), add_special_tokens=False)["input_ids"])
    if not ids:
        raise ValueError(f"target {target!r} tokenizes to nothing")
    return _drop_stray_space(tok, ids)


SP_SPACE = "\u2581"  # SentencePiece's word-start marker


def _drop_stray_space(tok: Any, ids: list[int]) -> list[int]:
    """A SentencePiece tokenizer in Llama-2's legacy mode prepends its own word-start marker to the text, so
    ``" Paris"`` becomes ``["▁", "▁Paris"]``; after a prompt the same target is ``["▁Paris"]``. Drop such a bare
    leading marker when the next token starts a word itself (GPT-2-style BPE, e.g. SmolLM2, never yields one)."""
    if len(ids) < 2 or not hasattr(tok, "convert_ids_to_tokens"):
        return ids
    first, second = tok.convert_ids_to_tokens(ids[:2])
    if first == SP_SPACE and isinstance(second, str) and second.startswith(SP_SPACE):
        return ids[1:]
    return ids


def pad_left(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad id lists into ``(input_ids, attention_mask)``, both ``long`` of shape (B, max_len) — the mirror
    of :func:`pad_right`, independent of ``tok.padding_side``."""
    return _pad(seqs, pad_id, left=True)


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into ``(input_ids, attention_mask)``, both ``long`` of shape (B, max_len)."""
    return _pad(seqs, pad_id, left=False)


def _pad(seqs: Sequence[Sequence[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not seqs:
        raise ValueError("nothing to pad")
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            cols = slice(width - len(s), width) if left else slice(0, len(s))
            ids[i, cols] = torch.tensor(list(s), dtype=torch.long)
            mask[i, cols] = 1
    return ids, mask


# ----------------------------------------------------------------------------------------------------------
# prompt + target (teacher forcing)
# ----------------------------------------------------------------------------------------------------------
@dataclass
class PromptTargetBatch:
    """A right-padded batch of ``prompt + " " + target`` sequences with the positions that score the target.

    ``target_ids[b, j]`` is target token ``j`` of row ``b`` (valid where ``target_mask``); it is predicted by
    ``logits[b, target_pos[b, j]]``. ``prompt_lens[b]`` counts the prefix tokens, special tokens included.
    """

    input_ids: torch.Tensor       # (B, L) long
    attention_mask: torch.Tensor  # (B, L) long
    prompt_lens: torch.Tensor     # (B,) long
    target_ids: torch.Tensor      # (B, T) long
    target_pos: torch.Tensor      # (B, T) long
    target_mask: torch.Tensor     # (B, T) bool

    def to(self, device: torch.device | str) -> "PromptTargetBatch":
        return PromptTargetBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def model_inputs(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def tokenize_prompt_target(tok: Any, prompts: Sequence[str], targets: Sequence[str]) -> PromptTargetBatch:
    """Build the teacher-forcing batch for ``prompts[i] + " " + targets[i]`` (see the module docstring)."""
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets")
    prefixes = [encode_prefix(tok, p) for p in prompts]
    tgts = [encode_target(tok, t) for t in targets]
    if any(len(p) == 0 for p in prefixes):
        raise ValueError("an empty prompt leaves no position to predict the first target token from")
    input_ids, attention_mask = pad_right([p + t for p, t in zip(prefixes, tgts)], pad_token_id(tok))
    n_tgt = max(len(t) for t in tgts)
    target_ids = torch.zeros((len(tgts), n_tgt), dtype=torch.long)
    target_pos = torch.zeros((len(tgts), n_tgt), dtype=torch.long)
    target_mask = torch.zeros((len(tgts), n_tgt), dtype=torch.bool)
    for b, (p, t) in enumerate(zip(prefixes, tgts)):
        target_ids[b, :len(t)] = torch.tensor(t, dtype=torch.long)
        target_pos[b, :len(t)] = torch.arange(len(p) - 1, len(p) - 1 + len(t))
        target_mask[b, :len(t)] = True
    prompt_lens = torch.tensor([len(p) for p in prefixes], dtype=torch.long)
    return PromptTargetBatch(input_ids, attention_mask, prompt_lens, target_ids, target_pos, target_mask)


def target_log_probs(logits: torch.Tensor, batch: PromptTargetBatch) -> torch.Tensor:
    """log p(target token j | prefix, earlier target tokens): (B, T), zero where ``target_mask`` is False."""
    rows = torch.arange(logits.shape[0], device=logits.device)[:, None]
    picked = logits[rows, batch.target_pos]                      # (B, T, V): only the positions we score
    logp = F.log_softmax(picked.float(), dim=-1)
    lp = logp.gather(-1, batch.target_ids[..., None]).squeeze(-1)
    return lp * batch.target_mask


def target_nll(logits: torch.Tensor, batch: PromptTargetBatch) -> torch.Tensor:
    """Mean negative log-likelihood per target token, one value per row: (B,)."""
    return -target_log_probs(logits, batch).sum(-1) / batch.target_mask.sum(-1)


def target_argmax_correct(logits: torch.Tensor, batch: PromptTargetBatch) -> torch.Tensor:
    """True where *every* target token is the argmax under teacher forcing: (B,) bool."""
    rows = torch.arange(logits.shape[0], device=logits.device)[:, None]
    hit = logits[rows, batch.target_pos].argmax(-1) == batch.target_ids
    return (hit | ~batch.target_mask).all(-1)


# ----------------------------------------------------------------------------------------------------------
# where is the subject?
# ----------------------------------------------------------------------------------------------------------
def fill_template(prompt_template: str, subject: str) -> tuple[str, int, int]:
    """Put ``subject`` into the first ``{}`` of the template; return (text, subject_start, subject_end) in chars.

    Splicing (not ``str.format``) keeps any other braces in the template literal.
    """
    at = prompt_template.find("{}")
    if at < 0:
        raise ValueError(f"prompt template {prompt_template!r} has no '{{}}' for the subject")
    text = prompt_template[:at] + subject + prompt_template[at + 2:]
    return text, at, at + len(subject)


def subject_last_token_index(tok: Any, prompt_template: str, subject: str) -> int:
    """Index of the last subject token in ``encode_prefix(tok, template filled with subject)``.

    Leading special tokens (BOS) are counted, so the index addresses the ids the model actually sees (and, with
    right padding, the same row of a batch). With a fast tokenizer this is the last token whose character span
    starts before the subject ends; slow tokenizers fall back to ROME's rule, the length of the encoded text up
    to the end of the subject minus one.
    """
    text, s0, s1 = fill_template(prompt_template, subject)
    if not subject:
        raise ValueError("empty subject")
    if getattr(tok, "is_fast", False):
        enc = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        n_keep = len(encode_prefix(tok, text))  # drop trailing special tokens, as the editors do
        best = None
        for i, ((a, b), special) in enumerate(zip(enc["offset_mapping"][:n_keep], enc["special_tokens_mask"][:n_keep])):
            if special or b <= a:
                continue
            if a < s1 and b > s0:  # this token overlaps the subject
                best = i
        if best is None:
            raise ValueError(f"no token of {text!r} covers the subject {subject!r}")
        return best
    return len(encode_prefix(tok, text[:s1])) - 1

