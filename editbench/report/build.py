"""``editbench report``: result files in, markdown + JSON out.

Writes into ``out_dir``:

- ``leaderboard.md`` — editors x models (:func:`editbench.report.tables.leaderboard_rows`), every cell linked to
  the file it came from; then the equal-budget sweeps found among the runs;
- ``table3.md`` — the seed paper's Table 3 regenerated per model from the measurements, the paper's cell under
  ours, and the rule behind every row;
- ``gallery.md`` — every run figure, plus a retention heatmap per sequential run whose records are at hand
  (written to ``figures/``) and a figure per sweep;
- ``report.json`` — the same numbers for machines (cells, sources, what was ignored and why).

Markdown links are relative to ``out_dir``, so the directory can be committed or served as it is.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from tabulate import tabulate

from editbench.models import smollm2
from editbench.models.profiles import profile
from editbench.report.collect import Collection, collect, from_result
from editbench.report.retention import plot_retention, retention_matrix, retention_stats
from editbench.report.sweep import HEADERS as SWEEP_HEADERS
from editbench.report.sweep import plot_sweep, sweep_rows, sweeps
from editbench.report.tables import (
    PAPER_TABLE3,
    TABLE3_RULES,
    cell_word,
    leaderboard_headers,
    leaderboard_rows,
    table3_editors,
    table3_rows,
)
from editbench.report.verdicts import MATCHED_RULES, agreement, cell_text, matched_verdicts


def fixture_models(models: Iterable[str]) -> tuple[str, ...]:
    """The code-path fixtures among ``models`` (their profile's ``fixture``): tables shown, never a verdict."""
    return tuple(m for m in models if profile(m).fixture)


def _rel(path: Path, out_dir: Path) -> str:
    return os.path.relpath(path, out_dir).replace(os.sep, "/")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def _sources_note(col: Collection, out_dir: Path) -> list[str]:
    lines = [f"Read {len(col.files)} result file(s), {len(col.entries)} result(s)"
             + (f"; {col.duplicates} duplicate(s) of the same run merged" if col.duplicates else "") + "."]
    if col.ignored:
        lines.append(f"{len(col.ignored)} file(s) ignored:")
        lines += [f"- `{_rel(p, out_dir) if p.exists() else p}`: {why}" for p, why in col.ignored[:30]]
        if len(col.ignored) > 30:
            lines.append(f"- … and {len(col.ignored) - 30} more (report.json lists all)")
    return lines


def _models_note(models: set) -> list[str]:
    """What a built-in model short name exactly is (variant, quantization), for the models in the table."""
    named = {smollm2.NAME: smollm2.FULL_NAME}
    seen = [m for m in sorted(models, key=str) if m in named]
    return ["", "Models: " + "; ".join(f"`{m}` = {named[m]}" for m in seen) + "."] if seen else []


def write_report(paths: Iterable[str | Path], out_dir: str | Path, models: Sequence[str] | None = None,
                 heatmaps: bool = True) -> dict:
    """Collect, tabulate and write; returns what :file:`report.json` holds."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    col = collect(paths)
    if models:
        col.entries = [e for e in col.entries if e.model in models]
    board_rows = leaderboard_rows(col, out_dir)
    lines = ["# editbench leaderboard", "",
             "Every number is measured; each cell links to the result file it was read from (`n` = records or edits "
             "behind a rate, `[lo, hi]` its 95% bootstrap interval, `± std` over samples). ES/PS/NS: the single "
             "suite (probability comparison, CounterFact). forget@k: argmax fact forgetting after k sequential "
             "edits. CF point: the edit at which catastrophic forgetting was detected (`none ≤N`: not within the "
             "run). Downstream: F1 drop on tasks where the unedited model is above chance. zsRE: transfer by "
             "generation. Arrows: which way is better. `(tied)`: the single-suite interval overlaps that of the best "
             "editor in the column on the same model -- they cannot be told apart at this n. Paired NS drop: NS of "
             "the unedited model minus NS right after each edit, on the same records (points; paired bootstrap "
             "interval over records).", ""]
    lines.append(tabulate(board_rows, headers=leaderboard_headers(), tablefmt="github", disable_numparse=True)
                 if board_rows else "No results found.")
    lines += _models_note({e.model for e in col.entries})
    report: dict = {"schema": "editbench.report/1", "leaderboard": {"headers": leaderboard_headers(),
                                                                    "rows": board_rows},
                    "table3": {}, "sweeps": [], "figures": [], "heatmaps": [],
                    "files": [str(p) for p in col.files], "ignored": [[str(p), w] for p, w in col.ignored],
                    "rules": TABLE3_RULES, "paper_table3": PAPER_TABLE3}
    # sweeps
    sweep_md = []
    for group in sweeps(col):
        e0 = group[0]
        png = plot_sweep(group, out_dir / "figures" / f"sweep-{_slug(e0.editor)}-{_slug(e0.model)}-{e0.n}.png")
        sweep_md += ["", f"### {e0.editor} on {e0.model}: {e0.n} edits ({e0.dataset}), one at a time vs batches", "",
                     tabulate(sweep_rows(group), headers=SWEEP_HEADERS, tablefmt="github", disable_numparse=True)]
        if png:
            sweep_md += ["", f"![sweep]({_rel(png, out_dir)})"]
        report["sweeps"].append({"editor": e0.editor, "model": e0.model, "n": e0.n, "rows": sweep_rows(group),
                                 "figure": str(png) if png else None,
                                 "sources": [str(e.source) for e in group]})
    if sweep_md:
        lines += ["", "## Equal-budget sweeps", "", "The same edits, records and hyperparameters; only the batch "
                  "size differs (editor steps = edits / batch size). An edit's immediate score is taken after its "
                  "whole batch, so forgetting counts only what later batches undo: a single batch of all N edits "
                  "cannot show any. Compare health, NS and the weights' movement across batch sizes."] + sweep_md
    lines += ["", "## Sources", ""] + _sources_note(col, out_dir)
    (out_dir / "leaderboard.md").write_text("\n".join(lines) + "\n")

    # Table 3
    t3 = ["# The seed paper's Table 3, regenerated from measurements", "",
          "Each cell is computed by the rule below from the numbers it quotes (with n and its 95% interval where "
          "the measurement has one) and links to its run; the paper's cell (GPT-2-XL / GPT-J) is under ours in "
          "italics. 'not measured': no run of that kind. A cell whose interval straddles the rule's boundary, or "
          "whose run is shorter than the rule asks (provisional), is not a decided verdict.", ""]
    verdicts = {m: matched_verdicts(col, m, table3_editors(col, m), out_dir) for m in col.models()
                if table3_editors(col, m)}
    fixtures = fixture_models(col.models())
    agreed = agreement(verdicts, fixtures=fixtures)
    report["agreement"] = agreed
    for model, vs in verdicts.items():
        editors = table3_editors(col, model)
        cells = {p: {e: cell_text(v) for e, v in row.items()} for p, row in vs.items()}
        report["table3"][model] = {"editors": editors, "cells": cells,
                                   "standing": {p: {e: {"n": v.n, "interval": v.interval, "straddles": v.straddles,
                                                        "provisional": v.provisional} for e, v in row.items()}
                                                for p, row in vs.items()}}
        t3 += [f"## {model}", ""]
        if model in agreed:
            a = agreed[model]
            t3 += [f"**{a['line']}** (FT-C, ROME, MEMIT x 6 properties"
                   + ("; a code-path fixture, not a finding" if model in fixtures else "") + ")."]
            t3 += [f"- {d['property'].lower()}, {d['editor']}: ours {d['ours']!r}, paper {d['paper']!r} → "
                   f"{d['why']}" for d in a["disagreements"]] + [""]
        if model in fixtures:
            label = profile(model).label
            t3 += [f"*{label[:1].upper() + label[1:]} is a code-path fixture: its cells exercise the rules, they are "
                   "not findings.*", ""]
        t3 += ["Compact: our grade, then the paper's after the slash (– where the paper has no column).", "",
               tabulate(compact_rows(cells, editors), headers=["property"] + [e.upper() for e in editors],
                        tablefmt="github", disable_numparse=True), "", "With the numbers behind each cell:", "",
               tabulate(table3_rows(cells, editors), headers=["property"] + [e.upper() for e in editors],
                        tablefmt="github", disable_numparse=True), ""]
    t3 += ["## Rules", ""] + [f"- **{p}**: {r}" + (f" *Matched:* {MATCHED_RULES[p]}" if p in MATCHED_RULES else "")
                              for p, r in TABLE3_RULES.items()]
    (out_dir / "table3.md").write_text("\n".join(t3) + "\n")

    # gallery: run figures + retention heatmaps
    g = ["# Gallery", "", "Run figures as the suites wrote them, and a retention heatmap per sequential run whose "
         "records (results.jsonl with per-edit `held`) are at hand.", ""]
    for e in sorted(col.entries, key=lambda e: (e.model, e.suite, e.editor, e.n)):
        figs = list(e.figures)
        if heatmaps and e.suite == "sequential" and e.jsonl is not None:
            name = f"retention-{_slug(e.editor)}-{_slug(e.model)}-{_slug(str(e.dataset))}-{e.n}" \
                   f"-b{e.batch_size}-s{e.sample or 0}.png"
            got = retention_matrix(e.jsonl)
            if got is not None:
                png = plot_retention(e.jsonl, out_dir / "figures" / name, title=f"{e.editor} on {e.model}",
                                     cf_edit=e.metrics.get("cf_edit"), got=got)
                report["heatmaps"].append({"source": str(e.source), "figure": str(png), **retention_stats(got[0])})
                figs.append(png)
        if not figs:
            continue
        src = f"[{e.source.name}]({_rel(e.source, out_dir)})" if e.source else ""
        g += [f"### {e.suite}: {e.editor} on {e.model} ({e.dataset}, n={e.n}"
              + (f", batch {e.batch_size}" if e.batch_size > 1 else "")
              + (f", sample {e.sample}" if e.sample is not None else "") + f") {src}", ""]
        g += [f"![{p.stem}]({_rel(p, out_dir)})" for p in figs] + [""]
        report["figures"] += [str(p) for p in figs]
    (out_dir / "gallery.md").write_text("\n".join(g) + "\n")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    report["paths"] = {k: str(out_dir / f) for k, f in (("leaderboard", "leaderboard.md"), ("table3", "table3.md"),
                                                         ("gallery", "gallery.md"), ("json", "report.json"))}
    report["collection"] = col
    return report


def compact_rows(cells: dict[str, dict[str, str]], editors: Sequence[str]) -> list[list[str]]:
    """Table 3 as words only: ``ours / paper`` per cell (the README's side-by-side)."""
    return [[prop] + [f"{cell_word(cells[prop].get(ed, 'not measured'))} / {PAPER_TABLE3[prop].get(ed, '–')}"
                      for ed in editors] for prop in PAPER_TABLE3]


def short_form(results: Sequence[dict]) -> str:
    """The pytest terminal's short form: one line per editor x model over this session's results."""
    col = Collection(entries=[from_result(r) for r in results])
    rows, heads = leaderboard_rows(col), leaderboard_headers()
    if not rows:
        return ""
    keep = [i for i in range(len(heads)) if i < 2 or any(r[i] not in ("–", "") for r in rows)]
    return tabulate([[r[i] for i in keep] for r in rows], headers=[heads[i] for i in keep], tablefmt="simple",
                    disable_numparse=True)
