"""Several samples (edit orders) of one sequential experiment, each on a fresh model and editor, plotted together.

The seed paper runs 4 random orders per (editor, model) "to find patterns that are independent of the effect of
the order in which facts are edited". Each sample gets its own run directory ``<out_dir>/sample_<s>/`` (so each
is resumable on its own) and one figure overlays them: ``<out_dir>/sequential.png``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

from editbench.data.schema import EditRequest
from editbench.runner.sequential import SequentialConfig, run_sequential


def run_samples(make_editor: Callable[[], Any], make_lm: Callable[[], Any], requests: Sequence[EditRequest],
                config: SequentialConfig, samples: Sequence[int] = (0, 1, 2, 3), *,
                make_health_probe: Callable[[Any], Any] | None = None, dataset: str | None = None,
                title: str | None = None, per_sample_plots: bool = True) -> dict:
    """Run ``samples`` one after the other. ``make_lm()`` must return a freshly loaded, unedited model each time
    and ``make_editor()`` a fresh editor; ``make_health_probe(lm)`` (optional) builds the probe for that model.
    ``config.plot`` draws the overlay (and, with ``per_sample_plots``, each sample's own figure too).
    Returns ``{"samples": [summary, ...], "plot": path}``."""
    summaries = []
    for s in samples:
        cfg = dataclasses.replace(config, sample=s, out_dir=str(Path(config.out_dir) / f"sample_{s}"),
                                  plot=config.plot and per_sample_plots)
        lm = make_lm()
        probe = make_health_probe(lm) if make_health_probe is not None else None
        summaries.append(run_sequential(make_editor(), lm, requests, cfg, health_probe=probe, dataset=dataset))
        del lm
    out = {"samples": summaries, "plot": None}
    if config.plot:
        from editbench.report.plots import plot_runs
        png = plot_runs([s["paths"]["jsonl"] for s in summaries], Path(config.out_dir) / "sequential.png",
                        title=title, labels=[f"sample {s}" for s in samples],
                        cf_edits=[s["cf_edit"] for s in summaries])
        out["plot"] = str(png)
    return out
