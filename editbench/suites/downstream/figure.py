"""The downstream suite's figure: F1 of each task against the number of edits, one panel per answer mode.

Solid lines: tasks the unedited model does above chance (in that mode); dotted: at chance (no regression can
show there). The grey band of each line at edit 0 is its baseline's 95% bootstrap interval; a detected CF point is
a vertical grey line.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from editbench.metrics.downstream import MODES
from editbench.report.figure import save_figure


def plot_downstream(summary: dict, png: str | Path, title: str | None = None) -> Path:
    """Draw ``summary["downstream"]`` (a sequential summary with downstream checks) into ``png``."""
    ds = summary["downstream"]
    series = ds["series"]
    fig, axes = plt.subplots(1, len(MODES), figsize=(6 * len(MODES), 4.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, mode in zip(axes[0], MODES):
        for j, t in enumerate(ds["tasks"]):
            pts = [(n, v) for n, v in series.get(f"{t}.{mode}.f1", []) if v is not None]
            if not pts:
                continue
            above = bool(ds["first"].get(f"{t}.{mode}.above_chance"))
            primary = ds["primary"].get(t) == mode
            c = colors[j % len(colors)]
            ax.plot([n for n, _ in pts], [v for _, v in pts], marker=".", color=c, ls="-" if above else ":",
                    lw=2.0 if primary else 1.2,
                    label=f"{t}" + (" *" if primary else "") + ("" if above else " (at chance)"))
            lo, hi = ds["first"].get(f"{t}.{mode}.f1_lo"), ds["first"].get(f"{t}.{mode}.f1_hi")
            if lo is not None and hi is not None:
                ax.fill_between([pts[0][0], pts[-1][0]], [lo, lo], [hi, hi], color=c, alpha=0.08)
        if summary.get("cf_edit"):
            ax.axvline(summary["cf_edit"], color="grey", alpha=0.6)
        ax.set_title(f"F1, answer mode {mode}" + (" (the paper's)" if mode == "gen" else ""))
        ax.set_xlabel("number of edits")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title or f"downstream: {summary.get('editor')} on {summary.get('model_id')} (* primary mode)")
    return save_figure(fig, png, dpi=90)
