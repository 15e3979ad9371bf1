"""Can a small GPT-2 learn a comparison task (mrpc, nli) from the fact world's task blocks? A cheap CPU probe.

    python -m editbench.factworld.probe_tasks --task mrpc --layers 2 --level-steps 1500 --steps 6000

trains a *fresh* GPT-2 (word-level fact-world tokenizer, learned absolute positions) on the task's training
blocks only, and prints every ``--log-every`` steps the accuracy at the label positions of the training
batches (the label word's logit against the other label word's), and -- once the blocks are in the full few-
shot format -- the few-shot accuracy on the evaluation split (:func:`evaluate_task`, the number the bars use).

``--level-steps N`` walks the curriculum of :mod:`editbench.factworld.tasks` (levels 0 -> 3, N steps
each); ``--level-steps 0`` trains on full few-shot blocks from the start, which is how the shipped corpus
teaches the task. This is the experiment behind the curriculum (docs/factworld.md): without it the label
accuracy stays at 0.5; with it a 2-layer model climbs level by level.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from editbench.factworld import tasks as T
from editbench.factworld.evaluate import evaluate_task
from editbench.factworld.tokenizer import build_tokenizer
from editbench.factworld.world import load_world


def level_at(step: int, level_steps: int) -> int:
    return T.FULL if level_steps <= 0 else min(T.FULL, step // level_steps)


def batch(world, tok, task: str, level: int, n_blocks: int, step: int) -> torch.Tensor:
    """About ``n_blocks`` training blocks of ``level`` (one example each below the full level), right-padded."""
    k = T.N_SHOT[task] + 1
    n = n_blocks if level == T.FULL else math.ceil(n_blocks / k)
    docs = T.training_blocks(world, task, n, seed=f"probe-{step}", level=level)[:n_blocks]
    ids = tok(docs, add_special_tokens=False)["input_ids"]
    width = max(map(len, ids))
    return torch.tensor([i + [tok.pad_token_id] * (width - len(i)) for i in ids])


def probe(task: str = "mrpc", layers: int = 2, d: int = 128, heads: int = 4, lr: float = 1e-3,
          batch_blocks: int = 64, steps: int = 6000, level_steps: int = 1500, log_every: int = 200,
          n_eval: int = 100, seed: int = 0, log=print) -> list[dict]:
    """Train and log; returns the log rows (``step``, ``level``, ``label_acc``, ``eval_acc`` or None)."""
    world = load_world()
    tok = build_tokenizer(world)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=512, n_embd=d, n_layer=layers,
                                       n_head=heads, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    label_ids = torch.tensor([tok.convert_tokens_to_ids(w) for w in T.label_words(task)])
    rows, hits, t0 = [], [], time.time()
    for step in range(steps):
        level = level_at(step, level_steps)
        x = batch(world, tok, task, level, batch_blocks, step)
        out = model(input_ids=x, labels=x.masked_fill(x == tok.pad_token_id, -100))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():  # label positions: the label word's logit against the other label word's
            at = torch.isin(x[:, 1:], label_ids)
            logits = out.logits[:, :-1][at][:, label_ids]
            gold = (x[:, 1:][at] == label_ids[1]).long()
            hits.append((logits.argmax(-1) == gold).float().mean().item())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            model.eval()
            ev = evaluate_task(model, tok, world, task, n=n_eval, seed=0).accuracy if level == T.FULL else None
            model.train()
            row = {"step": step + 1, "level": level, "loss": round(out.loss.item(), 4),
                   "label_acc": round(sum(hits[-log_every:]) / len(hits[-log_every:]), 3),
                   "eval_acc": None if ev is None else round(ev, 3), "elapsed_s": round(time.time() - t0)}
            rows.append(row)
            log(json.dumps(row))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m editbench.factworld.probe_tasks",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--task", choices=T.TASKS, default="mrpc")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d", type=int, default=128, help="width (n_embd)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-blocks", type=int, default=64, help="blocks per optimizer step")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--level-steps", type=int, default=1500,
                    help="steps per curriculum level (0 = full few-shot blocks from the start)")
    ap.add_argument("--log-every", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the log rows here as JSON")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = probe(a.task, a.layers, a.d, lr=a.lr, batch_blocks=a.batch_blocks, steps=a.steps,
                 level_steps=a.level_steps, log_every=a.log_every, seed=a.seed, log=lambda s: print(s, flush=True))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"args": vars(a), "log": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
