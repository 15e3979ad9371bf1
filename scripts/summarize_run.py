"""(Re)write a sequential run's summary.json and figure from its results.jsonl.

    python scripts/summarize_run.py RUN_DIR [RUN_DIR ...]                    # after the summary gained fields
    python scripts/summarize_run.py LIVE_RUN_DIR --copy-to reports/examples/runs/NAME --cut-at-last-check
                                                                             # a run still going, or killed

``--copy-to`` copies results.jsonl first (the source is only read) and summarizes the copy; with
``--cut-at-last-check`` the copy ends at the last history check, so every edit in it was re-scored by one
(a run stopped between checks otherwise ends with edits no check has seen). The wall time of an existing
summary.json is kept, and so is its peak memory (None for a copied live run): neither can be recomputed from the
records.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def cut_at_last_check(jsonl: Path) -> int:
    """Drop every line after the last ``check`` record with a forgetting measurement; returns edits kept."""
    lines = jsonl.read_text(encoding="utf-8").splitlines(keepends=True)
    recs = [json.loads(ln) if ln.strip() else {} for ln in lines]
    last = max((i for i, r in enumerate(recs) if r.get("type") == "check" and "forgetting" in r), default=None)
    if last is None:
        raise SystemExit(f"{jsonl}: no history check to cut at")
    jsonl.write_text("".join(lines[:last + 1]), encoding="utf-8")
    return sum(1 for r in recs[:last + 1] if r.get("type") == "edit")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories holding results.jsonl")
    ap.add_argument("--copy-to", type=Path, default=None, help="copy the run's results.jsonl here first (one run)")
    ap.add_argument("--cut-at-last-check", action="store_true", help="end the copy at its last history check")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    if args.copy_to and len(args.runs) != 1:
        ap.error("--copy-to takes one run")
    if args.cut_at_last_check and not args.copy_to:
        ap.error("--cut-at-last-check cuts a copy: give --copy-to")
    from editbench.report.plots import plot_summary
    from editbench.runner.summary import summarize, write_summary

    for run in args.runs:
        src = run / "results.jsonl"
        if not src.is_file():
            print(f"{run}: no results.jsonl", file=sys.stderr)
            return 2
        old_summary = run / "summary.json"
        dest = run
        if args.copy_to:
            dest = args.copy_to
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / "results.jsonl")
            if args.cut_at_last_check:
                print(f"{dest}: cut at the last check, {cut_at_last_check(dest / 'results.jsonl')} edits kept")
        old = json.loads(old_summary.read_text()) if old_summary.is_file() else {}
        summary = summarize(dest / "results.jsonl", wall_s=(old.get("timing") or {}).get("wall_s"))
        # the summary measures peak memory in the process that summarizes: here that is this script, not the run
        for k in ("peak_rss_mb", "cuda_max_allocated_mb"):
            summary["cost"][k] = (old.get("cost") or {}).get(k)
        if old.get("timing", {}).get("created"):
            summary["timing"]["created"] = old["timing"]["created"]
        if not args.no_plot:
            plot_summary(summary)  # writes the summary too
        else:
            if (dest / "sequential.png").is_file():  # the figure already there stays the run's figure
                summary["paths"]["plot"] = str(dest / "sequential.png")
            write_summary(summary)
        m = summary.get("milestones") or {}
        print(f"{dest}: {summary['n_edits']} edits, CF {summary['cf_edit']}, milestones {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
