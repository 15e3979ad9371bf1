"""Model-health probes run at checkpoints of a sequential run: is the edited model still a language model?

A health probe is any callable ``probe(model, tok) -> dict[str, float]``; the registered probes of
:mod:`editbench.metrics.probes` wrap these two:

- :class:`PerplexityProbe` — held-out perplexity on given generic texts (``{"ppl": ...}``): token-weighted
  mean NLL over every next-token prediction, exponentiated. Texts are tokenized once.
- :class:`RecallProbe` — recall of a fixed sample of facts the run does *not* edit (``{"recall": ...}``): the
  share of (prompt, answer) pairs whose answer is the argmax exact match under teacher forcing. The fact world's
  own evaluator can be passed instead; anything with the probe signature plugs in.

:func:`combine` runs several probes and merges their dicts. Direction convention used by collapse detection and
plots when a run's probes did not declare directions (:func:`lower_is_better`): keys named ``ppl``/``*_ppl``/``*nll``/``*loss`` are better when lower, every
other key (recall, accuracy, F1...) is better when higher.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from editbench.models.tokens import pad_token_id
from editbench.metrics.scoring import encode_pair, score_ids

HealthProbe = Callable[[torch.nn.Module, object], dict]


def lower_is_better(key: str) -> bool:
    k = key.lower()
    return k == "ppl" or k.endswith("_ppl") or k.endswith("nll") or k.endswith("loss")


class PerplexityProbe:
    """Perplexity of ``texts`` (each cut to ``max_length`` tokens); the LM head runs only on real positions."""

    def __init__(self, tok, texts: Sequence[str], max_length: int = 128, batch_size: int = 8, key: str = "ppl"):
        self.key = key
        self.batch_size = batch_size
        self.pad_id = pad_token_id(tok)
        self.ids = [list(tok(t)["input_ids"])[:max_length] for t in texts]
        self.ids = [s for s in self.ids if len(s) >= 2]
        if not self.ids:
            raise ValueError("PerplexityProbe needs at least one text of 2+ tokens")

    @torch.no_grad()
    def __call__(self, model, tok=None) -> dict[str, float]:
        device = next(model.parameters()).device
        base, head = model.base_model, model.get_output_embeddings()
        total, count = 0.0, 0
        for start in range(0, len(self.ids), self.batch_size):
            chunk = self.ids[start:start + self.batch_size]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, s in enumerate(chunk):
                ids[r, :len(s)] = torch.tensor(s)
                mask[r, :len(s)] = 1
            out = base(input_ids=ids.to(device), attention_mask=mask.to(device))
            hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            # positions 0..len-2 predict tokens 1..len-1
            pred_mask = mask[:, 1:].bool()
            h = hidden[:, :-1][pred_mask.to(device)]
            tgt = ids[:, 1:][pred_mask].to(device)
            logp = torch.log_softmax(head(h).float(), dim=-1)
            total += float(-logp.gather(1, tgt[:, None]).sum())
            count += int(tgt.numel())
        nll = total / count
        return {self.key: math.exp(nll) if nll < 700 else float("inf")}


class RecallProbe:
    """Share of fixed ``(prompt, answer)`` facts still answered by argmax exact match (one batched pass)."""

    def __init__(self, tok, prompts: Sequence[str], answers: Sequence[str], key: str = "recall",
                 batch_size: int = 64):
        if len(prompts) != len(answers) or not prompts:
            raise ValueError("RecallProbe needs equally many (at least one) prompts and answers")
        self.key = key
        self.batch_size = batch_size
        self.pad_id = pad_token_id(tok)
        self.encoded = [encode_pair(tok, p, a) for p, a in zip(prompts, answers)]

    def __call__(self, model, tok=None) -> dict[str, float]:
        s = score_ids(model, self.encoded, pad_id=self.pad_id, batch_size=self.batch_size)
        return {self.key: float(s.correct.float().mean())}

    @classmethod
    def unedited(cls, tok, pool: Sequence, stream: Sequence, n: int = 200, seed: int = 0,
                 key: str = "recall") -> "RecallProbe":
        """Recall of ``target_true`` after the rewrite prompt for a seeded sample of ``n`` requests of ``pool``
        whose subjects ``stream`` never edits (the unedited facts of a run)."""
        import random
        edited = {r.subject.strip() for r in stream}
        free = [r for r in pool if r.target_true is not None and r.subject.strip() not in edited]
        if not free:
            raise ValueError("every subject of the pool is edited: no unedited facts to probe")
        pick = random.Random(f"recall-probe:{seed}").sample(free, min(n, len(free)))
        return cls(tok, [r.rewrite_prompt for r in pick], [r.target_true for r in pick], key=key)


def combine(*probes: HealthProbe) -> HealthProbe:
    """One probe that runs all of ``probes`` and merges their dicts (later keys win on a clash)."""
    def probe(model, tok) -> dict:
        out: dict = {}
        for p in probes:
            out.update(p(model, tok))
        return out
    return probe
