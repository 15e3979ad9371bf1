"""Runners: single-edit reliability (:mod:`.single`), sequential editing at scale (:mod:`.sequential`), and one
:class:`~editbench.runner.experiment.Experiment` config that the pytest plugin and the CLI both fill in."""
from __future__ import annotations

from editbench.runner.schedule import ORDERS, SCHEDULES, make_stream
from editbench.runner.sequential import SequentialConfig, run_sequential
from editbench.runner.summary import summarize

__all__ = ["ORDERS", "SCHEDULES", "SequentialConfig", "make_stream", "run_sequential", "summarize"]
