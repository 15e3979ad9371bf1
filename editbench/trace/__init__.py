"""Causal tracing: where does a model store what it knows about a subject? (``editbench trace``)

:mod:`editbench.trace.core` has the method (clean / corrupted / restored runs, batched hooks),
:mod:`editbench.trace.tracing` the public functions, :mod:`editbench.trace.plot` the pictures and
:mod:`editbench.trace.cli` the command; docs/trace.md explains how to choose ROME/MEMIT layers with it.
Names are imported lazily so that ``editbench --help`` does not import torch.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "KINDS": "core", "TraceFact": "core", "as_trace_fact": "core", "embedding_std": "core", "encode_fact": "core",
    "restored_probs": "core", "subject_token_range": "core", "window_layers": "core",
    "NOISE_MULT": "tracing", "suggest_layers": "tracing", "trace_fact": "tracing", "trace_layers": "tracing",
    "plot_trace": "plot",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"editbench.trace.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'editbench.trace' has no attribute {name!r}")
