"""The zsRE-vs-completion transfer figure: transfer rate per direction and scoring protocol, one bar per editor.

Each bar is a transfer rate (of the edits that succeed in the format they were made in, the share that also
succeed in the other format; :mod:`editbench.suites.zsre.metrics`) with its bootstrap 95% interval as an error bar
and ``n`` (the edit-format successes) under it; an undefined rate (no edit-format success, or ``prob`` without a
target_true) is marked "n/a" instead of a bar of height 0. A hollow marker on each bar is the unedited model's
success in the probe format (a transfer can't be told from what the model already knew), and a dashed line the
seed paper's figure for ROME on GPT-2-XL (q2c transfer ~0.30: ~70% of successful question-form edits fail in
completion form).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from editbench.suites.zsre.metrics import PAPER_Q2C_TRANSFER
from editbench.report.figure import save_figure


def plot_transfer(summaries: Mapping[str, dict], png: str | Path, title: str | None = None) -> Path:
    """``summaries``: label (editor) -> ``{direction: {protocol: transfer_stats}}``; writes ``png``."""
    labels = list(summaries)
    groups = []  # (direction, protocol) in the order they first appear
    for s in summaries.values():
        for d, by_p in s.items():
            for p in by_p:
                if (d, p) not in groups:
                    groups.append((d, p))
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.7 * len(groups) * max(1, len(labels)) + 3)), 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.8 / max(1, len(labels))
    for j, label in enumerate(labels):
        for g, (d, p) in enumerate(groups):
            st = (summaries[label].get(d) or {}).get(p)
            x = g + (j - (len(labels) - 1) / 2) * width
            if not st or st["transfer"]["mean"] is None:
                ax.text(x, 0.02, "n/a", ha="center", va="bottom", fontsize=8, rotation=90, color=colors[j % 10])
                continue
            t = st["transfer"]
            ax.bar(x, t["mean"], width * 0.9, color=colors[j % len(colors)], label=label if g == 0 else None,
                   yerr=[[t["mean"] - t["lo"]], [t["hi"] - t["mean"]]], capsize=3)
            ax.text(x, t["hi"] + 0.02, f"{t['mean']:.2f}", ha="center", va="bottom", fontsize=7)
            ax.text(x, -0.03, f"n={t['n']}", ha="center", va="top", fontsize=7)
            base = st["baseline_probe"]["mean"]
            if base is not None:
                ax.plot([x], [base], marker="o", mfc="none", mec="black", ms=6, ls="none",
                        label="unedited, probe format" if (j, g) == (0, 0) else None)
    q2c = [g for g, (d, _p) in enumerate(groups) if d == "q2c"]
    if q2c:
        ax.hlines(PAPER_Q2C_TRANSFER, min(q2c) - 0.45, max(q2c) + 0.45, colors="grey", linestyles="--",
                  label=f"seed paper, ROME on GPT-2-XL (q2c ~{PAPER_Q2C_TRANSFER:.2f})")
    ax.set_xticks(range(len(groups)), [f"{d}\n{p}" for d, p in groups])
    ax.set_ylim(-0.1, 1.15)
    ax.set_ylabel("transfer rate (95% bootstrap interval)")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_title(title or "edit in one format, probe in the other (q2c: question -> completion)")
    ax.legend(fontsize=8, loc="upper right")
    return save_figure(fig, png, dpi=110)


def plot_results(results: list[dict], png: str | Path, title: str | None = None) -> Path:
    """The figure of ``zsre`` results in the result schema (one bar colour per editor)."""
    summaries = {}
    for r in results:
        name = (r["provenance"].get("editor") or {}).get("name") or r["experiment"].get("editor")
        summaries[name] = r["details"]["summary"]
    if title is None and results:
        e = results[0]["experiment"]
        title = (f"zsRE vs completion transfer: {e.get('model')}, {e.get('dataset')} ({results[0]['n']} pairs, "
                 f"target {e.get('zsre_target')})")
    return plot_transfer(summaries, png, title)
