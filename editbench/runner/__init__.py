"""Runners: single-edit reliability (:mod:`.single`) and sequential editing at scale (:mod:`.sequential`)."""
from __future__ import annotations

from editbench.runner.schedule import ORDERS, SCHEDULES, make_stream
from editbench.runner.sequential import SequentialConfig, run_sequential
from editbench.runner.samples import run_samples
from editbench.runner.summary import summarize

__all__ = ["ORDERS", "SCHEDULES", "SequentialConfig", "make_stream", "run_samples", "run_sequential", "summarize"]
