"""The one root of every artefact editbench caches on disk (statistics, converted models, downloads, ...), and
the one switch that says whether a cache may be filled from the network.

:func:`offline` is honoured everywhere editbench could fetch something implicitly: named data files
(:mod:`editbench.data.sources`), the full CounterFact download, hub models (``local_files_only=True``,
:mod:`editbench.models.loader`), the front ends' model check and the Hugging Face ``datasets`` calls (GLUE,
wikitext: :func:`local_only`). Explicit fetches (``editbench data fetch``) download whatever it says.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: Any of these set to 1/true/yes/on turns implicit downloads off (editbench's own, then the Hugging Face ones).
OFFLINE_FLAGS = ("EDITBENCH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


def cache_root() -> Path:
    """``$EDITBENCH_CACHE`` if set (and not empty), else ``~/.cache/editbench``. Read at every call."""
    return Path(os.environ.get("EDITBENCH_CACHE") or Path.home() / ".cache" / "editbench").expanduser()


def offline_flag() -> str | None:
    """The first of :data:`OFFLINE_FLAGS` that is set to 1/true/yes/on (to name it in a message), else None."""
    return next((k for k in OFFLINE_FLAGS if os.environ.get(k, "").strip().lower() in _TRUE), None)


def offline() -> bool:
    """Whether implicit downloads (data files, hub models, datasets) are off. Read at every call."""
    return offline_flag() is not None


@contextmanager
def local_only() -> Iterator[bool]:
    """While :func:`offline`, make ``huggingface_hub`` and ``datasets`` local-only too (they read
    ``HF_HUB_OFFLINE`` once, at import, so ``EDITBENCH_OFFLINE=1`` set later would not reach them); restored
    after. Yields whether it is offline. Only modules already imported are touched (import them first)."""
    flag = offline()
    patched = []
    if flag:
        for mod in ("huggingface_hub.constants", "datasets.config"):
            m = sys.modules.get(mod)
            if m is not None and hasattr(m, "HF_HUB_OFFLINE"):
                patched.append((m, m.HF_HUB_OFFLINE))
                m.HF_HUB_OFFLINE = True
    try:
        yield flag
    finally:
        for m, old in patched:
            m.HF_HUB_OFFLINE = old
