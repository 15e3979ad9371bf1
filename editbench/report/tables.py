"""The leaderboard (editors x models) and the seed paper's Table 3, both computed from a :class:`Collection`.

Nothing here is typed in except the paper's own Table 3 (:data:`PAPER_TABLE3`, shown beside ours for comparison).
Every cell of our Table 3 comes from one rule in :data:`TABLE3_RULES` applied to measured numbers, and says the
number it came from; a property with no run behind it is "not measured".

Which run fills a cell: per (editor, model) and suite, the largest run (most records / edits), the newest on a tie;
the samples of one sequential configuration (same dataset, length, batch size, hyperparameters and seed; samples
0, 1, ...) are pooled as mean ± std. Every cell links to the file it was read from.
"""
from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from editbench.report.collect import Collection, Entry

PAPER_TABLE3 = {  # the seed paper's Table 3 (GPT-2-XL / GPT-J), verbatim, for the side-by-side only
    "EDITING EFFICACY": {"ft-c": "100%", "rome": "100% until CF", "memit": "< 100% until CF"},
    "EDIT LOCALITY": {"ft-c": "Very Low", "rome": "High", "memit": "Very High"},
    "AVERAGE DURATION BEFORE CF": {"ft-c": "CF not observed", "rome": "Short", "memit": "Long"},
    "DOWNSTREAM PERFORMANCE LOSS": {"ft-c": "High", "rome": "High", "memit": "Low"},
    "FACT FORGETTING PERCENTAGE": {"ft-c": "Very High", "rome": "High", "memit": "Low"},
    "SINGLE DISABLING EDIT": {"ft-c": "False", "rome": "True", "memit": "False"},
}
PROPERTIES = tuple(PAPER_TABLE3)

TABLE3_RULES = {
    "EDITING EFFICACY": "immediate ES (probability comparison P(new) > P(true) right after each edit, the paper's "
                        "Fig. 1/3a) over the edits of the editor's sequential run: '100%' when >= 99.5%, else "
                        "'< 100%'. With a CF point, 'until CF' and ES over the edits before it (every one when "
                        "the run's results.jsonl is at hand, else the detector's 10-edit window before it).",
    "EDIT LOCALITY": "the sequential run's immediate NS (neighbour prompts still prefer the true object) against the "
                     "unedited model's NS (the single suite's baseline on the same model): drop <= 5 points "
                     "'Very High', <= 10 'High', <= 20 'Low', > 20 'Very Low'. Without a sequential run the "
                     "single-edit NS is used (said in the cell).",
    "AVERAGE DURATION BEFORE CF": "mean CF edit over the samples of the sequential run (runner.summary's detector). "
                                  "No CF point: 'CF not observed (<= N edits)', with the first check at which "
                                  "the health signal was 10x worse than at the start when the run recorded it "
                                  "(runner.summary's milestones: a breakdown without a single jump). Otherwise 'Short' when the mean is "
                                  "below half the longest stretch without CF measured on the same model by any "
                                  "editor (a run without CF counts with its length), else 'Long'.",
    "DOWNSTREAM PERFORMANCE LOSS": "F1 drop (points, the task's primary answer mode) from the unedited model to "
                                   "after the downstream suite's N edits, on tasks above chance: 'High' when the "
                                   "drop exceeds 10 points (the downstream gate), 'Low' otherwise; 'Low, within "
                                   "noise' when the before and after 95% intervals overlap. Tasks at chance cannot "
                                   "show a loss and are not used.",
    "FACT FORGETTING PERCENTAGE": "argmax forgetting now (edits successful right after they were made that fail "
                                  "now; the paper's curves) at the largest edit count every editor's run on the "
                                  "model reached: < 5% 'Low', 5-25% 'High', > 25% 'Very High'.",
    "SINGLE DISABLING EDIT": "'True' when any disabling edit is intrinsic: a CF edit of a sequential run that "
                             "disables a fresh model on its own (editbench disabling --from-run), or a scanned "
                             "record that does; 'False' when the CF edits isolated were all accumulated, or a scan "
                             "of N single edits found none and the run has no CF edit to isolate.",
}

# leaderboard columns: (header, better) -- better "up" / "down" / None
LEADERBOARD_COLUMNS = (("editor", None), ("model", None), ("ES", "up"), ("PS", "up"), ("NS", "up"),
                       ("s/edit", "down"), ("forget@10", "down"), ("forget@50", "down"), ("forget@100", "down"),
                       ("CF point", "up"), ("downstream F1 drop", "down"), ("zsRE q→c", "up"), ("zsRE c→q", "up"),
                       ("disabling edits", "down"), ("paired NS drop", "down"))
ARROWS = {"up": " ↑", "down": " ↓", None: ""}
NOT_MEASURED = "not measured"


def _link(text: str, entry: Entry | None, out_dir: Path | None) -> str:
    if entry is None or entry.source is None or out_dir is None:
        return text
    rel = os.path.relpath(entry.source, out_dir).replace(os.sep, "/")
    return f"[{text}]({rel})"


def _pick(entries: Sequence[Entry]) -> Entry | None:
    return max(entries, key=lambda e: (e.n, e.created or ""), default=None)


def rate(value: float | None, ci: tuple[float, float] | None = None, n: int | None = None) -> str:
    if value is None:
        return "–"
    s = f"{value:.2f}"
    if ci:
        s += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    if n is not None:
        s += f" n={n}"
    return s


@dataclass
class SequentialGroup:
    """The samples of one sequential configuration."""

    entries: list[Entry]

    @property
    def n_edits(self) -> int:
        return min(e.n for e in self.entries)

    @property
    def first(self) -> Entry:
        return self.entries[0]

    def values(self, metric: str) -> list[float]:
        return [e.metrics[metric] for e in self.entries if e.metrics.get(metric) is not None]

    def mean_std(self, metric: str, fmt: str = "{:.2f}") -> str:
        vals = self.values(metric)
        if not vals:
            return "–"
        if len(vals) == 1:
            return fmt.format(vals[0])
        return f"{fmt.format(statistics.mean(vals))} ± {fmt.format(statistics.stdev(vals))} (s={len(vals)})"

    def cf_points(self) -> list[int | None]:
        return [e.metrics.get("cf_edit") for e in self.entries]


def sequential_groups(col: Collection, editor: str, model: str, batch_size: int | None = 1) -> list[SequentialGroup]:
    groups: dict[tuple, list[Entry]] = {}
    for e in col.by_suite("sequential"):
        if e.editor != editor or e.model != model or (batch_size is not None and e.batch_size != batch_size):
            continue
        d = e.details
        hp = ((d.get("provenance") or {}).get("editor") or {}).get("hparams")
        k = (e.dataset, d.get("n_planned"), e.batch_size, e.seed, str(sorted((hp or {}).items())), d.get("order"))
        groups.setdefault(k, []).append(e)
    out = [SequentialGroup(sorted(v, key=lambda e: e.sample or 0)) for v in groups.values()]
    return sorted(out, key=lambda g: (g.n_edits, len(g.entries), max(e.created or "" for e in g.entries)),
                  reverse=True)


def main_sequential(col: Collection, editor: str, model: str) -> SequentialGroup | None:
    groups = sequential_groups(col, editor, model)
    return groups[0] if groups else None


def _of(col: Collection, suite: str, editor: str, model: str) -> list[Entry]:
    return [e for e in col.by_suite(suite) if e.editor == editor and e.model == model]


def downstream_drops(entry: Entry) -> list[dict]:
    """Per task of a downstream result: before/after F1 (primary mode), drop in points, above chance, overlap."""
    tasks = ((entry.details.get("downstream") or {}).get("tasks") or {})
    out = []
    for name, t in sorted(tasks.items()):
        mode = t.get("primary")
        before = ((t.get("baseline") or {}).get(mode) or {}).get("f1") or {}
        after = ((t.get("after") or {}).get(mode) or {}).get("f1") or {}
        if before.get("value") is None or after.get("value") is None:
            continue
        overlap = None
        if None not in (before.get("lo"), before.get("hi"), after.get("lo"), after.get("hi")):
            overlap = not (after["hi"] < before["lo"] or after["lo"] > before["hi"])
        out.append({"task": name, "mode": mode, "before": before["value"], "after": after["value"],
                    "drop": 100 * (before["value"] - after["value"]), "above_chance": bool(t.get("above_chance")),
                    "overlap": overlap, "n_edits": (entry.details.get("downstream") or {}).get("after_edit")})
    return out


def disabling_cell(col: Collection, editor: str, model: str) -> tuple[str, Entry | None, bool | None]:
    """Text, source entry and the True/False/None verdict of 'single disabling edit'."""
    iso = _of(col, "isolation", editor, model)
    scans = _of(col, "disabling", editor, model)
    parts, verdict, src = [], None, None
    for e in iso:
        k, n = e.metrics.get("n_intrinsic") or 0, e.metrics.get("n_cf_edits") or e.n
        ids = ", ".join(e.metrics.get("case_ids") or [])
        parts.append(f"CF edit {ids}: {k} of {n} intrinsic")
        verdict = True if k else (verdict if verdict else False)
        src = src or e
    scan = _pick(scans)
    if scan is not None:
        k = scan.metrics.get("n_intrinsic") or 0
        parts.append(f"scan: {k} of {scan.n} intrinsic (flagged {scan.metrics.get('n_flagged', 0)})")
        if k:
            verdict = True
        elif verdict is None:
            group = main_sequential(col, editor, model)
            if group is None or not any(p is not None for p in group.cf_points()):
                verdict = False
        src = src or scan
    return ("; ".join(parts) if parts else NOT_MEASURED), src, verdict


def _breakdown(entry: Entry) -> str:
    """'; ppl ×10 at edit 430' (or '; ppl < ×10') from a run summary's milestones, '' for a run without them."""
    m = entry.metrics
    if "milestone_health_x10" not in m or not m.get("health_key"):
        return ""
    at = m["milestone_health_x10"]
    return f"; {m['health_key']} ×10 at edit {at}" if at is not None else f"; {m['health_key']} < ×10"


def overlaps(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    return bool(a and b) and not (a[1] < b[0] or b[1] < a[0])


def ties(col: Collection, model: str, metric: str) -> list[str]:
    """Editors whose single-suite ``metric`` interval overlaps that of the editor with the best value on
    ``model`` (the best included): they cannot be told apart from it. Empty when the best stands alone."""
    singles = {ed: _pick(_of(col, "single", ed, model)) for ed in col.editors() if ed != "null"}
    have = {ed: e for ed, e in singles.items() if e and e.metrics.get(metric) is not None and metric in e.intervals}
    if len(have) < 2:
        return []
    best = max(have, key=lambda ed: have[ed].metrics[metric])
    tied = [ed for ed, e in have.items() if overlaps(e.intervals[metric], have[best].intervals[metric])]
    return sorted(tied) if len(tied) > 1 else []


def paired_drop_text(entry: Entry | None) -> str:
    if entry is None:
        return "–"
    from editbench.report.paired import paired_ns_drop
    d = paired_ns_drop(entry)
    return "–" if d is None else f"{d['drop']:+.1f} pts [{d['lo']:+.1f}, {d['hi']:+.1f}] n={d['n']}"


def leaderboard_rows(col: Collection, out_dir: Path | None = None) -> list[list[str]]:
    rows = []
    for model in col.models():
        tied = {k: ties(col, model, k) for k in ("es", "ps", "ns")}
        for editor in col.editors():
            single = _pick(_of(col, "single", editor, model))
            group = main_sequential(col, editor, model)
            down = _pick(_of(col, "downstream", editor, model))
            zsre = _pick(_of(col, "zsre", editor, model))
            dis_text, dis_src, _ = disabling_cell(col, editor, model)
            if not any((single, group, down, zsre, dis_src)):
                continue
            row = [editor, model]
            for k in ("es", "ps", "ns"):
                mark = " (tied)" if editor in tied[k] else ""
                row.append(_link(rate(single.metrics.get(k), single.intervals.get(k), single.n) + mark, single,
                                 out_dir) if single else "–")
            s_edit = single.s_per_edit if single else (group.first.s_per_edit if group else None)
            row.append("–" if s_edit is None else f"{s_edit:.2f}")
            for count in (10, 50, 100):
                if group and group.values(f"forget_argmax_now@{count}"):
                    row.append(_link(group.mean_std(f"forget_argmax_now@{count}"), group.first, out_dir))
                else:
                    row.append("–")
            if group:
                cfs = group.cf_points()
                txt = ", ".join(str(c) if c is not None else f"none ≤{e.n}" for c, e in zip(cfs, group.entries))
                row.append(_link(txt, group.first, out_dir))
            else:
                row.append("–")
            if down:
                drops = [d for d in downstream_drops(down) if d["above_chance"]]
                txt = "; ".join(f"{d['task']} {d['drop']:+.1f} pts @{d['n_edits']}" for d in drops) or "tasks at chance"
                row.append(_link(txt, down, out_dir))
            else:
                row.append("–")
            for direction in ("q2c", "c2q"):
                if zsre:
                    m = f"transfer_{direction}_gen"
                    row.append(_link(rate(zsre.metrics.get(m), zsre.intervals.get(m),
                                          zsre.metrics.get(f"n_transfer_{direction}_gen")), zsre, out_dir))
                else:
                    row.append("–")
            row.append(_link(dis_text, dis_src, out_dir) if dis_src else "–")
            row.append(_link(paired_drop_text(single), single, out_dir) if single else "–")
            rows.append(row)
    return rows


def leaderboard_headers() -> list[str]:
    return [h + ARROWS[b] for h, b in LEADERBOARD_COLUMNS]


# --- Table 3 ------------------------------------------------------------------------------------------------------
def _grade(value: float, bars: Sequence[tuple[float, str]], last: str) -> str:
    for bound, name in bars:
        if value <= bound:
            return name
    return last


def table3_cells(col: Collection, model: str, editors: Sequence[str] | None = None,
                 out_dir: Path | None = None) -> dict[str, dict[str, str]]:
    """``{property: {editor: cell}}`` for one model, each cell by :data:`TABLE3_RULES`."""
    editors = list(editors or table3_editors(col, model))
    groups = {e: main_sequential(col, e, model) for e in editors}
    cells: dict[str, dict[str, str]] = {p: {} for p in PROPERTIES}
    unedited_ns = _unedited_ns(col, model)
    # longest stretch without CF on this model (for Short/Long)
    stretches = []
    for g in (g for g in groups.values() if g):
        for e in g.entries:
            cf = e.metrics.get("cf_edit")
            stretches.append(cf if cf is not None else e.n)
    longest = max(stretches, default=None)
    # the common edit count for forgetting
    counts = [max((int(k.split("@")[1]) for k in g.first.metrics if k.startswith("forget_argmax_now@")
                   and g.values(k)), default=0) for g in groups.values() if g]
    common = min(counts) if counts else 0
    for ed in editors:
        g = groups.get(ed)
        # efficacy
        if g and g.values("es"):
            es = statistics.mean(g.values("es"))
            pre = [pre_cf_efficacy(e) for e in g.entries if e.metrics.get("cf_edit") is not None]
            pre = [p for p in pre if p is not None]
            if pre:  # with a CF point the paper's cell is about the edits before it
                es_pre = statistics.mean(v for v, _ in pre)
                word = "100%" if es_pre >= 0.995 else "< 100%"
                cells["EDITING EFFICACY"][ed] = _link(f"{word} until CF (ES {es_pre:.1%} over {pre[0][1]}; "
                                                      f"{es:.1%} over all {g.n_edits})", g.first, out_dir)
            else:
                word = "100%" if es >= 0.995 else "< 100%"
                has_cf = any(c is not None for c in g.cf_points())
                how = f"over all {g.n_edits}, after CF included: no per-edit records" if has_cf else \
                    f"{g.n_edits} edits"
                cells["EDITING EFFICACY"][ed] = _link(f"{word}{' until CF' if has_cf else ''} (ES {es:.1%}, {how})",
                                                      g.first, out_dir)
        else:
            cells["EDITING EFFICACY"][ed] = NOT_MEASURED
        # locality
        ns, src, how = None, None, ""
        if g and g.values("ns"):
            ns, src = statistics.mean(g.values("ns")), g.first
        else:
            single = _pick(_of(col, "single", ed, model))
            if single and single.metrics.get("ns") is not None:
                ns, src, how = single.metrics["ns"], single, "single edits, "
        if ns is None or unedited_ns is None:
            cells["EDIT LOCALITY"][ed] = NOT_MEASURED if ns is None else f"{NOT_MEASURED} (no unedited NS)"
        else:
            drop = 100 * (unedited_ns[0] - ns)
            grade = _grade(drop, ((5, "Very High"), (10, "High"), (20, "Low")), "Very Low")
            cells["EDIT LOCALITY"][ed] = _link(f"{grade} ({how}NS {ns:.2f} vs unedited {unedited_ns[0]:.2f} "
                                               f"n={unedited_ns[1]}: {drop:+.0f} pts)", src, out_dir)
        # duration before CF
        if g:
            cfs = [c for c in g.cf_points() if c is not None]
            if not cfs:
                cells["AVERAGE DURATION BEFORE CF"][ed] = _link(f"CF not observed (≤ {g.n_edits} edits"
                                                                f"{_breakdown(g.first)})", g.first, out_dir)
            else:
                mean_cf = statistics.mean(cfs)
                others = len([x for x in groups.values() if x]) > 1
                grade = ("Short" if longest and mean_cf < longest / 2 else "Long") if others else "CF observed"
                cells["AVERAGE DURATION BEFORE CF"][ed] = _link(
                    f"{grade} (CF at edit {mean_cf:.0f}, {len(cfs)} of {len(g.entries)} samples)", g.first, out_dir)
        else:
            cells["AVERAGE DURATION BEFORE CF"][ed] = NOT_MEASURED
        # downstream
        down = _pick(_of(col, "downstream", ed, model))
        drops = [d for d in downstream_drops(down) if d["above_chance"]] if down else []
        if not down:
            cells["DOWNSTREAM PERFORMANCE LOSS"][ed] = NOT_MEASURED
        elif not drops:
            cells["DOWNSTREAM PERFORMANCE LOSS"][ed] = _link("not measurable (every task at chance)", down, out_dir)
        else:
            worst = max(drops, key=lambda d: d["drop"])
            grade = "High" if worst["drop"] > 10 else ("Low, within noise" if worst["overlap"] else "Low")
            cells["DOWNSTREAM PERFORMANCE LOSS"][ed] = _link(
                f"{grade} ({worst['task']} F1 {worst['before']:.2f} → {worst['after']:.2f} after "
                f"{worst['n_edits']} edits: {worst['drop']:+.1f} pts)", down, out_dir)
        # forgetting
        key = f"forget_argmax_now@{common}"
        if g and common and g.values(key):
            f = statistics.mean(g.values(key))
            grade = "Low" if 100 * f < 5 else ("High" if 100 * f <= 25 else "Very High")
            cells["FACT FORGETTING PERCENTAGE"][ed] = _link(f"{grade} ({f:.0%} at {common} edits)", g.first, out_dir)
        else:
            cells["FACT FORGETTING PERCENTAGE"][ed] = NOT_MEASURED
        # single disabling edit
        text, src, verdict = disabling_cell(col, ed, model)
        cells["SINGLE DISABLING EDIT"][ed] = NOT_MEASURED if verdict is None and src is None else _link(
            f"{verdict if verdict is not None else 'undecided'} ({text})", src, out_dir)
    return cells


def pre_cf_efficacy(e: Entry) -> tuple[float, str] | None:
    """ES before the CF point: exact over every edit before it when the run's records are at hand, else the
    detector's ES window just before it (the summary's ``collapse.signals.efficacy.before``)."""
    cf = e.metrics.get("cf_edit")
    if cf is None:
        return None
    if e.jsonl is not None:
        from editbench.runner.jsonl import read_jsonl
        es = [r["immediate"]["es"] for r in read_jsonl(e.jsonl, damaged=[])
              if r.get("type") == "edit" and r.get("n", cf) < cf and (r.get("immediate") or {}).get("es") is not None]
        if es:
            return sum(es) / len(es), f"the {len(es)} edits before it"
    sig = ((e.details.get("collapse") or {}).get("signals") or {}).get("efficacy") or {}
    if sig.get("before") is not None:
        window = ((e.details.get("collapse") or {}).get("rule") or {}).get("es_window", 10)
        return float(sig["before"]), f"the {window}-edit window before it"
    return None


def _unedited_ns(col: Collection, model: str) -> tuple[float, int] | None:
    """The unedited model's NS on ``model``: a null-editor single run, else the largest single run's baseline."""
    nulls = [e for e in col.by_suite("single") if e.model == model and e.editor == "null"]
    if nulls:
        e = _pick(nulls)
        base = e.baseline or {}
        return (base.get("ns", e.metrics.get("ns")), e.n)
    withbase = [e for e in col.by_suite("single") if e.model == model and (e.baseline or {}).get("ns") is not None]
    e = _pick(withbase)
    return (e.baseline["ns"], e.n) if e else None


def table3_editors(col: Collection, model: str) -> list[str]:
    """FT-C, ROME, MEMIT first (the paper's columns), then every other editor with a run on ``model``."""
    have = {e.editor for e in col.entries if e.model == model and e.editor not in ("null", "?")}
    first = [e for e in ("ft-c", "rome", "memit") if e in have]
    return first + sorted(have - set(first))


def table3_rows(cells: dict[str, dict[str, str]], editors: Sequence[str], paper: bool = True) -> list[list[str]]:
    rows = []
    for prop in PROPERTIES:
        row = [prop]
        for ed in editors:
            row.append(cells[prop].get(ed, NOT_MEASURED))
            if paper:
                row[-1] = f"{row[-1]}<br>*paper: {PAPER_TABLE3[prop].get(ed, '–')}*" if ed in \
                    PAPER_TABLE3[prop] else row[-1]
        rows.append(row)
    return rows


def cell_word(cell: str) -> str:
    """The graded word of a Table 3 cell (before its parenthesis; links stripped)."""
    text = cell.removeprefix("[")
    return text.split(" (")[0].split("](")[0].split("<br>")[0].strip()

