"""``editbench zsre``: zsRE question form vs completion form, do edits transfer? (suite zsre, outside pytest).

Edit in one format, probe in the other, per editor; the result JSON (the suite's schema) and a figure.
"""
from __future__ import annotations

from pathlib import Path

from editbench.cli.common import add_options, error, run_config
from editbench.gates import gates_for
from editbench.options import (CLI_EDITORS, DATASET, DEVICE, HPARAM, MODEL, N_RECORDS, OUT, PROTOCOL, SEED,
                               THRESHOLDS)
from editbench.suites.zsre.options import DIRECTION, ZSRE_TARGET

# no argparse choices: check_transfer_inputs names a bad target or direction (exit 4, one line), as before
ZSRE = (CLI_EDITORS, MODEL, DATASET, N_RECORDS, DIRECTION.replace(choices=None), ZSRE_TARGET.replace(choices=None),
        PROTOCOL, SEED, OUT, THRESHOLDS, DEVICE, HPARAM)


def add_parser(sub) -> None:
    zs = sub.add_parser("zsre", help="zsRE question form vs completion form: do edits transfer between them?",
                        description="Per pair and direction (q2c: edit in question form, probe in completion form; "
                                    "c2q: the reverse) one edit, both forms scored, restored; transfer rates with "
                                    "intervals, gated (thresholds.yaml, suite zsre); writes OUT/zsre-*.json, a PNG.")
    add_options(zs.add_argument, ZSRE)
    zs.set_defaults(func=run)


def run(args) -> int:
    from editbench.suites.zsre.metrics import format_row  # lazy: cli.common.LAZY
    from editbench.suites.zsre.figure import plot_results
    from editbench.runner.experiment import ExperimentError, ModelCache
    from editbench.runner.files import WriteFailed
    from editbench.runner.results import write_session
    from editbench.suites.zsre.run import record_transfer
    try:  # every input checked before the model loads
        cfg = run_config(args, ZSRE, "zsre", ("zsre",))
        source = cfg.pair_source
        exps = [cfg.experiment("zsre", e, dataset=source, n=cfg.n_records) for e in cfg.editors]
    except ExperimentError as e:
        return error("zsre", e)
    lm, results = ModelCache().get(cfg.model, cfg.device), []
    stem = f"{Path(lm.model_id).name}-{Path(source).stem}"
    for exp in exps:
        r = record_transfer(exp, lm, target=cfg.zsre_target, directions=cfg.directions,
                            gates=gates_for(cfg.gates, "zsre", lm.model_id, exp.editor),
                            log_path=Path(cfg.reports_dir) / f"zsre-{exp.editor}-{stem}.edits.jsonl")
        results.append(r)
        print(f"{exp.editor} on {lm.model_id}, {source} ({r['n']} pairs, target {cfg.zsre_target}): {r['verdict']}")
        for d, by_p in r["details"]["summary"].items():
            print("\n".join("  " + format_row(d, p, st) for p, st in by_p.items()))
        print("\n".join(f"  FAIL {f}" for f in r["failures"]))
    out = Path(cfg.reports_dir) / f"zsre-{'-'.join(cfg.editors)}-{stem}-{results[-1]['n']}"
    try:
        write_session(f"{out}.json", results)
    except WriteFailed as e:
        return error("zsre", e, 1)
    print(f"results written to {out}.json, figure {plot_results(results, f'{out}.png')}")
    return 0
