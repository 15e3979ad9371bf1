"""The downstream probe of an experiment (kept apart from :mod:`editbench.suites.downstream.run`, which runs the
protocol, so that :mod:`editbench.runner.experiment` can build the probe without an import cycle)."""
from __future__ import annotations

from typing import Any

from editbench.models.profiles import profile
from editbench.registry import PROBES

DEFAULT_EVERY = 10  # the paper: downstream evaluated about every 10 edits


def make_downstream_probe(exp, lm) -> Any:
    """The downstream probe of ``exp`` for ``lm``: the model profile's (the fact world's own tasks), else GLUE."""
    p = profile(exp.model)
    if not p.registered:  # a directory: the loaded model's id may still name a registered profile
        p = profile(getattr(lm, "model_id", "") or "")
    if p.downstream_probe != "glue":
        return PROBES.get(p.downstream_probe).create(lm.tok, tasks=exp.downstream_tasks, n=exp.downstream_n,
                                                  mode=exp.downstream_mode or "loglik", seed=exp.seed)
    return PROBES.get("glue").create(lm.tok, lm.model_id, tasks=exp.downstream_tasks, n=exp.downstream_n,
                                     shots=exp.downstream_shots, mode=exp.downstream_mode, seed=exp.seed)
