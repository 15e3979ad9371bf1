"""What FP32 rate does this CPU give editbench's products? (issue 14, item 0: "machines differ by 4x")

    pytest benchmarks/bench_machine.py --benchmark-json machine.json      # threads 1 and 2
    editbench compare reference-machine.json machine.json                 # this machine against another

The same README main job took 13 min 43 s, 19 min 10 s and 38 min 31 s on three 2-core machines, two of which call
themselves just "AMD EPYC". A sequential MEMIT run is ~90% dense FP32 matrix products (docs/speed.md), so its time
follows the rate the CPU reaches on them, which is set by the width of its FMA units: per core and cycle, AMD
Zen/Zen+ does 16 FP32 FLOP (2 x 128-bit FMA), Zen 2-4 32 (2 x 256-bit), Zen 5 and AVX-512 Intel cores with two
FMA ports 64. Every benchmark's ``extra_info`` has the machine (vendor, family/model numbers, core generation,
torch's SIMD level, clock: conftest.py) and the GFLOP/s of its best round, of

- ``square``: a 2048 x 2048 x 2048 product (what the BLAS reaches at best; ``of_nominal_peak`` against the nominal
  peak where the generation is known);
- ``z_rows``: SmolLM2-135M's linear layers (576 -> 1536 -> 576, q/k/v/o 576 x 576) and its 49,152-way LM head on
  21 rows: the shapes of MEMIT's value optimization and ROME's v* (7 rows x 3 suffix tokens), two thirds of a run;
- ``probe_rows``: the same layers on 4,096 rows: the health probes' perplexity batch (32 texts x 128 tokens);

with 1 and 2 intra-op threads (one round = every shape once; pytest-benchmark calibrates the rounds). Run it with
nothing else running: another process on a 2-core machine halves what it measures. ``editbench compare`` of two
machines' JSON prints each benchmark's time on both: the ratio of their ``z_rows`` times estimates how much longer
(or shorter) a sequential run takes on one than on the other, valid as far as a run is matrix products.
"""
from __future__ import annotations

import time

import pytest
import torch
from benchlib import best_s

from editbench.runner.provenance import machine

# Nominal FP32 FLOP per core per cycle (FMA pipes x lanes x 2), by core generation (provenance.cpu_generation).
# Intel Xeons from Skylake-SP on: two 512-bit FMA ports (one on some low-end Skylake/Cascade Lake SKUs, which this
# table cannot tell apart); the clock is the one /proc/cpuinfo reports, so turbo can put a product above 100%.
FLOP_PER_CYCLE = {"Zen/Zen+": 16, "Zen 2": 32, "Zen 3": 32, "Zen 4": 32, "Zen 5": 64,
                  "Haswell-EP": 32, "Broadwell-EP": 32, "Skylake-SP/Cascade Lake": 64, "Ice Lake-SP": 64,
                  "Sapphire Rapids": 64, "Emerald Rapids": 64, "Granite Rapids": 64, "Sierra Forest": 16}

# SmolLM2-135M: hidden 576, MLP 1536, vocabulary 49,152 (weights as (out, in)).
SMOLLM2_LAYERS = ((576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536))
SMOLLM2_HEAD = (49152, 576)


def products(rows: int, shapes):
    """``(one round, FLOP per round)``: ``x (rows, k) @ W.T`` for every weight shape (n, k), inputs built once."""
    xs = {k: torch.randn(rows, k) for _, k in shapes}
    ws = [torch.randn(n, k) for n, k in shapes]

    def round_():
        for w in ws:
            xs[w.shape[1]] @ w.T
    return round_, sum(2 * rows * n * k for n, k in shapes)


def rate(rows: int, shapes, repeats: int = 20) -> float:
    """Best GFLOP/s of one round of :func:`products` over ``repeats`` rounds, after a warm-up round."""
    fn, flops = products(rows, shapes)
    fn()  # warm-up: first-call allocation and kernel selection
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


CASES = {"square": (2048, ((2048, 2048),)), "z_rows": (21, SMOLLM2_LAYERS + (SMOLLM2_HEAD,)),
         "probe_rows": (4096, SMOLLM2_LAYERS)}


@pytest.mark.parametrize("case", list(CASES))
def test_gemm(benchmark, threads, case):
    rows, shapes = CASES[case]
    fn, flops = products(rows, shapes)
    fn()  # warm-up: first-call allocation and kernel selection
    benchmark.group = f"gemm {case}"
    benchmark(fn)
    gflops = flops / best_s(benchmark) / 1e9
    info = machine()
    benchmark.extra_info.update(case=case, rows=rows, shapes=[list(s) for s in shapes], flops=flops, gflops=gflops)
    if info.get("cpu_generation") in FLOP_PER_CYCLE and info.get("mhz"):
        peak_core = FLOP_PER_CYCLE[info["cpu_generation"]] * info["mhz"] / 1e3
        benchmark.extra_info.update(nominal_peak_gflops_per_core=peak_core,
                                    of_nominal_peak=gflops / (peak_core * threads))
