"""The one "did you mean ...?" for mistyped names (editors, models, datasets, command-line options).

Standard library only, so any module can import it without import cycles::

    raise LookupError(f"unknown editor {name!r}.{did_you_mean(close_matches(name, known))}")
"""
from __future__ import annotations

import difflib
from typing import Iterable

CUTOFF = 0.5  # difflib similarity below which a name is not suggested


def close_matches(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Names of ``known`` close to ``name``, best first, at most ``n``, compared case-insensitively.

    The names come back as spelled in ``known`` (all of them when several differ only in case).
    """
    by_lower: dict[str, list[str]] = {}
    for k in known:
        by_lower.setdefault(k.lower(), []).append(k)
    out: list[str] = []
    for c in difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=CUTOFF):
        out.extend(by_lower[c])
    return out[:n]


def did_you_mean(close: Iterable[str]) -> str:
    """``" Did you mean 'a' or 'b'?"`` (leading space included), or ``""`` when there is nothing to suggest."""
    close = list(close)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
