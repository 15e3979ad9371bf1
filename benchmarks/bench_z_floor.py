"""How far is MEMIT's value optimization (z) from the floor of this CPU? (issue 14)

    python benchmarks/bench_z_floor.py                       # SmolLM2, 5 CounterFact records, threads 1 and 2
    python benchmarks/bench_z_floor.py --records 10 --threads 1,2

z dominates a sequential MEMIT run (benchmarks/profile_sequential.py). Each of its iterations is one forward pass
of the blocks above the last edit layer over the rewrite and KL rows' suffixes (FastForward: the prefix is in a KV
cache), the LM head at the scored positions, and one backward pass for the gradient of delta (no weight
gradients). This script, per record:

- counts the floating-point operations of one iteration (forward + backward) exactly, with
  ``torch.utils.flop_counter.FlopCounterMode`` (matrix products; elementwise work is not counted);
- times iterations of the real loop body (forward, loss, backward) on the real rows;
- times bare matrix products of the same shapes as the model's linear layers on the same number of rows
  (``x @ W.T``, best of several), i.e. what this CPU achieves on exactly these products;
- times the products of one iteration in sequence with the model's *own* weights: every linear layer of every
  replayed block and the LM head, forward (``x @ W.T``) and backward (``g @ W``), on the iteration's rows
  (``replayed products``). The one-block figure above reuses a few megabytes of weights that stay in cache; a real
  iteration streams the replayed blocks' and the head's weights (over 400 MB for SmolLM2) twice, so this is the
  floor the products themselves set on this machine;

and prints the achieved GFLOP/s of an iteration next to the bare products' GFLOP/s. When the two are close, the
iteration is at the CPU's floor for this algorithm: it can only get faster by doing fewer products (fewer steps,
rows, or blocks -- a different algorithm) or on more/faster cores. Writes ``--out`` JSON with the CPU model and
thread counts.
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_machine import rate as gemm_rate  # noqa: E402  (best GFLOP/s of x @ W.T over given shapes)
from editbench.runner.provenance import cpu_model, machine  # noqa: E402


def replayed_products(weights, head, rows: int, head_rows: int, repeats: int = 5) -> tuple[float, float]:
    """Best seconds and FLOP of one iteration's products with the model's own weights, in the loop's order:
    forward ``x @ W.T`` through every replayed linear layer and the LM head (``head_rows`` rows), then backward
    ``g @ W`` in reverse (the gradient for the activations only: the weights are frozen)."""
    fwd = [(torch.randn(rows, w.shape[1]), w) for w in weights] + [(torch.randn(head_rows, head.shape[1]), head)]
    bwd = [(torch.randn(x.shape[0], w.shape[0]), w) for x, w in reversed(fwd)]
    flops = sum(4 * x.shape[0] * w.numel() for x, w in fwd)
    best = float("inf")
    for _ in range(repeats + 1):                      # the first round is a warm-up
        t = time.perf_counter()
        for x, w in fwd:
            x @ w.T
        for g, w in bwd:
            g @ w
        best = min(best, time.perf_counter() - t)
    return best, flops


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--records", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "z-floor.json"))
    args = ap.parse_args(argv)

    from torch.utils.flop_counter import FlopCounterMode
    from editbench.data.registry import load_records
    from editbench.editors.memit.compute_z import joint_batch
    from editbench.editors.toolkit.forward import FastForward
    from editbench.models.adapter import ModelAdapter
    from editbench.models.tokens import pad_token_id
    from editbench.runner.experiment import Experiment, ModelCache, make_editor

    lm = ModelCache().get(args.model, "cpu")
    exp = Experiment(suite="single", editor="memit", model=args.model)
    editor = make_editor(exp, lm)
    hp = editor.hparams
    adapter = ModelAdapter(lm.model)
    groups = editor.templates(lm.model, lm.tok)
    flat = [t for g in groups for t in g]
    recs = load_records(exp.dataset_name, n=args.records)
    recs = recs[0] if isinstance(recs, tuple) else recs
    for p in lm.model.parameters():
        p.requires_grad_(False)
    def linears(i):
        return [m.weight.detach() for m in adapter.block(i).modules() if isinstance(m, torch.nn.Linear)]

    # the replayed blocks' weights (out, in), in the loop's order, and the shapes of the first one
    replayed = [w for i in range(hp.layers[-1] + 1, adapter.n_layers) for w in linears(i)]
    shapes = [tuple(w.shape) for w in linears(hp.layers[-1] + 1)]
    head_w = adapter.lm_head.weight.detach()
    rows_out = []
    for threads in [int(x) for x in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for req in recs:
            jb = joint_batch(lm.tok, [req], flat, torch.device("cpu"))
            fwd = FastForward(lm.model, adapter, hp.layers[-1], adapter.n_layers - 1, jb.batch, pad_token_id(lm.tok))
            delta = torch.zeros(1, fwd.h_L.shape[-1], requires_grad=True)

            def step():
                tgt_logits, kl_logits = fwd(delta[jb.owner])
                loss = torch.log_softmax(tgt_logits, -1).mean() + torch.log_softmax(kl_logits, -1).mean()
                loss.backward()
            step()                                        # warm-up
            with FlopCounterMode(display=False) as fc:
                step()
            flops = fc.get_total_flops()
            t = time.perf_counter()
            for _ in range(args.iters):
                step()
            per = (time.perf_counter() - t) / args.iters
            tokens = int(fwd.h_L.shape[0] * fwd.h_L.shape[1])
            rate = gemm_rate(tokens, shapes)
            head_rows = int(jb.batch.tgt_pos.numel() + len(jb.batch.kl_rows))
            rp_s, rp_flops = replayed_products(replayed, head_w, tokens, head_rows)
            rows_out.append({"threads": threads, "case_id": req.case_id, "rows": int(fwd.h_L.shape[0]),
                             "suffix_len": int(fwd.h_L.shape[1]), "tokens": tokens, "flops_per_iter": flops,
                             "s_per_iter": per, "gflops_achieved": flops / per / 1e9,
                             "gflops_bare_products": rate,
                             "replayed_products_s": rp_s, "replayed_products_flops": rp_flops,
                             "gflops_replayed_products": rp_flops / rp_s / 1e9,
                             "blocks_replayed": adapter.n_layers - 1 - hp.layers[-1]})
            r = rows_out[-1]
            print(f"threads {threads} case {req.case_id}: {r['rows']} rows x {r['suffix_len']} suffix tokens, "
                  f"{flops / 1e9:.2f} GFLOP/iter, {per * 1e3:.0f} ms/iter = {r['gflops_achieved']:.1f} GFLOP/s; "
                  f"bare products of these shapes {rate:.1f} GFLOP/s; the iteration's products with the model's "
                  f"own weights {rp_s * 1e3:.0f} ms ({r['gflops_replayed_products']:.1f} GFLOP/s)")
    out = {"cpu": cpu_model(), "machine": machine(), "cores": os.cpu_count(), "torch": torch.__version__, "model": args.model,
           "iterations_per_edit": hp.v_num_grad_steps, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "rows": rows_out}
    for threads in sorted({r["threads"] for r in rows_out}):
        rs = [r for r in rows_out if r["threads"] == threads]
        mean = lambda k: sum(r[k] for r in rs) / len(rs)  # noqa: E731
        out[f"threads_{threads}"] = {"s_per_iter": mean("s_per_iter"), "gflops_achieved": mean("gflops_achieved"),
                                     "gflops_bare_products": mean("gflops_bare_products"),
                                     "z_floor_s_per_edit": mean("flops_per_iter") * hp.v_num_grad_steps
                                     / mean("gflops_bare_products") / 1e9,
                                     "z_s_per_edit_at_this_rate": mean("s_per_iter") * hp.v_num_grad_steps,
                                     "replayed_products_s_per_iter": mean("replayed_products_s"),
                                     "z_products_floor_s_per_edit": mean("replayed_products_s") * hp.v_num_grad_steps,
                                     "products_share_of_iter": mean("replayed_products_s") / mean("s_per_iter")}
        print(f"threads {threads}: {out[f'threads_{threads}']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
