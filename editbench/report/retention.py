"""Retention heatmap of one sequential run: edit i (x) x history check t (y) — is edit i still held at check t?

Read from the run's ``results.jsonl``: every history check record carries ``held`` (one character per edit made
so far, :meth:`editbench.metrics.forgetting.ForgettingTracker.held`): ``1`` held, ``0`` learned but failing now,
``-`` never learned. Cells right of the diagonal (edits not yet made at that check) are blank. Runs written before
the field existed have no heatmap (:func:`retention_matrix` returns None; the report says so).

Colours: held = green, forgotten = red, never learned = grey, not yet made = white. A CF point is a dashed line
(horizontal at the first check after it).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from editbench.report.figure import save_figure
from editbench.runner.jsonl import read_jsonl

CODES = {" ": 0, "-": 1, "0": 2, "1": 3}    # not yet made, never learned, forgotten, held
COLOURS = ("#ffffff", "#bdbdbd", "#d62728", "#2ca02c")


def retention_matrix(jsonl: str | Path, definition: str = "argmax") -> tuple[np.ndarray, list[int]] | None:
    """``(matrix[check, edit] of CODES, edit counts of the checks)``, or None when the run recorded no ``held``."""
    rows, counts = [], []
    for rec in read_jsonl(jsonl, damaged=[]):
        if rec.get("type") != "check" or definition not in (rec.get("held") or {}):
            continue
        rows.append(rec["held"][definition])
        counts.append(int(rec["n"]))
    if not rows:
        return None
    width = max(len(r) for r in rows)
    m = np.zeros((len(rows), width), dtype=np.int8)
    for i, r in enumerate(rows):
        m[i, : len(r)] = [CODES.get(c, 0) for c in r]
    return m, counts


def retention_stats(matrix: np.ndarray) -> dict[str, float | int]:
    """At the last check: held / learned; and how many learned edits were forgotten at some check then held again
    (sequential edits are not monotone)."""
    last = matrix[-1]
    learned = int(np.sum(last >= 2))
    held = int(np.sum(last == 3))
    came_back = int(sum(1 for j in range(matrix.shape[1])
                        if (matrix[:, j] == 2).any() and matrix[-1, j] == 3))
    return {"learned": learned, "held": held, "held_frac": held / learned if learned else None,
            "forgotten_then_back": came_back}


def plot_retention(jsonl: str | Path, png: str | Path, title: str | None = None, definition: str = "argmax",
                   cf_edit: int | None = None, got: tuple[np.ndarray, list[int]] | None = None) -> Path | None:
    """Draw the heatmap to ``png``; None when the run has no ``held`` records. ``got``: the run's
    :func:`retention_matrix`, when the caller has read it already."""
    got = got if got is not None else retention_matrix(jsonl, definition)
    if got is None:
        return None
    m, counts = got
    fig, ax = plt.subplots(figsize=(min(16, 4 + m.shape[1] / 12), min(9, 2.5 + len(counts) / 4)))
    ax.imshow(m, aspect="auto", interpolation="nearest", cmap=ListedColormap(COLOURS), vmin=0, vmax=3,
              extent=(0.5, m.shape[1] + 0.5, len(counts) - 0.5, -0.5))
    step = max(1, len(counts) // 12)
    ax.set_yticks(range(0, len(counts), step), [str(c) for c in counts[::step]])
    ax.set_xlabel("edit i (stream order)")
    ax.set_ylabel("history check after t edits")
    if cf_edit:
        ax.axvline(cf_edit, color="black", ls="--", lw=1)
        after = next((i for i, c in enumerate(counts) if c >= cf_edit), None)
        if after is not None:
            ax.axhline(after - 0.5, color="black", ls="--", lw=1)
    s = retention_stats(m)
    held = "–" if s["held_frac"] is None else f"{s['held_frac']:.0%}"
    ax.set_title((title or "retention") + f"  ({definition}: {s['held']}/{s['learned']} learned edits held at the "
                                         f"last check = {held}; green held, red forgotten, grey never learned)",
                 fontsize=9)
    return save_figure(fig, png, dpi=110)
