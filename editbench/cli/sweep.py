"""``editbench sweep``: the same N edits one at a time and in batches of b, then their side-by-side report.

    editbench sweep --editor memit --n-edits 50 --batch-size 1 --batch-size 10 --batch-size 50 --out reports/sweep
"""
from __future__ import annotations

import argparse
from pathlib import Path

from editbench.cli.common import add_options, error, run_config
from editbench.options import CLI_EDITOR, DATASET, DEVICE, HPARAM, MODEL, OUT, PROTOCOL, RESUME, SEED
from editbench.suites.sequential.options import BATCH_SIZE, HISTORY_EVERY, N_EDITS

SWEEP = (CLI_EDITOR.replace(help="a batch-capable editor (memit, alphaedit, encore, ft, ft-c, ...)"), MODEL, DATASET,
         N_EDITS.replace(default=50, help="the edit budget N (default 50)"),
         BATCH_SIZE.replace(action="append", default=None, metavar="B",
                            help="repeatable; default 1 and N (one at a time vs all at once)"),
         HISTORY_EVERY.replace(metavar="K", help="re-score every earlier edit every K edits (default 10; a batch "
                                                 "crossing K triggers it)"),
         SEED, DEVICE, HPARAM, PROTOCOL, RESUME.replace(help="continue interrupted runs from their checkpoints"),
         OUT.replace(default="reports/sweep", help="where each batch size's run and the side-by-side report are "
                                                                "written (default reports/sweep)"))


def add_parser(sub) -> None:
    s = sub.add_parser("sweep", help="equal-budget sweep: the same N edits one at a time vs in batches of b",
                       description="Run the same N sequential edits (same records, order, seed, hyperparameters) "
                                   "once per --batch-size, each into OUT/batch-<b>/, then write their side-by-side "
                                   "report (forgetting, health, weight movement, ES/PS/NS, s/edit, a figure) to "
                                   "OUT/report/. Published work disagrees on whether batching degrades the model "
                                   "more or less than single edits: this measures it for your editor and model.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(s.add_argument, SWEEP)
    s.set_defaults(func=run)


def run(args) -> int:
    from editbench.report.build import write_report  # lazy: cli.common.LAZY
    from editbench.report.plots import plot_summary
    from editbench.runner import checks
    from editbench.runner.experiment import ExperimentError, ModelCache, make_editor, run_sequential_sample
    from editbench.runner.state import CheckpointError
    try:
        cfg = run_config(args, SWEEP, "sweep", ("sequential",))
        sizes = sorted(set(args.batch_size or [1, args.n_edits]))
        if any(b > args.n_edits for b in sizes):
            raise ExperimentError(f"--batch-size {max(sizes)} is larger than --n-edits {args.n_edits}")
        exps = [cfg.experiment("sequential", args.editor, batch_size=b,
                               out_dir=str(Path(cfg.reports_dir) / f"batch-{b}")) for b in sizes]
        for exp in exps:
            checks.check_experiment(exp)
    except ExperimentError as e:
        return error("sweep", e)
    lm = ModelCache().get(cfg.model, cfg.device)
    for exp in exps:
        print(f"== batch size {exp.batch_size}: {exp.n} edits in {-(-exp.n // exp.batch_size)} editor steps",
              flush=True)
        try:
            summary, _ = run_sequential_sample(exp, make_editor(exp, lm), lm, sample=0)
        except CheckpointError as e:
            return error("sweep", e, 1)
        plot_summary(summary)
    rep = write_report([cfg.reports_dir], Path(cfg.reports_dir) / "report")
    print("report: " + rep["paths"]["leaderboard"])
    return 0
