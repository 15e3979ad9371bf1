"""``editbench report``: leaderboard, Table 3 and a gallery from result files.

    editbench report reports/                      # every session file and run summary under reports/, merged
    editbench report runs-a/ runs-b/ --out reports/board --model smollm2-135m
"""
from __future__ import annotations

import argparse
import sys


REPORT_EPILOG = """\
Reads: pytest session files (reports/editbench-*.json), the session files of `editbench zsre | downstream |
disabling`, sequential run summaries (runs/.../summary.json or copies such as X.sample0.summary.json) and
disabling isolations; directories are searched recursively, and the same run read twice counts once.
Writes into --out: leaderboard.md, table3.md (the seed paper's Table 3 from the measurements, the paper's cells
beside ours, the rule behind each row), gallery.md (run figures; a retention heatmap per sequential run whose
results.jsonl is at hand, in figures/) and report.json. Exit status: 0 written, 2 no result found."""


def add_parser(sub) -> None:
    r = sub.add_parser("report", help="leaderboard, the paper's Table 3 and a figure gallery from result files",
                       description="Merge result files (one or many files or directories) into a markdown "
                                   "leaderboard (editors x models), the seed paper's Table 3 regenerated from "
                                   "measurements, and a gallery of run figures with retention heatmaps.",
                       epilog=REPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("paths", nargs="+", metavar="PATH", help="result files or directories (searched recursively)")
    r.add_argument("--out", default="reports/leaderboard", metavar="DIR",
                   help="where the markdown, figures and report.json go (default reports/leaderboard)")
    r.add_argument("--model", action="append", default=None, metavar="ID",
                   help="only these models (repeatable; default every model found)")
    r.add_argument("--no-heatmaps", action="store_true", help="skip the retention heatmaps (faster on long runs)")
    r.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from editbench.report.build import write_report  # lazy: cli.common.LAZY
    rep = write_report(args.paths, args.out, models=args.model, heatmaps=not args.no_heatmaps)
    col = rep["collection"]
    for p, why in col.ignored:
        print(f"ignored {p}: {why}", file=sys.stderr)
    if not col.entries:
        print("editbench report: error: no editbench result found under " + ", ".join(args.paths), file=sys.stderr)
        return 2
    print(f"{len(col.entries)} result(s) from {len(col.files)} file(s): "
          + ", ".join(f"{k} {v}" for k, v in rep["paths"].items()))
    return 0
