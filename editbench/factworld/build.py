"""Build the embedded fact-world model: generate the world, train, evaluate, save (HF format + metadata).

    python -m editbench.factworld.build --out DIR [--quick] [--seed N] [--epochs N]

writes ``DIR/model.safetensors``, ``config.json``, the tokenizer files and ``factworld.json`` (world hash,
world/corpus/train configs, seed, measured metrics, build time, sizes). ``--quick`` runs the same recipe on a
small world (40 subjects) with a small model for 20 short epochs (CI smoke test, about a minute on one core). The shipped
checkpoint in ``editbench/models/embedded/factworld`` is the output of the full build with seed 0.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch
import transformers

from editbench.factworld.corpus import CorpusConfig, task_level
from editbench.factworld.evaluate import evaluate_copying, evaluate_recall, evaluate_tasks
from editbench.factworld.tokenizer import build_tokenizer
from editbench.factworld.train import TrainConfig, train
from editbench.factworld.world import WorldConfig, generate_world

FULL_WORLD = WorldConfig(n_subjects=1000, n_relations=8)
# The shipped recipe (measured on one H200 GPU, 378 s; see docs/factworld.md for the sweep that chose it).
FULL_TRAIN = TrainConfig()
# The second stage (``--recipe tasks --init-from DIR``): continue training a built model with the mrpc/nli
# curriculum (tasks.LEVELS); every fact is replayed each epoch once the biographies are back. Shape fields are
# taken from the initial model.
# Sized for 2 CPU cores (docs/factworld.md): small steps, 12x more mrpc/nli blocks than the first stage, 30
# epochs on each of the curriculum's levels 0-2 with nothing but task blocks (mixed with the biographies, level
# 0 was not learned in 30 epochs), then 100 epochs of the full few-shot format with biographies and filler back
# (with 60, nli stopped at 0.835). The cosine is laid over epoch 0's step count, and the task-only epochs are
# shorter, so the learning rate reaches its floor about 40 epochs before the end (logged in the history).
TASK_STAGE = TrainConfig(epochs=190, lr=3e-3, warmup_steps=20, tokens_per_batch=4096,
                         corpus=CorpusConfig(task_blocks=32, comparison_blocks=384, task_curriculum_epochs=120,
                                             tasks_only_epochs=90))
RECIPES = {"full": FULL_TRAIN, "tasks": TASK_STAGE}
QUICK_WORLD = WorldConfig(n_subjects=40, n_relations=8)
QUICK_TRAIN = TrainConfig(n_layer=6, n_embd=64, n_head=4, epochs=20, tokens_per_batch=512, lr=5e-3,
                          warmup_steps=30, corpus=CorpusConfig(bios_per_subject=2, task_blocks=2,
                                                               filler_docs=4))
QUICK_TASK_STAGE = dataclasses.replace(QUICK_TRAIN, epochs=4, warmup_steps=5, corpus=dataclasses.replace(
    QUICK_TRAIN.corpus, task_blocks=4, task_curriculum_epochs=4))
QUICK_RECIPES = {"full": QUICK_TRAIN, "tasks": QUICK_TASK_STAGE}
BARS = {"trained": 0.90, "heldout": 0.70, "task": 0.85}


def _save(model, tok, out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "factworld.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def check_recipe(recipe: str, init_from) -> None:
    """ValueError unless ``recipe`` is known and ``init_from`` is given exactly for the continuing ``tasks`` recipe."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    if (recipe == "tasks") != (init_from is not None):
        raise ValueError("the 'tasks' recipe continues a built model: give it init_from (--init-from DIR), and only "
                         "it")


def _load_init(init_from, world, tok):
    """The model to continue from, checked against the world; returns (model, its factworld.json or {})."""
    from transformers import GPT2LMHeadModel

    src = Path(init_from)
    meta = json.loads((src / "factworld.json").read_text()) if (src / "factworld.json").is_file() else {}
    if meta.get("world_hash", world.hash) != world.hash:
        raise ValueError(f"--init-from {src}: built for world {meta['world_hash'][:12]}, not {world.hash[:12]}")
    model = GPT2LMHeadModel.from_pretrained(src)
    if model.config.vocab_size != len(tok):
        raise ValueError(f"--init-from {src}: vocabulary {model.config.vocab_size} != this world's {len(tok)}")
    return model, meta


def build(out_dir, quick: bool = False, seed: int = 0, epochs: int | None = None, eval_every: int = 5,
          n_task_eval: int = 200, device: str = "cpu", log=print, max_time_s: float | None = None,
          overrides: dict | None = None, recipe: str = "full", init_from=None) -> dict:
    """Build a fact-world model into ``out_dir``; returns the metrics (also stored in factworld.json).
    A checkpoint is saved at every periodic evaluation (``"complete": false``) and at the end.
    ``overrides`` replaces :class:`TrainConfig` fields (e.g. ``{"n_embd": 128}``); ``max_time_s`` fits the
    epoch count into a wall-clock budget (see :func:`train`). ``recipe="tasks"`` with ``init_from`` (a built
    model directory) is the second stage: it continues training that model (see :data:`TASK_STAGE`); the
    first stage's factworld.json is kept under ``"init"``. All of it is recorded in factworld.json."""
    t_start = time.time()
    out = Path(out_dir)
    check_recipe(recipe, init_from)
    wcfg = dataclasses.replace(QUICK_WORLD if quick else FULL_WORLD, seed=seed)
    tcfg = dataclasses.replace((QUICK_RECIPES if quick else RECIPES)[recipe], seed=seed)
    if epochs is not None:
        tcfg = dataclasses.replace(tcfg, epochs=epochs)
    if overrides:
        overrides = dict(overrides)
        if isinstance(overrides.get("corpus"), dict):
            overrides["corpus"] = dataclasses.replace(tcfg.corpus, **overrides["corpus"])
        tcfg = dataclasses.replace(tcfg, **overrides)
    world = generate_world(wcfg)
    tok = build_tokenizer(world)
    init, init_meta = (None, {}) if init_from is None else _load_init(init_from, world, tok)
    if init is not None:
        c = init.config
        tcfg = dataclasses.replace(tcfg, n_layer=c.n_layer, n_embd=c.n_embd, n_head=c.n_head, n_positions=c.n_positions)
    log(f"[build] world {world.hash[:12]}: {len(world.subjects)} subjects x {len(world.relations)} relations "
        f"= {len(world.facts)} facts, vocab {len(tok)}")
    meta = {
        "world_hash": world.hash, "world_config": dataclasses.asdict(wcfg), "train_config": dataclasses.asdict(tcfg),
        "seed": seed, "quick": quick, "complete": False, "history": [], "device": device,
        "max_time_s": max_time_s, "recipe": recipe, "bars": dict(BARS),  # read by the loader's partial-build warning
        "init": None if init_from is None else {"from": str(init_from), **init_meta},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
    }

    def on_epoch(epoch, model, stats):
        last = epoch == stats["epochs"]
        if epoch % eval_every and not last:
            return
        rec = evaluate_recall(model, tok, world, n_facts=min(400, len(world.facts)), seed=1)
        entry = {**stats, "trained": round(rec["trained"], 4), "heldout": round(rec["heldout"], 4)}
        if recipe == "tasks":  # the stage is about the tasks: watch them (and the curriculum level) too
            entry["level"] = task_level(epoch - 1, tcfg.corpus)
            entry["tasks"] = {t: round(v["accuracy"], 3) for t, v in
                              evaluate_tasks(model, tok, world, n=min(100, n_task_eval), seed=1).items()}
        meta["history"].append(entry)
        log(f"[build] epoch {epoch}: sample recall trained {rec['trained']:.3f} heldout {rec['heldout']:.3f}"
            + (f"; level {entry['level']} tasks {entry['tasks']}" if "tasks" in entry else ""))
        if not last:
            _save(model, tok, out, {**meta, "build_time_s": round(time.time() - t_start, 1)})

    model, tstats = train(world, tok, tcfg, on_epoch=on_epoch, log=log, device=device, max_time_s=max_time_s,
                          init=init)
    t_eval = time.time()
    recall = evaluate_recall(model, tok, world)
    task_acc = evaluate_tasks(model, tok, world, n=n_task_eval, seed=0)
    metrics = {
        "recall_trained": recall["trained"], "recall_heldout": recall["heldout"],
        "recall_trained_by_relation": recall["trained_by_relation"],
        "recall_heldout_by_relation": recall["heldout_by_relation"],
        "tasks": task_acc, "copying": evaluate_copying(model, tok, world), "n_facts": recall["n_facts"],
        "eval_time_s": round(time.time() - t_eval, 1),
        "train_tokens": tstats["tokens"], "train_steps": tstats["steps"], "train_epochs": tstats["epochs"], "train_time_s": tstats["train_time_s"],
        "n_params": sum(p.numel() for p in model.parameters()),
    }
    metrics["meets_bars"] = (metrics["recall_trained"] >= BARS["trained"] and metrics["recall_heldout"]
                             >= BARS["heldout"] and all(t["accuracy"] >= BARS["task"] for t in task_acc.values()))
    meta.update(metrics=metrics, complete=True, build_time_s=round(time.time() - t_start, 1))
    _save(model.cpu(), tok, out, meta)
    meta["checkpoint_bytes"] = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    (out / "factworld.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log(f"[build] done in {meta['build_time_s']:.0f}s: recall trained {metrics['recall_trained']:.3f} heldout "
        f"{metrics['recall_heldout']:.3f}; tasks " + ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in task_acc.items())
        + f"; copying {metrics['copying']:.2f}; {meta['checkpoint_bytes'] / 1e6:.1f} MB in {out}")
    return metrics


def parse_overrides(items: list[str]) -> dict:
    """``["n_embd=128", "corpus.intro_prob=0.5"]`` -> TrainConfig overrides (``corpus.*`` -> a CorpusConfig)."""
    def typed(cls, key, val, item):
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        if key not in types or types[key] not in ("int", "float", int, float):
            choices = ", ".join(k for k, t in types.items() if t in ("int", "float", int, float))
            raise ValueError(f"--set {item}: not a numeric {cls.__name__} field; choose from {choices}")
        return float(val) if types[key] in ("float", float) else int(val)

    train_kw, corpus_kw = {}, {}
    for item in items:
        key, _, val = item.partition("=")
        if key.startswith("corpus."):
            corpus_kw[key[7:]] = typed(CorpusConfig, key[7:], val, item)
        else:
            train_kw[key] = typed(TrainConfig, key, val, item)
    if corpus_kw:
        train_kw["corpus"] = corpus_kw  # merged into the recipe's CorpusConfig by build()
    return train_kw


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="editbench factworld build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (HF format)")
    ap.add_argument("--quick", action="store_true", help="small world, small model, few epochs (CI)")
    ap.add_argument("--recipe", choices=sorted(RECIPES), default="full",
                    help="full: train from scratch (the shipped first stage); tasks: continue --init-from with the "
                         "mrpc/nli curriculum (the shipped second stage)")
    ap.add_argument("--init-from", metavar="DIR", default=None, help="a built model to continue (recipe tasks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epoch count")
    ap.add_argument("--eval-every", type=int, default=5, help="epochs between sample evaluations/checkpoints")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: the same recipe, much faster")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="fit the epoch count into this wall-clock budget (measured after 3 epochs)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a TrainConfig field, e.g. --set n_embd=128 --set lr=3e-3, or a CorpusConfig field "
                         "as corpus.FIELD, e.g. --set corpus.task_blocks=96 (repeatable)")
    a = ap.parse_args(argv)
    try:
        overrides = parse_overrides(a.set)
        check_recipe(a.recipe, a.init_from)  # a usage error before the world is generated
    except ValueError as e:
        ap.error(str(e))
    metrics = build(a.out, quick=a.quick, seed=a.seed, epochs=a.epochs, eval_every=a.eval_every,
                    n_task_eval=40 if a.quick else 200, device=a.device, log=lambda s: print(s, flush=True),
                    max_time_s=None if a.max_minutes is None else 60 * a.max_minutes, overrides=overrides,
                    recipe=a.recipe, init_from=a.init_from)
    return 0 if metrics["meets_bars"] or a.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
