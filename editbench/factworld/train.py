"""Train a GPT-2-architecture model on the fact world's corpus (CPU-friendly, nanoGPT style).

Each epoch draws a fresh corpus (:func:`corpus_texts` with the epoch number: new biographies, task blocks
and filler), tokenizes it, groups whole documents (each followed by ``<|endoftext|>``, one per row) into
length-bucketed batches of about ``tokens_per_batch`` tokens, and takes AdamW steps with linear warmup + cosine decay and gradient clipping.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from editbench.factworld.corpus import CorpusConfig, corpus_texts
from editbench.factworld.world import World


@dataclass(frozen=True)
class TrainConfig:
    """Model shape and optimization. Defaults are the shipped recipe."""

    n_layer: int = 8
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 512
    tokens_per_batch: int = 16384  # rows x width per optimizer step (rows are whole documents)
    epochs: int = 905
    lr: float = 1e-2
    min_lr_frac: float = 0.05
    warmup_steps: int = 200
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    dropout: float = 0.0
    threads: int = 1  # on a shared 2-core machine one thread beats two (no OpenMP spin-wait oversubscription)
    seed: int = 0
    corpus: CorpusConfig = CorpusConfig()


def model_config(cfg: TrainConfig, vocab_size: int, eos_id: int) -> GPT2Config:
    return GPT2Config(vocab_size=vocab_size, n_positions=cfg.n_positions, n_embd=cfg.n_embd,
                      n_layer=cfg.n_layer, n_head=cfg.n_head, activation_function="gelu",
                      resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                      bos_token_id=eos_id, eos_token_id=eos_id)


def make_batches(docs_ids: list[list[int]], tokens_per_batch: int, eos: int, pad: int,
                 rng: random.Random) -> list[torch.Tensor]:
    """One document per row (each + eos, so every document starts at position 0 as prompts do at test time),
    rows grouped by length so padding is small, at most ``tokens_per_batch`` tokens (incl. padding) per
    batch; batches in random order."""
    docs = sorted((ids + [eos] for ids in docs_ids), key=len)
    batches, cur = [], []
    for ids in docs:
        if cur and (len(cur) + 1) * len(ids) > tokens_per_batch:
            batches.append(cur)
            cur = []
        cur.append(ids)
    if cur:
        batches.append(cur)
    out = []
    for b in batches:
        width = max(len(d) for d in b)
        out.append(torch.tensor([d + [pad] * (width - len(d)) for d in b], dtype=torch.long))
    rng.shuffle(out)
    return out


def epoch_batches(world: World, tok, cfg: TrainConfig, epoch: int) -> list[torch.Tensor]:
    docs = corpus_texts(world, epoch, cfg.corpus)
    ids = tok(docs, add_special_tokens=False)["input_ids"]
    return make_batches(ids, cfg.tokens_per_batch, tok.eos_token_id, tok.pad_token_id,
                        random.Random(f"batches-{cfg.seed}-{epoch}"))


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def train(world: World, tok, cfg: TrainConfig, on_epoch: Callable[[int, GPT2LMHeadModel, dict], None] | None = None,
          log: Callable[[str], None] = print, device: str = "cpu",
          max_time_s: float | None = None, init: GPT2LMHeadModel | None = None) -> tuple[GPT2LMHeadModel, dict]:
    """Train a fresh model (or continue training ``init``, a model of the same world: a second stage);
    ``on_epoch(epoch, model, stats)`` is called after every epoch (for evaluation and logging). Returns the
    model (eval mode, on ``device``) and training statistics.

    ``max_time_s`` fits the run into a wall-clock budget: after the first epoch the epoch count becomes
    ``min(cfg.epochs, budget / time of that epoch)`` and the cosine schedule is laid over the new total (the
    warmup is unchanged). The epochs actually run are in ``stats["epochs"]``; with no budget the run is a pure
    function of ``cfg``. The data order and
    initialization depend only on ``cfg`` (the initialization is drawn on the CPU), so a GPU build follows the
    same recipe (results differ only by floating-point nondeterminism)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model = (init if init is not None else GPT2LMHeadModel(model_config(cfg, len(tok), tok.eos_token_id))).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)
    first = epoch_batches(world, tok, cfg, 0)
    steps_per_epoch = len(first)
    total = steps_per_epoch * cfg.epochs
    n_tok = sum(int((b != tok.pad_token_id).sum()) for b in first)
    log(f"[train] {sum(p.numel() for p in model.parameters()):,} params, {n_tok:,} tokens/epoch in "
        f"{steps_per_epoch} steps, {cfg.epochs} epochs, {total} steps")
    step, t0, stats = 0, time.time(), {"tokens": 0}
    n_epochs = cfg.epochs
    epoch = 0
    while epoch < n_epochs:
        batches = first if epoch == 0 else epoch_batches(world, tok, cfg, epoch)
        model.train()
        losses = []
        for x in batches:
            x = x.to(device)
            labels = x.masked_fill(x == tok.pad_token_id, -100)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, cfg)
            # rows are right-padded single documents: causal attention never lets a real token see padding,
            # so no attention mask is needed (and SDPA runs ~1.5x faster without one)
            loss = model(input_ids=x, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            losses.append(loss.item())
            stats["tokens"] += int((x != tok.pad_token_id).sum())
            step += 1
        model.eval()
        if epoch == 0:
            t_first = time.time()
        if max_time_s is not None and epoch == min(2, n_epochs - 1):
            # epochs 2-3 time the steady state (the first pays one-off costs such as CUDA start-up)
            per_epoch = 1.1 * ((time.time() - t_first) / epoch if epoch else time.time() - t0)
            n_epochs = max(epoch + 1, min(cfg.epochs, int((max_time_s - (time.time() - t0)) / per_epoch) + epoch + 1))
            total = steps_per_epoch * n_epochs
            log(f"[train] time budget {max_time_s:.0f}s at {per_epoch:.2f}s/epoch: {n_epochs} epochs")
        ep = {"epoch": epoch + 1, "loss": sum(losses) / len(losses), "step": step,
              "elapsed_s": round(time.time() - t0, 1), "lr": lr_at(step - 1, total, cfg)}
        log(f"[train] epoch {epoch + 1}/{n_epochs} loss {ep['loss']:.4f} lr {ep['lr']:.2e} "
            f"{ep['elapsed_s']:.0f}s")
        if on_epoch is not None:
            on_epoch(epoch + 1, model, {**ep, "epochs": n_epochs})
        epoch += 1
    stats.update(epochs=n_epochs, steps=step, train_time_s=round(time.time() - t0, 1))
    return model, stats
