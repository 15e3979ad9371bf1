"""``editbench compare BASE NEW``: fail CI on score or latency regressions between two result sets.

    editbench compare reports/main/ reports/pr/                       # directories of session files, merged
    editbench compare base.json new.json --latency-tolerance 0.5      # s/edit may grow by 50%
    editbench compare bench-main.json bench-pr.json --benchmark-fail mean:10%   # pytest-benchmark JSON

The rules (score: intervals, not raw deltas; latency: relative tolerance) are in :mod:`editbench.runner.compare`.
Exit status: 0 no regression, 1 at least one regression, 2 unreadable input (argparse usage errors are 2 too).
"""
from __future__ import annotations

import sys

EPILOG = """\
A score regresses only when NEW's interval lies wholly on the worse side of BASE's (NEW.hi + tol < BASE.lo for
higher-is-better metrics): overlapping 95% bootstrap intervals are sampling noise, however large the raw delta.
A gate verdict going from pass to FAIL is a regression. s/edit regresses when NEW > BASE x (1 + tolerance) and by
more than the floor. pytest-benchmark files are compared by pytest-benchmark's --benchmark-compare-fail rules.
Exit status: 0 = no regression, 1 = regression(s), 2 = bad input."""


def add_parser(sub) -> None:
    import argparse
    c = sub.add_parser("compare", help="compare two result sets; exit 1 on score or latency regressions",
                       description="Compare BASE with NEW: editbench session files (editbench-*.json) or directories "
                                   "of them (merged; matched on suite, editor, model, dataset, sample), or two "
                                   "pytest-benchmark JSON files.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("base", metavar="BASE", help="the reference results (file or directory)")
    c.add_argument("new", metavar="NEW", help="the results to judge (file or directory)")
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


def cmd_compare(args) -> int:
    from tabulate import tabulate

    from editbench.runner.compare import CompareError, compare_paths

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
