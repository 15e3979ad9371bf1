"""Errors of the models layer (a module of its own so that every loader module can raise them, no cycles)."""
from __future__ import annotations


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and what to do."""
