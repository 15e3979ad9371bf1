"""The downstream-regression protocol (the seed paper's section 3.3): few-shot task ability before and during
sequential editing.

One sample of a sequential run (:func:`editbench.runner.experiment.run_sequential_sample`) with the downstream
probe evaluated before the first edit and every ``downstream_every`` edits (the paper: about every 10) and after
the last; the check at edit 0 is the **unedited baseline** (per task and answer mode: F1 — the paper's weighted
F1 —, macro F1, MCC and accuracy, each with its 95% bootstrap interval). Per task the result says whether the
unedited model is above chance in the task's primary mode (:mod:`editbench.metrics.classification`); only those
tasks can show a regression, and their F1 drop in points (100 × (F1 before − F1 after N edits)) is what the
suite gates. The others are reported as ``at chance: cannot show a regression``.

The probe: GLUE SST-2/MRPC/CoLA/RTE with the paper's prompts (``glue``, :class:`~editbench.metrics.downstream.
GlueProbe`, presets per model) for real models; the fact world's four in-world tasks (``factworld-tasks``, via
the probe registry) on ``--model factworld``.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from editbench.metrics.classification import AT_CHANCE
from editbench.metrics.downstream import MODES, unflatten
from editbench.metrics.glue_prompts import PROMPTS
from editbench.models.profiles import profile
from editbench.runner import checks
from editbench.runner.downstream_probe import DEFAULT_EVERY
from editbench.runner.experiment import ExperimentError, run_sequential_sample
from editbench.runner.jsonl import jsonable
from editbench.suggest import close_matches, did_you_mean


def check_downstream_inputs(model: str, downstream_every=None, downstream_n=None, downstream_tasks=None,
                            downstream_shots=None, downstream_mode=None) -> None:
    """The downstream options, checked before any model loads: ExperimentError naming the option."""
    for opt, value in (("--downstream-every", downstream_every), ("--downstream-n", downstream_n)):
        checks.check_count(opt, value)
    p = profile(model)
    known = p.downstream_tasks or tuple(PROMPTS)
    for t in downstream_tasks or ():
        if t not in known:
            raise ExperimentError(f"--downstream-task {t!r}:{did_you_mean(close_matches(t, known))} expected one of "
                                  f"{', '.join(known)}" + (f" ({p.label}'s tasks)" if p.downstream_tasks else ""))
    if downstream_shots is not None:
        why = p.cannot("downstream-shots")
        most = None if why else min(PROMPTS[t].max_shots for t in (downstream_tasks or PROMPTS) if t in PROMPTS)
        if isinstance(downstream_shots, bool) or not isinstance(downstream_shots, int) or downstream_shots < 0 \
                or (most is not None and downstream_shots > most):
            raise ExperimentError(f"--downstream-shots {downstream_shots!r}: expected a whole number in 0.."
                                  f"{most if most is not None else 'N'} (the paper's tables have 4, 6, 6, 3 "
                                  "demonstrations for sst2, mrpc, cola, rte)" + (f"; {why}" if why else ""))
        if why:
            raise ExperimentError(f"--downstream-shots: {why}")
    if downstream_mode not in (None, "gen", "loglik"):
        raise ExperimentError(f"--downstream-mode {downstream_mode!r}: expected gen or loglik")


def downstream_result(summary: dict) -> dict:
    """Baseline, last check and per-task verdicts of a run with downstream checks (its ``summary["downstream"]``)."""
    ds = summary.get("downstream")
    if not ds:
        raise ValueError("the run has no downstream checks (downstream_every was not set)")
    base, last = unflatten(ds["first"]), unflatten(ds["last"])
    tasks = {}
    for t in ds["tasks"]:
        primary = ds["primary"].get(t) or next((m for m in MODES if t in base and m in base[t]), "gen")
        b, a = base.get(t, {}), last.get(t, {})
        above = bool(b.get("above_chance"))
        f1_b, f1_a = b.get("primary_f1"), a.get("primary_f1")
        drop = 100.0 * (f1_b - f1_a) if f1_b is not None and f1_a is not None else None
        tasks[t] = {"primary": primary, "settings": ds["settings"].get(t, {}), "above_chance": above,
                    "baseline": {m: b.get(m) for m in MODES}, "after": {m: a.get(m) for m in MODES},
                    "f1_before": f1_b, "f1_after": f1_a,
                    "f1_drop_points": drop if above else None, "f1_change_points": -drop if drop is not None else None,
                    "note": None if above else AT_CHANCE,
                    "f1_series": ds["f1"].get(t, [])}
    return {"baseline_at_edit": ds["baseline_n"], "after_edit": ds["last_n"], "tasks": tasks,
            "above_chance": [t for t in tasks if tasks[t]["above_chance"]],
            "at_chance": [t for t in tasks if not tasks[t]["above_chance"]]}


def run_downstream(exp, editor, lm, sample: int = 0, *, progress: bool = True) -> tuple[dict, dict, list]:
    """Run the protocol: ``(result, sequential summary, malformed-record errors)``; the result (also written to
    ``downstream.json`` beside the run's results) holds the baseline, the last check and per-task verdicts."""
    if not exp.downstream_every:
        exp = dataclasses.replace(exp, downstream_every=DEFAULT_EVERY)
    summary, errors = run_sequential_sample(exp, editor, lm, sample=sample, progress=progress)
    result = downstream_result(summary)
    result.update(editor=summary.get("editor"), model_id=summary.get("model_id"), n_edits=summary["n_edits"],
                  downstream_every=exp.downstream_every, cf_edit=summary.get("cf_edit"),
                  sample=sample, complete=summary.get("complete"))
    path = Path(summary["paths"]["jsonl"]).parent / "downstream.json"
    path.write_text(json.dumps(jsonable(result), indent=1, sort_keys=True), encoding="utf-8")
    summary["paths"]["downstream"] = str(path)
    return result, summary, errors


def format_table(result: dict) -> list[str]:
    """One line per task: primary mode, baseline F1/MCC with intervals per mode, F1 after, verdict."""
    lines = []
    for t, r in result["tasks"].items():
        parts = []
        for mode, m in r["baseline"].items():
            if m:
                f, c = m["f1"], m["mcc"]
                parts.append(f"{mode} F1 {f['value']:.2f} [{f['lo']:.2f}, {f['hi']:.2f}] MCC {c['value']:.2f} "
                             f"[{c['lo']:.2f}, {c['hi']:.2f}]")
        after = "" if r["f1_after"] is None else f" -> F1 {r['f1_after']:.2f} after {result['after_edit']} edits"
        verdict = r["note"] or f"drop {r['f1_drop_points']:.1f} points"
        lines.append(f"{t:<5} ({r['primary']}, {r['settings'].get('shots')} shots, n={r['settings'].get('n')}): "
                     + "; ".join(parts) + after + f" | {verdict}")
    return lines
