"""The ``editbench`` command line.

    editbench ls                      editors and probes (built-in + plugins, with import errors), models, datasets
    editbench factworld build --out DIR [--quick] [--device cuda] [--recipe tasks --init-from DIR] ...
                                      build the embedded fact-world model from its seeded generator
    editbench sequential --editor memit [--model factworld] [--n-edits 100] [--samples 2] [--resume]
                                      a sequential run outside pytest (same runner as the suite)
    editbench stats --model M --layers 2 3 4 [--corpus auto] [--n-samples N]
                                      precompute and cache MLP key second-moment statistics (ROME/MEMIT)
    editbench trace --model M [--dataset known_1000|factworld|PATH] [--n 20] [--kind mlp|hidden|attn|all]
                                      causal tracing: where the model stores subject facts; suggests layers
    editbench zsre --editor rome [--model M] [--dataset zsre|counterfact|PATH] [--n-records N] [--direction q2c]
                                      zsRE question vs completion form: do edits transfer? (suite zsre)
    editbench mend train --model M [--dataset zsre-train] [--steps N] [--out DIR] [--resume]
                                      meta-train MEND's editor network for a model (editbench/cli_mend.py)
    editbench disabling --editor rome [--model M] [--n-records N] [--from-run DIR]
                                      disabling edits: single-edit distance scan; intrinsic vs accumulated CF edits
    editbench compare BASE NEW [--latency-tolerance 0.25] [--benchmark-fail median:25%]
                                      exit 1 on score (intervals) or latency regressions (editbench/cli_compare.py)
    editbench compare PATH --editor A --baseline B [--gate ns] [--max-slowdown X]
                                      editor A vs editor B, paired per record; exit 4 if model/records/seed differ
    editbench data fetch [NAME ...] [--list]
                                      download data files from their original sources (for offline machines)

The suites themselves run under pytest:  pytest suites -m single --editor ft-c
"""
from __future__ import annotations

import argparse
import sys

from editbench import DEFAULT_MODEL
from editbench.cli_downstream import add_downstream_args, downstream_kwargs  # noqa: E402 (downstream suite)
from editbench.cli_downstream import add_parser as add_downstream_parser


def _presets_line(cls, editor_preset_table) -> str:
    """``"smollm2-135m, factworld (built-in); tiny-gpt2 (built-in rome)"``: model keys grouped by source."""
    try:
        table, sources = editor_preset_table(cls)
    except Exception as e:  # noqa: BLE001 - a broken preset file is reported, not fatal here
        return f"(presets unreadable: {e})"
    from editbench.editors.presets import DERIVED_FIELDS, section_provenance

    groups: dict[str, list[str]] = {}
    for key in table:
        if key != "default":
            source = sources.get(key, "?")
            if source == "built-in":  # published / derived (by causal tracing) / shipped (editbench's own)
                source = f"built-in, {section_provenance(cls.name, key)['kind']}"
            groups.setdefault(source, []).append(key)
    derive = "; any other model: derived by causal trace at first use" if cls.name in DERIVED_FIELDS and \
        all(s == "built-in" for s in sources.values()) else ""
    if not groups:
        return "defaults only" + (f" ({sources['default']})" if "default" in sources else " (class defaults)")
    parts = []
    for source, keys in groups.items():
        shown = ", ".join(keys[:8]) + (f", … {len(keys) - 8} more" if len(keys) > 8 else "")
        parts.append(f"{shown} ({source})")
    return "; ".join(parts) + derive


def _cmd_ls(args) -> int:
    from editbench import registry
    from editbench.data import list_datasets
    from editbench.models.loader import describe_builtins

    from importlib.metadata import packages_distributions, version

    from editbench.editors.base import editor_preset_table

    classes, errors = registry.load_all()
    dists = packages_distributions()
    print("editors (name, batch support, package that provides it, per-model presets shipped and their source):")
    for name in registry.available():
        if name in classes:
            cls = classes[name]
            top = cls.__module__.split(".")[0]
            dist = (dists.get(top) or [top])[0]
            try:
                dist = f"{dist} {version(dist)}"
            except Exception:  # noqa: BLE001 - a module outside any installed distribution
                pass
            print(f"  {name:<12} batch={'yes' if cls.supports_batch else 'no ':<3}  {dist:<22} {cls.__module__}")
            print(f"  {'':<12} presets: {_presets_line(cls, editor_preset_table)}")
        else:
            print(f"  {name:<12} FAILED TO LOAD: {errors.get(name)}")
    print("models (built-in; also any local HF directory or hub id):")
    for name, what in describe_builtins().items():
        print(f"  {name:<13} {what}")
    probes, probe_errors = registry.PROBES.load_all()
    print("probes (sequential runs' health checks; metric: which direction is better):")
    for name in registry.PROBES.available():
        if name in probes:
            print(f"  {name:<21} " + ", ".join(f"{k}: {d}" for k, d in probes[name].metrics.items()))
        else:
            print(f"  {name:<21} FAILED TO LOAD: {probe_errors.get(name)}")
    print("datasets:", ", ".join(list_datasets()))
    from editbench.data.tasks import list_tasksets
    print("task sets (downstream probes):", ", ".join(list_tasksets()))
    return 0


def _cmd_factworld(args) -> int:  # the build module parses its own options (args.rest)
    from editbench.factworld.build import main as build_main
    return build_main(args.rest) or 0


def _cmd_stats(args) -> int:
    from editbench.models.loader import load_model
    from editbench.editors.toolkit.covariance import second_moments_of
    lm = load_model(args.model, device=args.device)
    mats = second_moments_of(lm.model, lm.tok, lm.adapter, list(args.layers), corpus=args.corpus,
                             n_samples=args.n_samples, model_hash=lm.model_hash)
    for layer, c in mats.items():
        print(f"layer {layer}: C {tuple(c.shape)}, trace {float(c.trace()):.4g}")
    return 0


def _cmd_trace(args) -> int:
    from editbench.trace.cli import run
    return run(args) or 0


def _cmd_data_fetch(args) -> int:
    """Pre-fetch data files from their original sources (default: every one with a public source); --list."""
    from editbench.data.download import DownloadError, sha256_file
    from editbench.data.sources import SOURCES, DataNotAvailable, UnknownSourceError, local_copy, obtain

    if args.list:
        for s in SOURCES.values():
            here = local_copy(s)
            pin = f"sha256 {s.sha256} (pinned)" if s.sha256 else "sha256 not pinned (trust on first use, warned)"
            print(f"{s.name:<16} {'present: ' + str(here) if here else 'absent'}")
            print(f"    {s.origin}; {pin}")
            for url in s.urls:
                print(f"    from {url}")
            if not s.public:
                print(f"    no public source of the balanced set; {s.fallback}")
        return 0
    for name in args.names:
        if name not in SOURCES:
            print(f"editbench data fetch: error: {UnknownSourceError(name)}", file=sys.stderr)
            return USAGE_ERROR
    failed = 0
    for name in args.names or [n for n, s in SOURCES.items() if s.public]:
        try:
            path = obtain(name, download=True, progress=not args.quiet)
        except (DataNotAvailable, DownloadError, OSError, ValueError) as e:
            print(f"{name}: not fetched: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name:<16} {path}  sha256 {sha256_file(path)}")
    return 1 if failed else 0


def _cmd_sequential(args) -> int:
    import json

    from editbench.report.plots import plot_summary
    from editbench.runner.experiment import Experiment, ExperimentError, ModelCache, make_editor, parse_hparams
    from editbench.runner.experiment import run_sequential_sample

    from editbench.runner import checks

    try:  # every input checked before the model loads (the pytest plugin's rules)
        for opt, value in (("--n-edits", args.n_edits), ("--samples", args.samples),
                           ("--batch-size", args.batch_size), ("--history-every", args.history_every),
                           ("--checkpoint-every", args.checkpoint_every)):
            checks.check_count(opt, value)
        checks.check_seed(args.seed)
        overrides = parse_hparams(args.hparam)
        checks.check_hparam_editors(overrides, [args.editor], model=args.model)
        exp = Experiment(suite="sequential", editor=args.editor, model=args.model, dataset=args.dataset,
                         hparams=tuple(overrides.get(args.editor, {}).items()), n=args.n_edits,
                         samples=args.samples, seed=args.seed, batch_size=args.batch_size,
                         history_every=args.history_every, checkpoint_every=args.checkpoint_every,
                         on_nonfinite=args.on_nonfinite, protocols=tuple(args.protocol or ("prob", "token_acc", "gen")),
                         device=args.device, out_dir=args.out, resume=args.resume,
                         **downstream_kwargs(args))  # --downstream-* (editbench/cli_downstream.py)
        if args.sample is not None:  # seeded orders take any S >= 0; the published ones are a fixed set
            from editbench.runner.experiment import default_order
            from editbench.runner.schedule import PUBLISHED_SAMPLES
            top = PUBLISHED_SAMPLES - 1 if default_order(exp.dataset_name) == "published" else None
            if args.sample < 0 or (top is not None and args.sample > top):
                raise ExperimentError(f"--sample must be an edit order 0..{top} (the seed paper's published orders), "
                                      f"got {args.sample}" if top is not None else
                                      f"--sample must be an edit order >= 0, got {args.sample}")
        samples = [args.sample] if args.sample is not None else list(range(exp.samples))
        checks.check_experiment(exp, n_given=args.n_edits is not None, samples=samples)
        from editbench.suites.downstream.run import check_downstream_inputs
        check_downstream_inputs(args.model, **downstream_kwargs(args))
    except ExperimentError as e:
        print(f"editbench sequential: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    lm = ModelCache().get(exp.model, exp.device)  # one model for every sample: each run hands it back unedited
    from editbench.runner.files import RunLocked, WriteFailed
    from editbench.runner.state import CheckpointError, ResumeMismatch
    from editbench.runner.summary import most_raised, raised_line

    failed = 0
    for sample in samples:
        try:
            summary, errors = run_sequential_sample(exp, make_editor(exp, lm), lm, sample=sample)
        except (CheckpointError, WriteFailed) as e:  # a damaged run directory, a failed write: which file
            print(f"editbench sequential: error: {e}", file=sys.stderr)
            return 1
        except (ExperimentError, ResumeMismatch, RunLocked) as e:  # found once the model is loaded / the run starts
            print(f"editbench sequential: error: {e}", file=sys.stderr)
            return USAGE_ERROR
        if most_raised(summary.get("n_errors") or 0, summary["n_edits"]):  # never a clean exit
            print(f"editbench sequential: error: sample {sample}: "
                  + raised_line(summary["n_errors"], summary["n_edits"], summary.get("errors_by_reason") or {})
                  + f"; the run measured the errors, not the editor ({summary['paths']['jsonl']})", file=sys.stderr)
            failed += 1
        plot_summary(summary)
        keep = ("editor", "model_id", "sample", "n_edits", "cf_edit", "cf_case_id", "forgetting_at",
                "gradual_forget_rate_per_100", "health_first", "health_last", "n_errors", "errors_by_reason", "paths")
        print(json.dumps({k: summary.get(k) for k in keep}, indent=2, default=str))
        if errors:
            print(f"{len(errors)} malformed record(s) skipped, e.g. {errors[0]}")
    return 1 if failed else 0


# --- zsRE-vs-completion transfer (suite `zsre`; editbench/suites/zsre/) -------------------------------------
def _cmd_zsre(args) -> int:
    """Edit in one format, probe in the other, per editor; result JSON (the suite's schema) and a figure."""
    import json
    from pathlib import Path

    from editbench.gates import gates_for
    from editbench.suites.zsre.metrics import format_row
    from editbench.pytest_plugin import THRESHOLDS
    from editbench.suites.zsre.figure import plot_results
    from editbench.runner import checks
    from editbench.runner.experiment import Experiment, ExperimentError, ModelCache, parse_hparams
    from editbench.runner.results import SESSION_SCHEMA
    from editbench.suites.zsre.run import check_transfer_inputs, default_pair_source, record_transfer

    directions, source = tuple(args.direction or ("q2c", "c2q")), args.dataset or default_pair_source(args.model)
    try:  # every input checked before the model loads
        checks.check_count("--n-records", args.n_records)
        checks.check_seed(args.seed)
        overrides = parse_hparams(args.hparam)
        checks.check_hparam_editors(overrides, args.editor, model=args.model)
        exps = [Experiment(suite="zsre", editor=e, model=args.model, dataset=source, n=args.n_records, seed=args.seed,
                           hparams=tuple(overrides.get(e, {}).items()), device=args.device, out_dir=args.out,
                           protocols=tuple(args.protocol or ("prob", "token_acc", "gen"))) for e in args.editor]
        check_transfer_inputs(source, args.zsre_target, directions)
        for e in args.editor:
            checks.check_editor(e)
        checks.check_model(args.model), checks.check_device(args.device), checks.check_out_dir(args.out, "--out")
        from editbench.runner.preflight import check_thresholds
        table = check_thresholds(args.thresholds or THRESHOLDS)
    except ExperimentError as e:
        print(f"editbench zsre: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    lm, results = ModelCache().get(args.model, args.device), []
    stem = f"{Path(lm.model_id).name}-{Path(source).stem}"
    for exp in exps:
        r = record_transfer(exp, lm, target=args.zsre_target, directions=directions,
                            gates=gates_for(table, "zsre", lm.model_id, exp.editor),
                            log_path=Path(args.out) / f"zsre-{exp.editor}-{stem}.edits.jsonl")
        results.append(r)
        print(f"{exp.editor} on {lm.model_id}, {source} ({r['n']} pairs, target {args.zsre_target}): {r['verdict']}")
        for d, by_p in r["details"]["summary"].items():
            print("\n".join("  " + format_row(d, p, st) for p, st in by_p.items()))
        print("\n".join(f"  FAIL {f}" for f in r["failures"]))
    out = Path(args.out) / f"zsre-{'-'.join(args.editor)}-{stem}-{results[-1]['n']}"
    from editbench.runner.files import WriteFailed, write_atomic
    try:
        write_atomic(f"{out}.json", json.dumps({"schema": SESSION_SCHEMA, "exitstatus": 0, "results": results},
                                               indent=2, default=str))
    except WriteFailed as e:
        print(f"editbench zsre: error: {e}", file=sys.stderr)
        return 1
    print(f"results written to {out}.json, figure {plot_results(results, f'{out}.png')}")
    return 0


USAGE_ERROR = 4  # pytest's usage-error exit code: the same for `pytest suites` and `editbench`


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="editbench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ls", help="list editors, built-in models and datasets")
    s.set_defaults(func=_cmd_ls)
    fw = sub.add_parser("factworld", help="the embedded fact-world model")
    fws = fw.add_subparsers(dest="fw_cmd", required=True)
    b = fws.add_parser("build", add_help=False,
                       help="generate the world, train the model, evaluate it, write a HF directory "
                            "(all options: editbench factworld build --help)")
    b.set_defaults(func=_cmd_factworld, takes_rest=True)
    sq = sub.add_parser("sequential", help="a sequential editing run (edits accumulate): forgetting, distance, CF point",
                        description="Edits one fact at a time (or --batch-size at a time) on one model, re-scores "
                                    "the edit history every --history-every edits, tracks weight distance and model "
                                    "health, detects the catastrophic-forgetting point; writes results.jsonl, "
                                    "summary.json and a PNG under OUT/runs/sequential/EDITOR/MODEL/sample_S/.")
    sq.add_argument("--editor", required=True)
    sq.add_argument("--model", default=DEFAULT_MODEL,
                    help=f"built-in short name, model directory or hub id (default {DEFAULT_MODEL}; 'factworld' is the "
                         "fast fact-world fixture)")
    sq.add_argument("--dataset", default=None,
                    help="dataset name or JSON path (default: factworld on the fact world, else counterfact)")
    sq.add_argument("--n-edits", type=int, default=None, help="edits per run (default 100, as the suite)")
    sq.add_argument("--samples", type=int, default=1, help="number of edit orders (paper: 4)")
    sq.add_argument("--sample", type=int, default=None, metavar="S",
                    help="run only edit order S (0-9), e.g. a second published order beside a finished sample 0")
    sq.add_argument("--batch-size", type=int, default=1, help="requests per editor.apply (batch editors)")
    sq.add_argument("--history-every", type=int, default=10, help="re-score all earlier edits every k edits")
    sq.add_argument("--seed", type=int, default=0)
    sq.add_argument("--out", default="reports")
    sq.add_argument("--resume", action="store_true", help="continue killed runs from their last checkpoint")
    sq.add_argument("--protocol", action="append", choices=("prob", "token_acc", "gen"), default=None,
                    help="scoring protocols (repeatable; default all three; prob is always kept for forgetting)")
    sq.add_argument("--on-nonfinite", choices=("stop", "continue"), default="stop",
                    help="after an edit that leaves NaN/inf weights (a CF point): stop the run (default) or go on")
    sq.add_argument("--checkpoint-every", type=int, default=50, metavar="K",
                    help="save the edited weights, editor and runner state every K edits for --resume (default 50)")
    sq.add_argument("--device", default="cpu")
    sq.add_argument("--hparam", action="append", default=[], metavar="EDITOR.KEY=VALUE",
                    help="override one hyperparameter, e.g. --hparam memit.mom2_update_weight=15000 (as in pytest)")
    add_downstream_args(sq)  # downstream tasks inside the run (editbench/cli_downstream.py)
    sq.set_defaults(func=_cmd_sequential)
    add_downstream_parser(sub, DEFAULT_MODEL)  # `editbench downstream` (editbench/cli_downstream.py)
    zs = sub.add_parser("zsre", help="zsRE question form vs completion form: do edits transfer between them?",
                        description="Per pair and direction (q2c: edit in question form, probe in completion form; "
                                    "c2q: the reverse) one edit, both forms scored, restored; transfer rates with "
                                    "intervals, gated (thresholds.yaml, suite zsre); writes OUT/zsre-*.json, a PNG.")
    zs.add_argument("--editor", action="append", required=True, help="editor (repeatable)")
    zs.add_argument("--model", default=DEFAULT_MODEL, help=f"model (default {DEFAULT_MODEL})")
    zs.add_argument("--dataset", default=None, metavar="SOURCE|PATH",
                    help="pair source: zsre (the seed paper's 280 pairs; default), counterfact (counterfact_qna), "
                         "factworld (default on the fact world), or a JSON/JSONL file of pairs")
    zs.add_argument("--n-records", type=int, default=None, help="pairs (default 20, as the suite)")
    zs.add_argument("--direction", action="append", default=None, help="q2c and/or c2q (repeatable; default both)")
    zs.add_argument("--zsre-target", default="answers",
                    help="zsRE edit target: answers[0] (ROME and the seed paper; default) or alt (EasyEdit)")
    zs.add_argument("--protocol", action="append", choices=("prob", "token_acc", "gen"), default=None,
                    help="scoring protocols (repeatable; default all three)")
    zs.add_argument("--seed", type=int, default=0, help="seed of the pair selection (default 0)")
    zs.add_argument("--out", default="reports")
    zs.add_argument("--thresholds", default=None, metavar="YAML", help="gates file (default: the shipped one)")
    zs.add_argument("--device", default="cpu")
    zs.add_argument("--hparam", action="append", default=[], metavar="EDITOR.KEY=VALUE")
    zs.set_defaults(func=_cmd_zsre)
    st = sub.add_parser("stats", help="precompute cached second-moment statistics of MLP keys")
    st.add_argument("--model", default=DEFAULT_MODEL)
    st.add_argument("--layers", type=int, nargs="+", required=True)
    st.add_argument("--corpus", default="auto", help="auto | factworld | gensim-wiki | wikitext")
    st.add_argument("--n-samples", type=int, default=100_000)
    st.add_argument("--device", default="cpu")
    st.set_defaults(func=_cmd_stats)
    from editbench.trace.cli import add_arguments as _trace_arguments  # argparse only: no torch import
    tr = sub.add_parser("trace", help="causal tracing: where the model stores subject facts (ROME/MEMIT layers)")
    _trace_arguments(tr).set_defaults(func=_cmd_trace)
    da = sub.add_parser("data", help="data files: fetch them from their original sources")
    das = da.add_subparsers(dest="data_cmd", required=True)
    fe = das.add_parser("fetch", help="download data files into the cache (for offline machines); --list: sources",
                        description="Download each named data file (default: every one with a public source) from "
                                    "its original source into <cache>/data/ (sha256 checked where pinned), unless a "
                                    "local copy (EDITBENCH_DATA_DIR or ../shared/data, or the cache) has it; print "
                                    "where each file is and its sha256. Downloads even when EDITBENCH_OFFLINE or "
                                    "HF_HUB_OFFLINE is set (they only stop implicit downloads on first use).")
    fe.add_argument("names", nargs="*", metavar="NAME", help="datasets or task sets (see --list)")
    fe.add_argument("--list", action="store_true", help="show each source, its hash and whether it is here")
    fe.add_argument("--quiet", action="store_true", help="no progress bars")
    fe.set_defaults(func=_cmd_data_fetch)
    from editbench.cli_mend import add_parser as _add_mend  # `editbench mend train` (editbench/cli_mend.py)
    _add_mend(sub)
    from editbench.cli_disabling import add_parser as _add_disabling  # `editbench disabling` (cli_disabling.py)
    _add_disabling(sub)
    from editbench.cli_compare import add_parser as _add_compare  # `editbench compare` (cli_compare.py)
    _add_compare(sub)
    from editbench.cli_report import add_parser as _add_report  # `editbench report`, `editbench sweep`
    _add_report(sub)
    from editbench.cli_reproduce import add_parser as _add_reproduce; _add_reproduce(sub)  # cli_reproduce.py
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "takes_rest", False):  # factworld build: every option of editbench.factworld.build
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
