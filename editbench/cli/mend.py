"""``editbench mend train``: meta-train MEND's editor network for a model (front end of editors/mend/pipeline.py).

    editbench mend train --model smollm2-135m --dataset zsre-train [--steps 600] [--out DIR] [--resume]

Writes network.safetensors + network.json, curve.json + curve.png (validation ES/PS/locality KL) and a resumable
checkpoint/ into --out (default: the cache directory `--editor mend` looks in for that model).
"""
from __future__ import annotations

from editbench.cli.common import error



def add_parser(sub) -> None:
    m = sub.add_parser("mend", help="MEND: meta-train its editor network for a model")
    ms = m.add_subparsers(dest="mend_cmd", required=True)
    t = ms.add_parser("train", help="meta-train the MEND network (progress bar, checkpoints, validation curve)",
                      description=__doc__.split("\n\n")[0])
    t.add_argument("--model", required=True)
    t.add_argument("--dataset", default="zsre-train",
                   help="training records (default zsre-train: zsRE's train split, which no suite evaluates on; "
                        "for the fact world: factworld-mend-train, relations the suites never edit)")
    t.add_argument("--zsre-target", choices=("alt", "answers"), default="alt",
                   help="zsRE edit target (default alt, the counterfactual answer, as MEND's reference)")
    t.add_argument("--steps", type=int, default=None, help="total training steps (default 2000)")
    t.add_argument("--n-val", type=int, default=100, help="records held out for validation (default 100)")
    t.add_argument("--val-every", type=int, default=None)
    t.add_argument("--accumulate", type=int, default=None, help="steps per optimizer update (default 4)")
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--rank", type=int, default=None, help="override the preset's rank")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--out", default=None, help="output directory (default: the cache the editor reads)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    t.add_argument("--allow-eval-overlap", action="store_true",
                   help="allow training on a dataset the suites evaluate on (results on it are then not held out)")
    t.add_argument("--float16", action="store_true", help="save the final network's parameters as float16")
    t.add_argument("--device", default="cpu")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_mend_train)


def _error(msg: str) -> int:
    return error("mend train", msg)


def _cmd_mend_train(args) -> int:
    from pathlib import Path

    import torch

    from editbench.data import load_records
    from editbench.editors.mend.pipeline import mend_hparams, train_network
    from editbench.editors.mend.store import cache_dir_for, safe_name
    from editbench.editors.mend.train import TrainConfig, with_overrides
    from editbench.editors.mend.train_data import EVAL_DATASETS
    from editbench.report.mend_plots import plot_mend_curve
    from editbench.runner import checks
    from editbench.runner.experiment import ExperimentError

    try:
        checks.check_model(args.model)
        checks.check_device(args.device)
        for opt, v in (("--steps", args.steps), ("--n-val", args.n_val), ("--val-every", args.val_every),
                       ("--accumulate", args.accumulate), ("--rank", args.rank)):
            checks.check_count(opt, v)
        if args.dataset in EVAL_DATASETS and not args.allow_eval_overlap:
            raise ExperimentError(f"--dataset {args.dataset!r}: the suites evaluate on it, so a network trained on "
                                  "it would be scored on its training records; use zsre-train (or another file), "
                                  "or pass --allow-eval-overlap")
        checks.check_dataset(args.dataset, args.model)
        out = Path(args.out) if args.out else cache_dir_for(safe_name(args.model))
        checks.check_out_dir(str(out), "--out")
        if args.resume and not (out / "checkpoint" / "state.json").is_file():
            raise ExperimentError(f"--resume: no checkpoint in {out / 'checkpoint'}")
    except ExperimentError as e:
        return _error(str(e))
    from editbench.models.loader import load_model

    lm = load_model(args.model, device=args.device)
    records, errors = load_records(args.dataset, on_error="collect", target=args.zsre_target)
    if errors:
        print(f"{len(errors)} record(s) skipped, e.g. {errors[0]}")
    hp = mend_hparams(lm.preset_keys, {"rank": args.rank} if args.rank else None)
    cfg = with_overrides(TrainConfig(), steps=args.steps, val_every=args.val_every, accumulate=args.accumulate,
                         lr=args.lr, seed=args.seed)
    prov = {"model_id": lm.model_id, "model_hash": lm.model_hash, "dataset": args.dataset,
            "zsre_target": args.zsre_target, "n_records": len(records)}
    try:
        summary = train_network(lm.model, lm.tok, records, out, cfg, hp, n_val=args.n_val, resume=args.resume,
                                progress=not args.quiet, provenance=prov,
                                save_dtype=torch.float16 if args.float16 else torch.float32)
    except ValueError as e:
        return _error(str(e))
    png = plot_mend_curve(out / "curve.json")
    print(f"network written to {out} ({summary['steps']} steps, {summary['seconds_per_step']} s/step, "
          f"{summary['torch_threads']} thread(s)); validation {summary['final_validation']}; curve {png}")
    return 0
