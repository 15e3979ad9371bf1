"""Where the models shipped inside the package live (one definition; :mod:`editbench.factworld.profile` imports it)."""
from __future__ import annotations

from pathlib import Path

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
"""The embedded models' directory: one ``save_pretrained`` directory per built-in embedded model."""
