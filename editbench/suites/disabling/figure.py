"""Figures of the disabling-edit suite (matplotlib, Agg backend, PNG).

:func:`plot_scan`: left, the strip plot of log10 normalized weight distance of every scanned single edit (one dot
per record, jittered; flagged outliers in red, confirmed disabling edits as red crosses, edits that broke the
weights at the top), with the median and the outlier bar (``min_ratio`` × the median) as lines and the edits of
isolated CF points as vertical markers; right, the health change of each edit (the entropy signal and the
perplexity ratio) against its distance, so a reader sees whether the far-out edits are also the harmful ones.
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from editbench.report.figure import save_figure


def _log10(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return math.log10(v) if math.isfinite(v) and v > 0 else None


def plot_scan(scan: dict, png: str | Path, title: str | None = None,
              isolated: Sequence[dict] = ()) -> Path:
    """Draw a scan (:func:`editbench.suites.disabling.isolation.scan`) and optionally isolated CF edits
    (:func:`editbench.suites.disabling.run.isolate` rows) into ``png``; return its path."""
    rows = scan.get("per_edit", [])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.3, 1]})
    rng = random.Random(0)
    xs = [_log10(r.get("distance")) for r in rows]
    finite = [x for x in xs if x is not None]
    top = (max(finite) + 0.5) if finite else 0.0
    for r, x in zip(rows, xs):
        y = rng.uniform(-0.3, 0.3)
        flagged, conf = r["outlier"]["flagged"], r.get("confirmed_disabling")
        if x is None:
            ax.scatter([top], [y], marker="x", color="black", s=60, zorder=3)
            continue
        ax.scatter([x], [y], s=50 if flagged else 18, marker="X" if conf else "o",
                   color="tab:red" if flagged else "tab:blue", alpha=0.9 if flagged else 0.6, zorder=3)
        if flagged:
            ax.annotate(str(r["case_id"]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    med = (scan.get("distribution") or {}).get("median")
    rule = scan.get("rule") or {}
    if med:
        ax.axvline(math.log10(med), color="grey", lw=1, label=f"median {med:.2e}")
        ax.axvline(math.log10(med * rule.get("min_ratio", 10)), color="grey", ls="--", lw=1,
                   label=f"{rule.get('min_ratio', 10):g}x median")
    for iso in isolated:
        x = _log10(iso["fresh"].get("distance"))
        if x is not None:
            ax.axvline(x, color="tab:purple", ls=":", lw=1.5,
                       label=f"CF edit {iso['run_edit']['case_ids']} alone: {iso['class']}")
        inc = _log10(iso["run_edit"].get("increment"))
        if inc is not None:
            ax.axvline(inc, color="tab:orange", ls="-.", lw=1, label="the run's spike (increment)")
    ax.set_yticks([])
    ax.set_xlabel("log10 normalized weight distance of a single edit (‖W−W0‖_F / numel)")
    ax.set_title(f"{len(rows)} single edits: {scan.get('n_flagged', 0)} flagged (red), "
                 f"{scan.get('n_intrinsic', 0)} confirmed disabling (X)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    base = scan.get("baseline_health") or {}
    ent_key = next((k for k in ("entropy", "entropy_sampled") if k in base), None)
    ppl_key = next((k for k in base if k == "ppl" or k.endswith("ppl")), None)
    for key, color, label in ((ent_key, "tab:green", "entropy after − before"),
                              (ppl_key, "tab:brown", "log10 ppl after / before")):
        if key is None:
            continue
        pts = []
        for r, x in zip(rows, xs):
            h = (r.get("health") or {}).get(key)
            try:
                h = float(h)
            except (TypeError, ValueError):
                continue
            if x is None or not math.isfinite(h):
                continue
            v = h - base[key] if key == ent_key else (math.log10(h / base[key]) if h > 0 and base[key] > 0 else None)
            if v is not None:
                pts.append((x, v))
        if pts:
            ax2.scatter([p[0] for p in pts], [p[1] for p in pts], s=16, color=color, label=f"{label} ({key})")
    ax2.axhline(0, color="grey", lw=0.8)
    ax2.set_xlabel("log10 normalized weight distance")
    ax2.set_title("health change of each single edit", fontsize=9)
    ax2.legend(fontsize=7)
    fig.suptitle(title or "disabling-edit scan", fontsize=10)
    return save_figure(fig, png, dpi=110)
