"""Causal traces of facts and the layer choice they justify.

* :func:`trace_fact` — the full position × layer grid of indirect effects for one fact (ROME's Figure 1).
* :func:`trace_layers` — per-layer average indirect effect over many facts at two positions, the subject's last
  token and the last prompt token (ROME's Figure 2 curves), and from the MLP curve a suggested ROME layer and
  MEMIT range (:func:`suggest_layers`).

Normalisation. Facts differ in how much the noise hurts them, so next to the average indirect effect
``aie[l] = mean_f (p_restored − p_corrupted)`` we report ``normalized[l] = aie[l] / ate`` with the average total
effect ``ate = mean_f (p_clean − p_corrupted)``: the fraction of the damage that restoring layer l repairs on
average (1.0 = everything; ``hidden`` at the last position of the last layer is exactly 1).

Noise. σ = 3 × the standard deviation of the token embeddings of the traced subjects' tokens (ROME's
``collect_embedding_std`` over the subjects of the facts passed in), unless ``noise`` gives σ directly. Every fact
uses the same seed, as ROME does (its ``RandomState(1)`` is rebuilt for each trace).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from editbench.trace.core import (KINDS, TraceFact, as_trace_fact, clean_run, embedding_std, encode_fact,
                                  make_noise, restored_probs, window_layers)

NOISE_MULT = 3.0


def _noise_std(lm, facts: Sequence[TraceFact], noise: float | None) -> float:
    return float(noise) if noise is not None else NOISE_MULT * embedding_std(lm, [f.subject for f in facts])


def _check(kind: str, n_samples: int) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown trace kind {kind!r}; expected one of {KINDS}")
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")


def trace_fact(lm, fact: Any, kind: str = "mlp", window: int = 10, n_samples: int = 10, seed: int = 0,
               noise: float | None = None, positions: Sequence[int] | None = None, max_rows: int = 256) -> dict:
    """Indirect effect of restoring ``kind`` at every (position, layer) of one fact.

    Returns ``tokens`` (decoded), ``subject_range`` [start, end), ``answer_id``, ``known`` (the answer's first
    token is the clean argmax), ``p_clean``, ``p_corrupted``, ``positions`` and ``effect[i][l]`` =
    p(restore ``positions[i]`` at layer l) − p_corrupted (all positions by default).
    """
    _check(kind, n_samples)
    fact = as_trace_fact(fact)
    enc = encode_fact(lm.tok, fact)
    sigma = _noise_std(lm, [fact], noise)
    L = lm.adapter.n_layers
    probs, clean = clean_run(lm, enc, kind)
    pos = list(range(len(enc.ids))) if positions is None else [int(p) for p in positions]
    noise_t = make_noise(n_samples, enc.subject[1] - enc.subject[0], lm.adapter.hidden_size, sigma, seed)
    sets = [[]] + [[(w, t) for w in window_layers(l, L, kind, window)] for t in pos for l in range(L)]
    p = restored_probs(lm, enc, kind, clean, noise_t, sets, max_rows)
    low = float(p[0])
    return {
        "case_id": fact.case_id, "prompt": fact.prompt, "subject": fact.subject, "answer": fact.answer,
        "kind": kind, "window": window if kind != "hidden" else 1, "n_samples": n_samples, "seed": seed,
        "noise_std": sigma, "tokens": [lm.tok.decode([i]) for i in enc.ids], "subject_range": list(enc.subject),
        "answer_id": enc.answer_id, "known": int(probs.argmax()) == enc.answer_id,
        "p_clean": float(probs[enc.answer_id]), "p_corrupted": low, "positions": pos,
        "effect": (p[1:].view(len(pos), L) - low).tolist(),
    }


def suggest_layers(effect: Sequence[float], frac: float = 0.5, max_layers: int = 5) -> dict:
    """ROME layer and MEMIT range from a per-layer MLP effect curve (subject's last token).

    Rule: the ROME layer is the curve's peak ``p`` (first one on ties). The MEMIT range is the maximal run of
    consecutive layers containing ``p`` whose effect is ≥ ``frac`` × peak; while it is longer than
    ``max_layers`` the weaker end is dropped (on a tie the upper end, keeping the range at/before the peak as
    MEMIT's published ranges do: GPT-2-XL 13–17 with ROME at 17). A curve with no positive effect suggests
    nothing (``rome_layer`` None).
    """
    e = [float(x) for x in effect]
    if not e:
        raise ValueError("empty effect curve")
    peak = max(range(len(e)), key=lambda i: (e[i], -i))
    rule = {"frac": frac, "max_layers": max_layers}
    if e[peak] <= 0:
        return {"rome_layer": None, "memit_layers": [], "threshold": None, **rule}
    thr = frac * e[peak]
    lo = hi = peak
    while lo > 0 and e[lo - 1] >= thr:
        lo -= 1
    while hi + 1 < len(e) and e[hi + 1] >= thr:
        hi += 1
    while hi - lo + 1 > max_layers:
        if e[hi] <= e[lo]:
            hi -= 1
        else:
            lo += 1
    return {"rome_layer": peak, "memit_layers": list(range(lo, hi + 1)), "threshold": thr, **rule}


def _curve(rows: list[list[float]], ate: float) -> dict:
    if not rows:
        return {"aie": [], "normalized": []}
    aie = torch.tensor(rows, dtype=torch.float64).mean(0)
    norm = aie / ate if ate > 0 else torch.full_like(aie, float("nan"))
    return {"aie": aie.tolist(), "normalized": norm.tolist()}


def trace_layers(lm, facts: Sequence[Any], kind: str = "mlp", window: int = 10, n_samples: int = 10,
                 seed: int = 0, noise: float | None = None, require_known: bool = True,
                 max_facts: int | None = None, max_rows: int = 256, progress: bool = False,
                 frac: float = 0.5, max_layers: int = 5) -> dict:
    """Per-layer average indirect effect of restoring ``kind`` at the subject's last token and at the last
    prompt token, over the facts the model knows.

    Facts are taken in order; with ``require_known`` only those whose answer's first token is the clean argmax
    count, and at most ``max_facts`` of them are traced. Keys: ``n_facts`` (looked at), ``n_known``, ``n_used``,
    ``layers``, ``subject_last`` / ``last_token`` (``aie``, ``normalized`` per layer), ``peak_layer`` (of the
    subject's-last-token curve), ``peak_layer_last_token``, ``p_clean`` / ``p_corrupted`` (means), ``ate``,
    ``suggested`` (:func:`suggest_layers` of the subject curve; only for ``kind="mlp"``, else None), ``facts``
    (per-fact numbers).
    """
    _check(kind, n_samples)
    tfacts = [as_trace_fact(f) for f in facts]
    sigma = _noise_std(lm, tfacts, noise)
    L = lm.adapter.n_layers
    per_fact, n_seen, n_known = [], 0, 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=min(max_facts or len(tfacts), len(tfacts)), desc=f"trace {kind}", unit="fact")
    for index, fact in enumerate(tfacts):
        if max_facts is not None and len(per_fact) >= max_facts:
            break
        n_seen += 1
        enc = encode_fact(lm.tok, fact)
        probs, clean = clean_run(lm, enc, kind)
        known = int(probs.argmax()) == enc.answer_id
        n_known += known
        if require_known and not known:
            continue
        noise_t = make_noise(n_samples, enc.subject[1] - enc.subject[0], lm.adapter.hidden_size, sigma, seed)
        spots = [enc.subject_last] + ([enc.last] if enc.last != enc.subject_last else [])
        sets = [[]] + [[(w, t) for w in window_layers(l, L, kind, window)] for t in spots for l in range(L)]
        p = restored_probs(lm, enc, kind, clean, noise_t, sets, max_rows)
        low = float(p[0])
        eff = (p[1:].view(len(spots), L) - low).tolist()
        per_fact.append({"index": index, "case_id": fact.case_id, "prompt": fact.prompt, "subject": fact.subject,
                         "answer": fact.answer, "known": known, "p_clean": float(probs[enc.answer_id]),
                         "p_corrupted": low, "subject_last": eff[0], "last_token": eff[-1]})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    pc = sum(f["p_clean"] for f in per_fact) / max(1, len(per_fact))
    pk = sum(f["p_corrupted"] for f in per_fact) / max(1, len(per_fact))
    ate = pc - pk
    subj = _curve([f["subject_last"] for f in per_fact], ate)
    last = _curve([f["last_token"] for f in per_fact], ate)

    def argmax(xs):
        return max(range(len(xs)), key=lambda i: (xs[i], -i)) if xs else None

    return {
        "kind": kind, "window": window if kind != "hidden" else 1, "n_samples": n_samples, "seed": seed,
        "noise_std": sigma, "require_known": require_known, "n_layers": L, "layers": list(range(L)),
        "n_facts": n_seen, "n_known": n_known, "n_used": len(per_fact),
        "p_clean": pc, "p_corrupted": pk, "ate": ate,
        "subject_last": subj, "last_token": last,
        "peak_layer": argmax(subj["aie"]), "peak_layer_last_token": argmax(last["aie"]),
        "suggested": (suggest_layers(subj["aie"], frac, max_layers) if kind == "mlp" and per_fact else None),
        "facts": per_fact,
    }
