"""Pictures of causal traces, in the style of the ROME paper's Figures 1 and 2 (matplotlib, Agg backend).

Top row: for one fact, one heatmap per kind — prompt tokens (subject tokens starred) × layers, colour = indirect
effect p_restored − p_corrupted (ROME's colours: hidden purple, MLP green, attention red). Bottom row: per-layer
average effect over the traced facts, normalised by the average total effect (raw when the noise did not
lower p on average, as in random models), at the subject's last token and at
the last prompt token, one curve per kind. As in ROME's heatmaps, effects ≤ 0 are white.
"""
from __future__ import annotations

from pathlib import Path

CMAPS = {"hidden": "Purples", "mlp": "Greens", "attn": "Reds"}
COLORS = {"hidden": "tab:purple", "mlp": "tab:green", "attn": "tab:red"}
TITLES = {"hidden": "single restored layer (hidden state)", "mlp": "MLP output", "attn": "attention output"}


def plot_trace(path: str | Path, layer_traces: dict[str, dict], grids: dict[str, dict] | None = None,
               title: str = "") -> Path:
    """Write a PNG with the one-fact grids (``kind -> trace_fact(...)``) on top and the per-layer curves
    (``kind -> trace_layers(...)``) below; either may be empty."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = grids or {}
    n_top = len(grids)
    ncols = max(n_top, 2)
    nrows = (1 if n_top else 0) + (1 if layer_traces else 0)
    if nrows == 0:
        raise ValueError("nothing to plot")
    fig = plt.figure(figsize=(4.2 * ncols, 3.6 * nrows + 0.4), constrained_layout=True)
    gs = fig.add_gridspec(nrows, ncols)
    row = 0
    if n_top:
        for c, (kind, g) in enumerate(grids.items()):
            ax = fig.add_subplot(gs[0, c])
            eff = g["effect"]
            s0, s1 = g["subject_range"]
            labels = [repr(g["tokens"][p])[1:-1] + ("*" if s0 <= p < s1 else "") for p in g["positions"]]
            im = ax.imshow(eff, aspect="auto", cmap=CMAPS.get(kind, "viridis"), interpolation="nearest",
                           vmin=0.0, vmax=max(1e-12, max(max(r) for r in eff)))  # <= 0 is white (as ROME)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
            ax.set_xlabel(f"layer (window {g['window']})" if kind != "hidden" else "layer")
            ax.set_title(f"{TITLES.get(kind, kind)}\np(' {g['answer']}') clean {g['p_clean']:.3f}, "
                         f"corrupted {g['p_corrupted']:.3f}", fontsize=8)
            fig.colorbar(im, ax=ax, shrink=0.8, extend="min").set_label("indirect effect", fontsize=7)
        row = 1
    if layer_traces:
        for c, (where, label) in enumerate((("subject_last", "subject's last token"),
                                            ("last_token", "last prompt token"))):
            ax = fig.add_subplot(gs[row, c])
            normalized = all(t["ate"] > 0 for t in layer_traces.values())
            for kind, t in layer_traces.items():
                ys = t[where]["normalized" if normalized else "aie"]
                ax.plot(t["layers"][:len(ys)], ys, marker="o", ms=3, color=COLORS.get(kind),
                        label=f"{kind} (n={t['n_used']})")
            sug = next((t.get("suggested") for t in layer_traces.values() if t.get("suggested")), None)
            if where == "subject_last" and sug and sug["rome_layer"] is not None:
                ax.axvline(sug["rome_layer"], color="k", lw=0.8, ls="--", label=f"ROME layer {sug['rome_layer']}")
                lo, hi = sug["memit_layers"][0], sug["memit_layers"][-1]
                ax.axvspan(lo - 0.5, hi + 0.5, color="0.85", zorder=0, label=f"MEMIT {lo}-{hi}")
            ax.axhline(0, color="0.5", lw=0.5)
            ax.set_xlabel("layer")
            ax.set_ylabel("avg indirect effect / avg total effect" if normalized else "avg indirect effect")
            ax.set_title(f"restoring at the {label}", fontsize=9)
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
