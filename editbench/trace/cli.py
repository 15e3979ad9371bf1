"""``editbench trace``: causal tracing of a model on known facts, a per-layer table, suggested ROME/MEMIT layers.

    editbench trace --model smollm2-135m --dataset known_1000 --n 10 --kind mlp
    editbench trace --model factworld --kind all --out reports/trace

Writes ``<out>/<model>_<dataset>.json`` (every number, per fact too) and ``.png`` (ROME Figure 1-style grids for
the first traced fact + per-layer curves). The noise σ is 3 × the std of the token embeddings of *all* the
dataset's subjects (ROME: all of known_1000), so it does not depend on ``--n``.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

from editbench.models.profiles import profile

KIND_CHOICES = ("mlp", "hidden", "attn", "all")


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--model", default="factworld", help="built-in short name, model directory or hub id")
    p.add_argument("--dataset", default="auto",
                   help="known_1000 | factworld | a JSON file (known_1000 or edit-record format); "
                        "auto: the model profile's (factworld for the fact world, else known_1000)")
    p.add_argument("--n", type=int, default=20, help="facts to trace (known ones unless --include-unknown)")
    p.add_argument("--kind", choices=KIND_CHOICES, default="mlp")
    p.add_argument("--window", type=int, default=10, help="layers restored together for mlp/attn (ROME: 10)")
    p.add_argument("--samples", type=int, default=10, help="noise samples per fact (ROME: 10)")
    p.add_argument("--noise", type=float, default=None, help="noise std (default: 3 x subject embedding std)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (and --shuffle order)")
    p.add_argument("--shuffle", action="store_true", help="shuffle the dataset with --seed before scanning")
    p.add_argument("--include-unknown", action="store_true",
                   help="trace facts whose answer is not the clean argmax too (random models know nothing)")
    p.add_argument("--no-grid", action="store_true", help="skip the position x layer grid of the first fact")
    p.add_argument("--frac", type=float, default=0.5, help="MEMIT range: layers with effect >= frac x peak")
    p.add_argument("--max-layers", type=int, default=5, help="MEMIT range: at most this many layers")
    p.add_argument("--max-rows", type=int, default=256, help="rows per forward pass")
    p.add_argument("--out", default="reports/trace")
    p.add_argument("--device", default="cpu")
    return p


def load_trace_facts(dataset: str, model: str = "") -> tuple[list, str]:
    """(facts, dataset label) for a ``--dataset`` value."""
    # imported here, as in run(): `editbench --help` builds this module's parser (0.02 s); editbench.data adds
    # 0.3 s, the model and tracing modules torch (about 2 s cold)
    from editbench.data import detect_file_format, load_known, load_records, read_json_records

    if dataset == "auto":
        dataset = profile(model).trace_dataset
    if dataset in ("known_1000", "known"):
        return load_known(), "known_1000"
    path = Path(dataset).expanduser()
    if path.is_file():
        raw = read_json_records(path, bad_lines="keep")
        if raw and detect_file_format(raw, str(path)) == "known":  # the majority of recognisable records
            return load_known(path), path.stem
        return load_records(path), path.stem
    return load_records(dataset), dataset


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s.rstrip("/").split("/")[-1]) or "model"


def _table(results: dict[str, dict], measure: str) -> str:
    from tabulate import tabulate

    kinds = list(results)
    L = next(iter(results.values()))["n_layers"]
    headers = ["layer"] + [f"{k}@{w}" for k in kinds for w in ("subj", "last")]
    rows = []
    for l in range(L):
        row = [l]
        for k in kinds:
            for w in ("subject_last", "last_token"):
                ys = results[k][w][measure]
                row.append(ys[l] if ys else float("nan"))
        rows.append(row)
    return tabulate(rows, headers=headers, floatfmt=".3f")


def run(args: argparse.Namespace) -> int:
    import torch  # here, not at the top: see load_trace_facts (`editbench --help` imports this module)

    from editbench.models.loader import load_model
    from editbench.trace.core import as_trace_fact, embedding_std
    from editbench.trace.plot import plot_trace
    from editbench.trace.tracing import NOISE_MULT, trace_fact, trace_layers

    t0 = time.time()
    lm = load_model(args.model, device=args.device)
    facts, label = load_trace_facts(args.dataset, args.model)
    facts = [as_trace_fact(f) for f in facts]
    if args.shuffle:
        random.Random(args.seed).shuffle(facts)
    sigma = args.noise if args.noise is not None else NOISE_MULT * embedding_std(lm, [f.subject for f in facts])
    kinds = ["hidden", "mlp", "attn"] if args.kind == "all" else [args.kind]
    common = dict(window=args.window, n_samples=args.samples, seed=args.seed, noise=sigma)
    results = {}
    with torch.no_grad():
        for kind in kinds:
            results[kind] = trace_layers(lm, facts, kind=kind, require_known=not args.include_unknown,
                                         max_facts=args.n, max_rows=args.max_rows, progress=True,
                                         frac=args.frac, max_layers=args.max_layers, **common)
        first = results[kinds[0]]["facts"]
        grids = {}
        if first and not args.no_grid:
            fact = facts[first[0]["index"]]
            grids = {k: trace_fact(lm, fact, kind=k, max_rows=args.max_rows, **common) for k in kinds}
    some = results[kinds[0]]
    print(f"{args.model} on {label}: traced {some['n_used']} facts (looked at {some['n_facts']}, "
          f"known {some['n_known']}); noise std {sigma:.4g}; {args.samples} samples; window {args.window}")
    print(f"mean p(answer): clean {some['p_clean']:.3f}, corrupted {some['p_corrupted']:.3f}")
    if some["n_used"] == 0:
        print("no facts to trace (none known? try --include-unknown, a larger --n or another --dataset)")
    else:
        measure = "normalized" if some["ate"] > 0 else "aie"
        print("normalized indirect effect (avg IE / avg total effect) per layer:" if measure == "normalized" else
              "average indirect effect per layer (the noise did not lower p(answer) on average: not normalized):")
        print(_table(results, measure))
        for k in kinds:
            r = results[k]
            print(f"peak {k}: subject's last token layer {r['peak_layer']}, last token layer "
                  f"{r['peak_layer_last_token']}")
        sug = results.get("mlp", {}).get("suggested")
        if sug and sug["rome_layer"] is not None:
            print(f"suggested ROME layer: {sug['rome_layer']}; MEMIT layers: {sug['memit_layers']} "
                  f"(contiguous, effect >= {sug['frac']} x peak, at most {sug['max_layers']})")
        elif "mlp" in results:
            print("no positive MLP effect at the subject's last token: no layer suggestion")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{_slug(args.model)}_{_slug(label)}"
    doc = {"model": args.model, "model_hash": lm.model_hash, "dataset": label, "config": vars(args),
           "noise_std": sigma, "elapsed_s": round(time.time() - t0, 1), "traces": results, "grids": grids}
    (out / f"{stem}.json").write_text(json.dumps(doc, indent=1, default=str))
    if some["n_used"] or grids:
        plot_trace(out / f"{stem}.png", results if some["n_used"] else {}, grids,
                   title=f"{args.model} on {label}: causal trace ({some['n_used']} facts)")
    print(f"wrote {out / (stem + '.json')}" + (f" and {stem}.png" if some["n_used"] or grids else "")
          + f" ({doc['elapsed_s']} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = add_arguments(argparse.ArgumentParser(prog="editbench trace", description=__doc__,
                                              formatter_class=argparse.RawDescriptionHelpFormatter))
    return run(p.parse_args(argv))
