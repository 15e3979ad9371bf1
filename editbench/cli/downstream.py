"""``editbench downstream``: the downstream regression suite outside pytest (options declared once with the suite).

    editbench downstream --editor memit --n-edits 20 --downstream-every 10        # SmolLM2, GLUE, gated
    editbench downstream --editor ft-c --model factworld --n-edits 6 --downstream-every 3
    editbench sequential --editor rome --n-edits 100 --downstream-every 10         # GLUE inside a sequential run
"""
from __future__ import annotations

from pathlib import Path

from editbench.cli.common import add_options, error, run_config
from editbench.options import CLI_EDITOR, DATASET, DEVICE, HPARAM, MODEL, OUT, PROTOCOL, RESUME, SEED, THRESHOLDS
from editbench.suites.downstream.options import OPTIONS
from editbench.suites.sequential.options import N_EDITS

DOWNSTREAM = (CLI_EDITOR, MODEL, DATASET, N_EDITS, SEED, OUT, DEVICE, RESUME, THRESHOLDS,
              PROTOCOL.replace(help="edit scoring protocols (default prob only: the downstream suite is about the "
                                    "tasks)"), HPARAM, *OPTIONS)


def add_parser(sub) -> None:
    d = sub.add_parser("downstream", help="downstream regression: GLUE few-shot F1 before and during sequential editing",
                       description="The unedited baseline on GLUE SST-2/MRPC/CoLA/RTE (the paper's prompts; the fact "
                                   "world's tasks on --model factworld), both answer modes with intervals, then "
                                   "--n-edits sequential edits with the tasks every --downstream-every edits; gated "
                                   "(thresholds.yaml, suite downstream) on tasks above chance; writes the result JSON "
                                   "(the suite's schema) and figures under OUT.")
    add_options(d.add_argument, DOWNSTREAM)
    d.set_defaults(func=run)


def run(args) -> int:
    from editbench.suites.downstream.figure import plot_downstream  # lazy: cli.common.LAZY
    from editbench.report.plots import plot_summary
    from editbench.runner import checks
    from editbench.suites.downstream.result import fields as record_fields
    from editbench.suites.downstream.run import DEFAULT_EVERY, format_table, run_downstream
    from editbench.runner.experiment import ExperimentError, ModelCache, make_editor
    from editbench.runner.files import WriteFailed
    from editbench.runner.results import make_result, write_session
    from editbench.runner.state import CheckpointError
    try:
        cfg = run_config(args, DOWNSTREAM, "downstream", ("downstream",))
        exp = cfg.experiment("downstream", args.editor, protocols=tuple(args.protocol or ("prob",)),
                             downstream_every=args.downstream_every or DEFAULT_EVERY)
        checks.check_experiment(exp, dataset_checked=exp.dataset is not None)
    except ExperimentError as e:
        return error("downstream", e)
    lm = ModelCache().get(exp.model, exp.device)
    try:
        result, summary, errors = run_downstream(exp, make_editor(exp, lm), lm)
    except CheckpointError as e:
        return error("downstream", e, 1)
    plot_summary(summary)
    png = plot_downstream(summary, summary["paths"]["downstream"].replace(".json", ".png"))
    summary["paths"]["downstream_plot"] = str(png)
    fields = record_fields(exp, result, summary, errors, cfg.gates)
    rec = make_result(test=f"editbench downstream --editor {exp.editor}", **fields)
    out = Path(cfg.reports_dir) / f"downstream-{exp.editor}-{Path(lm.model_id).name}-{summary['n_edits']}.json"
    try:
        write_session(out, [rec])
    except WriteFailed as e:
        return error("downstream", e, 1)
    print(f"{exp.editor} on {lm.model_id}, {summary['n_edits']} edits, downstream every {exp.downstream_every}: "
          f"{rec['verdict']}")
    print("\n".join("  " + line for line in format_table(result)))
    print("\n".join(f"  FAIL {f}" for f in rec["failures"]))
    print(f"results written to {out}, figures {png} and {summary['paths'].get('plot')}")
    return 0
