"""Per-edit latency of MEMIT (fast and straightforward z paths) at batch sizes 1 and 10.

    python benchmarks/bench_memit.py                                   # tiny-gpt2, batches 1 and 10
    python benchmarks/bench_memit.py --model smollm2-135m --batches 1,10
    python benchmarks/bench_memit.py --model smollm2-135m --batches 1 --no-slow
    python benchmarks/bench_memit.py --model smollm2-135m --sweep-lambda 1400,15000 --records 20

``--sweep-lambda`` measures single edits instead of latency: z of the N records is optimized once (z does not
depend on lambda, and one request's z does not depend on the others'), then for every lambda each record alone
is written into the layers, scored (ES/PS/NS and magnitudes, editbench.metrics.counterfact) and restored.

Records are the first real CounterFact records of ../shared/data (EasyEdit format). Context templates and the
covariances C_l are prepared once before any timing (C from the disk cache of editbench.models.stats, computed
on first use). For each batch size the model is edited with the fast z path, restored, edited with the
straightforward path (full forward pass per step, the reference code's way) on identical inputs, and restored;
the script prints seconds per edit for both, the split into z optimization and layer updates, the relative
difference of the two weight updates, and how many rewrite prompts prefer the new target after the edit.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from editbench.data.registry import load_records  # noqa: E402
from editbench.editors.base import restore  # noqa: E402
from editbench.models.tokens import tokenize_prompt_target, target_nll  # noqa: E402
from editbench.editors.memit import MEMITEditor, spread_updates  # noqa: E402
from editbench.editors.memit.compute_z import compute_zs  # noqa: E402
from editbench.metrics.counterfact import aggregate, score_requests  # noqa: E402
from editbench.models.loader import load_model  # noqa: E402


def bench_records(model: str, data: str | None, n: int) -> list:
    """The first ``n`` records of ``data`` (a JSON path); by default the fact world's own for the fact world (its
    word-level tokenizer knows no CounterFact words), else real CounterFact (the registry's counterfact-1k)."""
    return load_records(data or ("factworld" if model == "factworld" else "counterfact-1k"), n=n)


def efficacy(model, tok, requests) -> float:
    """Fraction of rewrite prompts where the new target has lower NLL than the true one (ES)."""
    prompts = [r.rewrite_prompt for r in requests]
    b_new = tokenize_prompt_target(tok, prompts, [r.target_new for r in requests])
    b_true = tokenize_prompt_target(tok, prompts, [r.target_true for r in requests])
    with torch.no_grad():
        nll_new = target_nll(model(**b_new.model_inputs()).logits, b_new)
        nll_true = target_nll(model(**b_true.model_inputs()).logits, b_true)
    return float((nll_new < nll_true).float().mean())


def updates(adapter, originals, layers) -> torch.Tensor:
    return torch.cat([(adapter.weight_out_in(l).detach() - (originals[adapter.mlp_out_weight_name(l)].T
                       if adapter.conv1d else originals[adapter.mlp_out_weight_name(l)])).flatten() for l in layers])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny-gpt2")
    ap.add_argument("--batches", default="1,10", help="comma-separated batch sizes")
    ap.add_argument("--data", default=None, help="EasyEdit JSON (default: the fact world's records for "
                    "--model factworld, else real CounterFact from ../shared/data)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-slow", action="store_true", help="skip the straightforward z path")
    ap.add_argument("--sweep-lambda", default="", help="comma-separated lambdas: single-edit scores per lambda")
    ap.add_argument("--records", type=int, default=20, help="records for --sweep-lambda")
    ap.add_argument("--layers", default="", help="override the preset's edit layers, e.g. 2,3,4,5,6")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed edits (fast and straightforward) before timing: first calls pay one-off costs")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    lm = load_model(args.model)
    print(f"model {args.model}: {lm.adapter.n_layers} layers, load {time.perf_counter() - t0:.1f}s, "
          f"threads {torch.get_num_threads()}")
    overrides = {"layers": tuple(int(x) for x in args.layers.split(","))} if args.layers else {}
    editor = MEMITEditor.from_preset(lm.preset_keys, **overrides)
    editor.model_hash = lm.model_hash
    hp = editor.hparams
    t0 = time.perf_counter()
    editor.templates(lm.model, lm.tok)
    t1 = time.perf_counter()
    covs = editor.covariance(lm.model, lm.tok, lm.adapter)
    print(f"layers {hp.layers}, lambda {hp.mom2_update_weight:g}: templates {t1 - t0:.1f}s, "
          f"C ({hp.mom2_corpus}, {hp.mom2_n_samples} tokens) {time.perf_counter() - t1:.1f}s")
    if args.sweep_lambda:
        return sweep(lm, editor, [float(x) for x in args.sweep_lambda.split(",")], args.model, args.data,
                     args.records)
    slow = MEMITEditor(hp.replace(fast_z=False), covariances=covs, context_templates=editor.context_templates)

    sizes = [int(x) for x in args.batches.split(",")]
    records = bench_records(args.model, args.data, max(sizes) + args.warmup)
    warm, records = records[max(sizes):], records[:max(sizes)]
    for req in warm:
        for ed in (editor,) if args.no_slow else (editor, slow):
            restore(lm.model, ed.apply(lm.model, lm.tok, [req]).originals)
    for n in sizes:
        reqs = records[:n]
        es_before = efficacy(lm.model, lm.tok, reqs)
        res = editor.apply(lm.model, lm.tok, reqs)
        es = efficacy(lm.model, lm.tok, reqs)
        d_fast = updates(lm.adapter, res.originals, hp.layers)
        restore(lm.model, res.originals)
        t = res.stats["timing"]
        msg = (f"batch {n:>3}: fast {t['total_s'] / n:.2f} s/edit (z {t['z_s']:.1f}s, updates {t['update_s']:.1f}s, "
               f"total {t['total_s']:.1f}s, CPU {t['total_cpu_s'] / n:.1f} s/edit); ES {es_before:.2f}"
               f" -> {es:.2f}")
        if not args.no_slow:
            res_s = slow.apply(lm.model, lm.tok, reqs)
            d_slow = updates(lm.adapter, res_s.originals, hp.layers)
            restore(lm.model, res_s.originals)
            ts = res_s.stats["timing"]
            msg += (f"; straightforward {ts['total_s'] / n:.2f} s/edit (z {ts['z_s']:.1f}s, CPU "
                    f"{ts['total_cpu_s'] / n:.1f} s/edit), speedup {ts['total_s'] / t['total_s']:.2f}x wall, "
                    f"{ts['total_cpu_s'] / t['total_cpu_s']:.2f}x CPU, |dW_fast - dW_slow| / |dW_slow| = "
                    f"{float((d_fast - d_slow).norm() / d_slow.norm()):.2e}")
        print(msg, flush=True)


def sweep(lm, editor, lambdas, model, data, n_records) -> None:
    hp = editor.hparams
    groups = editor.templates(lm.model, lm.tok)
    covs = editor.covariance(lm.model, lm.tok, lm.adapter)
    records = bench_records(model, data, n_records)
    show = lambda m: "  ".join(f"{k} {m[k]:.3f}" for k in ("es", "ps", "ns", "em", "pm", "nm") if m.get(k) is not None)  # noqa: E731
    print(f"unedited       {show(aggregate(score_requests(lm.model, lm.tok, records)))}", flush=True)
    t0 = time.perf_counter()
    zs = compute_zs(lm.model, lm.tok, lm.adapter, records, [t for g in groups for t in g], hp)
    print(f"z for {len(records)} records in one batch: {time.perf_counter() - t0:.1f}s; "
          f"mean z NLL {sum(z.nll_init for z in zs) / len(zs):.2f} -> {sum(z.nll_final for z in zs) / len(zs):.2f}",
          flush=True)
    for lam in lambdas:
        hpl = hp.replace(mom2_update_weight=lam)
        per, norms = [], []
        for req, z in zip(records, zs):
            originals = {n: p.detach().clone() for n, p in lm.model.named_parameters()
                         if n in {lm.adapter.mlp_out_weight_name(l) for l in hp.layers}}
            dn, _ = spread_updates(lm.model, lm.tok, lm.adapter, [req], groups, z.z[:, None], covs, hpl)
            per += score_requests(lm.model, lm.tok, [req])
            norms.append(sum(dn.values()) / len(dn))
            restore(lm.model, originals)
        print(f"lambda {lam:>8g}  {show(aggregate(per))}  mean |dW| per layer {sum(norms) / len(norms):.3f}",
              flush=True)


if __name__ == "__main__":
    main()
