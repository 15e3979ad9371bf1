"""CounterFact metrics (ROME convention): efficacy, paraphrase, neighborhood scores and magnitudes.

For one request, with NLL = mean per-token target NLL (see :mod:`editbench.metrics.scoring`):

- ES (efficacy score)      = mean over rewrite prompts     of [NLL(true) > NLL(new)]
- PS (paraphrase score)    = mean over paraphrase prompts  of [NLL(true) > NLL(new)]
- NS (neighborhood score)  = mean over neighborhood prompts of [NLL(true) < NLL(new)]
- EM / PM (magnitudes)     = mean of P(new) − P(true) on rewrite / paraphrase prompts
- NM                       = mean of P(true) − P(new) on neighborhood prompts (ROME paper, Meng et al. 2022a,
  Sec. 3.3: "the difference P[o^c] − P[o*]" — positive is good, like NS; ALGORITHMS.md's one-line summary
  writes new − true for all three, the paper wins)
- es_correct / ps_correct  = share of rewrite / paraphrase prompts whose target_new is the argmax exact match
  (the seed paper's forgetting curve uses this one); ns_correct = share of neighborhood prompts still answering
  target_true by argmax.

P = exp(−mean NLL). Records are averaged first, then the mean over records is taken (:func:`aggregate`).
"Score" is the harmonic mean of ES, PS and NS.
"""
from __future__ import annotations

import math
from statistics import mean
from typing import Sequence

from editbench.data.schema import EditRequest
from editbench.metrics.scoring import encode_pair, score_ids, score_targets
from editbench.models.tokens import pad_token_id

METRICS = ("es", "ps", "ns", "em", "pm", "nm", "es_correct", "ps_correct", "ns_correct")


def probe_pairs(req: EditRequest) -> list[tuple[str, str, str]]:
    """(kind, prompt, target) triples scored for one request; kind in rewrite/paraphrase/neighborhood × new/true."""
    pairs = []
    kinds = (("rewrite", [req.rewrite_prompt]), ("paraphrase", list(req.paraphrase_prompts)),
             ("neighborhood", list(req.neighborhood_prompts)))
    for kind, prompts in kinds:
        for p in prompts:
            pairs.append((f"{kind}:new", p, req.target_new))
            if req.target_true is not None:
                pairs.append((f"{kind}:true", p, req.target_true))
    return pairs


def _metrics_from(pairs, nll, correct) -> dict:
    by: dict[str, list[tuple[float, bool]]] = {}
    for (kind, _p, _t), n, c in zip(pairs, nll, correct):
        by.setdefault(kind, []).append((float(n), bool(c)))
    out: dict[str, float | None] = {}
    for kind, short in (("rewrite", "e"), ("paraphrase", "p"), ("neighborhood", "n")):
        new = by.get(f"{kind}:new", [])
        true = by.get(f"{kind}:true", [])
        if new and true:
            if kind == "neighborhood":
                out["ns"] = mean(float(t[0] < n[0]) for n, t in zip(new, true))
                out["nm"] = mean(math.exp(-t[0]) - math.exp(-n[0]) for n, t in zip(new, true))
            else:
                out[f"{short}s"] = mean(float(t[0] > n[0]) for n, t in zip(new, true))
                out[f"{short}m"] = mean(math.exp(-n[0]) - math.exp(-t[0]) for n, t in zip(new, true))
        else:
            out.setdefault("ns" if kind == "neighborhood" else f"{short}s", None)
            out.setdefault("nm" if kind == "neighborhood" else f"{short}m", None)
        if kind == "neighborhood":
            out["ns_correct"] = mean(float(t[1]) for t in true) if true else None
        else:
            out[f"{short}s_correct"] = mean(float(n[1]) for n in new) if new else None
    return out


def score_requests(model, tok, requests: Sequence[EditRequest], batch_size: int = 64) -> list[dict]:
    """Score every request's probes in one batched pass; one metrics dict per request (keys: METRICS)."""
    all_pairs, spans = [], []
    for req in requests:
        pairs = probe_pairs(req)
        spans.append((len(all_pairs), len(all_pairs) + len(pairs)))
        all_pairs.extend(pairs)
    scores = score_targets(model, tok, [p for _, p, _ in all_pairs], [t for _, _, t in all_pairs], batch_size)
    out = []
    for req, (a, b) in zip(requests, spans):
        out.append(_metrics_from(all_pairs[a:b], scores.nll[a:b].tolist(), scores.correct[a:b].tolist()))
    return out


def harmonic_score(es: float | None, ps: float | None, ns: float | None) -> float | None:
    vals = [v for v in (es, ps, ns) if v is not None]
    if not vals or any(v <= 0 for v in vals):
        return 0.0 if vals else None
    return len(vals) / sum(1.0 / v for v in vals)


def aggregate(per_record: Sequence[dict]) -> dict:
    """Mean over records of each metric (records without a metric are skipped for it) + the harmonic Score."""
    agg: dict[str, float | None] = {}
    for key in METRICS:
        vals = [r[key] for r in per_record if r.get(key) is not None]
        agg[key] = mean(vals) if vals else None
    agg["score"] = harmonic_score(agg["es"], agg["ps"], agg["ns"])
    agg["n"] = len(per_record)
    return agg


class RewriteScorer:
    """Efficacy of many requests' rewrite prompts in one batched pass: by probability (P(new) > P(true), the ES of
    one prompt) and by argmax (every target_new token is the argmax under teacher forcing). What the sequential
    runner needs after each edit and when it re-scores the whole edit history; each request is tokenized once,
    under a key the caller chooses (its position in the stream)."""

    def __init__(self, tok, batch_size: int = 64):
        self.tok, self.batch_size = tok, batch_size
        self.pad_id = pad_token_id(tok)
        self._enc: dict = {}

    def pairs(self, key, req: EditRequest) -> list:
        """Pre-tokenized (rewrite prompt, target_new) and, if known, (rewrite prompt, target_true)."""
        if key not in self._enc:
            pairs = [encode_pair(self.tok, req.rewrite_prompt, req.target_new)]
            if req.target_true is not None:
                pairs.append(encode_pair(self.tok, req.rewrite_prompt, req.target_true))
            self._enc[key] = pairs
        return self._enc[key]

    def score(self, model, items: Sequence[tuple]) -> tuple[list[tuple[bool, bool]], int]:
        """``items`` = [(key, request), ...] -> ([(ok by probability, ok by argmax), ...], pairs scored). A request
        without target_true has no probability comparison (False)."""
        enc, offsets = [], []
        for key, req in items:
            offsets.append(len(enc))
            enc.extend(self.pairs(key, req))
        s = score_ids(model, enc, pad_id=self.pad_id, batch_size=self.batch_size)
        out = []
        for (_key, req), off in zip(items, offsets):
            has_true = req.target_true is not None
            out.append((has_true and bool(s.nll[off] < s.nll[off + 1]), bool(s.correct[off])))
        return out, len(enc)
