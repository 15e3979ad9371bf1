"""Read every result file under one or many paths into one flat list of :class:`Entry` (what ``editbench report``
tables, Table 3 and the gallery are made from).

Three kinds of file are read; anything else is listed under ``Collection.ignored`` with the reason:

- **session files** (``{"schema": "editbench.results/N", "results": [...]}``, :mod:`editbench.runner.results`):
  what a pytest session, ``editbench zsre``, ``editbench downstream`` or ``editbench disabling`` writes. One entry
  per result, whatever its suite: a suite added later flows in with its ``suite`` name and its ``metrics``.
- **sequential run summaries** (``summary.json`` in a run directory, or a copy such as
  ``….sample0.summary.json``): what ``editbench sequential`` leaves. An entry of suite ``sequential``.
- **disabling isolations** (``editbench disabling --from-run``: ``{"edits": [...], "n_intrinsic": ...}``): an
  entry of suite ``isolation``.

The same run read twice (its summary beside the session that embeds it; a results directory merged twice; the
workers of ``pytest -n N`` or the shards of ``--shard i/n``) is one entry: entries are keyed by what produced them
(suite, editor, model, dataset, n, seed, sample, batch size, record ids, hyperparameters), and a session result
wins over a bare summary of the same run. Single-suite record slices (``--record-range``) of the same editor,
model, dataset, seed, hyperparameters and protocols are merged into one entry whose rates and bootstrap intervals
are recomputed over the union of their per-record results (a record met twice, in overlapping slices, counts once),
as one run over those records would give them (:func:`merge_record_slices`).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from editbench import DEFAULT_MODEL
from editbench.models.profiles import profile

SESSION_PREFIX = "editbench.results/"


@dataclass
class Entry:
    """One measured result, normalized across suites. ``metrics`` are the suite's own flat numbers;
    ``intervals`` maps a metric name to ``(lo, hi)`` where the suite measured one; ``details`` is the suite payload
    (a sequential entry's is its run summary)."""

    suite: str
    editor: str
    model: str
    dataset: str | None
    n: int
    seed: int | None = None
    sample: int | None = None
    batch_size: int = 1
    metrics: dict[str, Any] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    verdict: str | None = None
    failures: list[str] = field(default_factory=list)
    s_per_edit: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None          # the file it was read from
    figures: list[Path] = field(default_factory=list)
    jsonl: Path | None = None           # a sequential run's results.jsonl, where it still exists
    created: str | None = None
    key: str = ""
    experiment: dict[str, Any] = field(default_factory=dict)  # the result's experiment (session results)


@dataclass
class Collection:
    entries: list[Entry] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)     # files that gave at least one entry
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: int = 0

    def by_suite(self, suite: str) -> list[Entry]:
        return [e for e in self.entries if e.suite == suite]

    def editors(self) -> list[str]:
        return sorted({e.editor for e in self.entries if e.editor})

    def models(self) -> list[str]:
        """The default model first, models that are not real LMs (their profile's ``real``: the fact world, the tiny
        random models) last."""
        def order(m: str) -> tuple:
            return (m != DEFAULT_MODEL, not profile(m).real, m)
        return sorted({e.model for e in self.entries if e.model}, key=order)


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able value (the key that makes the same run read twice one entry)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _existing(paths: Iterable[Any], base: Path) -> list[Path]:
    """Figures an artefact path names, looked for beside the result file first (a copied or committed run), then
    where the run wrote them if that is inside the result file's folder (never a stray absolute path elsewhere:
    a report must link what travels with it)."""
    out = []
    for p in paths:
        if not p:
            continue
        p = Path(p)
        inside = p if not p.is_absolute() else (p if base.resolve() in p.resolve().parents else None)
        for cand in (base / p.name, inside):
            if cand is not None and cand.suffix == ".png" and cand.is_file() and cand not in out:
                out.append(cand)
                break
    return out


def _sibling_figures(path: Path) -> list[Path]:
    """``X.png`` beside ``X.json`` or ``X.sample0.summary.json`` (the layout of reports/examples)."""
    stem = path.name.removesuffix(".json").removesuffix(".summary").split(".sample")[0]
    cand = path.with_name(stem + ".png")
    return [cand] if cand.is_file() else []


def _intervals(blob: Any) -> dict[str, tuple[float, float]]:
    out = {}
    if isinstance(blob, dict):
        for k, v in blob.items():
            if isinstance(v, dict) and v.get("lo") is not None and v.get("hi") is not None:
                out[k] = (float(v["lo"]), float(v["hi"]))
    return out


def _prov_names(prov: dict) -> tuple[str, str, str | None, str]:
    ed = prov.get("editor") or {}
    editor = ed.get("name") if isinstance(ed, dict) else str(ed)
    model = (prov.get("model") or {}).get("id") if isinstance(prov.get("model"), dict) else prov.get("model")
    ds = prov.get("dataset") or {}
    dataset = ds.get("name") if isinstance(ds, dict) else ds
    ids = ds.get("record_ids") if isinstance(ds, dict) else None
    hp = ed.get("hparams") if isinstance(ed, dict) else None
    return editor, str(model or ""), dataset, digest([ids, hp])


def from_summary(summary: dict, source: Path | None = None) -> Entry:
    """A sequential run summary (:func:`editbench.runner.summary.summarize`) as an entry."""
    prov = summary.get("provenance") or {}
    editor, model, dataset, ident = _prov_names(prov)
    cost = summary.get("cost") or {}
    imm = summary.get("immediate_mean") or {}
    metrics = {**imm, "cf_edit": summary.get("cf_edit"), "n_edits": summary.get("n_edits"),
               "health_first": summary.get("health_first"), "health_last": summary.get("health_last"),
               "health_key": summary.get("health_key")}
    for mark, at in (summary.get("milestones") or {}).items():
        metrics[f"milestone_{mark}"] = at
    for count, f in (summary.get("forgetting_at") or {}).items():
        metrics[f"forget_argmax_now@{count}"] = f.get("forget_argmax_now")
        metrics[f"forget_prob_now@{count}"] = f.get("forget_prob_now")
    paths = summary.get("paths") or {}
    base = source.parent if source else Path(".")
    jsonl = Path(paths["jsonl"]) if paths.get("jsonl") else None
    if jsonl is not None and not jsonl.is_file():
        jsonl = base / "results.jsonl" if (base / "results.jsonl").is_file() else None
    figures = _existing([paths.get("plot")], base) or (_sibling_figures(source) if source else [])
    bs = int(summary.get("batch_size") or 1)
    key = digest(["sequential", editor, model, dataset, summary.get("n_planned"), summary.get("seed"),
                   summary.get("sample"), bs, ident])
    return Entry(suite="sequential", editor=editor or summary.get("editor") or "?",
                 model=model or summary.get("model_id") or "?", dataset=dataset, n=int(summary.get("n_edits") or 0),
                 seed=summary.get("seed"), sample=summary.get("sample"), batch_size=bs, metrics=metrics,
                 intervals=_intervals(summary.get("immediate_intervals")), s_per_edit=cost.get("apply_s_mean"),
                 details=summary, source=source, figures=figures, jsonl=jsonl,
                 created=(summary.get("timing") or {}).get("created"), key=key,
                 verdict=None)


def from_result(result: dict, source: Path | None = None) -> Entry:
    """One result of a session file (any suite) as an entry."""
    suite, prov, exp = result.get("suite", "?"), result.get("provenance") or {}, result.get("experiment") or {}
    if suite == "sequential" and isinstance((result.get("details") or {}).get("summary"), dict):
        e = from_summary(result["details"]["summary"], source)
        e.verdict, e.failures = result.get("verdict"), list(result.get("failures") or [])
        e.s_per_edit = (result.get("cost") or {}).get("apply_s_mean") or e.s_per_edit
        return e
    if suite == "disabling" and isinstance((result.get("details") or {}).get("isolation"), dict):
        iso = {**result["details"]["isolation"]}  # the pytest suite's isolation of a run's CF edits
        iso.setdefault("experiment", exp)
        e = from_isolation(iso, source)[0]
        e.verdict, e.failures = result.get("verdict"), list(result.get("failures") or [])
        return e
    editor, model, dataset, ident = _prov_names(prov)
    editor = editor or exp.get("editor") or "?"
    model = model or exp.get("model") or "?"
    dataset = dataset or exp.get("dataset")
    details = result.get("details") or {}
    iv = details.get("intervals") or {}
    intervals = {**_intervals(iv.get("post") if isinstance(iv, dict) and "post" in iv else iv)}
    base = source.parent if source else Path(".")
    art = result.get("artefacts") or {}
    figures = (_sibling_figures(source) if source else []) or \
        _existing([art.get(k) for k in ("plot", "figure", "downstream_plot")], base)
    timings = result.get("timings") or {}
    key = digest([suite, editor, model, dataset, result.get("n"), exp.get("seed"), exp.get("batch_size"), ident,
                   result.get("metrics")])
    return Entry(suite=suite, editor=editor, model=str(model), dataset=dataset, n=int(result.get("n") or 0),
                 seed=exp.get("seed"), batch_size=int(exp.get("batch_size") or 1), metrics=dict(result.get("metrics")
                                                                                                 or {}),
                 intervals=intervals, baseline=result.get("baseline"), verdict=result.get("verdict"),
                 failures=list(result.get("failures") or []),
                 s_per_edit=timings.get("apply_s_mean") or (result.get("cost") or {}).get("apply_s_mean"),
                 details=details, source=source, figures=figures, created=prov.get("created"), key=key,
                 experiment=dict(exp))


def from_isolation(blob: dict, source: Path | None = None) -> list[Entry]:
    """``editbench disabling --from-run`` output: each CF edit of a run applied first on a fresh model."""
    exp = blob.get("experiment") or {}
    edits = blob.get("edits") or []
    editor = exp.get("editor") or next((e.get("editor") for e in edits if e.get("editor")), "?")
    model = exp.get("model") or "?"
    intrinsic = blob.get("n_intrinsic")
    metrics = {"n_cf_edits": blob.get("n_cf_edits", len(edits)), "n_intrinsic": intrinsic,
               "case_ids": [str(e.get("case_id") or (e.get("fresh") or {}).get("case_id")) for e in edits],
               "classes": [e.get("class") for e in edits]}
    key = digest(["isolation", editor, model, metrics["case_ids"]])
    return [Entry(suite="isolation", editor=str(editor), model=str(model), dataset=exp.get("dataset"),
                  n=len(edits), metrics=metrics, details=blob, source=source,
                  figures=_sibling_figures(source) if source else [], key=key)]


def _kind(blob: Any) -> str | None:
    if not isinstance(blob, dict):
        return None
    if str(blob.get("schema", "")).startswith(SESSION_PREFIX) and isinstance(blob.get("results"), list):
        return "session"
    if {"forgetting_at", "collapse", "n_edits"} <= blob.keys():
        return "summary"
    if "edits" in blob and "n_intrinsic" in blob:
        return "isolation"
    return None


def read_file(path: Path) -> tuple[list[Entry], str | None]:
    """Entries of one file, or ``([], why)`` when it holds none."""
    try:
        blob = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return [], f"not readable JSON ({type(e).__name__}: {str(e).splitlines()[0][:80]})"
    kind = _kind(blob)
    if kind == "session":
        out = []
        for i, r in enumerate(blob["results"]):
            if isinstance(r, dict):
                out.append(from_result(r, path))
        return out, None if out else "a session file with no results"
    if kind == "summary":
        return [from_summary(blob, path)], None
    if kind == "isolation":
        return from_isolation(blob, path), None
    return [], "not an editbench result (no session schema, run summary or isolation)"


def collect(paths: Iterable[str | Path]) -> Collection:
    """Every result under ``paths`` (files, or directories searched recursively for ``*.json``), merged."""
    col, seen = Collection(), {}
    files: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*.json") if q.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            col.ignored.append((p, "no such file or directory"))
    for f in files:
        if f.name in ("checkpoint.json", "state.json") or f.parent.name == "checkpoints":
            continue
        entries, why = read_file(f)
        if why:
            col.ignored.append((f, why))
            continue
        unknown = [e for e in entries if e.editor in ("?", "", None) or e.model in ("?", "", None)]
        if unknown:
            col.ignored.append((f, f"{len(unknown)} result(s) name no editor or model (an older result schema)"))
            entries = [e for e in entries if e not in unknown]
            if not entries:
                continue
        col.files.append(f)
        for e in entries:
            prev = seen.get(e.key)
            if prev is None:
                seen[e.key] = e
                col.entries.append(e)
                continue
            col.duplicates += 1
            if prev.verdict is None and e.verdict is not None:  # a session result over a bare summary
                col.entries[col.entries.index(prev)] = e
                seen[e.key] = e
    col.entries = merge_record_slices(col.entries)  # --record-range slices of one run: one entry
    return col


# --- single-suite record slices (--record-range) merged into one result over all their records -----------------
def slice_group_key(e: Entry, prefix: bool = False) -> str | None:
    """What the slices of one run share (None: not a record slice). With ``prefix``, a single-suite run without
    ``--record-range`` (``--n-records N``: the first N records of the same seeded order, i.e. slice 0:N) gets
    the key its slices would have."""
    exp = e.experiment or {}
    if e.suite != "single" or not (exp.get("record_range") or (prefix and e.n)):
        return None
    return digest([e.editor, e.model, e.dataset, exp.get("seed"),
                   json.dumps(exp.get("hparams"), sort_keys=True, default=str),
                   sorted(exp.get("protocols") or [])])


def _start(e: Entry) -> int:
    return int(str(e.experiment.get("record_range")).split(":")[0])


def merge_slices(slices: list[Entry]) -> Entry:
    """One entry over the union of the slices' records, ordered by slice start."""
    # imported here, not at the top: these import torch (about 2 s cold); `import editbench.report.collect` takes
    # 0.1 s without (measured), and only merging record-range slices needs them
    from editbench.metrics.counterfact import aggregate
    from editbench.metrics.intervals import method, record_intervals

    slices = sorted(slices, key=lambda e: (_start(e), e.created or ""))
    seen, per_record = set(), []
    for e in slices:
        for r in e.details.get("per_record") or []:
            cid = str(r.get("case_id"))
            if cid not in seen:
                seen.add(cid)
                per_record.append(r)
    scored = [r for r in per_record if "post" in r]
    post = [r["post"] for r in scored]
    ivs = {"post": record_intervals(post), "pre": record_intervals([r["pre"] for r in scored]), "method": method()}
    apply_s = [r["apply_s"] for r in scored if r.get("apply_s") is not None]
    ranges = [str(e.experiment.get("record_range")) for e in slices]
    verdicts = {e.verdict for e in slices}
    first = slices[0]
    return replace(
        first, n=len(per_record), metrics=aggregate(post), baseline=aggregate([r["pre"] for r in scored]),
        intervals={k: (v["lo"], v["hi"]) for k, v in ivs["post"].items() if v.get("lo") is not None},
        verdict=verdicts.pop() if len(verdicts) == 1 else "mixed",
        failures=[f for e in slices for f in e.failures],
        s_per_edit=sum(apply_s) / len(apply_s) if apply_s else None,
        details={"per_record": per_record, "intervals": ivs,
                 "all_restored": all(e.details.get("all_restored", True) for e in slices),
                 "slices": [{"record_range": rr, "n": e.n, "source": str(e.source) if e.source else None}
                            for rr, e in zip(ranges, slices)]},
        created=max(e.created or "" for e in slices) or None,
        experiment={**first.experiment, "record_range": None, "record_ranges": ranges},
        key=digest(["single-merged", [e.key for e in slices]]))


def merge_record_slices(entries: list[Entry]) -> list[Entry]:
    """``entries`` with every group of record slices replaced by its merged entry (at the first slice's place);
    a group of one slice is merged too (its rates are then the slice's own)."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        k = slice_group_key(e)
        if k is not None:
            groups.setdefault(k, []).append(e)
    if not groups:
        return entries
    for e in entries:  # a prefix run (--n-records N) joins slices of the same run as 0:N, only where slices exist
        k = slice_group_key(e, prefix=True)
        if slice_group_key(e) is None and k in groups:
            e.experiment = {**e.experiment, "record_range": f"0:{e.n}"}
            groups[k].append(e)
    out, done = [], set()
    for e in entries:
        k = slice_group_key(e)
        if k is None:
            out.append(e)
        elif k not in done:
            done.add(k)
            out.append(merge_slices(groups[k]))
    return out

