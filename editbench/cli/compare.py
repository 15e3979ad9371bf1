"""``editbench compare BASE NEW``: fail CI on score or latency regressions between two result sets.

    editbench compare reports/main/ reports/pr/                       # directories of session files, merged
    editbench compare base.json new.json --latency-tolerance 0.5      # s/edit may grow by 50%
    editbench compare bench-main.json bench-pr.json --benchmark-fail mean:10%   # pytest-benchmark JSON
    editbench compare reports/ --editor my-editor --baseline rome     # editor A vs editor B, paired by record

The rules (score: intervals, not raw deltas; latency: relative tolerance) are in :mod:`editbench.runner.compare`.
Exit status: 0 no regression, 1 at least one regression, 2 unreadable input (argparse usage errors are 2 too),
4 editor-vs-editor results that are not comparable (different model, records or seed; one line says which).
"""
from __future__ import annotations

import sys

from editbench.cli.common import error
EPILOG = """\
A score regresses only when NEW's interval lies wholly on the worse side of BASE's (NEW.hi + tol < BASE.lo for
higher-is-better metrics): overlapping 95% bootstrap intervals are sampling noise, however large the raw delta.
A gate verdict going from pass to FAIL is a regression. s/edit regresses when NEW > BASE x (1 + tolerance) and by
more than the floor. pytest-benchmark files are compared by pytest-benchmark's --benchmark-compare-fail rules.
Exit status: 0 = no regression, 1 = regression(s), 2 = bad input.

Editor against editor (--editor A --baseline B; every PATH is one pool): results paired by suite, model, dataset
and sample, refused (exit 4) unless both ran on the same model (id and hash), records and seed. Per metric, over the
shared records: mean(A - B) with a paired bootstrap 95% interval and an exact sign test; a --gate metric (default
es, ps, ns) whose interval lies wholly below zero (A worse beyond noise) is a regression. s/edit: the ratio A/B with
a paired interval, gated only with --max-slowdown. Details: editbench/runner/paired.py."""


def add_parser(sub) -> None:
    import argparse
    c = sub.add_parser("compare", help="compare two result sets; exit 1 on score or latency regressions",
                       description="Compare BASE with NEW: editbench session files (editbench-*.json) or directories "
                                   "of them (merged; matched on suite, editor, model, dataset, sample), or two "
                                   "pytest-benchmark JSON files.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("base", metavar="BASE", help="the reference results (file or directory); with --editor: a pool")
    c.add_argument("new", metavar="NEW", nargs="*", help="the results to judge (file or directory); with --editor: "
                                                          "more of the pool (optional)")
    c.add_argument("--editor", metavar="A", default=None,
                   help="compare this editor's results against --baseline's on the same model, records and seed")
    c.add_argument("--baseline", metavar="B", default=None, help="the editor A is compared against (e.g. rome)")
    c.add_argument("--gate", action="append", default=None, metavar="METRIC",
                   help="with --editor: a metric on which A worse than B beyond noise fails (repeatable; default "
                        "es, ps, ns)")
    c.add_argument("--max-slowdown", type=float, default=None, metavar="X",
                   help="with --editor: fail when A's s/edit is more than X times B's (the interval's lower end)")
    c.add_argument("--score-tolerance", type=float, default=0.0, metavar="T",
                   help="extra margin between the intervals before a score counts as regressed (default 0)")
    c.add_argument("--latency-tolerance", type=float, default=0.25, metavar="R",
                   help="relative slow-down of s/edit allowed (default 0.25 = 25%%)")
    c.add_argument("--latency-floor", type=float, default=0.01, metavar="SECONDS",
                   help="ignore s/edit differences below this many seconds (default 0.01)")
    c.add_argument("--benchmark-fail", action="append", default=None, metavar="STAT:N%|STAT:SECONDS",
                   help="pytest-benchmark files: fail when NEW's STAT exceeds BASE's by N%% or SECONDS "
                        "(repeatable; default median:25%%)")
    c.add_argument("--require-all", action="store_true",
                   help="a result in BASE that NEW lacks is a regression (default: reported only)")
    c.add_argument("--all", action="store_true", help="print every comparison, not only regressions and changes")
    c.set_defaults(func=cmd_compare)


def _usage(message: str) -> int:
    return error("compare", message)


def cmd_compare_editors(args) -> int:
    from tabulate import tabulate

    from editbench.runner.compare import CompareError
    from editbench.runner.paired import DEFAULT_GATE, MismatchError, compare_editors

    if not args.baseline or not args.editor:
        return _usage("--editor A and --baseline B go together")
    try:
        findings = compare_editors([args.base, *args.new], args.editor, args.baseline,
                                   gate=tuple(args.gate or DEFAULT_GATE), score_tol=args.score_tolerance,
                                   max_slowdown=args.max_slowdown)
    except MismatchError as e:
        return _usage(str(e))
    except CompareError as e:
        print(f"editbench compare: {e}", file=sys.stderr)
        return 2
    print(f"A = {args.editor} vs B = {args.baseline}: mean(A - B) over the shared records, paired bootstrap 95% "
          "interval, exact sign test")
    print(tabulate([[f.key, f.metric, f.base, f.new, f.status, f.note] for f in findings],
                   headers=("result", "metric", f"B ({args.baseline})", f"A ({args.editor})", "status", "A - B"),
                   tablefmt="github"))
    regressions = [f for f in findings if f.regression]
    print(f"{len(regressions)} regression(s) of {args.editor} against {args.baseline} (gated: "
          f"{', '.join(args.gate or DEFAULT_GATE)}" + (f", s/edit x{args.max_slowdown:g}" if args.max_slowdown
                                                        else "") + ")")
    return 1 if regressions else 0


def cmd_compare(args) -> int:
    from tabulate import tabulate

    from editbench.runner.compare import CompareError, compare_paths

    if args.editor or args.baseline:
        return cmd_compare_editors(args)
    if len(args.new) != 1:
        return _usage("give BASE and NEW (two result sets), or --editor A --baseline B to compare two editors")
    args.new = args.new[0]
    try:
        findings = compare_paths(args.base, args.new, score_tol=args.score_tolerance,
                                 latency_tol=args.latency_tolerance, latency_floor=args.latency_floor,
                                 require_all=args.require_all, benchmark_fail=args.benchmark_fail)
    except CompareError as e:
        print(f"editbench compare: {e}", file=sys.stderr)
        return 2
    quiet = ("within noise", "within tolerance", "ok", "no interval")
    shown = findings if args.all else [f for f in findings if f.regression or f.status not in quiet]
    if shown:
        print(tabulate([[f.key, f.kind, f.metric, f.base, f.new, f.status, f.note] for f in shown],
                       headers=("result", "kind", "metric", "BASE", "NEW", "status", "note"), tablefmt="github"))
    regressions = [f for f in findings if f.regression]
    compared = len({f.key for f in findings})
    print(f"{len(regressions)} regression(s) over {compared} compared result(s)"
          + ("" if args.all else f"; {len(findings) - len(shown)} comparison(s) within noise/tolerance not shown "
                                 "(--all shows them)"))
    return 1 if regressions else 0
