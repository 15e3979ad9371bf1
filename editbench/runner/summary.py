"""Read a sequential run's JSON lines back into series, detect its CF point, and summarize it for gates.

The JSONL file is the source of truth: the summary of a resumed run is computed from the same records as an
uninterrupted one, and :func:`summarize` can be re-run on any finished (or half-finished) run offline.

A damaged line of the file (bytes overwritten, a record without its fields) does not stop the summary: it is
skipped, and ``damaged_lines`` lists its 1-based line number (``n_damaged_lines`` counts them). A run stopped by
non-finite weights (``SequentialConfig.on_nonfinite="stop"``) has a ``stop`` record, reported as ``stopped``
(the reason) with ``complete`` false; edits flagged ``nonfinite`` are counted (``n_nonfinite``,
``first_nonfinite_edit``) and the first of them is a CF point wherever it is.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from statistics import mean
from typing import Any

from editbench.metrics.collapse import CollapseRule, detect_collapse, milestones
from editbench.metrics.counterfact import EXTRA_METRICS
from editbench.metrics.health import lower_is_better
from editbench.runner.cost import memory
from editbench.runner.files import write_atomic
from editbench.runner.jsonl import jsonable, read_jsonl

FORGET_KEYS = ("forget_prob_now", "forget_prob_ever", "forget_argmax_now", "forget_argmax_ever",
               "learned_prob", "learned_argmax")
COLLAPSE_FORGET_KEY = "forget_argmax_now"  # the paper's curves use argmax correctness
EDIT_FIELDS = ("n", "batch", "case_id", "immediate", "distance")
# the token_acc and gen protocols' immediate scores, averaged in the summary when the run's edit records carry them
IMMEDIATE_EXTRA = EXTRA_METRICS


def check_record(rec: dict) -> None:
    """Raise ValueError for a results record the summary cannot use (a damaged line)."""
    kind = rec.get("type")
    if not isinstance(kind, str):
        raise ValueError("no record 'type'")
    if kind == "edit":
        missing = [k for k in EDIT_FIELDS if k not in rec]
        if missing:
            raise ValueError(f"edit record without {missing}")
        if not isinstance(rec["n"], int) or not isinstance(rec["immediate"], dict) \
                or not isinstance(rec["distance"], dict):
            raise ValueError("edit record with fields of the wrong type")
    elif kind in ("check", "final", "stop") and not isinstance(rec.get("n"), int):
        raise ValueError(f"{kind} record without an edit count 'n'")


MIN_RECALL_FOR_HEALTH = 0.5


def pick_health_key(checks: list[dict], preferred: str | None = None) -> str | None:
    """The health signal the CF detector watches: ``preferred`` if given; else recall of unedited facts when the
    unedited model knows at least half of them (the fact world: 1.00), else perplexity on generic text (SmolLM2
    knows ~3% of CounterFact's facts by argmax: a recall of 0.03 -> 0.01 is noise, not a collapse)."""
    keys: list[str] = []
    for c in checks:
        for k in c.get("health", {}):
            if k not in keys:
                keys.append(k)
    if preferred is not None:
        return preferred if preferred in keys else None
    first = checks[0].get("health", {}) if checks else {}
    if "recall" in keys and (first.get("recall") or 0.0) >= MIN_RECALL_FOR_HEALTH:
        return "recall"
    if "ppl" in keys:
        return "ppl"
    return keys[0] if keys else None


def load_series(records: list[dict], health_key: str | None = None) -> dict:
    """Per-edit, per-step (batch) and per-check series of one run's records."""
    header = next((r for r in records if r["type"] == "run"), {})
    edits = [r for r in records if r["type"] == "edit"]
    checks = [r for r in records if r["type"] == "check"]
    steps: list[dict] = []
    for e in edits:  # group consecutive edit records of one batch into one step
        if steps and steps[-1]["batch"] == e["batch"]:
            steps[-1]["edits"].append(e)
        else:
            steps.append({"batch": e["batch"], "edits": [e]})
    hk = pick_health_key(checks, health_key)
    out = {
        "header": header,
        "n": [e["n"] for e in edits],
        "case_id": [e["case_id"] for e in edits],
        "es": [e["immediate"].get("es") for e in edits],
        "edits": edits,
        "step_n": [s["edits"][-1]["n"] for s in steps],
        "step_case_ids": [s["edits"][0]["case_id"] if len(s["edits"]) == 1 else [e["case_id"] for e in s["edits"]]
                          for s in steps],
        "step_distance": [s["edits"][-1]["distance"].get("total", {}).get("dist", 0.0) for s in steps],
        "step_es": [_mean_or_none([e["immediate"].get("es") for e in s["edits"]]) for s in steps],
        "step_nonfinite": [any(bool(e.get("nonfinite")) for e in s["edits"]) for s in steps],
        "checks": checks,
        "forgetting": [(c["n"], c["forgetting"]) for c in checks if "forgetting" in c],
        "health_key": hk,
        "health": [(c["n"], c["health"][hk]) for c in checks if hk and hk in c.get("health", {})],
        "final": [r for r in records if r["type"] == "final"],
        "stop": next((r for r in records if r["type"] == "stop"), None),
    }
    return out


def _mean_or_none(xs):
    xs = [x for x in xs if x is not None]
    return mean(xs) if xs else None


def forgetting_at(forgetting: list[tuple[int, dict]], counts, n_done: int) -> dict[str, dict]:
    """Forgetting fractions at each edit count in ``counts`` that the run reached (the last check at or before
    it; ``at_edit`` says which)."""
    out = {}
    for c in counts:
        if c > n_done:
            continue
        prior = [(n, f) for n, f in forgetting if 0 < n <= c]
        if prior:
            n, f = prior[-1]
            out[str(c)] = {"at_edit": n, **{k: f.get(k) for k in FORGET_KEYS}}
    return out


def health_lower_is_better(header: dict, key: str | None) -> bool:
    """Whether a lower value of health metric ``key`` is better: as the run's probes declared it in the header
    (``health_directions``), else by the metric's name (runs written before probes declared directions)."""
    if not key:
        return False
    declared = (header.get("health_directions") or {}).get(key)
    return declared == "lower" if declared else lower_is_better(key)


def summarize(jsonl_path: str | Path, cfg: Any = None, wall_s: float | None = None,
              resumed_from: dict | None = None) -> dict:
    """The gateable summary of one run; also written to ``summary.json`` next to the JSONL. (The figure is the
    report layer's: :func:`editbench.report.plots.plot_summary`.) ``resumed_from`` is what the runner resumed
    (``{"edit", "of", "checkpoint", "message"}``), None for a run that was not resumed."""
    t0 = time.perf_counter()
    jsonl_path = Path(jsonl_path)
    damaged: list[int] = []
    records = read_jsonl(jsonl_path, damaged=damaged, check=check_record)
    if damaged:
        warnings.warn(f"{jsonl_path}: {len(damaged)} damaged line(s) skipped (line {', '.join(map(str, damaged))}); "
                      "the summary lists them under damaged_lines", UserWarning, stacklevel=2)
    header = next((r for r in records if r["type"] == "run"), {})
    conf = cfg.to_dict() if cfg is not None else header.get("config", {})
    rule = cfg.collapse if cfg is not None else CollapseRule(**conf.get("collapse", {}))
    every = max(conf.get("history_every") or 1, conf.get("health_every") or 0)
    ds_checks = [c for c in records if c.get("type") == "check" and isinstance(c.get("downstream"), dict)]
    if ds_checks:  # a check on each side of a CF point for the downstream signal too
        every = max(every, conf.get("downstream_every") or 0)
    rule = rule.__class__(**{**rule.__dict__, "tol_before": max(rule.tol_before, every),
                             "tol_after": max(rule.tol_after, every)})
    s = load_series(records, conf.get("health_key"))
    learned = COLLAPSE_FORGET_KEY.replace("forget", "learned").rsplit("_", 1)[0]  # forget_argmax_now -> learned_argmax
    forgetting = [(n, f.get(COLLAPSE_FORGET_KEY) if (f.get(learned) or 0) >= rule.min_learned else None)
                  for n, f in s["forgetting"]]
    hk = s["health_key"]
    ds = downstream_summary(ds_checks, header) if ds_checks else None
    lower = health_lower_is_better(header, hk)
    collapse = detect_collapse(s["step_distance"], s["step_es"], forgetting, s["health"],
                               health_lower_is_better=lower,
                               case_ids=s["step_case_ids"], steps=s["step_n"], rule=rule,
                               nonfinite=s["step_nonfinite"], **({"downstream": ds["signal"]} if ds else {}))
    marks = milestones(forgetting, s["health"], health_lower_is_better=lower)
    n_done = s["n"][-1] if s["n"] else 0
    nonfinite = [e["n"] for e in s["edits"] if e.get("nonfinite")]
    stop = s["stop"]
    last = s["edits"][-1] if s["edits"] else {}
    prov = header.get("provenance", {})
    editor = prov.get("editor")
    summary = {
        "provenance": prov,  # its "created" time is under "timing" with every other wall-clock number
        "editor": editor.get("name") if isinstance(editor, dict) else editor,
        "model_id": (prov.get("model") or {}).get("id"),
        "sample": conf.get("sample"), "order": conf.get("order"), "seed": conf.get("seed"),
        "batch_size": conf.get("batch_size", 1), "history_every": conf.get("history_every"),
        "n_edits": n_done, "n_planned": len(header.get("stream", [])),
        "complete": bool(header) and n_done == len(header.get("stream", [])) and stop is None,
        "stopped": stop.get("reason") if stop else None,
        "resumed_from": resumed_from,
        "damaged_lines": damaged, "n_damaged_lines": len(damaged),
        "n_nonfinite": len(nonfinite), "first_nonfinite_edit": nonfinite[0] if nonfinite else None,
        "cf_edit": collapse["cf_edit"], "cf_case_id": collapse["case_id"],
        "forgetting_at": forgetting_at(s["forgetting"], conf.get("forget_at", ()), n_done),
        "forgetting_final": {k: s["forgetting"][-1][1].get(k) for k in FORGET_KEYS} if s["forgetting"] else None,
        "final_windows": last.get("windows", {}),
        "immediate_mean": {k: _mean_or_none([e["immediate"].get(k) for e in s["edits"]])
                           for k in ("es", "ps", "ns", "es_correct", "ps_correct", "ns_correct")
                           + tuple(k for k in IMMEDIATE_EXTRA if any(k in e["immediate"] for e in s["edits"]))},
        # 95% bootstrap intervals over the edits of every immediate rate (editbench.metrics.intervals)
        "immediate_intervals": immediate_intervals(s["edits"]),
        # forgetting under the gen protocol (history checks re-generate from rewrite prompts), None without it
        "forgetting_gen_final": next((c["forgetting_gen"] for c in reversed(s["checks"]) if "forgetting_gen" in c),
                                     None),
        "gradual_forget_rate_per_100": collapse["gradual"]["forget_rate_per_100"],
        "catastrophic": collapse["catastrophic"],
        # first checks past fixed damage levels (health x2/x10, forgetting 0.5/0.9): landmarks without a jump
        "milestones": marks,
        # normalized distance and norm growth of the edited matrices at every check (and after the last edit)
        "drift": drift_series(s["edits"], [c["n"] for c in s["checks"]]),
        "health_key": hk,
        "health_first": s["health"][0][1] if s["health"] else None,
        "health_last": s["health"][-1][1] if s["health"] else None,
        "distance_final": last.get("distance", {}),
        "n_errors": sum(1 for e in s["edits"] if e.get("error")),
        "errors_by_reason": raised_reasons([e.get("error") for e in s["edits"]]),
        "final": _final_aggregate(s["final"]),
        "collapse": collapse,
        **({"downstream": ds} if ds else {}),
        "paths": {"jsonl": str(jsonl_path), "summary": str(jsonl_path.parent / "summary.json")},
    }
    summary["timing"] = {"wall_s": wall_s, "edits_per_s": n_done / wall_s if wall_s else None,
                         "summary_s": time.perf_counter() - t0, **(header.get("timing") or {})}
    summary["cost"] = run_cost(s["edits"], s["checks"], header)
    write_summary(summary)
    return summary


def drift_series(edits: list[dict], at: list[int]) -> list[dict]:
    """The edited matrices' drift, all together (the distance's ``total``), after the edits at counts ``at`` and
    after the last edit: ``{"n", "dist", "rel", "norm_ratio"}`` (``norm_ratio`` = ‖W‖/‖W₀‖ is None in runs
    recorded before the runner measured it)."""
    by_n = {e["n"]: e for e in edits}
    counts = sorted(set(at) | ({edits[-1]["n"]} if edits else set()))
    out = []
    for n in counts:
        tot = (by_n.get(n, {}).get("distance") or {}).get("total")
        if tot:
            out.append({"n": n, "dist": tot.get("dist"), "rel": tot.get("rel"), "norm_ratio": tot.get("norm_ratio")})
    return out


def downstream_summary(checks: list[dict], header: dict) -> dict:
    """The downstream checks of a run: per task the primary-mode F1 at each check (``f1``, and every flat metric
    under ``series``), the tasks above chance at the first check (the unedited model when the run has its edit-0
    check), and the collapse signal: the mean primary F1 of those tasks at each check (None when no task was
    above chance: such a run cannot show a downstream regression)."""
    first, last = checks[0]["downstream"], checks[-1]["downstream"]
    tasks = sorted({k.split(".")[0] for k in first if k.endswith(".f1") and k.count(".") == 1})
    above = [t for t in tasks if first.get(f"{t}.above_chance")]
    f1 = {t: [(c["n"], c["downstream"].get(f"{t}.f1")) for c in checks] for t in tasks}
    signal = None
    if above:
        signal = [(c["n"], _mean_or_none([c["downstream"].get(f"{t}.f1") for t in above])) for c in checks]
    keys = sorted({k for c in checks for k in c["downstream"]})
    return {"tasks": tasks, "above_chance": above, "baseline_n": checks[0]["n"], "f1": f1, "signal": signal,
            "first": first, "last": last, "last_n": checks[-1]["n"],
            "drop_points": {t: (100.0 * (first[f"{t}.f1"] - last[f"{t}.f1"])
                                if first.get(f"{t}.f1") is not None and last.get(f"{t}.f1") is not None else None)
                            for t in tasks},
            "primary": (header.get("downstream") or {}).get("primary", {}),
            "settings": (header.get("downstream") or {}).get("settings", {}),
            "series": {k: [(c["n"], c["downstream"].get(k)) for c in checks] for k in keys}}


def immediate_intervals(edits: list[dict]) -> dict:
    """``{metric: {"mean", "lo", "hi", "n"}}`` over the run's edits for every immediate rate they carry."""
    from editbench.metrics.counterfact import EXTRA_METRICS, METRICS
    from editbench.metrics.intervals import interval

    keys = [k for k in (*METRICS, *EXTRA_METRICS) if any(k in (e.get("immediate") or {}) for e in edits)]
    return {k: interval([(e.get("immediate") or {}).get(k) for e in edits]) for k in keys}


def run_cost(edits: list[dict], checks: list[dict], header: dict) -> dict:
    """What the run's records say it cost (see :mod:`editbench.runner.cost`): one-off preparation, the editor's
    apply per edit, evaluation (immediate scoring, history re-scoring, health probes), peak memory now."""
    steps = {}  # the edits of one batch share one apply (and one scoring): count each editor step once
    for e in edits:
        steps.setdefault(e.get("batch", e.get("n")), e.get("timing") or {})
    apply = [t.get("apply_s") or 0.0 for t in steps.values()]
    score = sum(t.get("score_s") or 0.0 for t in steps.values())
    history = sum((c.get("timing") or {}).get("history_s") or 0.0 for c in checks)
    health = sum((c.get("timing") or {}).get("health_s") or 0.0 for c in checks)
    breakdown = {"immediate": score, "history": history, "health": health}
    if any("downstream_s" in (c.get("timing") or {}) for c in checks):
        breakdown["downstream"] = sum((c.get("timing") or {}).get("downstream_s") or 0.0 for c in checks)
    return {"prepare_s": (header.get("timing") or {}).get("prepare_s"), "apply_s_total": sum(apply),
            "apply_s_mean": sum(apply) / len(edits) if edits else None,  # per edit, whatever the batch size
            "apply_s_per_step": sum(apply) / len(apply) if apply else None, "eval_s": sum(breakdown.values()),
            "eval_breakdown_s": breakdown, **memory()}


def write_summary(summary: dict) -> None:
    """(Re)write a run's ``summary.json`` (at ``summary["paths"]["summary"]``) atomically; when that fails the
    summary goes to a fallback file that the raised :class:`~editbench.runner.files.WriteFailed` names."""
    write_atomic(summary["paths"]["summary"], json.dumps(jsonable(summary), indent=1, sort_keys=True))


def raised_reasons(errors: list[str | None], top: int = 3) -> dict[str, int]:
    """The most common reasons edits raised (``"ValueError: ..."``, cut at 120 characters) -> how many times."""
    counts: dict[str, int] = {}
    for e in errors:
        if e:
            key = str(e).splitlines()[0][:120]
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:top])


def most_raised(n_raised: int, n_edits: int) -> bool:
    """A run that applied no edit, or where most edits raised, measured the errors, not the editor."""
    return n_edits > 0 and (n_raised == n_edits or 2 * n_raised > n_edits)


def raised_line(n_raised: int, n_edits: int, reasons: dict[str, int]) -> str:
    """``"6 of 6 edits raised (6x ValueError: Invalid learning rate: -5.0)"``: one line for summaries."""
    why = "; ".join(f"{c}x {r}" for r, c in reasons.items())
    return f"{n_raised} of {n_edits} edits raised" + (f" ({why})" if why else "")


def _final_aggregate(final: list[dict]) -> dict | None:
    if not final:
        return None
    from editbench.metrics.counterfact import aggregate
    return aggregate([r["metrics"] for r in final])
