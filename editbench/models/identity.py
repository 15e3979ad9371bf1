"""The identity (model id, model hash) of models the loader produced, without attributes on the torch module.

:func:`editbench.models.loader.load_model` registers every model it returns; :func:`model_identity` looks it up.
The table holds the models weakly: it never keeps a model alive. Models built elsewhere are unknown (``None``);
callers then fall back to a fingerprint (:func:`editbench.models.stats.model_fingerprint`).
"""
from __future__ import annotations

import weakref

import torch

_IDENTITY: "weakref.WeakKeyDictionary[torch.nn.Module, tuple[str, str]]" = weakref.WeakKeyDictionary()


def register_identity(model: torch.nn.Module, model_id: str, model_hash: str) -> None:
    """Record ``(model_id, model_hash)`` for ``model`` (replacing an earlier record of the same object)."""
    _IDENTITY[model] = (str(model_id), str(model_hash))


def model_identity(model: torch.nn.Module) -> tuple[str, str] | None:
    """``(model_id, model_hash)`` of a model the loader produced, else None."""
    try:
        return _IDENTITY.get(model)
    except TypeError:  # not weak-referenceable (not a module): unknown
        return None
