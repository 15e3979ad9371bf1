"""``editbench disabling``: the disabling-edit suite outside pytest (scan, and isolation of a run's CF edits).

    editbench disabling --editor rome [--model smollm2-135m] [--dataset counterfact-1k] [--n-records 60]
    editbench disabling --editor rome --dataset counterfact-1k --from-run reports/runs/sequential/rome/smollm2-135m/sample_0
    editbench disabling --editor rome --from-run DIR --no-scan          # only the isolation

Writes ``OUT/runs/disabling/<editor>/<model>/scan.json``, ``scan.png``, ``isolation.json`` and a session file
``OUT/disabling-<editor>-<model>.json`` (the result schema of the suite), prints the distribution, the flagged and
confirmed edits and each CF edit's class, and gates them (thresholds.yaml, suite ``disabling``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from editbench import DEFAULT_MODEL
from editbench.runner.results import make_result
from editbench.suites.disabling.gates import isolation_gates, isolation_metrics, scan_gates, scan_metrics
from editbench.suites.disabling.result import fields

USAGE_ERROR = 4


def add_parser(sub) -> None:
    d = sub.add_parser("disabling", help="disabling edits: scan single edits for outliers; isolate a run's CF edits",
                       description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    d.add_argument("--editor", required=True)
    d.add_argument("--model", default=DEFAULT_MODEL, help=f"model (default {DEFAULT_MODEL})")
    d.add_argument("--dataset", default=None, help="dataset name or JSON path (default: the model's, or the run's)")
    d.add_argument("--n-records", type=int, default=None, help="records scanned, one edit each (default 20)")
    d.add_argument("--from-run", default=None, metavar="DIR",
                   help="a sequential run directory (or its summary.json): isolate its CF edits on a fresh model")
    d.add_argument("--no-scan", action="store_true", help="with --from-run: only the isolation")
    d.add_argument("--health-on", choices=("all", "flagged"), default="all",
                   help="all: health probes after every scanned edit (default); flagged: a two-pass scan -- "
                        "distances of all records first, then health only for the flagged outliers and --controls "
                        "unflagged ones (about 4x faster on SmolLM2, where the probes cost more than the edit)")
    d.add_argument("--controls", type=int, default=5, metavar="N",
                   help="with --health-on flagged: unflagged records also health-checked (seeded; default 5)")
    d.add_argument("--resume", action="store_true",
                   help="continue an interrupted scan: records already in OUT/.../scan.rows.jsonl (written as the "
                        "scan goes, same editor, model, dataset, seed and hparams) are not edited again")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="reports")
    d.add_argument("--device", default="cpu")
    d.add_argument("--thresholds", default=None, metavar="YAML")
    d.add_argument("--hparam", action="append", default=[], metavar="EDITOR.KEY=VALUE")
    d.set_defaults(func=run)


def _result(kind: str, exp, editor, lm, metrics: dict, gates: dict, details: dict, artefacts: dict, n: int,
            record_ids: list, timings: dict | None = None, cost: dict | None = None) -> dict:
    return make_result(test=f"cli:{kind}", **fields(exp, editor, lm, metrics, gates, details, artefacts, n,
                                                     record_ids, timings, cost))


def run(args) -> int:
    from editbench.gates import gates_for, load_thresholds
    from editbench.pytest_plugin import THRESHOLDS
    from editbench.suites.disabling.figure import plot_scan
    from editbench.runner import checks
    from editbench.suites.disabling import run as dis
    from editbench.runner.experiment import Experiment, ExperimentError, ModelCache, make_editor, parse_hparams
    from editbench.runner.results import SESSION_SCHEMA

    try:  # every input checked before the model loads
        checks.check_count("--n-records", args.n_records)
        if args.no_scan and not args.from_run:
            raise ExperimentError("--no-scan: only with --from-run (there would be nothing to do)")
        overrides = parse_hparams(args.hparam)
        checks.check_hparam_editors(overrides, [args.editor])
        exp = Experiment(suite="disabling", editor=args.editor, model=args.model, dataset=args.dataset,
                         hparams=tuple(overrides.get(args.editor, {}).items()), n=args.n_records, seed=args.seed,
                         device=args.device, out_dir=args.out)
        summary = dis.read_summary(args.from_run) if args.from_run else None
        iso_exp = dis.run_experiment(exp, summary) if summary else None
        checks.check_experiment(iso_exp or exp)
        if iso_exp is not None and iso_exp.dataset_name != exp.dataset_name and not args.no_scan:
            checks.check_dataset(exp.dataset_name, exp.model)
        if args.thresholds and not Path(args.thresholds).is_file():
            raise ExperimentError(f"--thresholds {args.thresholds!r}: no such file")
    except ExperimentError as e:
        print(f"editbench disabling: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    lm = ModelCache().get(exp.model, exp.device)
    if summary is not None:
        why = dis.check_run_matches(summary, exp, lm.model_id)
        if why:
            print(f"editbench disabling: error: --from-run: {why}", file=sys.stderr)
            return USAGE_ERROR
    gates = gates_for(load_thresholds(args.thresholds or THRESHOLDS), "disabling", lm.model_id, args.editor)
    where, results = dis.out_dir(exp, lm.model_id), []
    if not args.no_scan:
        editor = make_editor(exp, lm)
        rows_file = where / "scan.rows.jsonl"
        try:
            done = dis.resume_rows(rows_file, exp) if args.resume else {}
        except ExperimentError as e:
            print(f"editbench disabling: error: --resume: {e}", file=sys.stderr)
            return USAGE_ERROR
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
    session = Path(args.out) / f"disabling-{args.editor}-{Path(lm.model_id).name}.json"
    session.parent.mkdir(parents=True, exist_ok=True)
    session.write_text(json.dumps({"schema": SESSION_SCHEMA, "exitstatus": 0, "results": results}, indent=2,
                                  default=str))
    print(f"results written to {session}")
    return 0
