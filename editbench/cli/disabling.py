"""``editbench disabling``: the disabling-edit suite outside pytest (scan, and isolation of a run's CF edits).

    editbench disabling --editor rome [--model smollm2-135m] [--dataset counterfact-1k] [--n-records 60]
    editbench disabling --editor rome --dataset counterfact-1k --from-run reports/runs/sequential/rome/smollm2-135m/sample_0
    editbench disabling --editor rome --from-run DIR --no-scan          # only the isolation

Writes ``OUT/runs/disabling/<editor>/<model>/scan.json``, ``scan.png``, ``isolation.json`` and a session file
``OUT/disabling-<editor>-<model>.json`` (the result schema of the suite), prints the distribution, the flagged and
confirmed edits and each CF edit's class, and gates them (thresholds.yaml, suite ``disabling``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from editbench.cli.common import add_options, error, run_config
from editbench.gates import gates_for
from editbench.options import CLI_EDITOR, DATASET, DEVICE, HPARAM, MODEL, N_RECORDS, OUT, SEED, THRESHOLDS
from editbench.suites.disabling.options import CLI_OPTIONS, FROM_RUN

DISABLING = (CLI_EDITOR, MODEL, DATASET, N_RECORDS, FROM_RUN, *CLI_OPTIONS, SEED, OUT, DEVICE, THRESHOLDS, HPARAM)


def add_parser(sub) -> None:
    d = sub.add_parser("disabling", help="disabling edits: scan single edits for outliers; isolate a run's CF edits",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(d.add_argument, DISABLING)
    d.set_defaults(func=run)


def _result(kind: str, exp, editor, lm, metrics: dict, gates: dict, details: dict, artefacts: dict, n: int,
            record_ids: list, timings: dict | None = None, cost: dict | None = None) -> dict:
    from editbench.runner.results import make_result  # lazy: cli.common.LAZY
    from editbench.suites.disabling.result import fields
    return make_result(test=f"cli:{kind}", **fields(exp, editor, lm, metrics, gates, details, artefacts, n,
                                                     record_ids, timings, cost))


def run(args) -> int:
    from editbench.suites.disabling.figure import plot_scan  # lazy: cli.common.LAZY
    from editbench.suites.disabling.gates import isolation_gates, isolation_metrics, scan_gates, scan_metrics
    from editbench.runner import checks
    from editbench.suites.disabling import run as dis
    from editbench.runner.experiment import ExperimentError, ModelCache, make_editor
    from editbench.runner.files import WriteFailed
    from editbench.runner.results import write_session
    try:  # every input checked before the model loads
        cfg = run_config(args, DISABLING, "disabling", ("disabling",))
        if args.no_scan and not args.from_run:
            raise ExperimentError("--no-scan: only with --from-run (there would be nothing to do)")
        exp = cfg.experiment("disabling", args.editor, n=cfg.n_records)
        summary = cfg.from_run_summary
        iso_exp = dis.run_experiment(exp, summary) if summary else None
        checks.check_experiment(iso_exp or exp)
        if iso_exp is not None and iso_exp.dataset_name != exp.dataset_name and not args.no_scan:
            checks.check_dataset(exp.dataset_name, exp.model)
    except ExperimentError as e:
        return error("disabling", e)
    lm = ModelCache().get(exp.model, exp.device)
    if summary is not None:
        why = dis.check_run_matches(summary, exp, lm.model_id)
        if why:
            return error("disabling", f"--from-run: {why}")
    gates = gates_for(cfg.gates, "disabling", lm.model_id, args.editor)
    where, results = dis.out_dir(exp, lm.model_id), []
    if not args.no_scan:
        editor = make_editor(exp, lm)
        rows_file = where / "scan.rows.jsonl"
        try:
            done = dis.resume_rows(rows_file, exp) if args.resume else {}
        except ExperimentError as e:
            return error("disabling", f"--resume: {e}")
        if done:
            print(f"resuming: {len(done)} records already scanned in {rows_file}")
        on_row = dis.row_writer(rows_file, exp, append=bool(done))
        scan, records, _errors = dis.run_scan(exp, editor, lm, on_row=on_row, done=done, health_on=args.health_on,
                                              n_controls=args.controls)
        js = dis.write_json({"experiment": exp.to_dict(), **scan}, where / "scan.json")
        png = plot_scan(scan, where / "scan.png",
                        title=f"{editor.name} on {lm.model_id}: {scan['n']} single edits ({exp.dataset_name})")
        results.append(_result("scan", exp, editor, lm, scan_metrics(scan), scan_gates(gates), {"scan": scan},
                               {"json": str(js), "figure": str(png)}, scan["n"], [r.case_id for r in records],
                               scan["timings"], scan["cost"]))
        dist, rate = scan["distribution"], scan["intrinsic_rate"]
        print(f"scan: {scan['n']} single edits, distance median {dist.get('median'):.3g} "
              f"[q05 {dist.get('q05'):.3g}, q95 {dist.get('q95'):.3g}], max {dist.get('max'):.3g}; flagged "
              f"{scan['flagged']}, confirmed disabling {scan['confirmed']}; intrinsic rate {rate['mean']:.3f} "
              f"[{rate['lo']:.3f}, {rate['hi']:.3f}] n={rate['n']}; figure {png}")
    if summary is not None:
        editor = make_editor(iso_exp, lm)
        iso = dis.run_isolation(iso_exp, editor, lm, summary)
        js = dis.write_json({"experiment": iso_exp.to_dict(), **iso}, where / "isolation.json")
        results.append(_result("isolation", iso_exp, editor, lm, isolation_metrics(iso), isolation_gates(gates),
                               {"isolation": iso}, {"json": str(js)}, iso["n_cf_edits"],
                               [c for e in iso["edits"] for c in e["run_edit"]["case_ids"]]))
        if not iso["edits"]:
            print(f"isolation: the run has no CF point (cf_edit {summary.get('cf_edit')})")
        for e in iso["edits"]:
            f = e["fresh"]
            print(f"isolation: run edit {e['run_edit']['edit']} (case {', '.join(e['run_edit']['case_ids'])}) alone on "
                  f"a fresh model: {e['class']} — {e['why']}; distance {f['distance']} vs the run's increment "
                  f"{e['run_edit']['increment']}; {f['disabled']['why']}")
    for r in results:
        print(f"{r['test']}: {r['verdict']}" + "".join(f"\n  FAIL {x}" for x in r["failures"]))
    try:
        session = write_session(Path(cfg.reports_dir) / f"disabling-{args.editor}-{Path(lm.model_id).name}.json",
                                results)
    except WriteFailed as e:
        return error("disabling", e, 1)
    print(f"results written to {session}")
    return 0
