"""The zsRE-vs-completion transfer runner: edit a fact in one format, probe it in the other, restore.

For each question/completion pair (:class:`editbench.suites.zsre.pairs.FormPair`) and direction (``q2c``: edit with
the question-form request, probe the completion form; ``c2q``: the reverse), on one model:

1. the unedited model is scored once on both forms of every pair (the baselines);
2. ``editor.reset()`` (independent edits), ``editor.apply`` of the one edit-format request;
3. both forms scored under each protocol (:func:`editbench.suites.zsre.metrics.score_prompts`: prob where a
   target_true exists, token_acc, gen);
4. the touched parameters restored and the whole model hashed: it must be byte-identical to the unedited model.

An edit that raises is recorded with its error and the run goes on (the model is checked unchanged). The transfer
rates, raw success rates and baselines with their intervals come from :mod:`editbench.suites.zsre.metrics`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tqdm.auto import tqdm

from editbench.data.download import DownloadError
from editbench.data.zsre import ZSRE_TARGETS
from editbench.editors.base import Editor, restore
from editbench.metrics.generation import PromptGenerator
from editbench.metrics.intervals import method
from editbench.models.loader import LoadedModel, state_hash
from editbench.runner.cost import memory
from editbench.runner.experiment import Experiment, ExperimentError, make_editor
from editbench.runner.results import make_result
from editbench.suites.zsre.metrics import PROTOCOLS, flat_metrics, score_prompts, summarize
from editbench.suites.zsre.pairs import (DIRECTIONS, PAIR_SOURCES, FormPair, check_target, pair_source_of,
                                         load_pairs)
from editbench.suites.zsre.result import fields as result_fields


@dataclass
class TransferResult:
    edits: list[dict] = field(default_factory=list)     # one per (pair, direction)
    baseline: list[dict] = field(default_factory=list)  # per pair: the unedited model on both forms
    summary: dict = field(default_factory=dict)         # {direction: {protocol: transfer_stats}}
    metrics: dict = field(default_factory=dict)         # flat: transfer_q2c_gen, ... (zsre.metrics.metric_name)
    intervals: dict = field(default_factory=dict)       # {metric: {mean, lo, hi, n}}, "method"
    errors: list[dict] = field(default_factory=list)
    all_restored: bool = True
    timings: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"summary": self.summary, "metrics": self.metrics, "intervals": self.intervals,
                "all_restored": self.all_restored, "errors": self.errors, "timings": self.timings,
                "baseline": self.baseline, "edits": self.edits}


def _check_directions(directions: Sequence[str]) -> tuple[str, ...]:
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad or not directions:
        raise ValueError(f"direction(s) {bad or '(none)'}: expected {', '.join(DIRECTIONS)}")
    return tuple(d for d in DIRECTIONS if d in directions)


def run_transfer(editor: Editor, lm: LoadedModel, pairs: Sequence[FormPair], *,
                 directions: Sequence[str] = tuple(DIRECTIONS), protocols: Sequence[str] = PROTOCOLS,
                 batch_size: int = 64, check_restore: bool = True, progress: bool = True,
                 on_edit: Callable[[dict], None] | None = None) -> TransferResult:
    """One edit per (pair, direction) on ``lm``, scored in both formats; the model ends unedited. ``on_edit`` is
    called with each edit's record as soon as it is done (e.g. to flush it to a JSON-lines file)."""
    directions = _check_directions(directions)
    protocols = tuple(p for p in PROTOCOLS if p in protocols)
    model, tok = lm.model, lm.tok
    out = TransferResult()
    t0 = time.perf_counter()
    editor.prepare(model, tok)
    out.timings["prepare_s"] = time.perf_counter() - t0
    gen = PromptGenerator(tok, batch_size)
    t = time.perf_counter()
    forms = score_prompts(model, tok, [p.question for p in pairs] + [p.completion for p in pairs], protocols,
                          batch_size, gen)
    base = {p.case_id: {"question": q, "completion": c} for p, q, c in zip(pairs, forms[:len(pairs)],
                                                                          forms[len(pairs):])}
    out.baseline = [{"case_id": cid, **b} for cid, b in base.items()]
    out.timings["baseline_s"] = time.perf_counter() - t
    h0 = state_hash(model) if check_restore else None
    apply_s, score_s = [], []
    jobs = [(d, p) for d in directions for p in pairs]
    bar = tqdm(jobs, desc=f"zsre[{editor.name}]", unit="edit", disable=not progress, leave=False)
    for d, pair in bar:
        e_form, p_form = DIRECTIONS[d]
        req, probe = pair.form(e_form), pair.form(p_form)
        rec = {"case_id": pair.case_id, "direction": d, "edit_form": e_form, "probe_form": p_form,
               "subject": req.subject, "edit_prompt": req.rewrite_prompt, "probe_prompt": probe.rewrite_prompt,
               "target_new": req.target_new, "target_true": req.target_true,
               "base_edit": base[pair.case_id][e_form], "base_probe": base[pair.case_id][p_form]}
        editor.reset()  # independent edits: nothing carried over from the last one
        t = time.perf_counter()
        try:
            res = editor.apply(model, tok, [req])
        except Exception as exc:  # noqa: BLE001 -- one failed edit is a result, not the end of the run
            rec["error"] = f"{type(exc).__name__}: {exc}"
            out.errors.append({"case_id": pair.case_id, "direction": d, "error": rec["error"]})
            if check_restore and state_hash(model) != h0:
                raise RuntimeError(f"editor {editor.name!r} raised on case {pair.case_id} ({d}) and left the "
                                   "model edited: no originals to restore it from") from exc
            out.edits.append(rec)
            if on_edit:
                on_edit(rec)
            continue
        rec["apply_s"] = time.perf_counter() - t
        apply_s.append(rec["apply_s"])
        t = time.perf_counter()
        rec["edit"], rec["probe"] = score_prompts(model, tok, [req, probe], protocols, batch_size, gen)
        score_s.append(time.perf_counter() - t)
        rec["touched"] = sorted(res.originals)
        restore(model, res.originals)
        if check_restore:
            rec["restored"] = state_hash(model) == h0
            out.all_restored &= rec["restored"]
        out.edits.append(rec)
        if on_edit:
            on_edit(rec)
    out.summary = summarize(out.edits, directions, protocols)
    out.metrics, cis = flat_metrics(out.summary)
    out.intervals = {**cis, "method": method()}
    out.timings.update({"apply_s_mean": sum(apply_s) / len(apply_s) if apply_s else None,
                        "score_s_mean": sum(score_s) / len(score_s) if score_s else None,
                        "total_s": time.perf_counter() - t0})
    out.cost = {"prepare_s": out.timings["prepare_s"], "apply_s_total": sum(apply_s),
                "apply_s_mean": out.timings["apply_s_mean"], "eval_s": out.timings["baseline_s"] + sum(score_s),
                **memory()}
    return out


def check_transfer_inputs(source: str, target: str = "answers", directions: Sequence[str] = tuple(DIRECTIONS),
                          *, source_option: str = "--dataset") -> int:
    """The suite's own inputs, checked before any model loads (ExperimentError naming the option, as
    :mod:`editbench.runner.checks` does): the zsRE target, the directions, and the pair source (read and parsed
    now); returns the number of good pairs."""
    if target not in ZSRE_TARGETS:
        raise ExperimentError(f"--zsre-target {target!r}: expected one of {', '.join(ZSRE_TARGETS)}")
    try:
        _check_directions(directions)
    except ValueError:
        raise ExperimentError(f"--direction {' '.join(directions) or '(none)'}: expected "
                              f"{' or '.join(DIRECTIONS)}") from None
    try:
        good, errors = load_pairs(source, on_error="collect", target=target)
    except (ValueError, OSError, ImportError, RecursionError, DownloadError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        known = "" if source in PAIR_SOURCES or Path(source).suffix else f" (pair sources: {', '.join(PAIR_SOURCES)})"
        raise ExperimentError(f"{source_option} {source!r}: {first}{known}") from None
    if not good:
        first = f" (first: {errors[0]})" if errors else ""
        raise ExperimentError(f"{source_option} {source!r}: no valid question/completion pair "
                              f"({len(errors)} malformed){first}")
    return len(good)


def run_transfer_experiment(exp: Experiment, editor: Editor, lm: LoadedModel, *, target: str = "answers",
                            directions: Sequence[str] = tuple(DIRECTIONS), progress: bool = True,
                            on_edit: Callable[[dict], None] | None = None):
    """``exp.n`` pairs of ``exp.dataset`` (a pair source or pairs file; None = :func:`default_pair_source`) drawn
    with ``exp.seed``, both forms: (result, pairs, malformed-record errors)."""
    source = pair_source_of(exp.dataset, exp.model)
    pairs, errors = load_pairs(source, n=exp.n_resolved, seed=exp.seed, on_error="collect",
                               target=check_target(target))
    if not pairs:
        raise ExperimentError(f"no valid question/completion pair in {source!r} ({len(errors)} malformed: "
                              f"{errors[:3]})")
    result = run_transfer(editor, lm, pairs, directions=directions, protocols=exp.protocols,
                          progress=progress, on_edit=on_edit)
    return result, pairs, errors


def record_transfer(exp: Experiment, lm: LoadedModel, *, target: str, directions: Sequence[str], gates: dict,
                    log_path: str | Path | None = None, test: str = "cli", progress: bool = True) -> dict:
    """Run one editor's transfer experiment and return its result in the schema (``make_result``); with
    ``log_path`` every edit is also flushed to that JSON-lines file as it is done (a killed run keeps them)."""
    editor = make_editor(exp, lm)
    fh = None
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        fh = Path(log_path).open("w")
    try:
        res, pairs, errors = run_transfer_experiment(
            exp, editor, lm, target=target, directions=directions, progress=progress,
            on_edit=(lambda rec: (fh.write(json.dumps(rec, default=str) + "\n"), fh.flush())) if fh else None)
    finally:
        if fh:
            fh.close()
    fields = result_fields(exp, editor, lm, res, pairs, errors, gates, target=target, directions=directions)
    return make_result(test=test, **fields)
