"""The downstream probe of an experiment (kept apart from :mod:`editbench.suites.downstream.run`, which runs the
protocol, so that :mod:`editbench.runner.experiment` can build the probe without an import cycle)."""
from __future__ import annotations

from typing import Any

DEFAULT_EVERY = 10  # the paper: downstream evaluated about every 10 edits
FACTWORLD_PROBE = "factworld-tasks"


def make_downstream_probe(exp, lm) -> Any:
    """The downstream probe of ``exp`` for ``lm``: the fact world's tasks on the fact world, else GLUE."""
    from editbench.registry import PROBES

    if exp.model == "factworld" or getattr(lm, "model_id", None) == "factworld":
        return PROBES.get(FACTWORLD_PROBE).create(lm.tok, tasks=exp.downstream_tasks, n=exp.downstream_n,
                                                  mode=exp.downstream_mode or "loglik", seed=exp.seed)
    return PROBES.get("glue").create(lm.tok, lm.model_id, tasks=exp.downstream_tasks, n=exp.downstream_n,
                                     shots=exp.downstream_shots, mode=exp.downstream_mode, seed=exp.seed)
