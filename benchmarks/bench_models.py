"""Per-edit time of ROME and MEMIT on two models in one process (same machine, same threads), and where it goes.

    python benchmarks/bench_models.py --models smollm2-135m gemma3-270m --editors rome memit --edits 4 --threads 1

Each editor is built as the suites build it (``make_editor``: the model's preset, derived where it has none);
``prepare`` (key statistics, cached on disk) and the first edit (context templates) run before the timing. Each
timed edit is one ``apply`` on a CounterFact record of counterfact-1k, then ``restore``; the models take turns,
record by record, so drifting machine load hits both alike. With ``--profile`` one
more edit per (model, editor) runs under ``torch.profiler``: self CPU time split into operators that touch a
vocabulary-sized dimension (the LM head and the softmax over it) and the rest (the trunk, the update). Results
go to ``--out`` as JSON with :func:`editbench.runner.provenance.machine`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from editbench.data.registry import load_records  # noqa: E402
from editbench.editors.base import restore  # noqa: E402
from editbench.models.loader import load_model  # noqa: E402
from editbench.runner.experiment import Experiment, make_editor  # noqa: E402
from editbench.runner.provenance import machine  # noqa: E402


def vocab_split(prof, vocab: int) -> dict:
    """Self CPU seconds of operators with a vocabulary-sized dimension in an input vs all others."""
    head = rest = 0.0
    for e in prof.key_averages(group_by_input_shape=True):
        t = e.self_cpu_time_total / 1e6
        shapes = e.input_shapes or []
        if any(vocab in (s or []) for s in shapes if isinstance(s, list)):
            head += t
        else:
            rest += t
    return {"vocab_ops_s": round(head, 3), "other_ops_s": round(rest, 3),
            "vocab_share": round(head / max(head + rest, 1e-9), 3)}


def bench(model_names: list[str], editors: list[str], n: int, profile: bool) -> list[dict]:
    """Both models loaded; for each editor the timed edits alternate between the models (edit i of model A, edit
    i of model B, ...), so a machine whose load drifts slows both alike."""
    lms, outs = {}, []
    for name in model_names:
        t0 = time.perf_counter()
        lms[name] = load_model(name)
        lm = lms[name]
        outs.append({"model": name, "load_s": round(time.perf_counter() - t0, 1), "n_layers": lm.adapter.n_layers,
                     "vocab": lm.model.config.vocab_size, "editors": {}})
    records = load_records("counterfact-1k", n=n + 2)
    for ed_name in editors:
        eds, times, stats = {}, {m: [] for m in model_names}, {m: [] for m in model_names}
        for name, out in zip(model_names, outs):
            lm = lms[name]
            ed = eds[name] = make_editor(Experiment(suite="single", editor=ed_name, model=name), lm)
            t0 = time.perf_counter()
            ed.prepare(lm.model, lm.tok)
            out["editors"][ed_name] = {"prepare_s": round(time.perf_counter() - t0, 1)}
            restore(lm.model, ed.apply(lm.model, lm.tok, [records[0]]).originals)  # templates, lazy work
        for req in records[1:n + 1]:
            for name in model_names:
                lm, ed = lms[name], eds[name]
                t0 = time.perf_counter()
                res = ed.apply(lm.model, lm.tok, [req])
                times[name].append(time.perf_counter() - t0)
                restore(lm.model, res.originals)
                stats[name].append({k: round(v, 3) for k, v in res.stats.items() if k.endswith("_time_s")})
        for name, out in zip(model_names, outs):
            lm, ed, ts = lms[name], eds[name], times[name]
            row = out["editors"][ed_name]
            row.update({"preset": ed.preset_provenance, "layers": getattr(ed.hparams, "layers", None) or
                        getattr(ed.hparams, "layer", None), "per_edit_s": [round(t, 2) for t in ts],
                        "median_s": round(statistics.median(ts), 2), "mean_s": round(statistics.mean(ts), 2),
                        "n": len(ts), "time_stats": stats[name]})
            if profile:
                from torch.profiler import ProfilerActivity, profile as prof_ctx

                with prof_ctx(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                    res = ed.apply(lm.model, lm.tok, [records[n + 1]])
                restore(lm.model, res.originals)
                row["profile"] = vocab_split(prof, out["vocab"])
                row["profile_top"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)
            print(f"{name} {ed_name}: median {row['median_s']} s/edit over {len(ts)} ({row['per_edit_s']}); "
                  f"layers {row['layers']}; {row.get('profile', '')}", flush=True)
    return outs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    ap.add_argument("--editors", nargs="+", default=["rome", "memit"])
    ap.add_argument("--edits", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    doc = {"machine": machine(), "threads": args.threads, "command": " ".join(sys.argv),
           "models": bench(args.models, args.editors, args.edits, args.profile)}
    by = {m["model"]: m for m in doc["models"]}
    if len(by) == 2:
        a, b = args.models
        doc["ratio"] = {e: round(by[b]["editors"][e]["median_s"] / by[a]["editors"][e]["median_s"], 2)
                        for e in args.editors}
        print(f"{b} / {a} per-edit time: {doc['ratio']}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(doc, indent=1, default=str))


if __name__ == "__main__":
    main()
