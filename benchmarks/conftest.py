"""Speed benchmarks as pytest-benchmark tests (``pytest benchmarks``; not part of ``pytest tests``, which CI runs).

    pytest benchmarks                                        # the fact world: seconds to a few minutes
    pytest benchmarks -k factworld --benchmark-json out.json
    EDITBENCH_RUN_SLOW=1 pytest benchmarks -k smollm2        # SmolLM2-135M (marked slow): tens of minutes
    editbench compare base.json out.json                     # a speed regression gate (default median:25%)

Every benchmark runs on the fact world (the project's small fixture model, fast, selected by default) and on
SmolLM2-135M under the ``slow`` marker (the root conftest.py skips it unless ``EDITBENCH_RUN_SLOW=1`` or
``-m slow``). Each one's ``extra_info`` holds the machine (:func:`editbench.runner.provenance.machine`: CPU
model, generation, SIMD, clock, cores), torch's intra-op thread count and version, and what the old scripts
printed beside the time (weight-update differences, efficacy before/after, FLOP rates, ...).

Thread count: torch's default (``OMP_NUM_THREADS``), unless a benchmark is parametrized by threads. Benchmarks
that edit run ``--benchmark-min-rounds`` rounds (default 5), one record each (a batch for MEMIT's batch
benchmarks), the model restored between rounds outside the timing, after one untimed warm-up edit; the other
benchmarks are calibrated by pytest-benchmark as usual (``--benchmark-max-time``). Time them with nothing
else running and say so: figures are comparable only on the same CPU and thread count.
"""
from __future__ import annotations

import os

import pytest
import torch

from benchlib import MODELS, load, model_name, scalars

from editbench.editors.base import restore
from editbench.runner.provenance import machine

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", params=MODELS)
def lm(request):
    """The loaded model (once per session): the fact world, and SmolLM2-135M under ``slow``."""
    return load(request.param)


@pytest.fixture(autouse=True)
def _provenance(request):
    """Every benchmark records the machine it ran on, torch's thread count and version in ``extra_info``."""
    if "benchmark" in request.fixturenames:
        info = request.getfixturevalue("benchmark").extra_info
        info.update(machine=machine(), threads=torch.get_num_threads(), torch=torch.__version__)
        if "lm" in request.fixturenames:
            info["model"] = model_name(request.getfixturevalue("lm"))
    yield


@pytest.fixture
def bench_edits(benchmark, request):
    """``run(lm, editor, batches, after=None)``: time ``editor.apply`` on each batch of records, one batch per round
    (``batches[0]`` is an untimed warm-up), the model restored between rounds outside the timing. ``after(res,
    batch)`` is called on the edited model after each timed round, before the restore (untimed). Returns the
    timed rounds' :class:`EditResult` s; their stats go to ``extra_info["rounds"]``."""

    def run(lm, editor, batches, after=None):
        queue, done, cur = list(batches), [], {}

        def finish():  # untimed: ``after`` on the edited model, then the restore
            res, batch, warm = cur.get("res"), cur.get("batch"), cur.get("warm")
            cur.clear()
            if res is not None:
                if not warm:
                    if after is not None:
                        after(res, batch)
                    done.append(res)
                restore(lm.model, res.originals)

        def setup():
            finish()
            cur["batch"] = queue.pop(0)
            cur["warm"] = len(queue) == len(batches) - 1
            return (cur["batch"],), {}

        def apply(batch):
            cur["res"] = editor.apply(lm.model, lm.tok, list(batch))

        try:
            benchmark.pedantic(apply, setup=setup, rounds=len(batches) - 1, warmup_rounds=1, iterations=1)
        finally:
            finish()
        benchmark.extra_info["rounds"] = [scalars(r.stats) for r in done]
        benchmark.extra_info["batch_size"] = len(batches[0])
        return done

    return run


@pytest.fixture(params=[1, 2], ids=lambda t: f"{t}thread")
def threads(request, benchmark):
    """Run the benchmark with 1 and with 2 intra-op threads (restored after; recorded in ``extra_info``)."""
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    benchmark.extra_info["threads"] = request.param
    yield request.param
    torch.set_num_threads(old)
