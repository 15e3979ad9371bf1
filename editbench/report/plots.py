"""Figures of sequential runs, like the seed paper's Figures 1–3 (matplotlib, Agg backend, PNG).

One figure per run (or per editor with several samples overlaid, one colour per sample), six panels against the
number of edits: ES, PS and NS moving windows (dotted: the short window, 5 edits; solid: the long one, 50),
fact forgetting (% of edits successful right after they were made that fail now; solid argmax-based — the
paper's curve — dashed probability-based), the normalized L2 distance of each edited weight from its original
(log scale; one line style per layer), and the model-health signal. A detected catastrophic-forgetting point is
a vertical grey line. A run with downstream checks (``downstream_every``) gets a seventh panel: each task's
primary-mode F1 against the edits (solid: above chance on the unedited model; dotted: at chance, where no
regression can show).

:func:`plot_comparison` puts several editors' runs on one stream side by side (ES, forgetting, health, drift and
norm growth): the figure for "does method X outlast method Y".
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from editbench.metrics.distance import layer_label
from editbench.report.figure import save_figure
from editbench.runner.jsonl import read_jsonl
from editbench.runner.summary import health_lower_is_better, write_summary

LINESTYLES = ("-", "--", ":", "-.")


def _window_sizes(edits: list[dict], metric: str) -> list[int]:
    sizes = set()
    for e in edits[:1]:
        for k in e.get("windows", {}):
            if k.startswith(metric + "_w"):
                sizes.add(int(k[len(metric) + 2:]))
    return sorted(sizes)


def plot_runs(jsonl_paths: Sequence[str | Path], png: str | Path, title: str | None = None,
              labels: Sequence[str] | None = None, cf_edits: Sequence[int | None] | None = None) -> Path:
    """Draw the runs in ``jsonl_paths`` (samples of one editor/model) into one PNG; return its path."""
    all_recs = [read_jsonl(path, damaged=[]) for path in jsonl_paths]
    with_ds = any(x.get("type") == "check" and "downstream" in x for recs in all_recs for x in recs)
    if with_ds:
        fig, axes = plt.subplots(2, 4, figsize=(20, 8.5))
        (ax_es, ax_ps, ax_ns, ax_ds), (ax_fg, ax_d, ax_h, ax_off) = axes
        ax_off.axis("off")
    else:
        fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
        (ax_es, ax_ps, ax_ns), (ax_fg, ax_d, ax_h) = axes
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    health_name, ax_h2 = None, None
    for r, recs in enumerate(all_recs):  # damaged lines: skipped (the summary reports them)
        header = next((x for x in recs if x["type"] == "run"), {})
        conf = header.get("config", {})
        label = labels[r] if labels else f"sample {conf.get('sample', r)}"
        color = colors[r % len(colors)]
        edits = [x for x in recs if x["type"] == "edit"]
        checks = [x for x in recs if x["type"] == "check"]
        n = [e["n"] for e in edits]
        for ax, metric in ((ax_es, "es"), (ax_ps, "ps"), (ax_ns, "ns")):
            sizes = _window_sizes(edits, metric)
            for j, w in enumerate(sizes):
                ys = [e["windows"].get(f"{metric}_w{w}") for e in edits]
                short = len(sizes) > 1 and j == 0
                ax.plot(n, ys, color=color, lw=0.8 if short else 1.6, ls=":" if short else "-",
                        alpha=0.6 if short else 1.0, label=f"{label} (w={w})")
        fc = [c for c in checks if "forgetting" in c]
        for key, ls in (("forget_argmax_now", "-"), ("forget_prob_now", "--")):
            xs = [c["n"] for c in fc if c["forgetting"].get(key) is not None]
            ys = [100 * c["forgetting"][key] for c in fc if c["forgetting"].get(key) is not None]
            ax_fg.plot(xs, ys, color=color, ls=ls, label=f"{label} ({key.split('_')[1]})")
        names = sorted({k for e in edits for k in e.get("distance", {}) if k != "total"})
        for j, name in enumerate(names):
            ys = [e["distance"].get(name, {}).get("dist") for e in edits]
            ax_d.plot(n, ys, color=color, ls=LINESTYLES[j % len(LINESTYLES)], label=f"{label} {layer_label(name)}")
        hc = [c for c in checks if c.get("health")]
        if hc:
            lower_is_better = lambda k: health_lower_is_better(header, k)
            keys = sorted(hc[0]["health"], key=lambda k: (lower_is_better(k), k))
            health_name = health_name or keys[0]
            for j, key in enumerate(keys):
                ax = ax_h
                if lower_is_better(key) and key != health_name:  # e.g. perplexity next to recall: own log axis
                    ax_h2 = ax_h2 or ax_h.twinx()
                    ax_h2.set_yscale("log")
                    ax_h2.set_ylabel(", ".join(k for k in keys if lower_is_better(k)) + " (log)")
                    ax = ax_h2
                ax.plot([c["n"] for c in hc], [c["health"].get(key) for c in hc], color=color,
                        ls=LINESTYLES[j % len(LINESTYLES)], marker=".", label=f"{label} {key}")
        dc = [c for c in checks if isinstance(c.get("downstream"), dict)]
        if with_ds and dc:
            tasks = sorted({k.split(".")[0] for k in dc[0]["downstream"] if k.count(".") == 1 and k.endswith(".f1")})
            for j, t in enumerate(tasks):
                above = bool(dc[0]["downstream"].get(f"{t}.above_chance"))
                ax_ds.plot([c["n"] for c in dc], [c["downstream"].get(f"{t}.f1") for c in dc], marker=".",
                           ls="-" if above else ":", color=colors[j % len(colors)] if len(all_recs) == 1 else color,
                           label=f"{t}" + ("" if above else " (at chance)") + ("" if len(all_recs) == 1 else f" {label}"))
        cf = cf_edits[r] if cf_edits else None
        if cf:
            for ax in axes.flat:
                ax.axvline(cf, color=color, alpha=0.5, lw=1)
    for ax, name in ((ax_es, "Efficacy score (ES)"), (ax_ps, "Paraphrase score (PS)"),
                     (ax_ns, "Neighborhood score (NS)")):
        ax.set_title(name)
        ax.set_ylim(-0.05, 1.05)
    ax_fg.set_title("Facts forgotten (% of successful edits)")
    ax_fg.set_ylim(-2, 102)
    ax_d.set_title("Normalized L2 distance ‖W−W₀‖ / numel")
    if any(line.get_ydata().size for line in ax_d.get_lines()):
        ax_d.set_yscale("log")
    ax_h.set_title("Model health" + (f" ({health_name})" if health_name else " (no probe)"))
    if with_ds:
        ax_ds.set_title("Downstream F1 (primary mode)")
        ax_ds.set_ylim(-0.05, 1.05)
    for ax in axes.flat:
        ax.set_xlabel("number of edits")
        ax.grid(alpha=0.3)
        handles, lab = ax.get_legend_handles_labels()
        if handles and len(handles) <= 8:
            ax.legend(fontsize=7)
    if ax_h2 is not None:
        h1, l1 = ax_h.get_legend_handles_labels()
        h2, l2 = ax_h2.get_legend_handles_labels()
        if len(h1) + len(h2) <= 8:
            ax_h.legend(h1 + h2, l1 + l2, fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, png, dpi=90)


def plot_summary(summary: dict) -> Path:
    """Draw one run's figure (``sequential.png`` beside its results) and record its path in the run's summary
    (``summary["paths"]["plot"]``, summary.json rewritten)."""
    jsonl = Path(summary["paths"]["jsonl"])
    png = plot_runs([jsonl], jsonl.parent / "sequential.png", cf_edits=[summary.get("cf_edit")],
                    title=f"{summary.get('editor')} on {summary.get('model_id')}, sample {summary.get('sample')}")
    summary["paths"]["plot"] = str(png)
    write_summary(summary)
    return png


def plot_comparison(jsonl_paths: Sequence[str | Path], labels: Sequence[str], png: str | Path,
                    title: str | None = None, health_key: str = "ppl") -> Path:
    """Several editors' sequential runs on one stream, one colour each, in four panels against the number of
    edits: ES over the last 50 edits, argmax forgetting (% of successful edits failing now), the health signal
    ``health_key`` (log scale when lower is better: perplexity), and the edited matrices' drift taken together --
    ‖W − W₀‖/‖W₀‖ (solid) and, where the run recorded it, the norm growth ‖W‖/‖W₀‖ − 1 (dashed), log scale."""
    fig, (ax_es, ax_fg, ax_h, ax_d) = plt.subplots(1, 4, figsize=(20, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    log_health = False
    for r, path in enumerate(jsonl_paths):
        recs = read_jsonl(path, damaged=[])
        header = next((x for x in recs if x["type"] == "run"), {})
        color, label = colors[r % len(colors)], labels[r]
        edits = [x for x in recs if x["type"] == "edit"]
        checks = [x for x in recs if x["type"] == "check"]
        n = [e["n"] for e in edits]
        w = max(_window_sizes(edits, "es") or [0])
        if w:
            ax_es.plot(n, [e["windows"].get(f"es_w{w}") for e in edits], color=color, label=f"{label} (w={w})")
        fc = [c for c in checks if c.get("forgetting", {}).get("forget_argmax_now") is not None]
        ax_fg.plot([c["n"] for c in fc], [100 * c["forgetting"]["forget_argmax_now"] for c in fc], color=color,
                   marker=".", label=label)
        hc = [c for c in checks if health_key in (c.get("health") or {})]
        log_health = log_health or health_lower_is_better(header, health_key)
        ax_h.plot([c["n"] for c in hc], [c["health"][health_key] for c in hc], color=color, marker=".", label=label)
        tot = [(e["n"], e.get("distance", {}).get("total", {})) for e in edits]
        ax_d.plot([k for k, t in tot if t.get("rel")], [t["rel"] for k, t in tot if t.get("rel")], color=color,
                  label=f"{label} ‖ΔW‖/‖W₀‖")
        grow = [(k, t["norm_ratio"] - 1) for k, t in tot if t.get("norm_ratio") is not None and t["norm_ratio"] > 1]
        if grow:
            ax_d.plot([k for k, _ in grow], [g for _, g in grow], color=color, ls="--", label=f"{label} ‖W‖/‖W₀‖ − 1")
    ax_es.set_title("Efficacy (ES, moving window)")
    ax_es.set_ylim(-0.05, 1.05)
    ax_fg.set_title("Facts forgotten, argmax (%)")
    ax_fg.set_ylim(-2, 102)
    ax_h.set_title(f"Model health ({health_key}{', log' if log_health else ''})")
    if log_health:
        ax_h.set_yscale("log")
    ax_d.set_title("Edited matrices: drift and norm growth (log)")
    if any(line.get_ydata().size for line in ax_d.get_lines()):
        ax_d.set_yscale("log")
    for ax in (ax_es, ax_fg, ax_h, ax_d):
        ax.set_xlabel("number of edits")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, png, dpi=90)
