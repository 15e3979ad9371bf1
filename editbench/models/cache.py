"""The one root of every artefact editbench caches on disk (statistics, converted models, downloads, ...)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$EDITBENCH_CACHE`` if set (and not empty), else ``~/.cache/editbench``. Read at every call."""
    return Path(os.environ.get("EDITBENCH_CACHE") or Path.home() / ".cache" / "editbench").expanduser()
