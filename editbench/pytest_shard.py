"""``--shard I/N`` for the pytest plugin: round-robin shards of the selected tests (job arrays across machines).

Each shard writes its own session file; ``editbench report`` merges them (two shards merged equal the whole).
"""
from __future__ import annotations

import pytest


class ShardPlugin:
    """``--shard I/N``: registered by :func:`pytest_configure`; runs after -m/-k deselection, so shards split
    what would run, round-robin in collection order."""

    def __init__(self, shard: str):
        self.i, self.n = parse_shard(shard)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        keep = [it for k, it in enumerate(items) if k % self.n == self.i - 1]
        drop = [it for k, it in enumerate(items) if k % self.n != self.i - 1]
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N), 1 <= I <= N; a UsageError naming the option otherwise."""
    try:
        i, n = (int(x) for x in text.split("/"))
        if not 1 <= i <= n:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. --shard 1/4") from None
    return i, n
