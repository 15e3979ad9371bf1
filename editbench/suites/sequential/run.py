"""The sequential suite's run function: one sample (edit order) of ``exp.n`` edits on one model.

The edit loop itself is the engine's (:func:`editbench.runner.experiment.run_sequential_sample` over
:mod:`editbench.runner.sequential`: scoring, history re-scoring, weight distance, health probes, checkpoints,
resume), because the downstream suite and the paper-scale module run the same loop; this suite adds its gates
(:mod:`.gates`), its result section (:mod:`.result`) and its figure (:mod:`.figure`)."""
from __future__ import annotations

from editbench.runner.experiment import Experiment, run_sequential_sample


def run(exp: Experiment, editor, lm, sample: int = 0, *, progress: bool = True) -> tuple[dict, list]:
    """(the run's summary, malformed-record errors) of sample ``sample``; the model ends unedited."""
    return run_sequential_sample(exp, editor, lm, sample=sample, progress=progress)
