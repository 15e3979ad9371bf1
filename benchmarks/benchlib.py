"""What the benchmark modules share (plain functions; the fixtures are in conftest.py)."""
from __future__ import annotations

import pytest
import torch

from editbench.data.registry import load_records
from editbench.models.loader import load_model

FACTWORLD = "factworld"
SMOLLM2 = "smollm2-135m"
MODELS = [FACTWORLD, pytest.param(SMOLLM2, marks=pytest.mark.slow)]
_LOADED: dict = {}


def load(name: str):
    """``load_model(name)``, once per process."""
    if name not in _LOADED:
        _LOADED[name] = load_model(name)
    return _LOADED[name]


def model_name(lm) -> str:
    return FACTWORLD if FACTWORLD in lm.preset_keys else lm.model_id


def bench_records(lm, n: int) -> list:
    """The first ``n`` records for the model: the fact world's own for the fact world (its word-level tokenizer
    knows no CounterFact words), else real CounterFact (the registry's counterfact-1k)."""
    recs = load_records(FACTWORLD if model_name(lm) == FACTWORLD else "counterfact-1k", n=n)
    return recs[0] if isinstance(recs, tuple) else recs


def rounds(request) -> int:
    """Rounds of a benchmark that edits: ``--benchmark-min-rounds`` (pytest-benchmark's option, default 5)."""
    return max(1, int(request.config.getoption("benchmark_min_rounds")))


def best_s(benchmark) -> float:
    """The benchmark's best round in seconds (its ``min``); skips the rest of the test when pytest-benchmark is
    disabled (``--benchmark-disable``, or under xdist), where the function ran once, untimed."""
    if benchmark.disabled or benchmark.stats is None:
        pytest.skip("benchmarks disabled: nothing timed")
    return benchmark.stats.stats.min


def scalars(stats: dict) -> dict:
    """The JSON scalars of an editor's ``stats`` (and of its ``timing`` split), for ``extra_info``."""
    out = {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool)) or v is None}
    if isinstance(stats.get("timing"), dict):
        out["timing"] = scalars(stats["timing"])
    return out


def weight_update(adapter, originals: dict, layers) -> torch.Tensor:
    """The edit's change of the MLP output weights of ``layers`` (out, in), flattened and concatenated."""
    def before(layer):
        w = originals[adapter.mlp_out_weight_name(layer)]
        return w.T if adapter.conv1d else w
    return torch.cat([(adapter.weight_out_in(layer).detach() - before(layer)).flatten() for layer in layers])


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """|a - b| / |b|: how far one path's weight update is from the reference path's."""
    return float((a - b).norm() / b.norm().clamp_min(1e-30))
