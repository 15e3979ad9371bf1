"""Where trained MEND networks live, and the error when a model has none.

A network belongs to one model: it is looked up by the model's id (:func:`editbench.models.identity.model_identity`,
e.g. ``smollm2-135m``; a model built outside the loader is known by its fingerprint) first in the package
(``editbench/editors/mend/weights/<id>/``, networks editbench ships) and then in the cache
(``<cache root>/mend/<id>/``, where ``editbench mend train`` writes by default).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from editbench.editors.mend.network import NET_CONFIG, NET_WEIGHTS
from editbench.models.cache import cache_root
from editbench.models.identity import model_identity
from editbench.models.stats import model_fingerprint

PACKAGE_DIR = Path(__file__).resolve().parent / "weights"


class MENDNetworkMissing(FileNotFoundError):
    """No trained MEND network for this model; the message names the model and the command that trains one."""


def model_key(model: torch.nn.Module) -> str:
    ident = model_identity(model)
    name = ident[0] if ident and ident[0] else model_fingerprint(model)[:19]
    return safe_name(name)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", str(name).rstrip("/")).strip("-") or "model"


def cache_dir_for(key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir if cache_dir is not None else cache_root()) / "mend" / key


def is_network_dir(d: Path) -> bool:
    return (d / NET_WEIGHTS).is_file() and (d / NET_CONFIG).is_file()


def missing_network(name: str, key: str | None = None, explicit: str | None = None,
                    cache_dir: str | os.PathLike | None = None) -> str | None:
    """None when a network for the model ``name`` (its id; ``key`` its directory name, default ``safe_name(name)``)
    is there, else the one-line message saying that nothing is trained for it and how to train one. Needs no
    loaded model, so the suites can check before anything loads."""
    if explicit is not None:
        d = Path(explicit).expanduser()
        return None if is_network_dir(d) else f"mend.network={explicit!r}: no {NET_WEIGHTS} + {NET_CONFIG} there"
    places = [PACKAGE_DIR / (key or safe_name(name)), cache_dir_for(key or safe_name(name), cache_dir)]
    if any(is_network_dir(d) for d in places):
        return None
    return (f"MEND: nothing trained for model {name!r} (no network in {places[0]} or {places[1]}); MEND needs a "
            f"network meta-trained for each model: train one with `editbench mend train --model {name} --dataset "
            f"zsre-train` (writes {places[1]}; SmolLM2-135M took ~45 min on 1 CPU thread, a GPU takes minutes), "
            f"or pass --hparam mend.network=DIR for a network trained elsewhere")


def find_network(model: torch.nn.Module, explicit: str | None = None,
                 cache_dir: str | os.PathLike | None = None) -> Path:
    """The directory of the network to use for ``model``, or :class:`MENDNetworkMissing`."""
    key = model_key(model)
    ident = model_identity(model)
    message = missing_network(ident[0] if ident else key, key, explicit, cache_dir)
    if message:
        raise MENDNetworkMissing(message)
    if explicit is not None:
        return Path(explicit).expanduser()
    return next(d for d in (PACKAGE_DIR / key, cache_dir_for(key, cache_dir)) if is_network_dir(d))
