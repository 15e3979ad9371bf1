"""One way to write a figure: tight layout, the folder made, PNG at the given dpi, the figure closed (every
report module draws with matplotlib's Agg backend, set here before pyplot is imported)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def save_figure(fig, png: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``png`` and close it; return the path."""
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=dpi)
    plt.close(fig)
    return png
