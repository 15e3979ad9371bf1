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

**Three scoring protocols** (:data:`PROTOCOLS`; :func:`score_requests` computes those asked for, all by default):

- ``prob`` — the probability comparison above (ROME/MEMIT): keys :data:`METRICS`, exactly as they always were.
- ``token_acc`` — EasyEdit's teacher-forced token accuracy: for one (prompt, target) the share of target tokens
  that are the argmax at their position, earlier target tokens given (:mod:`editbench.metrics.scoring`).
  ``es_tok`` / ``ps_tok`` = mean over rewrite / paraphrase prompts of the token accuracy of target_new;
  ``ns_tok`` = mean over neighborhood prompts of the token accuracy of **target_true**. (EasyEdit's locality
  compares the edited model's argmax tokens with the *unedited* model's; we use target_true instead, so the
  number needs no second model and reads like NS: the neighbours still give the true answer. None without a
  target_true.) Costs nothing extra: the same teacher-forced pass as ``prob``.
- ``gen`` — free greedy generation from the prompt alone (:mod:`editbench.metrics.generation`: no target
  tokens given, as many new tokens for a prompt whichever target it is checked against, batched, left padding,
  KV cache). ``es_gen`` / ``ps_gen`` = share of rewrite / paraphrase prompts whose continuation starts with
  target_new; ``ns_gen`` = share of neighborhood prompts whose continuation still starts with target_true (the
  match rule — casefold, collapse whitespace, strip punctuation at both ends, word boundary — is
  :func:`editbench.metrics.generation.starts_with_target`). Costs a prompt forward plus a few cached steps.

Keys: :data:`METRICS` (prob), :data:`TOKEN_ACC_METRICS`, :data:`GEN_METRICS`; a record scored without a
protocol has none of its keys, and :func:`aggregate` reports the extra protocols only when some record has them.
"""
from __future__ import annotations

import math
from statistics import mean
from typing import Sequence

from editbench import PROTOCOLS
from editbench.data.schema import EditRequest
from editbench.metrics.generation import PromptGenerator
from editbench.metrics.scoring import score_branches, score_targets
from editbench.models.tokens import encode_prefix, encode_target, pad_token_id

METRICS = ("es", "ps", "ns", "em", "pm", "nm", "es_correct", "ps_correct", "ns_correct")
TOKEN_ACC_METRICS = ("es_tok", "ps_tok", "ns_tok")
GEN_METRICS = ("es_gen", "ps_gen", "ns_gen")
EXTRA_METRICS = TOKEN_ACC_METRICS + GEN_METRICS  # the keys beyond METRICS that aggregate() may report
_KINDS = (("rewrite", "e"), ("paraphrase", "p"), ("neighborhood", "n"))


def check_protocols(protocols: Sequence[str]) -> tuple[str, ...]:
    """``protocols`` as a tuple in :data:`PROTOCOLS` order; ValueError for an unknown or empty selection."""
    if isinstance(protocols, str):
        protocols = (protocols,)
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not protocols:
        raise ValueError(f"unknown scoring protocol(s) {bad}; known: {PROTOCOLS}" if bad
                         else f"no scoring protocol selected; known: {PROTOCOLS}")
    return tuple(p for p in PROTOCOLS if p in protocols)


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


def _token_acc_from(pairs, acc) -> dict:
    """es_tok / ps_tok (target_new) and ns_tok (target_true): mean token accuracy per probe kind."""
    by: dict[str, list[float]] = {}
    for (kind, _p, _t), a in zip(pairs, acc):
        by.setdefault(kind, []).append(float(a))
    out: dict[str, float | None] = {}
    for kind, short in _KINDS:
        vals = by.get(f"{kind}:true" if kind == "neighborhood" else f"{kind}:new", [])
        out[f"{short}s_tok"] = mean(vals) if vals else None
    return out


def gen_items(req: EditRequest) -> list[tuple[str, str, tuple[str, ...], str]]:
    """(kind, prompt, targets the generation length is sized for, target the continuation must start with) for
    the ``gen`` protocol: rewrite and paraphrase prompts want target_new, neighborhood prompts target_true (none
    without a target_true). The length is sized for both targets, so it does not say which one is wanted."""
    sized = (req.target_new,) if req.target_true is None else (req.target_new, req.target_true)
    items = [("rewrite", req.rewrite_prompt, sized, req.target_new)]
    items += [("paraphrase", p, sized, req.target_new) for p in req.paraphrase_prompts]
    if req.target_true is not None:
        items += [("neighborhood", p, sized, req.target_true) for p in req.neighborhood_prompts]
    return items


def _gen_from(items, oks) -> dict:
    by: dict[str, list[bool]] = {}
    for (kind, *_rest), ok in zip(items, oks):
        by.setdefault(kind, []).append(bool(ok))
    return {f"{short}s_gen": (mean(float(v) for v in by[kind]) if by.get(kind) else None) for kind, short in _KINDS}


def score_requests(model, tok, requests: Sequence[EditRequest], batch_size: int = 64,
                   protocols: Sequence[str] = PROTOCOLS) -> list[dict]:
    """Score every request's probes, batched over all requests; one metrics dict per request, with the keys of
    each selected protocol (``prob``: METRICS, ``token_acc``: TOKEN_ACC_METRICS, ``gen``: GEN_METRICS)."""
    protocols = check_protocols(protocols)
    out: list[dict] = [{} for _ in requests]
    if "prob" in protocols or "token_acc" in protocols:  # one teacher-forced pass serves both
        all_pairs, spans = [], []
        for req in requests:
            pairs = probe_pairs(req)
            spans.append((len(all_pairs), len(all_pairs) + len(pairs)))
            all_pairs.extend(pairs)
        scores = score_targets(model, tok, [p for _, p, _ in all_pairs], [t for _, _, t in all_pairs], batch_size)
        for m, (a, b) in zip(out, spans):
            if "prob" in protocols:
                m.update(_metrics_from(all_pairs[a:b], scores.nll[a:b].tolist(), scores.correct[a:b].tolist()))
            if "token_acc" in protocols:
                m.update(_token_acc_from(all_pairs[a:b], scores.token_acc[a:b].tolist()))
    if "gen" in protocols:
        items, spans = [], []
        for req in requests:
            its = gen_items(req)
            spans.append((len(items), len(items) + len(its)))
            items.extend(its)
        oks, _texts = PromptGenerator(tok, batch_size).check(model, [(p, s, w) for _k, p, s, w in items])
        for m, (a, b) in zip(out, spans):
            m.update(_gen_from(items[a:b], oks[a:b]))
    return out


def harmonic_score(es: float | None, ps: float | None, ns: float | None) -> float | None:
    vals = [v for v in (es, ps, ns) if v is not None]
    if not vals or any(v <= 0 for v in vals):
        return 0.0 if vals else None
    return len(vals) / sum(1.0 / v for v in vals)


def aggregate(per_record: Sequence[dict]) -> dict:
    """Mean over records of each metric (records without a metric are skipped for it) + the harmonic Score (of
    the prob ES/PS/NS). METRICS are always reported (None if no record has them); the token_acc and gen keys only
    when some record was scored with that protocol."""
    agg: dict[str, float | None] = {}
    for key in METRICS:
        vals = [r[key] for r in per_record if r.get(key) is not None]
        agg[key] = mean(vals) if vals else None
    for key in EXTRA_METRICS:  # token_acc / gen protocols: reported when some record was scored with them
        if any(key in r for r in per_record):
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
        self._gen = PromptGenerator(tok, batch_size)

    def encoded(self, key, req: EditRequest) -> tuple[list[int], list[list[int]]]:
        """Pre-tokenized rewrite prompt and its targets: target_new and, if known, target_true."""
        if key not in self._enc:
            targets = [encode_target(self.tok, req.target_new)]
            if req.target_true is not None:
                targets.append(encode_target(self.tok, req.target_true))
            self._enc[key] = (encode_prefix(self.tok, req.rewrite_prompt), targets)
        return self._enc[key]

    def score(self, model, items: Sequence[tuple]) -> tuple[list[tuple[bool, bool]], int]:
        """``items`` = [(key, request), ...] -> ([(ok by probability, ok by argmax), ...], pairs scored). A request
        without target_true has no probability comparison (False). Both targets are scored from one pass over
        their shared prompt (:func:`~editbench.metrics.scoring.score_branches`)."""
        groups = [self.encoded(key, req) for key, req in items]
        s = score_branches(model, groups, pad_id=self.pad_id, batch_size=self.batch_size)
        out, off = [], 0
        for (_key, req), (_prefix, targets) in zip(items, groups):
            has_true = req.target_true is not None
            out.append((has_true and bool(s.nll[off] < s.nll[off + 1]), bool(s.correct[off])))
            off += len(targets)
        return out, off

    def generates(self, model, items: Sequence[tuple]) -> list[bool]:
        """``items`` = [(key, request), ...] -> whether each rewrite prompt's greedy continuation starts with
        target_new (the ``gen`` protocol's ES of one prompt; :func:`gen_items` sizes the length)."""
        if not items:
            return []
        checks = [gen_items(req)[0][1:] for _key, req in items]  # the rewrite item: (prompt, sized, want)
        return self._gen.check(model, checks)[0]
