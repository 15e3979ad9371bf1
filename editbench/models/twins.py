"""A local directory (or hub snapshot) holding the very weights of a built-in model is recognised as that model.

A user who saves the built-in ``gemma3-270m`` with ``save_pretrained`` and passes the directory as ``--model DIR``
runs the same model: it should get the built-in's presets (ROME layer 4, MEMIT layers 3-7, derived once and
committed) and share its caches, not a fresh causal trace (minutes) that could land elsewhere. The loader records
each built-in real model it loads in an index, ``<cache root>/presets/builtins.json``: its model hash (the sha256
of its weight files) -> its short name and its :func:`~editbench.models.loader.state_hash` (the tensors' bytes,
whatever the file layout). A directory is the built-in's twin when its model hash is in the index, or, failing
that, when its loaded tensors hash to a built-in's state hash (a re-sharded or re-serialised float32 copy; a bf16
copy holds other weights and is not a twin). The index only knows built-ins loaded on this machine (a copy can
only be made from one); without it, the directory's presets are derived by the rule, cached per model hash.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

INDEX_NAME = "builtins.json"


def index_path(cache_dir: str | os.PathLike | None = None) -> Path:
    from editbench.models.cache import cache_root

    return Path(cache_dir or cache_root()) / "presets" / INDEX_NAME


def _read(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def remember_builtin(name: str, model_hash: str, model: torch.nn.Module,
                     state_hash: Callable[[torch.nn.Module], str], cache_dir=None) -> None:
    """Record the built-in ``name`` (once per model hash: hashing its tensors costs ~1 s for 1 GB)."""
    path = index_path(cache_dir)
    index = _read(path)
    known = index.get(model_hash) or {}
    if known.get("name") == name and "n_params" in known:
        return
    index[model_hash] = {"name": name, "state_hash": state_hash(model), "n_params": _n_params(model)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".builtins-", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(index, fh, indent=1)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old index or the new one
    except OSError:  # a read-only cache: the twin is then found by derivation only
        pass


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def recorded_name(model_hash: str, cache_dir=None) -> str | None:
    """The built-in recorded under ``model_hash`` (same weight files), else None."""
    hit = _read(index_path(cache_dir)).get(model_hash)
    return str(hit["name"]) if isinstance(hit, dict) and hit.get("name") else None


def builtin_twin(model_hash: str, model: torch.nn.Module, state_hash: Callable[[torch.nn.Module], str],
                 cache_dir=None) -> tuple[str, str] | None:
    """(built-in name, how it matched: ``"model hash"`` or ``"tensor hash"``) when ``model`` holds a recorded
    built-in's weights, else None. The tensors are hashed only when a recorded built-in has as many parameters."""
    name = recorded_name(model_hash, cache_dir)
    if name:
        return name, "model hash"
    index = _read(index_path(cache_dir))
    n = _n_params(model)  # only a model of a built-in's size is hashed (a 7B model would take ~30 s)
    states = {v.get("state_hash"): v.get("name") for v in index.values()
              if isinstance(v, dict) and v.get("n_params") == n}
    states.pop(None, None)
    if not states:
        return None
    name = states.get(state_hash(model))
    return (str(name), "tensor hash") if name else None
