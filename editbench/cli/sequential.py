"""``editbench sequential``: a sequential run outside pytest (the suite's runner; options declared once with it)."""
from __future__ import annotations

import json

from editbench.cli.common import add_options, error, run_config
from editbench.options import CLI_EDITOR, DEVICE, HPARAM, MODEL, OUT, PROTOCOL, RESUME, SEED, DATASET
from editbench.suites.downstream.options import OPTIONS as DOWNSTREAM_OPTIONS
from editbench.suites.sequential.options import CLI_OPTIONS, OPTIONS

SEQUENTIAL = (CLI_EDITOR, MODEL, DATASET, *OPTIONS, *CLI_OPTIONS, SEED, OUT, RESUME, PROTOCOL, DEVICE, HPARAM,
              *DOWNSTREAM_OPTIONS)
KEEP = ("editor", "model_id", "sample", "n_edits", "cf_edit", "cf_case_id", "forgetting_at",
        "gradual_forget_rate_per_100", "health_first", "health_last", "n_errors", "errors_by_reason", "paths")


def add_parser(sub) -> None:
    sq = sub.add_parser("sequential", help="a sequential editing run (edits accumulate): forgetting, distance, CF point",
                        description="Edits one fact at a time (or --batch-size at a time) on one model, re-scores "
                                    "the edit history every --history-every edits, tracks weight distance and model "
                                    "health, detects the catastrophic-forgetting point; writes results.jsonl, "
                                    "summary.json and a PNG under OUT/runs/sequential/EDITOR/MODEL/sample_S/.")
    add_options(sq.add_argument, SEQUENTIAL)
    sq.set_defaults(func=run)


def run(args) -> int:
    from editbench.report.plots import plot_summary  # lazy: cli.common.LAZY
    from editbench.runner import checks
    from editbench.runner.experiment import ExperimentError, ModelCache, default_order, make_editor
    from editbench.runner.experiment import run_sequential_sample
    from editbench.runner.files import RunLocked, WriteFailed
    from editbench.runner.schedule import PUBLISHED_SAMPLES
    from editbench.runner.state import CheckpointError, ResumeMismatch
    from editbench.runner.summary import most_raised, raised_line
    try:  # every input checked before the model loads (the pytest plugin's rules)
        cfg = run_config(args, SEQUENTIAL, "sequential", ("sequential",))
        exp = cfg.experiment("sequential", args.editor)
        if args.sample is not None:  # seeded orders take any S >= 0; the published ones are a fixed set
            top = PUBLISHED_SAMPLES - 1 if default_order(exp.dataset_name) == "published" else None
            if args.sample < 0 or (top is not None and args.sample > top):
                raise ExperimentError(f"--sample must be an edit order 0..{top} (the seed paper's published orders), "
                                      f"got {args.sample}" if top is not None else
                                      f"--sample must be an edit order >= 0, got {args.sample}")
        samples = [args.sample] if args.sample is not None else list(range(exp.samples))
        checks.check_experiment(exp, n_given=args.n_edits is not None, samples=samples,
                                dataset_checked=exp.dataset is not None)
    except ExperimentError as e:
        return error("sequential", e)
    lm = ModelCache().get(exp.model, exp.device)  # one model for every sample: each run hands it back unedited
    failed = 0
    for sample in samples:
        try:
            summary, errors = run_sequential_sample(exp, make_editor(exp, lm), lm, sample=sample)
        except (CheckpointError, WriteFailed) as e:  # a damaged run directory, a failed write: which file
            return error("sequential", e, 1)
        except (ExperimentError, ResumeMismatch, RunLocked) as e:  # found once the model is loaded / the run starts
            return error("sequential", e)
        if most_raised(summary.get("n_errors") or 0, summary["n_edits"]):  # never a clean exit
            error("sequential", f"sample {sample}: "
                  + raised_line(summary["n_errors"], summary["n_edits"], summary.get("errors_by_reason") or {})
                  + f"; the run measured the errors, not the editor ({summary['paths']['jsonl']})")
            failed += 1
        plot_summary(summary)
        print(json.dumps({k: summary.get(k) for k in KEEP}, indent=2, default=str))
        if errors:
            print(f"{len(errors)} malformed record(s) skipped, e.g. {errors[0]}")
    return 1 if failed else 0
