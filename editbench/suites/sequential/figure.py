"""The sequential suite's figure: ``sequential.png`` beside the run's results (ES/PS/NS windows, forgetting,
weight distance, health, the CF point marked; a downstream panel when the run evaluated tasks). Drawn by the
report layer's run figure (:func:`editbench.report.plots.plot_summary`), which ``editbench report`` and the
downstream suite draw for any sequential run too."""
from __future__ import annotations

from pathlib import Path

from editbench.report.plots import plot_summary


def figure(summary: dict) -> Path:
    """Draw the run figure of ``summary`` (and rewrite the summary with its path); return the PNG's path."""
    return plot_summary(summary)
