"""Per-edit latency of ROME / r-ROME (fast and straightforward v* paths) and of the second-moment statistics.

    python benchmarks/bench_rome.py --model smollm2-135m --edits 3            # fast vs slow, same records
    python benchmarks/bench_rome.py --model tiny-gpt2 --edits 5 --stats-tokens 5000
    python benchmarks/bench_rome.py --model smollm2-135m --stats-only --stats-tokens 20000

For every record the model is restored to its original weights, then edited once with ``fast=True`` and once
with ``fast=False`` (identical inputs: same templates, same C); the script reports both latencies, the
relative difference of the two weight updates, and the target probability on the rewrite prompt before/after.
The statistics benchmark times C = E[kkᵀ] computed into an empty cache directory, then read back from it.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from editbench.data.registry import load_records  # noqa: E402
from editbench.editors.base import restore  # noqa: E402
from editbench.models.tokens import tokenize_prompt_target, target_nll  # noqa: E402
from editbench.editors.rome import ROMEEditor, RROMEEditor  # noqa: E402
from editbench.models.loader import load_model  # noqa: E402
from editbench.runner.provenance import machine  # noqa: E402
from editbench.editors.toolkit.covariance import second_moments_of  # noqa: E402


def bench_records(model: str, data: str | None, n: int) -> list:
    """The first ``n`` records of ``data`` (a JSON path); by default the fact world's own for the fact world (its
    word-level tokenizer knows no CounterFact words), else real CounterFact (the registry's counterfact-1k)."""
    return load_records(data or ("factworld" if model == "factworld" else "counterfact-1k"), n=n)


def target_prob(model, tok, prompt: str, target: str) -> float:
    batch = tokenize_prompt_target(tok, [prompt], [target])
    with torch.no_grad():
        logits = model(**batch.model_inputs()).logits
    return float(torch.exp(-target_nll(logits, batch))[0])


def bench_stats(lm, layer: int, tokens: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        c1 = second_moments_of(lm.model, lm.tok, lm.adapter, [layer], n_samples=tokens, model_hash=lm.model_hash,
                               cache_dir=d, progress=False)[layer]
        t1 = time.perf_counter()
        c2 = second_moments_of(lm.model, lm.tok, lm.adapter, [layer], n_samples=tokens, model_hash=lm.model_hash,
                               cache_dir=d, progress=False)[layer]
        t2 = time.perf_counter()
    assert torch.equal(c1, c2)
    return {"tokens": tokens, "compute_s": t1 - t0, "cached_s": t2 - t1}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--editor", default="rome", choices=["rome", "r-rome"])
    ap.add_argument("--layer", type=int, default=None, help="default: the preset's")
    ap.add_argument("--edits", type=int, default=3)
    ap.add_argument("--data", default=None, help="EasyEdit JSON (default: the fact world's records for "
                    "--model factworld, else real CounterFact from ../shared/data)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-slow", action="store_true", help="skip the straightforward path")
    ap.add_argument("--stats-tokens", type=int, default=0, help="also time C on this many tokens (0: skip)")
    ap.add_argument("--stats-only", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    print("machine", machine())
    t0 = time.perf_counter()
    lm = load_model(args.model)
    print(f"model {args.model}: {lm.adapter.n_layers} layers, load {time.perf_counter() - t0:.1f}s, "
          f"threads {torch.get_num_threads()}")
    cls = ROMEEditor if args.editor == "rome" else RROMEEditor
    overrides = {} if args.layer is None else {"layer": args.layer}
    editor = cls.from_preset(lm.preset_keys, **overrides)
    editor.model_hash = lm.model_hash
    hp = editor.hparams
    if args.stats_tokens:
        s = bench_stats(lm, hp.layer, args.stats_tokens)
        print(f"stats layer {hp.layer}, {s['tokens']} tokens: compute {s['compute_s']:.2f}s, "
              f"from cache {s['cached_s'] * 1000:.1f}ms")
    if args.stats_only:
        return

    t0 = time.perf_counter()
    editor.prepare(lm.model, lm.tok)  # C once (disk cache), outside the per-edit timing
    print(f"C for layer {hp.layer} ({hp.mom2_corpus}, {hp.mom2_n_samples} tokens): {time.perf_counter() - t0:.1f}s")
    slow = cls(hp.replace(fast=False), covariance={hp.layer: editor._cov(lm.model, lm.tok, lm.adapter)})
    records = bench_records(args.model, args.data, args.edits)
    rows = []
    for req in records:
        p_before = target_prob(lm.model, lm.tok, req.rewrite_prompt, req.target_new)
        res = editor.apply(lm.model, lm.tok, [req])
        w_fast = lm.adapter.weight_out_in(hp.layer).detach().clone()
        p_after = target_prob(lm.model, lm.tok, req.rewrite_prompt, req.target_new)
        restore(lm.model, res.originals)
        row = {"case": req.case_id, "fast_s": res.stats["edit_time_s"], "v_steps": res.stats["v_steps"],
               "p_before": p_before, "p_after": p_after}
        if not args.no_slow:
            res_s = slow.apply(lm.model, lm.tok, [req])
            w_slow = lm.adapter.weight_out_in(hp.layer).detach().clone()
            restore(lm.model, res_s.originals)
            d_f = w_fast - res.originals[lm.adapter.mlp_out_weight_name(hp.layer)].T.contiguous() \
                if lm.adapter.conv1d else w_fast - res.originals[lm.adapter.mlp_out_weight_name(hp.layer)]
            d_s = w_slow - (w_fast - d_f)
            row.update(slow_s=res_s.stats["edit_time_s"], speedup=res_s.stats["edit_time_s"] / row["fast_s"],
                       rel_diff=float((d_f - d_s).norm() / d_s.norm()))
        rows.append(row)
        print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
              flush=True)
    fast = sum(r["fast_s"] for r in rows) / len(rows)
    msg = f"{args.editor} on {args.model} layer {hp.layer}: fast {fast:.2f}s/edit"
    if not args.no_slow:
        slow_mean = sum(r["slow_s"] for r in rows) / len(rows)
        msg += f", straightforward {slow_mean:.2f}s/edit, speedup {slow_mean / fast:.2f}x"
    print(msg)


if __name__ == "__main__":
    main()
