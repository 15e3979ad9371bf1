"""The MEND training curve: validation edit success (ES, PS) and locality KL against the training step."""
from __future__ import annotations

import json
from pathlib import Path


def plot_mend_curve(curve_json: str | Path, out_png: str | Path | None = None) -> Path:
    """Read ``curve.json`` written by ``editbench mend train`` and draw it (PNG next to it by default)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(Path(curve_json).read_text())
    val, summ = data["validation"], data.get("summary", {})
    steps = [p["step"] for p in val]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(steps, [p["es"] for p in val], "o-", label="ES (rewrite)")
    a.plot(steps, [p["ps"] for p in val], "s-", label="PS (paraphrase)")
    a.set_ylim(-0.02, 1.02)
    a.set_xlabel("training step")
    a.set_ylabel(f"edit success (n={val[0]['n'] if val else 0} held-out records)")
    a.legend()
    b.plot(steps, [p["loc_kl"] for p in val], "o-", color="C3")
    b.set_xlabel("training step")
    b.set_ylabel("locality KL (mean per token)")
    b.set_yscale("log")
    fig.suptitle(f"MEND meta-training, {summ.get('steps', steps[-1] if steps else 0)} steps")
    fig.tight_layout()
    out = Path(out_png) if out_png is not None else Path(curve_json).with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
