"""Format transfer: does an edit made in one prompt format hold in the other (zsRE question vs completion)?

**Success of one prompt** (one fact, one format) under each scoring protocol (:mod:`editbench.metrics.counterfact`
defines them for CounterFact; here they are applied to a single prompt):

- ``prob`` -- P(target_new) > P(target_true) (mean per-token NLL, ROME/MEMIT's ES of one prompt). Needs a
  target_true: zsRE under ROME's convention (target = ``answers[0]``) has none, so ``prob`` is not measured there.
- ``token_acc`` -- teacher forcing (EasyEdit's zsRE convention): every target_new token is the argmax at its
  position, earlier target tokens given (exact match; ``tok_frac``, the share of such tokens, EasyEdit's
  per-prompt accuracy, is kept beside it).
- ``gen`` -- free greedy generation from the prompt alone starts with target_new
  (:func:`editbench.metrics.generation.starts_with_target`; length sized for target_new and target_true).

**Transfer rate** (per direction and protocol; the seed paper, appendix A.1): of the edits that succeed in the
format they were made in, the share that also succeed in the other format. Its ``n`` is the number of edit-format
successes; with none the rate is **undefined** (``mean`` None, ``n`` 0, and ``undefined`` says why), never 0.
Beside it: the raw success rates in the edit and probe formats over all edits, the unedited model's success in
each format on the same pairs (``baseline_probe``: a transfer the model already "had" is no transfer), and
``transfer_novel``: the transfer rate over the successful edits whose probe format the unedited model did *not*
already answer with target_new. Every rate is a mean over edits with a seeded percentile-bootstrap 95% interval
(:func:`editbench.metrics.intervals.interval`: ``{"mean", "lo", "hi", "n"}``). The seed paper: ~70% of ROME's
successful question-form edits on GPT-2-XL fail in completion form, i.e. a q2c transfer of about 0.30.
"""
from __future__ import annotations

from statistics import mean
from typing import Sequence

from editbench.data.schema import EditRequest
from editbench.metrics.counterfact import PROTOCOLS, gen_items
from editbench.metrics.generation import PromptGenerator
from editbench.metrics.intervals import interval
from editbench.metrics.scoring import score_targets

SHORT = {"prob": "prob", "token_acc": "tok", "gen": "gen"}  # metric-name suffix of each protocol
PAPER_Q2C_TRANSFER = 0.30  # Gupta et al. 2024, A.1: ~70% of ROME's successful QA edits (GPT-2-XL) do not transfer
STATS = ("transfer", "transfer_novel", "edit", "probe", "baseline_probe", "baseline_edit")


def score_prompts(model, tok, requests: Sequence[EditRequest], protocols: Sequence[str] = PROTOCOLS,
                  batch_size: int = 64, generator: PromptGenerator | None = None) -> list[dict]:
    """Success of each request's rewrite prompt, batched: ``{"prob": bool | None, "token_acc": bool, "tok_frac":
    float, "gen": bool, "gen_text": str}`` (the keys of the selected protocols)."""
    out: list[dict] = [{} for _ in requests]
    if "prob" in protocols or "token_acc" in protocols:
        pre, tgt, at = [], [], []
        for r in requests:
            at.append(len(pre))
            pre.append(r.rewrite_prompt), tgt.append(r.target_new)
            if r.target_true is not None:
                pre.append(r.rewrite_prompt), tgt.append(r.target_true)
        s = score_targets(model, tok, pre, tgt, batch_size)
        for o, r, i in zip(out, requests, at):
            if "token_acc" in protocols:
                o["token_acc"], o["tok_frac"] = bool(s.correct[i]), float(s.token_acc[i])
            if "prob" in protocols:
                o["prob"] = None if r.target_true is None else bool(s.nll[i] < s.nll[i + 1])
            o["nll_new"] = float(s.nll[i])
    if "gen" in protocols:
        gen = generator or PromptGenerator(tok, batch_size)
        oks, texts = gen.check(model, [gen_items(r)[0][1:] for r in requests])
        for o, ok, text in zip(out, oks, texts):
            o["gen"], o["gen_text"] = bool(ok), text
    return out


def _rate(flags: Sequence[bool]) -> dict:
    return interval([float(f) for f in flags])


def transfer_stats(outcomes: Sequence[dict], protocol: str) -> dict:
    """The transfer statistics of one direction under one protocol (see the module docstring).

    ``outcomes``: one per edit, ``{"edit": {protocol: bool | None}, "probe": {...}, "base_edit": {...},
    "base_probe": {...}}`` -- success in the edit format and in the probe format after the edit, and of the
    unedited model in each. Edits that raised (no ``edit`` scores) or a protocol that was not measured for an edit
    (``prob`` without target_true) are left out of every rate."""
    scored = [o for o in outcomes if (o.get("edit") or {}).get(protocol) is not None
              and (o.get("probe") or {}).get(protocol) is not None]
    ok = [o for o in scored if o["edit"][protocol]]
    novel = [o for o in ok if (o.get("base_probe") or {}).get(protocol) is False]
    out = {"transfer": _rate([o["probe"][protocol] for o in ok]),
           "transfer_novel": _rate([o["probe"][protocol] for o in novel]),
           "edit": _rate([o["edit"][protocol] for o in scored]),
           "probe": _rate([o["probe"][protocol] for o in scored]),
           "baseline_probe": _rate([o["base_probe"][protocol] for o in scored
                                    if (o.get("base_probe") or {}).get(protocol) is not None]),
           "baseline_edit": _rate([o["base_edit"][protocol] for o in scored
                                   if (o.get("base_edit") or {}).get(protocol) is not None]),
           "n_edits": len(scored), "n_edit_success": len(ok)}
    if not scored:
        out["undefined"] = ("not measured: no edit has a target_true (prob compares P(new) with P(true))"
                            if protocol == "prob" and outcomes else "not measured: no edit was scored")
    elif not ok:
        out["undefined"] = "no edit succeeded in the edit format (transfer = successes in the probe format / 0)"
    if protocol == "token_acc":  # EasyEdit's per-prompt token accuracy, averaged (its reported zsRE rate)
        for key, side in (("edit_tok_frac", "edit"), ("probe_tok_frac", "probe")):
            vals = [o[side]["tok_frac"] for o in scored if o[side].get("tok_frac") is not None]
            out[key] = mean(vals) if vals else None
    return out


def summarize(outcomes: Sequence[dict], directions: Sequence[str], protocols: Sequence[str] = PROTOCOLS) -> dict:
    """``{direction: {protocol: transfer_stats}}`` over the outcomes of each direction (``o["direction"]``)."""
    return {d: {p: transfer_stats([o for o in outcomes if o.get("direction") == d], p) for p in protocols}
            for d in directions}


def metric_name(stat: str, direction: str, protocol: str) -> str:
    """``transfer_q2c_gen``, ``baseline_probe_c2q_tok``, ... (the names results and gates use)."""
    return f"{stat}_{direction}_{SHORT[protocol]}"


def flat_metrics(summary: dict) -> tuple[dict, dict]:
    """(metrics, intervals) keyed by :func:`metric_name`: each rate's mean (None when undefined), plus
    ``n_transfer_<d>_<p>`` (edit-format successes), and ``{metric: {mean, lo, hi, n}}``."""
    metrics, cis = {}, {}
    for d, by_p in summary.items():
        for p, st in by_p.items():
            for stat in STATS:
                key = metric_name(stat, d, p)
                metrics[key], cis[key] = st[stat]["mean"], st[stat]
            metrics[f"n_transfer_{d}_{SHORT[p]}"] = st["n_edit_success"]
    return metrics, cis


def format_row(direction: str, protocol: str, st: dict) -> str:
    """One line: ``q2c gen: transfer 0.33 [0.10, 0.60] (n=9 of 20 edits); edit 0.45, probe 0.20, unedited 0.05``."""
    def cell(ci):
        return "n/a" if ci["mean"] is None else f"{ci['mean']:.2f} [{ci['lo']:.2f}, {ci['hi']:.2f}]"
    t = st["transfer"]
    head = f"{direction} {protocol}: transfer {cell(t)} (n={t['n']} of {st['n_edits']} edits)"
    if st.get("undefined"):
        head += f" -- {st['undefined']}"
    return (f"{head}; edit-format success {cell(st['edit'])}, probe-format {cell(st['probe'])}, unedited in the "
            f"probe format {cell(st['baseline_probe'])}")
