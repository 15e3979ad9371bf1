"""Editors: one module (or small package) per method. See :mod:`editbench.editors.base` for the contract."""
from editbench.editors.base import EditResult, Editor, HParams, restore

__all__ = ["Editor", "EditResult", "HParams", "restore"]
