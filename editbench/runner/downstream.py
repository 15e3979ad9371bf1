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

import json
from pathlib import Path
from typing import Any

from editbench.metrics.classification import AT_CHANCE
from editbench.metrics.downstream import MODES, unflatten
from editbench.runner.jsonl import jsonable

DEFAULT_EVERY = 10
FACTWORLD_PROBE = "factworld-tasks"


def make_downstream_probe(exp, lm) -> Any:
    """The downstream probe of ``exp`` for ``lm``: the fact world's tasks on the fact world, else GLUE."""
    from editbench.registry import PROBES

    if exp.model == "factworld" or getattr(lm, "model_id", None) == "factworld":
        return PROBES.get(FACTWORLD_PROBE).create(lm.tok, tasks=exp.downstream_tasks, n=exp.downstream_n,
                                                  mode=exp.downstream_mode or "loglik", seed=exp.seed)
    return PROBES.get("glue").create(lm.tok, lm.model_id, tasks=exp.downstream_tasks, n=exp.downstream_n,
                                     shots=exp.downstream_shots, mode=exp.downstream_mode, seed=exp.seed)


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


def gate_values(result: dict) -> dict[str, float]:
    """``f1_drop_<task>`` (points) of every task above chance — the values the ``f1_drop`` gate bounds."""
    return {f"f1_drop_{t}": r["f1_drop_points"] for t, r in result["tasks"].items() if r["above_chance"]}


def select_gates(gates: dict, values: dict) -> dict:
    """Bars for the measured tasks: ``f1_drop`` becomes ``f1_drop_<task>`` for every value present."""
    shared = gates.get("f1_drop")
    out = {}
    for key in values:
        spec = gates.get(key, shared)
        if spec is not None:
            out[key] = spec
    return out


def run_downstream(exp, editor, lm, sample: int = 0, *, progress: bool = True) -> tuple[dict, dict, list]:
    """Run the protocol: ``(result, sequential summary, malformed-record errors)``; the result (also written to
    ``downstream.json`` beside the run's results) holds the baseline, the last check and per-task verdicts."""
    import dataclasses

    from editbench.runner.experiment import run_sequential_sample

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
