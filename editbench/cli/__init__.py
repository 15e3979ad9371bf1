"""The ``editbench`` command line.

    editbench ls                      editors and probes (built-in + plugins, with import errors), models, datasets
    editbench factworld build --out DIR [--quick] [--device cuda] [--recipe tasks --init-from DIR] ...
                                      build the embedded fact-world model from its seeded generator
    editbench sequential --editor memit [--model factworld] [--n-edits 100] [--samples 2] [--resume]
                                      a sequential run outside pytest (same runner as the suite)
    editbench stats --model M --layers 2 3 4 [--corpus auto] [--n-samples N]
                                      precompute and cache MLP key second-moment statistics (ROME/MEMIT)
    editbench trace --model M [--dataset known_1000|factworld|PATH] [--n 20] [--kind mlp|hidden|attn|all]
                                      causal tracing: where the model stores subject facts; suggests layers
    editbench zsre --editor rome [--model M] [--dataset zsre|counterfact|PATH] [--n-records N] [--direction q2c]
                                      zsRE question vs completion form: do edits transfer? (suite zsre)
    editbench mend train --model M [--dataset zsre-train] [--steps N] [--out DIR] [--resume]
                                      meta-train MEND's editor network for a model (editbench/cli/mend.py)
    editbench disabling --editor rome [--model M] [--n-records N] [--from-run DIR]
                                      disabling edits: single-edit distance scan; intrinsic vs accumulated CF edits
    editbench compare BASE NEW [--latency-tolerance 0.25] [--benchmark-fail median:25%]
                                      exit 1 on score (intervals) or latency regressions (editbench/cli/compare.py)
    editbench compare PATH --editor A --baseline B [--gate ns] [--max-slowdown X]
                                      editor A vs editor B, paired per record; exit 4 if model/records/seed differ
    editbench data fetch [NAME ...] [--list]
                                      download data files from their original sources (for offline machines)

The suites themselves run under pytest:  pytest suites -m single --editor ft-c
Each subcommand is one module of this package (``editbench.cli.<name>``, its ``add_parser`` and ``run``); the
suite subcommands take their options from the declarations the pytest plugin uses (:mod:`editbench.options`).
"""
from __future__ import annotations

import argparse

from editbench.cli import (compare, data, disabling, downstream, factworld, ls, mend, report, reproduce, sequential,
                           stats, sweep, trace, zsre)
from editbench.cli.ls import _presets_line  # noqa: F401 (re-export)
from editbench.options import USAGE_ERROR  # noqa: F401 (re-export: pytest's usage-error exit code)

COMMANDS = (ls, factworld, sequential, downstream, zsre, stats, trace, data, mend, disabling, compare, report, sweep,
            reproduce)
"""The subcommand modules, in the order ``editbench --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="editbench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "takes_rest", False):  # factworld build: every option of editbench.factworld.build
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.func(args)
