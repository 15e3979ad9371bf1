"""Single-edit reliability: apply one edit, score it, restore, prove the model is byte-identical again.

For each request: score the unedited model (the baseline), ``editor.apply`` the one edit, score ES/PS/NS and
magnitudes, restore the touched parameters from the returned originals, and hash the whole model state to check
that the restore is exact. A request whose edit raises is recorded with its error and the run goes on.

``pre``/``post`` are plain means over records; ``intervals`` adds, for each of them, a seeded bootstrap 95%
interval over the records that were edited and scored (:mod:`editbench.metrics.intervals`), the baseline's over
the same records as the edited model's.

``protocols`` selects the scoring protocols (:data:`editbench.metrics.counterfact.PROTOCOLS`, all three by
default: ``prob`` ES/PS/NS..., ``token_acc`` es_tok..., ``gen`` es_gen...); every selected key is in ``pre``,
``post``, each record and ``intervals``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from tqdm.auto import tqdm

from editbench.data.schema import EditRequest
from editbench.editors.base import Editor, restore
from editbench.metrics.counterfact import PROTOCOLS, aggregate, check_protocols, score_requests
from editbench.metrics.intervals import method, record_intervals
from editbench.models.loader import LoadedModel, state_hash
from editbench.runner.cost import memory
from editbench.runner.experiment import Experiment, ExperimentError, load_pool


@dataclass
class SingleEditResult:
    per_record: list[dict] = field(default_factory=list)
    pre: dict = field(default_factory=dict)     # aggregate metrics of the unedited model
    post: dict = field(default_factory=dict)    # aggregate metrics right after each edit
    # bootstrap 95% intervals over records (seeded): {"post"|"pre": {metric: {mean, lo, hi, n}}, "method": {...}}
    intervals: dict = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    all_restored: bool = True
    timings: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)       # editbench.runner.cost: phases and peak memory

    def to_dict(self) -> dict:
        return {"pre": self.pre, "post": self.post, "intervals": self.intervals, "all_restored": self.all_restored,
                "errors": self.errors, "timings": self.timings, "per_record": self.per_record}


def run_single(editor: Editor, lm: LoadedModel, requests: Sequence[EditRequest], *, batch_size: int = 64,
               check_restore: bool = True, progress: bool = True,
               protocols: Sequence[str] = PROTOCOLS) -> SingleEditResult:
    """Run the single-edit protocol of ``editor`` over ``requests`` on ``lm``; the model ends unedited."""
    protocols = check_protocols(protocols)
    model, tok = lm.model, lm.tok
    out = SingleEditResult()
    t0 = time.perf_counter()
    editor.prepare(model, tok)  # one-off work on the unedited model (covariances ...), timed apart from the edits
    out.timings["prepare_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pre = score_requests(model, tok, requests, batch_size=batch_size, protocols=protocols)
    out.timings["baseline_s"] = time.perf_counter() - t0
    h0 = state_hash(model) if check_restore else None
    apply_s, score_s = [], []
    bar = tqdm(list(zip(requests, pre)), desc=f"single[{editor.name}]", unit="edit", disable=not progress,
               leave=False)
    for req, pre_m in bar:
        rec = {"case_id": req.case_id, "subject": req.subject, "target_new": req.target_new,
               "target_true": req.target_true, "pre": pre_m}
        editor.reset()  # independent edits: nothing carried over from the last one
        t = time.perf_counter()
        try:
            res = editor.apply(model, tok, [req])
        except Exception as exc:  # noqa: BLE001 — one failed edit is a result, not the end of the run
            rec["error"] = f"{type(exc).__name__}: {exc}"
            out.errors.append({"case_id": req.case_id, "error": rec["error"]})
            out.per_record.append(rec)
            continue
        rec["apply_s"] = time.perf_counter() - t
        apply_s.append(rec["apply_s"])
        t = time.perf_counter()
        rec["post"] = score_requests(model, tok, [req], batch_size=batch_size, protocols=protocols)[0]
        score_s.append(time.perf_counter() - t)
        rec["touched"] = sorted(res.originals)
        rec["edit_stats"] = {k: v for k, v in res.stats.items() if isinstance(v, (int, float, str, bool))}
        restore(model, res.originals)
        if check_restore:
            rec["restored"] = state_hash(model) == h0
            out.all_restored &= rec["restored"]
        out.per_record.append(rec)
        done = [r["post"] for r in out.per_record if "post" in r]
        bar.set_postfix(es=f"{aggregate(done)['es'] or 0:.2f}")
    out.pre = aggregate(pre)
    out.post = aggregate([r["post"] for r in out.per_record if "post" in r])
    # the baseline's interval over the records that were edited and scored, the same records as the post one
    scored = [r for r in out.per_record if "post" in r]
    out.intervals = {"post": record_intervals([r["post"] for r in scored]),
                     "pre": record_intervals([r["pre"] for r in scored]), "method": method()}
    out.timings.update({
        "apply_s_mean": sum(apply_s) / len(apply_s) if apply_s else None,
        "score_s_mean": sum(score_s) / len(score_s) if score_s else None,
        "total_s": time.perf_counter() - t0,
    })
    out.cost = {"prepare_s": out.timings["prepare_s"], "apply_s_total": sum(apply_s),
                "apply_s_mean": out.timings["apply_s_mean"], "eval_s": out.timings["baseline_s"] + sum(score_s),
                **memory()}
    return out


def run(exp: Experiment, editor: Editor, lm: LoadedModel, *, progress: bool = True):
    """The suite's run function: the single-edit protocol over ``exp.n`` records drawn with ``exp.seed`` (or the
    ``exp.record_range`` slice of that order): (:class:`SingleEditResult`, records, malformed-record errors)."""
    start, stop = exp.record_slice
    records, errors = load_pool(exp, n=stop, seed=exp.seed)
    records = records[start:stop]
    if not records:
        raise ExperimentError(f"no valid records in {exp.dataset_name!r} ({len(errors)} malformed: {errors[:3]})")
    return run_single(editor, lm, records, progress=progress, protocols=exp.protocols), records, errors
