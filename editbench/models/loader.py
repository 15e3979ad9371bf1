"""One loader for a hub name, a local directory (offline) and the built-in embedded models by short name.

(Implementation in progress: see LoadedModel / load_model contract.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from editbench.models.adapter import ModelAdapter


@dataclass
class LoadedModel:
    """A model ready for editing: HF model + tokenizer + identity + adapter.

    ``preset_keys`` is the lookup order for editor hyperparameter presets, most specific first
    (e.g. ``["factworld", "gpt2"]``: short name, then model family).
    """

    model: torch.nn.Module
    tok: Any
    model_id: str
    model_hash: str
    adapter: ModelAdapter
    preset_keys: list[str] = field(default_factory=list)
