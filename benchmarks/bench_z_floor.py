"""How far is MEMIT's value optimization (z) from the floor of this CPU? (issue 14)

    pytest benchmarks/bench_z_floor.py -k factworld
    EDITBENCH_RUN_SLOW=1 pytest benchmarks/bench_z_floor.py -k smollm2      # docs/speed.md; threads 1 and 2

z dominates a sequential MEMIT run (benchmarks/profile_sequential.py). Each of its iterations is one forward pass
of the blocks above the last edit layer over the rewrite and KL rows' suffixes (FastForward: the prefix is in a KV
cache), the LM head at the scored positions, and one backward pass for the gradient of delta (no weight
gradients). This module, on the first record of the model's dataset, with 1 and 2 threads:

- counts the floating-point operations of one iteration (forward + backward) exactly, with
  ``torch.utils.flop_counter.FlopCounterMode`` (matrix products; elementwise work is not counted);
- times iterations of the real loop body (forward, loss, backward) on the real rows (``test_z_iteration``, the
  benchmark's time is one iteration);
- times bare matrix products of the same shapes as the model's linear layers on the same number of rows
  (``x @ W.T``, best of several), i.e. what this CPU achieves on exactly these products;
- times the products of one iteration in sequence with the model's *own* weights: every linear layer of every
  replayed block and the LM head, forward (``x @ W.T``) and backward (``g @ W``), on the iteration's rows
  (``replayed products``). The one-block figure above reuses a few megabytes of weights that stay in cache; a real
  iteration streams the replayed blocks' and the head's weights (over 400 MB for SmolLM2) twice, so this is the
  floor the products themselves set on this machine (``test_z_replayed_products``);

and records in ``extra_info`` the achieved GFLOP/s of an iteration next to the bare products' GFLOP/s. When the two are close, the
iteration is at the CPU's floor for this algorithm: it can only get faster by doing fewer products (fewer steps,
rows, or blocks -- a different algorithm) or on more/faster cores. ``z_floor_s_per_edit`` and ``z_s_per_edit_at_this_rate`` scale one iteration to
the preset's ``v_num_grad_steps``.
"""
from __future__ import annotations

import time

import pytest
import torch
from bench_machine import rate as gemm_rate  # best GFLOP/s of x @ W.T over given shapes
from benchlib import best_s, bench_records, model_name
from torch.utils.flop_counter import FlopCounterMode

from editbench.editors.memit import MEMITEditor
from editbench.editors.memit.compute_z import joint_batch
from editbench.editors.toolkit.forward import FastForward
from editbench.models.tokens import pad_token_id


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


@pytest.fixture(scope="module")
def zloop(lm):
    """MEMIT's z loop on the first record: ``step()`` (forward, loss, backward), its FLOP, rows, weights."""
    editor = MEMITEditor.from_preset(lm.preset_keys)
    hp, adapter = editor.hparams, lm.adapter
    flat = [t for g in editor.templates(lm.model, lm.tok) for t in g]
    req = bench_records(lm, 1)[0]
    jb = joint_batch(lm.tok, [req], flat, torch.device("cpu"))
    fwd = FastForward(lm.model, adapter, hp.layers[-1], adapter.n_layers - 1, jb.batch, pad_token_id(lm.tok))
    delta = torch.zeros(1, fwd.h_L.shape[-1], requires_grad=True)

    def step():
        tgt_logits, kl_logits = fwd(delta[jb.owner])
        loss = torch.log_softmax(tgt_logits, -1).mean() + torch.log_softmax(kl_logits, -1).mean()
        loss.backward()

    def linears(i):  # (out, in) weights: nn.Linear's, and GPT-2's Conv1D (in, out) transposed (the fact world)
        return [m.weight.detach() if isinstance(m, torch.nn.Linear) else m.weight.detach().T
                for m in adapter.block(i).modules() if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D"]
    step()                                            # warm-up
    with FlopCounterMode(display=False) as fc:
        step()
    tokens = int(fwd.h_L.shape[0] * fwd.h_L.shape[1])
    # the replayed blocks' weights (out, in), in the loop's order, and the shapes of the first one
    return dict(step=step, flops=fc.get_total_flops(), tokens=tokens, steps=hp.v_num_grad_steps,
                info={"case_id": req.case_id, "rows": int(fwd.h_L.shape[0]), "suffix_len": int(fwd.h_L.shape[1]),
                      "tokens": tokens, "blocks_replayed": adapter.n_layers - 1 - hp.layers[-1],
                      "iterations_per_edit": hp.v_num_grad_steps, "flops_per_iter": fc.get_total_flops()},
                shapes=[tuple(w.shape) for w in linears(hp.layers[-1] + 1)],
                replayed=[w for i in range(hp.layers[-1] + 1, adapter.n_layers) for w in linears(i)],
                head=adapter.lm_head.weight.detach(), head_rows=int(jb.batch.tgt_pos.numel() + len(jb.batch.kl_rows)))


def test_z_iteration(benchmark, threads, lm, zloop):
    benchmark.group = f"z iteration {model_name(lm)}"
    benchmark.extra_info.update(zloop["info"])
    benchmark(zloop["step"])
    per = best_s(benchmark)
    bare = gemm_rate(zloop["tokens"], zloop["shapes"])
    benchmark.extra_info.update(s_per_iter=per, gflops_achieved=zloop["flops"] / per / 1e9, gflops_bare_products=bare,
                                z_floor_s_per_edit=zloop["flops"] * zloop["steps"] / bare / 1e9,
                                z_s_per_edit_at_this_rate=per * zloop["steps"])


def test_z_replayed_products(benchmark, threads, lm, zloop):
    """The iteration's products with the model's own weights; the benchmark's time is one such sequence."""
    benchmark.group = f"z iteration {model_name(lm)}"
    benchmark.extra_info.update(zloop["info"])
    s, flops = benchmark(replayed_products, zloop["replayed"], zloop["head"], zloop["tokens"], zloop["head_rows"],
                         repeats=0)
    per = best_s(benchmark)
    benchmark.extra_info.update(replayed_products_flops=flops, gflops_replayed_products=flops / per / 1e9,
                                z_products_floor_s_per_edit=per * zloop["steps"])
