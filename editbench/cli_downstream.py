"""``editbench downstream`` and the ``--downstream-*`` options of ``editbench sequential`` (front end).

    editbench downstream --editor memit --n-edits 20 --downstream-every 10        # SmolLM2, GLUE, gated
    editbench downstream --editor ft-c --model factworld --n-edits 6 --downstream-every 3
    editbench sequential --editor rome --n-edits 100 --downstream-every 10         # GLUE inside a sequential run
"""
from __future__ import annotations

import sys

USAGE_ERROR = 4


def add_downstream_args(p, suite_default: bool = False) -> None:
    every = "10, the paper's" if suite_default else "off"
    p.add_argument("--downstream-every", type=int, default=None, metavar="K",
                   help=f"evaluate the downstream tasks before editing and every K edits (default {every})")
    p.add_argument("--downstream-task", action="append", default=None, metavar="TASK",
                   help="downstream task (repeatable; default all): sst2 mrpc cola rte (fact world: sst2 mrpc cola nli)")
    p.add_argument("--downstream-n", type=int, default=None, metavar="N",
                   help="class-balanced examples per task (default: the model's preset, 200; fact world 100)")
    p.add_argument("--downstream-shots", type=int, default=None, metavar="K",
                   help="demonstrations per prompt, the first K of the paper's table (default: the preset)")
    p.add_argument("--downstream-mode", choices=("gen", "loglik"), default=None,
                   help="primary answer mode (both reported): gen = decode + parse (the paper's), loglik")


def downstream_kwargs(args) -> dict:
    return {"downstream_every": args.downstream_every, "downstream_n": args.downstream_n,
            "downstream_tasks": tuple(args.downstream_task) if args.downstream_task else None,
            "downstream_shots": args.downstream_shots, "downstream_mode": args.downstream_mode}


def add_parser(sub, default_model: str) -> None:
    d = sub.add_parser("downstream", help="downstream regression: GLUE few-shot F1 before and during sequential editing",
                       description="The unedited baseline on GLUE SST-2/MRPC/CoLA/RTE (the paper's prompts; the fact "
                                   "world's tasks on --model factworld), both answer modes with intervals, then "
                                   "--n-edits sequential edits with the tasks every --downstream-every edits; gated "
                                   "(thresholds.yaml, suite downstream) on tasks above chance; writes the result JSON "
                                   "(the suite's schema) and figures under OUT.")
    d.add_argument("--editor", required=True)
    d.add_argument("--model", default=default_model, help=f"model (default {default_model}; 'factworld': seconds)")
    d.add_argument("--dataset", default=None, help="edit records (default: counterfact; factworld on the fact world)")
    d.add_argument("--n-edits", type=int, default=None, help="sequential edits (default 20)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="reports")
    d.add_argument("--device", default="cpu")
    d.add_argument("--resume", action="store_true")
    d.add_argument("--thresholds", default=None, metavar="YAML")
    d.add_argument("--protocol", action="append", choices=("prob", "token_acc", "gen"), default=None,
                   help="edit scoring protocols (default prob only: the downstream suite is about the tasks)")
    d.add_argument("--hparam", action="append", default=[], metavar="EDITOR.KEY=VALUE")
    add_downstream_args(d, suite_default=True)
    d.set_defaults(func=cmd_downstream)


def cmd_downstream(args) -> int:
    import json
    from pathlib import Path

    from editbench.gates import load_thresholds
    from editbench.pytest_plugin import THRESHOLDS
    from editbench.report.plots import plot_summary
    from editbench.runner import checks
    from editbench.suites.downstream.figure import plot_downstream
    from editbench.suites.downstream.result import fields as record_fields
    from editbench.suites.downstream.run import DEFAULT_EVERY, check_downstream_inputs, format_table, run_downstream
    from editbench.runner.experiment import Experiment, ExperimentError, ModelCache, make_editor, parse_hparams
    from editbench.runner.results import SESSION_SCHEMA, make_result
    from editbench.runner.state import CheckpointError

    try:
        checks.check_count("--n-edits", args.n_edits)
        overrides = parse_hparams(args.hparam)
        checks.check_hparam_editors(overrides, [args.editor])
        kw = downstream_kwargs(args)
        check_downstream_inputs(args.model, **kw)
        kw["downstream_every"] = kw["downstream_every"] or DEFAULT_EVERY
        exp = Experiment(suite="downstream", editor=args.editor, model=args.model, dataset=args.dataset,
                         hparams=tuple(overrides.get(args.editor, {}).items()), n=args.n_edits, seed=args.seed,
                         device=args.device, out_dir=args.out, resume=args.resume,
                         protocols=tuple(args.protocol or ("prob",)), **kw)
        checks.check_experiment(exp)
        if args.thresholds and not Path(args.thresholds).is_file():
            raise ExperimentError(f"--thresholds {args.thresholds!r}: no such file")
    except ExperimentError as e:
        print(f"editbench downstream: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    lm = ModelCache().get(exp.model, exp.device)
    try:
        result, summary, errors = run_downstream(exp, make_editor(exp, lm), lm)
    except CheckpointError as e:
        print(f"editbench downstream: error: {e}", file=sys.stderr)
        return 1
    plot_summary(summary)
    png = plot_downstream(summary, summary["paths"]["downstream"].replace(".json", ".png"))
    summary["paths"]["downstream_plot"] = str(png)
    fields = record_fields(exp, result, summary, errors, load_thresholds(args.thresholds or THRESHOLDS))
    rec = make_result(test=f"editbench downstream --editor {exp.editor}", **fields)
    out = Path(args.out) / f"downstream-{exp.editor}-{Path(lm.model_id).name}-{summary['n_edits']}.json"
    out.write_text(json.dumps({"schema": SESSION_SCHEMA, "exitstatus": 0, "results": [rec]}, indent=2, default=str))
    print(f"{exp.editor} on {lm.model_id}, {summary['n_edits']} edits, downstream every {exp.downstream_every}: "
          f"{rec['verdict']}")
    print("\n".join("  " + line for line in format_table(result)))
    print("\n".join(f"  FAIL {f}" for f in rec["failures"]))
    print(f"results written to {out}, figures {png} and {summary['paths'].get('plot')}")
    return 0
