"""Model loading (hub name | local dir | built-in short name), model profiles and architecture adapters.

``ModelAdapter`` and ``adapter_for`` are imported on first use: they import torch (about 2 s cold), and the
torch-free modules of this package (profiles, cache, errors, paths) are read by ``--help`` and the report.
"""
import importlib

__all__ = ["ModelAdapter", "adapter_for"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("editbench.models.adapter"), name)
    raise AttributeError(f"module 'editbench.models' has no attribute {name!r}")
