"""Table 3 from matched measurements, with n and an interval per cell, and the agreement with the paper.

:func:`editbench.report.tables.table3_cells` grades each property from the largest run of each editor. Here every
cell is rebuilt as a :class:`Verdict` -- the graded word, the measurement, its ``n`` and 95% interval, whether that
interval straddles the rule's boundary (then the grade is *undecided*), and whether the run is shorter than the
rule asks (*provisional*) -- from measurements matched across editors where the data exists:

- **locality**: the *paired* NS drop of the single suite -- the same records scored on the unedited model and right
  after each one's edit, so before any CF or collapse -- with a paired bootstrap interval over records
  (:func:`paired_ns_drop`); without a single run with per-record results, the base rule (sequential NS).
- **forgetting**: argmax forgetting at the largest edit count every editor's run reached (the base rule's common
  count), with the interval of that proportion over the edits it counts.
- **downstream**: a task at chance on the unedited model is "not measurable on this model"; the drop's interval
  is the conservative difference of the before/after intervals; a run shorter than :data:`DOWNSTREAM_MIN_EDITS`
  (and without CF) is provisional.
- **CF duration**: provisional with fewer edit orders than :data:`MIN_ORDERS` asks (ROME >= 3, MEMIT >= 2).
- **efficacy**: the interval of the immediate ES over the run's edits against the 100% bar.

:func:`agreement` compares each model's 18 FT-C/ROME/MEMIT cells with the paper and explains each disagreement:
*undecided* (interval straddles, or provisional), *scale* (every measured model disagrees the same way), *not
measured* / *not measurable*, else an *open finding*.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from editbench.report.collect import Collection
from editbench.report.paired import paired_ns_drop
from editbench.report.tables import (
    NOT_MEASURED,
    PAPER_TABLE3,
    PROPERTIES,
    _link,
    _of,
    _pick,
    cell_word,
    downstream_drops,
    main_sequential,
    table3_cells,
    table3_editors,
)

PAPER_EDITORS = ("ft-c", "rome", "memit")
DOWNSTREAM_MIN_EDITS = 300   # the "long run": >= 300 edits (or to CF) with GLUE every 25 edits
MIN_ORDERS = {"rome": 3, "memit": 2}   # edit orders behind a CF point
LOCALITY_BARS = ((5, "Very High"), (10, "High"), (20, "Low"))      # NS drop in points; above the last: Very Low
FORGETTING_BARS = ((5, "Low"), (25, "High"))                       # percent; above the last: Very High
MATCHED_RULES = {
    "EDIT LOCALITY": "paired NS drop of the single suite (the same records, unedited vs right after each one's "
                     "edit, so before any CF/collapse), points, with a paired bootstrap 95% interval over records: "
                     "<= 5 'Very High', <= 10 'High', <= 20 'Low', > 20 'Very Low'. Without per-record single "
                     "results, the base rule (the sequential run's NS).",
    "FACT FORGETTING PERCENTAGE": "argmax forgetting at the common edit count of the editors' runs, with the 95% "
                                  "bootstrap interval of that proportion over the edits it counts.",
    "DOWNSTREAM PERFORMANCE LOSS": "worst F1 drop over tasks above chance on the unedited model (a task at chance "
                                   "is 'not measurable on this model'), interval = before/after intervals combined "
                                   f"(conservative); a run shorter than {DOWNSTREAM_MIN_EDITS} edits without CF is "
                                   "provisional.",
    "AVERAGE DURATION BEFORE CF": "base rule; provisional with fewer edit orders than ROME 3 / MEMIT 2.",
    "EDITING EFFICACY": "base rule, with the 95% interval of the immediate ES over the run's edits.",
}


@dataclass
class Verdict:
    """One Table 3 cell: the grade, the text shown (with the measurement, n and interval), and its standing."""

    word: str
    text: str
    n: int | None = None
    interval: tuple[float, float] | None = None
    straddles: bool = False          # the interval crosses one of the rule's boundaries
    provisional: str | None = None   # why the run does not (yet) meet the rule's size
    notes: list[str] = field(default_factory=list)

    @property
    def decided(self) -> bool:
        return not self.straddles and self.provisional is None and self.word not in (NOT_MEASURED, "") \
            and not self.word.startswith("not measurable")


def _straddles(lo: float, hi: float, bounds: Sequence[float]) -> bool:
    return any(lo <= b < hi for b in bounds)


def _grade(value: float, bars, last: str) -> str:
    return next((name for bound, name in bars if value <= bound), last)


def proportion_ci(k: int, n: int) -> tuple[float, float] | None:
    """Bootstrap 95% interval of k successes in n (the same seeded bootstrap as every other rate)."""
    from editbench.metrics.intervals import bootstrap_ci
    return bootstrap_ci([1.0] * k + [0.0] * (n - k)) if n else None


def _locality(col: Collection, ed: str, model: str, base: str, out_dir: Path | None) -> Verdict:
    single = _pick([e for e in _of(col, "single", ed, model) if e.details.get("per_record")])
    d = paired_ns_drop(single) if single else None
    if d is None:
        return Verdict(cell_word(base), base)
    word = _grade(d["drop"], LOCALITY_BARS, "Very Low")
    strad = _straddles(d["lo"], d["hi"], [b for b, _ in LOCALITY_BARS])
    text = (f"{word} (paired NS drop {d['drop']:+.1f} pts [{d['lo']:+.1f}, {d['hi']:+.1f}] n={d['n']}: NS "
            f"{d['pre']:.2f} unedited → {d['post']:.2f} single edits{'; interval straddles a boundary' if strad else ''})")
    return Verdict(word, _link(text, single, out_dir), d["n"], (d["lo"], d["hi"]), strad)


def _common_count(groups) -> int:
    counts = [max((int(k.split("@")[1]) for k in g.first.metrics if k.startswith("forget_argmax_now@")
                   and g.values(k)), default=0) for g in groups.values() if g]
    return min(counts) if counts else 0


def _forgetting(g, common: int, base: str, out_dir: Path | None) -> Verdict:
    if not g or not common:
        return Verdict(cell_word(base), base)
    k_n = []
    for e in g.entries:
        f = (e.details.get("forgetting_at") or {}).get(str(common)) or {}
        if f.get("forget_argmax_now") is not None and f.get("learned_argmax"):
            n = int(f["learned_argmax"])
            k_n.append((round(f["forget_argmax_now"] * n), n))
    if not k_n:
        return Verdict(cell_word(base), base)
    k, n = sum(a for a, _ in k_n), sum(b for _, b in k_n)
    lo, hi = proportion_ci(k, n)
    pct = 100 * k / n
    word = _grade(pct, FORGETTING_BARS, "Very High")
    strad = _straddles(100 * lo, 100 * hi, [b for b, _ in FORGETTING_BARS])
    text = (f"{word} ({pct:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}] of n={n} learned edits at {common} edits, "
            f"{len(k_n)} order(s){'; interval straddles a boundary' if strad else ''})")
    return Verdict(word, _link(text, g.first, out_dir), n, (lo, hi), strad)


def _downstream(col: Collection, ed: str, model: str, out_dir: Path | None) -> Verdict:
    down = _pick(_of(col, "downstream", ed, model))
    if down is None:
        return Verdict(NOT_MEASURED, NOT_MEASURED)
    drops = downstream_drops(down)
    at_chance = [d["task"] for d in drops if not d["above_chance"]]
    live = [d for d in drops if d["above_chance"]]
    tail = f"; not measurable on this model: {', '.join(at_chance)} (at chance unedited)" if at_chance else ""
    if not live:
        return Verdict("not measurable on this model", _link(f"not measurable on this model (every task at "
                                                             f"chance unedited: {', '.join(at_chance)})",
                                                             down, out_dir))
    tasks = (down.details.get("downstream") or {}).get("tasks") or {}
    worst = max(live, key=lambda d: d["drop"])
    t = tasks[worst["task"]]
    mode = t.get("primary")
    b, a = (((t.get(x) or {}).get(mode) or {}).get("f1") or {} for x in ("baseline", "after"))
    interval = None
    if None not in (b.get("lo"), b.get("hi"), a.get("lo"), a.get("hi")):
        interval = (100 * (b["lo"] - a["hi"]), 100 * (b["hi"] - a["lo"]))
    word = "High" if worst["drop"] > 10 else "Low"
    strad = bool(interval and _straddles(*interval, [10]))
    n_edits = worst["n_edits"] or 0
    cf = (down.details.get("downstream") or {}).get("cf_edit") or down.metrics.get("cf_edit")
    prov = None if n_edits >= DOWNSTREAM_MIN_EDITS or cf else f"{n_edits} edits < {DOWNSTREAM_MIN_EDITS}"
    iv = f" [{interval[0]:+.1f}, {interval[1]:+.1f}]" if interval else ""
    text = (f"{word} ({worst['task']} F1 {worst['before']:.2f} → {worst['after']:.2f} after {n_edits} edits: "
            f"{worst['drop']:+.1f} pts{iv}, n={t.get('settings', {}).get('n', '?')} examples"
            f"{'; interval straddles the 10-point bar' if strad else ''}{'; provisional: ' + prov if prov else ''}"
            f"{tail})")
    return Verdict(word, _link(text, down, out_dir), t.get("settings", {}).get("n"), interval, strad, prov)


def _efficacy(g, base: str) -> Verdict:
    v = Verdict(cell_word(base), base)
    if g and g.values("es"):
        n = sum(e.n for e in g.entries)
        k = round(sum(e.metrics["es"] * e.n for e in g.entries if e.metrics.get("es") is not None))
        lo, hi = proportion_ci(k, n) or (None, None)
        if lo is not None:
            v.n, v.interval = n, (lo, hi)
            v.straddles = _straddles(lo, hi, [0.995]) and "until CF" not in v.word
            v.notes.append(f"ES over all {n} edits [{lo:.1%}, {hi:.1%}]")
    return v


def _duration(g, ed: str, base: str) -> Verdict:
    v = Verdict(cell_word(base), base)
    want = MIN_ORDERS.get(ed)
    if g and want and len(g.entries) < want and any(c is not None for c in g.cf_points()):
        v.provisional = f"{len(g.entries)} edit order(s) < {want}"
    return v


def matched_verdicts(col: Collection, model: str, editors: Sequence[str] | None = None,
                     out_dir: Path | None = None) -> dict[str, dict[str, Verdict]]:
    """``{property: {editor: Verdict}}`` for one model (see the module docstring)."""
    editors = list(editors or table3_editors(col, model))
    base = table3_cells(col, model, editors, out_dir)
    groups = {e: main_sequential(col, e, model) for e in editors}
    common = _common_count(groups)
    out: dict[str, dict[str, Verdict]] = {p: {} for p in PROPERTIES}
    for ed in editors:
        g = groups.get(ed)
        out["EDITING EFFICACY"][ed] = _efficacy(g, base["EDITING EFFICACY"][ed])
        out["EDIT LOCALITY"][ed] = _locality(col, ed, model, base["EDIT LOCALITY"][ed], out_dir)
        out["AVERAGE DURATION BEFORE CF"][ed] = _duration(g, ed, base["AVERAGE DURATION BEFORE CF"][ed])
        out["DOWNSTREAM PERFORMANCE LOSS"][ed] = _downstream(col, ed, model, out_dir)
        out["FACT FORGETTING PERCENTAGE"][ed] = _forgetting(g, common, base["FACT FORGETTING PERCENTAGE"][ed],
                                                            out_dir)
        sd = base["SINGLE DISABLING EDIT"][ed]
        out["SINGLE DISABLING EDIT"][ed] = Verdict(cell_word(sd), sd)
    return out


def cell_text(v: Verdict) -> str:
    """The cell as shown: the text, its notes, and its standing when it is not a decided verdict."""
    extra = "; ".join(v.notes)
    s = v.text + (f" ({extra})" if extra else "")
    if v.provisional and "provisional" not in s:
        s += f" — provisional: {v.provisional}"
    return s


# --- agreement with the paper ----------------------------------------------------------------------------------
def agrees(prop: str, ours: str, paper: str) -> bool:
    """Whether our graded word says what the paper's does (efficacy: the 100% / < 100% part; duration: a run
    without CF agrees with 'Long' and 'CF not observed'; downstream: 'Low, within noise' is 'Low')."""
    ours, paper = ours.strip(), paper.strip()
    if prop == "EDITING EFFICACY":
        return ours.removesuffix(" until CF") == paper.removesuffix(" until CF")
    if prop == "AVERAGE DURATION BEFORE CF":
        if ours.startswith("CF not observed"):
            return paper in ("Long", "CF not observed")
        return ours == paper
    if prop == "DOWNSTREAM PERFORMANCE LOSS":
        return ours.split(",")[0] == paper
    return ours == paper


def agreement(verdicts_by_model: dict[str, dict[str, dict[str, Verdict]]],
              fixtures: Sequence[str] = ()) -> dict[str, dict]:
    """Per model: ``{"agree": k, "agree_undecided": u, "total": 18, "line": "k/18 cells agree with the paper (u of
    them undecided ...)", "disagreements":
    [{"property", "editor", "ours", "paper", "why"}]}`` over the FT-C/ROME/MEMIT cells. ``why``: "not measured",
    "not measurable on this model", "undecided" (interval straddles the boundary, or provisional), "scale" (every
    model measured disagrees with the same grade; ``fixtures`` never count as models there), else "open finding"."""
    out = {}
    for model, cells in verdicts_by_model.items():
        agree, shaky, dis = 0, 0, []
        for prop in PROPERTIES:
            for ed in PAPER_EDITORS:
                paper = PAPER_TABLE3[prop][ed]
                v = cells[prop].get(ed) or Verdict(NOT_MEASURED, NOT_MEASURED)
                if agrees(prop, v.word, paper):
                    agree += 1
                    shaky += bool(v.straddles or v.provisional)
                    continue
                if v.word == NOT_MEASURED:
                    why = "not measured"
                elif v.word.startswith("not measurable"):
                    why = "not measurable on this model"
                elif v.straddles or v.provisional:
                    why = "undecided: " + ("interval straddles the rule's boundary" if v.straddles
                                           else f"provisional ({v.provisional})")
                else:
                    others = [c[prop].get(ed) for m, c in verdicts_by_model.items()
                              if m != model and m not in fixtures]
                    others = [o for o in others if o is not None and o.word != NOT_MEASURED]
                    same = model not in fixtures and others and all(not agrees(prop, o.word, paper) and o.word == v.word for o in others)
                    why = "scale (every model measured disagrees the same way)" if same else "open finding"
                dis.append({"property": prop, "editor": ed, "ours": v.word, "paper": paper, "why": why})
        total = len(PROPERTIES) * len(PAPER_EDITORS)
        line = f"{agree}/{total} cells agree with the paper" + (
            f" ({shaky} of them undecided: the interval straddles the boundary or the run is provisional)"
            if shaky else "")
        out[model] = {"agree": agree, "agree_undecided": shaky, "total": total, "line": line, "disagreements": dis}
    return out
