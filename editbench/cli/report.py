"""``editbench report`` (leaderboard, Table 3, gallery from result files) and ``editbench sweep`` (the same N
edits one at a time and in batches of b, then their side-by-side report).

    editbench report reports/                      # every session file and run summary under reports/, merged
    editbench report runs-a/ runs-b/ --out reports/board --model smollm2-135m
    editbench sweep --editor memit --n-edits 50 --batch-size 1 --batch-size 10 --batch-size 50 --out reports/sweep
"""
from __future__ import annotations

import sys

from editbench.options import PROTOCOLS, USAGE_ERROR

REPORT_EPILOG = """\
Reads: pytest session files (reports/editbench-*.json), the session files of `editbench zsre | downstream |
disabling`, sequential run summaries (runs/.../summary.json or copies such as X.sample0.summary.json) and
disabling isolations; directories are searched recursively, and the same run read twice counts once.
Writes into --out: leaderboard.md, table3.md (the seed paper's Table 3 from the measurements, the paper's cells
beside ours, the rule behind each row), gallery.md (run figures; a retention heatmap per sequential run whose
results.jsonl is at hand, in figures/) and report.json. Exit status: 0 written, 2 no result found."""


def add_parser(sub) -> None:
    import argparse
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

    from editbench import DEFAULT_MODEL
    s = sub.add_parser("sweep", help="equal-budget sweep: the same N edits one at a time vs in batches of b",
                       description="Run the same N sequential edits (same records, order, seed, hyperparameters) "
                                   "once per --batch-size, each into OUT/batch-<b>/, then write their side-by-side "
                                   "report (forgetting, health, weight movement, ES/PS/NS, s/edit, a figure) to "
                                   "OUT/report/. Published work disagrees on whether batching degrades the model "
                                   "more or less than single edits: this measures it for your editor and model.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--editor", required=True, help="a batch-capable editor (memit, alphaedit, encore, ft, ft-c, ...)")
    s.add_argument("--model", default=DEFAULT_MODEL)
    s.add_argument("--dataset", default=None, help="edit records (default: the model's default)")
    s.add_argument("--n-edits", type=int, default=50, help="the edit budget N (default 50)")
    s.add_argument("--batch-size", type=int, action="append", default=None, metavar="B",
                   help="repeatable; default 1 and N (one at a time vs all at once)")
    s.add_argument("--history-every", type=int, default=10, metavar="K",
                   help="re-score every earlier edit every K edits (default 10; a batch crossing K triggers it)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--hparam", action="append", default=[], metavar="EDITOR.KEY=VALUE")
    s.add_argument("--protocol", action="append", choices=PROTOCOLS, default=None)
    s.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    s.add_argument("--out", default="reports/sweep", metavar="DIR")
    s.set_defaults(func=cmd_sweep)


def cmd_report(args) -> int:
    from editbench.report.build import write_report
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


def cmd_sweep(args) -> int:
    from pathlib import Path

    from editbench.report.build import write_report
    from editbench.report.plots import plot_summary
    from editbench.runner import checks
    from editbench.runner.experiment import (
        Experiment,
        ExperimentError,
        ModelCache,
        make_editor,
        parse_hparams,
        run_sequential_sample,
    )
    from editbench.runner.state import CheckpointError

    sizes = sorted(set(args.batch_size or [1, args.n_edits]))
    try:
        for opt, value in [("--n-edits", args.n_edits), ("--history-every", args.history_every)] + \
                [("--batch-size", b) for b in sizes]:
            checks.check_count(opt, value)
        if any(b > args.n_edits for b in sizes):
            raise ExperimentError(f"--batch-size {max(sizes)} is larger than --n-edits {args.n_edits}")
        overrides = parse_hparams(args.hparam)
        checks.check_hparam_editors(overrides, [args.editor])
        exps = [Experiment(suite="sequential", editor=args.editor, model=args.model, dataset=args.dataset,
                           hparams=tuple(overrides.get(args.editor, {}).items()), n=args.n_edits, seed=args.seed,
                           batch_size=b, history_every=args.history_every, device=args.device,
                           protocols=tuple(args.protocol or PROTOCOLS),
                           out_dir=str(Path(args.out) / f"batch-{b}"), resume=args.resume) for b in sizes]
        for exp in exps:
            checks.check_experiment(exp)
    except ExperimentError as e:
        print(f"editbench sweep: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    lm = ModelCache().get(args.model, args.device)
    for exp in exps:
        print(f"== batch size {exp.batch_size}: {exp.n} edits in {-(-exp.n // exp.batch_size)} editor steps",
              flush=True)
        try:
            summary, _ = run_sequential_sample(exp, make_editor(exp, lm), lm, sample=0)
        except CheckpointError as e:
            print(f"editbench sweep: error: {e}", file=sys.stderr)
            return 1
        plot_summary(summary)
    rep = write_report([args.out], Path(args.out) / "report")
    print("report: " + rep["paths"]["leaderboard"])
    return 0
