"""The ``editbench`` command line.

    editbench ls                      editors (built-in + plugins, with import errors), models, datasets
    editbench factworld build --out DIR [--quick] [--seed N]
                                      build the embedded fact-world model from its seeded generator
    editbench stats --model M --layers 2 3 4 [--corpus auto] [--n-samples N]
                                      precompute and cache MLP key second-moment statistics (ROME/MEMIT)
    editbench trace --model M [--dataset known_1000|factworld|PATH] [--n 20] [--kind mlp|hidden|attn|all]
                                      causal tracing: where the model stores subject facts; suggests layers

The suites themselves run under pytest:  pytest suites -m single --editor ft-c
"""
from __future__ import annotations

import argparse
import sys


def _cmd_ls(args) -> int:
    from editbench import registry
    from editbench.data import list_datasets
    from editbench.models.loader import builtin_models

    classes, errors = registry.load_all()
    print("editors:")
    for name in registry.available():
        if name in classes:
            cls = classes[name]
            print(f"  {name:<12} batch={'yes' if cls.supports_batch else 'no ':<3}  {cls.__module__}")
        else:
            print(f"  {name:<12} FAILED TO LOAD: {errors.get(name)}")
    print("models (built-in):", ", ".join(builtin_models()))
    print("datasets:", ", ".join(list_datasets()))
    return 0


def _cmd_factworld(args) -> int:
    from editbench.data.factworld import build
    argv = ["--out", args.out, "--seed", str(args.seed)] + (["--quick"] if args.quick else [])
    return build.main(argv) or 0


def _cmd_stats(args) -> int:
    from editbench.models.loader import load_model
    from editbench.models.stats import second_moments
    lm = load_model(args.model, device=args.device)
    mats = second_moments(lm.model, lm.tok, lm.adapter, list(args.layers), corpus=args.corpus,
                          n_samples=args.n_samples, model_hash=lm.model_hash)
    for layer, c in mats.items():
        print(f"layer {layer}: C {tuple(c.shape)}, trace {float(c.trace()):.4g}")
    return 0


def _cmd_trace(args) -> int:
    from editbench.trace.cli import run
    return run(args) or 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="editbench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ls", help="list editors, built-in models and datasets")
    s.set_defaults(func=_cmd_ls)
    fw = sub.add_parser("factworld", help="the embedded fact-world model")
    fws = fw.add_subparsers(dest="fw_cmd", required=True)
    b = fws.add_parser("build", help="generate the world, train the model, evaluate it, write a HF directory")
    b.add_argument("--out", required=True, help="output directory (HF format + factworld.json)")
    b.add_argument("--quick", action="store_true", help="small world, few epochs: a smoke build (~1-2 min)")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=_cmd_factworld)
    st = sub.add_parser("stats", help="precompute cached second-moment statistics of MLP keys")
    st.add_argument("--model", default="factworld")
    st.add_argument("--layers", type=int, nargs="+", required=True)
    st.add_argument("--corpus", default="auto", help="auto | factworld | gensim-wiki | wikitext")
    st.add_argument("--n-samples", type=int, default=100_000)
    st.add_argument("--device", default="cpu")
    st.set_defaults(func=_cmd_stats)
    from editbench.trace.cli import add_arguments as _trace_arguments  # argparse only: no torch import
    tr = sub.add_parser("trace", help="causal tracing: where the model stores subject facts (ROME/MEMIT layers)")
    _trace_arguments(tr).set_defaults(func=_cmd_trace)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
