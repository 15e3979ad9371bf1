"""``editbench mend train`` without the argument parsing: records -> split -> network -> trainer -> saved files.

Writes into ``out`` (default: the cache directory the editor looks in, :func:`~editbench.editors.mend.store.
cache_dir_for`): ``network.safetensors`` + ``network.json`` (the final network; the JSON also records the data,
split, steps, time and threads), ``curve.json`` (validation points + per-step training losses) and
``checkpoint/`` (resumable state). ``--resume`` continues from ``out/checkpoint``.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Callable

import torch

from editbench.editors.base import load_preset
from editbench.editors.mend.hparams import MENDHParams
from editbench.editors.mend.network import save_network
from editbench.editors.mend.train import MENDTrainer, TrainConfig, build_network
from editbench.editors.mend.train_data import split_examples


def mend_hparams(preset_keys: list[str], overrides: dict[str, Any] | None = None) -> MENDHParams:
    values = {**load_preset("mend", preset_keys), **(overrides or {})}
    return MENDHParams(**values)


def train_network(model: torch.nn.Module, tok: Any, records: list, out: str | Path, cfg: TrainConfig,
                  hp: MENDHParams, n_val: int = 100, resume: bool = False, progress: bool = True,
                  save_dtype: torch.dtype = torch.float32, provenance: dict | None = None,
                  log: Callable[[str], None] = print) -> dict:
    """Train (or resume) a MEND network for ``model``; return a summary dict (also saved in ``network.json``)."""
    out = Path(out)
    train, val = split_examples(records, n_val, seed=cfg.seed)
    meta = {**(provenance or {}), "n_train": len(train), "n_val": len(val),
            "val_case_ids": [e.case_id for e in val]}
    net = build_network(model, hp, meta=meta)
    trainer = MENDTrainer(model, tok, net, train, val, cfg)
    ckpt = out / "checkpoint"
    if resume:
        if not (ckpt / "state.json").is_file():
            raise FileNotFoundError(f"--resume: no checkpoint in {ckpt}")
        trainer.load_checkpoint(ckpt)
        log(f"resumed from {ckpt} at step {trainer.step}")
    t0 = time.time()
    trainer.run(cfg.steps, out_dir=out, progress=progress, log=log)
    steps_done = max(1, len(trainer.train_log))
    summary = {"steps": trainer.step, "train_seconds": round(trainer.seconds, 1),
               "seconds_per_step": round(trainer.seconds / steps_done, 3),
               "wall_seconds_this_run": round(time.time() - t0, 1), "torch_threads": torch.get_num_threads(),
               "cpu": platform.processor() or platform.machine(), "device": str(trainer.device),
               "config": cfg.__dict__, "hparams": hp.to_dict(), "n_params": net.n_params(),
               "final_validation": trainer.curve[-1]}
    net.meta.update(summary)
    save_network(net, out, dtype=save_dtype)
    (out / "curve.json").write_text(json.dumps({"validation": trainer.curve, "train": trainer.train_log,
                                                "summary": summary}, indent=1))
    return summary
