"""The disabling-edit suite's runner: the scan over N records, and the isolation of a sequential run's CF edits.

**Scan** (:func:`run_scan`): the experiment's first N records (the published CounterFact edit order for real
CounterFact, so a scan of the first N records of ``counterfact-1k`` holds the edits a sequential run of N would
make; seeded otherwise) each applied alone to the fresh model (:func:`editbench.suites.disabling.isolation.scan`).

**Isolation** (:func:`run_isolation`): from a sequential run's ``summary.json`` (:mod:`editbench.runner.summary`)
take the edit(s) of every *confirmed* distance jump (:func:`disabling_edits`: the CF point first; case ids of
other jumps from the run's ``results.jsonl`` when it is there), apply each as the first edit of the fresh model,
and classify it intrinsic or accumulated (:func:`editbench.suites.disabling.rules.classify`) against the jump's
increment. A batch CF point (several case ids) is applied as one batch.

Health probes: the experiment's, else the model's defaults (:func:`~editbench.runner.experiment.default_probes`)
plus ``entropy`` (:mod:`editbench.metrics.entropy`), built over the dataset pool with the scanned records as the
stream (recall is measured on facts none of them edits).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from editbench.metrics.probes import ProbeContext, build_probes
from editbench.runner.experiment import Experiment, ExperimentError, default_order, default_probes, load_pool
from editbench.runner.jsonl import jsonable, read_jsonl
from editbench.runner.schedule import make_stream
from editbench.suites.disabling.isolation import FreshModel, scan
from editbench.suites.disabling.rules import DisablingRule, classify


def probe_names(exp: Experiment) -> tuple[str, ...]:
    return exp.probes if exp.probes is not None else default_probes(exp.model) + ("entropy",)


def build_health(exp: Experiment, lm, pool, stream) -> tuple[Any, dict[str, str], list[str]]:
    """(combined probe, metric directions, notes of probes that could not be built)."""
    ctx = ProbeContext(tok=lm.tok, model_id=lm.model_id, pool=pool, stream=stream, seed=exp.seed,
                       dataset=exp.dataset_name)
    probe, directions = build_probes(probe_names(exp), ctx)
    return probe, directions, list(ctx.notes)


def scan_records(exp: Experiment, pool) -> list:
    """The N records a scan edits: the stream a sequential run of N edits would make (sample 0)."""
    n = min(exp.n_resolved, len(pool))
    return make_stream(pool, default_order(exp.dataset_name), exp.seed, 0, n)


def run_scan(exp: Experiment, editor, lm, *, rule: DisablingRule = DisablingRule(), progress: bool = True,
             on_row=None, done: dict[str, dict] | None = None, health_on: str = "all", n_controls: int = 5):
    """(scan result, records, malformed-record errors) of ``exp.n`` records (``on_row``, ``done``, ``health_on``,
    ``n_controls``: see ``scan``)."""
    pool, errors = load_pool(exp)
    if not pool:
        raise ExperimentError(f"no valid records in {exp.dataset_name!r} ({len(errors)} malformed)")
    records = scan_records(exp, pool)
    health, directions, notes = build_health(exp, lm, pool, records)
    out = scan(editor, lm, records, health=health, directions=directions, rule=rule, progress=progress,
               on_row=on_row, done=done, health_on=health_on, n_controls=n_controls, seed=exp.seed)
    out["probe_notes"] = notes
    return out, records, errors


def _scan_key(exp: Experiment) -> dict:
    """What must match for a scan's rows to be reused: everything but the number of records and the output."""
    d = exp.to_dict()
    return {k: v for k, v in d.items() if k not in ("n", "out_dir", "n_resolved")}


def row_writer(path: Path, exp: Experiment, append: bool = False):
    """An ``on_row`` that appends each scan row to ``path`` (JSON lines; the first line names the experiment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not append:
        path.write_text(json.dumps({"experiment": _scan_key(exp)}, default=str) + "\n")

    def on_row(row: dict) -> None:
        with path.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")
    return on_row


def resume_rows(path: Path, exp: Experiment) -> dict[str, dict]:
    """The rows an interrupted scan wrote, by case id; an error when they came from another experiment."""
    if not path.is_file():
        return {}
    rows = read_jsonl(path)
    if not rows or "experiment" not in rows[0]:
        raise ExperimentError(f"{path}: not a scan rows file (no experiment header)")
    theirs, ours = rows[0]["experiment"], json.loads(json.dumps(_scan_key(exp), default=str))
    diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    if diff:
        raise ExperimentError(f"{path} was written by another scan (differs in {', '.join(diff)}); "
                              "remove it or drop --resume")
    return {r["case_id"]: r for r in rows[1:] if "case_id" in r}


# -- isolation of a sequential run's CF edits -------------------------------------------------------------
def read_summary(path: str | Path) -> dict:
    """A sequential run's summary: ``path`` is summary.json or the run directory holding it."""
    p = Path(path)
    if p.is_dir():
        p = p / "summary.json"
    if not p.is_file():
        raise ExperimentError(f"--from-run {str(path)!r}: no summary.json there (a sequential run directory, "
                              "e.g. reports/runs/sequential/rome/smollm2-135m/sample_0, or its summary.json)")
    try:
        s = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ExperimentError(f"--from-run {str(path)!r}: {p} is not a readable summary ({e})") from None
    if not isinstance(s, dict) or "cf_edit" not in s or "collapse" not in s:
        raise ExperimentError(f"--from-run {str(path)!r}: {p} is not a sequential run summary (no cf_edit/collapse)")
    s.setdefault("paths", {})["summary_read"] = str(p)
    return s


def _case_ids_by_edit(jsonl: Path) -> dict[int, list[str]]:
    """Edit count after each step -> the case ids of that step (one edit, or a batch)."""
    by_batch: dict[Any, list[dict]] = {}
    for r in read_jsonl(jsonl):
        if r.get("type") == "edit":
            by_batch.setdefault(r.get("batch"), []).append(r)
    return {max(e["n"] for e in es): [str(e["case_id"]) for e in es] for es in by_batch.values()}


def disabling_edits(summary: dict, jsonl: str | Path | None = None) -> list[dict]:
    """The confirmed distance jumps of a run, CF point first: ``{"edit", "case_ids", "increment", "before",
    "after", "ratio", "z", "nonfinite", "cf_point"}``. Jumps other than the CF point need ``results.jsonl`` for
    their case ids (``jsonl``, else the summary's path if it exists); without it they are left out."""
    cf = summary.get("cf_edit")
    jumps = [j for j in (summary.get("collapse") or {}).get("jumps", []) if j.get("confirmed")]
    path = Path(jsonl) if jsonl else Path((summary.get("paths") or {}).get("jsonl") or "")
    ids = _case_ids_by_edit(path) if str(path) and path.is_file() else {}
    out = []
    for j in jumps:
        if j["edit"] == cf:
            case = summary.get("cf_case_id")
            cases = [str(c) for c in case] if isinstance(case, list) else [str(case)]
        elif j["edit"] in ids:
            cases = ids[j["edit"]]
        else:
            continue
        out.append({"edit": j["edit"], "case_ids": cases, "increment": j.get("increment"), "before": j.get("before"),
                    "after": j.get("after"), "ratio": j.get("ratio"), "z": j.get("z"),
                    "nonfinite": bool(j.get("nonfinite")), "cf_point": j["edit"] == cf})
    out.sort(key=lambda d: (not d["cf_point"], d["edit"]))
    return out


def _num(x) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    try:
        return float(x)  # "inf"/"nan" written as strings
    except (TypeError, ValueError):
        return None


def isolate(edits: Sequence[dict], editor, lm, pool, *, health=None, directions=None,
            rule: DisablingRule = DisablingRule()) -> list[dict]:
    """Each of ``edits`` (:func:`disabling_edits`) applied as the first edit of the fresh model and classified."""
    by_id = {str(r.case_id): r for r in pool}
    editor.prepare(lm.model, lm.tok)
    fresh = FreshModel(lm, health, directions, rule)
    out = []
    for d in edits:
        missing = [c for c in d["case_ids"] if c not in by_id]
        if missing:
            raise ExperimentError(f"case id(s) {missing} of the run's edit {d['edit']} are not in the dataset "
                                  f"(pass the run's --dataset)")
        row = fresh.edit(editor, [by_id[c] for c in d["case_ids"]])
        dist = _num(row["distance"]) if row["distance"] is not None else None
        verdict = classify(dist, _num(d.get("increment")), row["disabled"]["disabled"], rule, broken=row["broken"])
        out.append({"run_edit": d, "fresh": row, **verdict, "baseline_health": fresh.baseline})
    if not fresh.check_untouched():
        raise RuntimeError("the model is not byte-identical to the fresh one after the isolation edits")
    return out


def run_isolation(exp: Experiment, editor, lm, summary: dict, *, rule: DisablingRule = DisablingRule()) -> dict:
    """Isolate every CF edit of the run ``summary`` on ``lm``: ``{"edits": [...], "n_intrinsic", ...}``."""
    pool, _errors = load_pool(exp)
    edits = disabling_edits(summary)
    ids = {c for d in edits for c in d["case_ids"]}
    stream = [r for r in pool if str(r.case_id) in ids]
    health, directions, notes = build_health(exp, lm, pool, stream)
    rows = isolate(edits, editor, lm, pool, health=health, directions=directions, rule=rule) if edits else []
    run_editor = summary.get("editor")
    return {"run": {"summary": (summary.get("paths") or {}).get("summary_read"), "editor": run_editor,
                    "model_id": summary.get("model_id"), "cf_edit": summary.get("cf_edit"),
                    "cf_case_id": summary.get("cf_case_id"), "n_edits": summary.get("n_edits")},
            "editor_matches_run": run_editor in (None, editor.name), "edits": rows, "n_cf_edits": len(rows),
            "n_intrinsic": sum(1 for r in rows if r["class"] == "intrinsic"), "probe_notes": notes,
            "rule": rule.to_dict()}


# -- the front ends' shared pieces -------------------------------------------------------------------------
def run_experiment(exp: Experiment, summary: dict) -> Experiment:
    """``exp`` with the run's dataset (when ``exp`` names none) and the run's editor hyperparameters (those that
    differ from the preset; ``exp``'s own overrides win), so a CF edit is isolated with the run's editor."""
    prov = summary.get("provenance") or {}
    changes: dict[str, Any] = {}
    if exp.dataset is None and prov.get("dataset"):
        changes["dataset"] = prov["dataset"]
    run_hp = ((prov.get("editor") or {}).get("hparams") or {}) if isinstance(prov.get("editor"), dict) else {}
    if run_hp:
        run_hp = {k: tuple(v) if isinstance(v, list) else v for k, v in run_hp.items()}  # JSON lists -> tuples
        changes["hparams"] = tuple({**run_hp, **dict(exp.hparams)}.items())
    return dataclasses.replace(exp, **changes) if changes else exp


def check_run_matches(summary: dict, exp: Experiment, model_id: str) -> str | None:
    """Why ``exp`` cannot isolate this run's edits (another editor or model), or None."""
    if summary.get("editor") not in (None, exp.editor):
        return f"the run at --from-run was made by editor {summary['editor']!r}, not {exp.editor!r}"
    run_model = summary.get("model_id")
    if run_model and Path(str(run_model)).name != Path(str(model_id)).name:
        return f"the run at --from-run edited model {run_model!r}, not {model_id!r}"
    return None


def out_dir(exp: Experiment, model_id: str) -> Path:
    """``<reports>/runs/disabling/<editor>/<model>/``."""
    return Path(exp.out_dir) / "runs" / "disabling" / exp.editor / Path(model_id).name


def write_json(obj: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(obj), indent=1, sort_keys=True))
    return path
