"""Declared ranges of editor hyperparameters: stated once per field, checked before the first edit.

A hyperparameter dataclass declares a field's valid values in its metadata with :func:`hp`::

    v_lr: float = hp(0.5, gt=0)                 # finite, > 0
    v_num_grad_steps: int = hp(20, ge=1)        # a whole number >= 1
    layer: int = hp(17, layer=True)             # a block index of the model: 0 <= layer < n_layers
    layers: tuple[int, ...] = hp((0,), layer=True)   # each of them

:func:`range_errors` checks values against those declarations (and, given the model's layer count, the layer
indices); the front ends (:mod:`editbench.runner.checks`) call it on ``--hparam`` overrides before any model
loads and on the resolved hyperparameters (preset + overrides) once the model is known. Numbers are finite
unless ``finite=False``; booleans are never numbers; ``None`` passes where the default may be None
(``none=True``, set automatically when the default is None).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

SEED_MAX = 2 ** 32 - 1
"""Seeds in [0, 2**32 - 1]: what NumPy's legacy seeding accepts (torch and Python's random take more)."""


@dataclass(frozen=True)
class Range:
    """What one hyperparameter may be: bounds (``ge``/``gt``/``le``/``lt``), finite, a layer index, None."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True
    layer: bool = False
    none: bool = False
    choices: tuple | None = None

    def describe(self, whole: bool = False) -> str:
        """``"finite and > 0"``, ``"a whole number >= 1"`` (``whole``: an int field), ``"a layer index ..."``."""
        parts = []
        if self.layer:
            parts.append("a layer index 0..n_layers-1")
        for op, v in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(self, op)
            if bound is not None:
                parts.append(f"{v} {bound:g}" if isinstance(bound, float) else f"{v} {bound}")
        if self.choices is not None:
            parts.append("one of " + ", ".join(repr(c) for c in self.choices))
        if self.finite and not self.layer and self.choices is None:
            if whole:
                return "a whole number " + " and ".join(parts) + (" (or null)" if self.none else "")
            parts.insert(0, "finite")
        return " and ".join(parts) + (" (or null)" if self.none else "")


def hp(default: Any, **bounds: Any) -> Any:
    """A dataclass field with ``default`` and its :class:`Range` in the metadata (key ``"range"``)."""
    if default is None:
        bounds.setdefault("none", True)
    return dataclasses.field(default=default, metadata={"range": Range(**bounds)})


def declared(hparams_class: type) -> dict[str, Range]:
    """Field name -> its declared :class:`Range` (fields without one are not listed)."""
    return {f.name: f.metadata["range"] for f in dataclasses.fields(hparams_class) if "range" in f.metadata}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def value_error(r: Range, value: Any, n_layers: int | None = None, whole: bool = False) -> str | None:
    """Why ``value`` is outside ``r`` (None when it is inside; ``whole``: the field is an int). Sequences are
    checked item by item."""
    if value is None:
        return None if r.none else "must not be null"
    if isinstance(value, (list, tuple)) and (r.layer or any(getattr(r, b) is not None for b in ("ge", "gt", "le",
                                                                                                  "lt"))):
        if r.layer and not value:
            return "needs at least one layer"
        for v in value:
            why = value_error(dataclasses.replace(r, none=False), v, n_layers, whole)
            if why:
                return f"item {v!r} {why}" if not why.startswith("item") else why
        return None
    if r.choices is not None:
        return None if value in r.choices else f"must be {r.describe(whole)}"
    x = _number(value)
    if x is None:
        return None  # a type problem: the type check (runner.checks) names it
    if r.finite and not math.isfinite(x):
        return f"must be {r.describe(whole)}"
    if r.layer:
        if isinstance(x, float) and not x.is_integer():
            return "must be a whole layer index"
        if x < 0:
            return ("must be a layer index >= 0" + (f" and < {n_layers} (the model has {n_layers} layers)"
                                                    if n_layers is not None else ""))
        if n_layers is not None and x >= n_layers:
            return f"is not a layer of this model: it has {n_layers} layers (0..{n_layers - 1})"
    for op, ok in (("ge", lambda b: x >= b), ("gt", lambda b: x > b), ("le", lambda b: x <= b),
                   ("lt", lambda b: x < b)):
        bound = getattr(r, op)
        if bound is not None and not ok(bound):
            return f"must be {r.describe(whole)}"
    return None


def range_errors(hparams_class: type, values: dict[str, Any], n_layers: int | None = None) -> list[tuple[str, str]]:
    """``[(field, why)]`` for every value outside its field's declared range (``n_layers``: the model's layer
    count, for layer indices; None checks only that they are >= 0)."""
    ranges = declared(hparams_class)
    whole = {f.name: str(f.type).startswith("int") for f in dataclasses.fields(hparams_class)}
    out = []
    for key, value in values.items():
        r = ranges.get(key)
        if r is None:
            continue
        why = value_error(r, value, n_layers, whole.get(key, False))
        if why:
            out.append((key, why))
    return out


__all__ = ["Range", "SEED_MAX", "declared", "hp", "range_errors", "value_error"]
