"""What FP32 rate does this CPU give editbench's products? (issue 14, item 0: "machines differ by 4x")

    python benchmarks/bench_machine.py                    # threads 1 and 2, writes benchmarks/results/machine-*.json
    python benchmarks/bench_machine.py --threads 1 --repeats 5

The same README main job took 13 min 43 s, 19 min 10 s and 38 min 31 s on three 2-core machines, two of which call
themselves just "AMD EPYC". A sequential MEMIT run is ~90% dense FP32 matrix products (docs/speed.md), so its time
follows the rate the CPU reaches on them, which is set by the width of its FMA units: per core and cycle, AMD
Zen/Zen+ does 16 FP32 FLOP (2 x 128-bit FMA), Zen 2-4 32 (2 x 256-bit), Zen 5 and AVX-512 Intel cores with two
FMA ports 64. This script prints the machine (vendor, family/model numbers, core generation, torch's SIMD level,
clock) and measures GFLOP/s of

- ``square``: a 2048 x 2048 x 2048 product (what the BLAS reaches at best, against the nominal peak where the
  generation is known);
- ``z rows``: SmolLM2-135M's linear layers (576 -> 1536 -> 576, q/k/v/o 576 x 576) and its 49,152-way LM head on
  21 rows: the shapes of MEMIT's value optimization and ROME's v* (7 rows x 3 suffix tokens), two thirds of a run;
- ``probe rows``: the same layers on 4,096 rows: the health probes' perplexity batch (32 texts x 128 tokens);

with 1 and 2 intra-op threads, best of ``--repeats``. Run it with nothing else running: another process on a
2-core machine halves what it measures. With ``--reference`` (a JSON this script wrote on the machine where a run
was timed) it also prints the ratio of this machine's ``z rows`` rate to the reference's: an estimate of how much
longer (or shorter) a sequential run takes here, valid as far as a run is matrix products.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from editbench.runner.provenance import machine  # noqa: E402

# Nominal FP32 FLOP per core per cycle (FMA pipes x lanes x 2), by core generation (provenance.cpu_generation).
# Intel Xeons from Skylake-SP on: two 512-bit FMA ports (one on some low-end Skylake/Cascade Lake SKUs, which this
# table cannot tell apart); the clock is the one /proc/cpuinfo reports, so turbo can put a product above 100%.
FLOP_PER_CYCLE = {"Zen/Zen+": 16, "Zen 2": 32, "Zen 3": 32, "Zen 4": 32, "Zen 5": 64,
                  "Haswell-EP": 32, "Broadwell-EP": 32, "Skylake-SP/Cascade Lake": 64, "Ice Lake-SP": 64,
                  "Sapphire Rapids": 64, "Emerald Rapids": 64, "Granite Rapids": 64, "Sierra Forest": 16}

# SmolLM2-135M: hidden 576, MLP 1536, vocabulary 49,152 (weights as (out, in)).
SMOLLM2_LAYERS = ((576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536))
SMOLLM2_HEAD = (49152, 576)


def rate(rows: int, shapes, repeats: int = 20) -> float:
    """Best GFLOP/s of ``x (rows, k) @ W.T`` over the weight shapes (n, k), one round = every shape once."""
    xs = {k: torch.randn(rows, k) for _, k in shapes}
    ws = [torch.randn(n, k) for n, k in shapes]
    flops = sum(2 * rows * n * k for n, k in shapes)
    for w in ws:  # warm-up: first-call allocation and kernel selection
        xs[w.shape[1]] @ w.T
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for w in ws:
            xs[w.shape[1]] @ w.T
        best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


def measure(threads: int, repeats: int, square: int) -> dict:
    torch.set_num_threads(threads)
    return {"threads": threads,
            "square_gflops": rate(square, [(square, square)], repeats),
            "z_rows_gflops": rate(21, SMOLLM2_LAYERS + (SMOLLM2_HEAD,), repeats * 5),
            "probe_rows_gflops": rate(4096, SMOLLM2_LAYERS, repeats)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts (default 1,2)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--square", type=int, default=2048, help="size of the square product (default 2048)")
    ap.add_argument("--reference", default=None, help="a JSON written by this script on another machine")
    ap.add_argument("--note", default="", help="what else ran on the machine, recorded in the JSON")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/machine-<cpu>.json)")
    args = ap.parse_args(argv)

    info = machine()
    peak_core = None
    if info.get("cpu_generation") in FLOP_PER_CYCLE and info.get("mhz"):
        peak_core = FLOP_PER_CYCLE[info["cpu_generation"]] * info["mhz"] / 1e3
    rows = [measure(int(t), args.repeats, args.square) for t in args.threads.split(",")]
    for r in rows:
        if peak_core:
            r["square_of_nominal_peak"] = r["square_gflops"] / (peak_core * r["threads"])
    out = {"what": "FP32 GEMM rate on editbench's shapes (SmolLM2-135M)", "machine": info,
           "nominal_peak_gflops_per_core": peak_core, "repeats": args.repeats, "torch": torch.__version__,
           "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "note": args.note, "rows": rows}
    gen = info.get("cpu_generation") or info.get("simd")
    print(f"{info['cpu']} ({info.get('cpu_vendor')} family {info.get('cpu_family')} model "
          f"{info.get('cpu_model_number')}: {gen}, {info.get('simd')}, {info.get('mhz')} MHz, {info['cores']} cores)"
          + (f"; nominal FP32 peak {peak_core:.0f} GFLOP/s per core" if peak_core else ""))
    for r in rows:
        extra = f" ({r['square_of_nominal_peak']:.0%} of nominal)" if "square_of_nominal_peak" in r else ""
        print(f"  {r['threads']} thread(s): square {r['square_gflops']:.1f}{extra}, z rows {r['z_rows_gflops']:.1f}, "
              f"probe rows {r['probe_rows_gflops']:.1f} GFLOP/s")
    if args.reference:
        ref = json.loads(Path(args.reference).read_text())
        by_t = {r["threads"]: r for r in ref["rows"]}
        out["vs_reference"] = {}
        for r in rows:
            if r["threads"] in by_t:
                ratio = by_t[r["threads"]]["z_rows_gflops"] / r["z_rows_gflops"]
                out["vs_reference"][str(r["threads"])] = ratio
                print(f"  vs {ref['machine']['cpu']} ({ref['machine'].get('cpu_generation')}), {r['threads']} "
                      f"thread(s): a run's matrix products take about {ratio:.2f}x the reference's time here")
    slug = "".join(c if c.isalnum() else "-" for c in f"{info['cpu']} {info.get('cpu_generation') or ''}".lower())
    path = Path(args.out) if args.out else Path(__file__).parent / "results" / f"machine-{slug.strip('-')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
