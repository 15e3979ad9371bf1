"""Batched evaluation of a fact-world model: top-1 fact recall and few-shot task accuracy.

Recall: a (subject, template) pair is recalled when the fact's one-token object is the argmax of the next-
token distribution after the prompt. *Trained* pairs are the templates the corpus wrote the fact in;
*held-out* pairs are each fact's held-out template (never in the corpus). ``type_accuracy``: the argmax is
one of the relation's objects (the model knows what kind of answer the prompt asks for).
Tasks: the few-shot prompt (fixed demonstrations + query) is right; ``accuracy`` compares the logits of the
two label words, ``strict_accuracy`` asks that the right label word be the argmax over the whole vocabulary.
Copying (:func:`evaluate_copying`): a random sequence of world words written twice; the share of the second
copy's tokens (after its first) predicted top-1 -- the in-context copying (induction) that real LMs have and
that the comparison tasks (mrpc, nli) need some form of.
"""
from __future__ import annotations

import random

import torch

from editbench.factworld import tasks as T
from editbench.factworld.world import World


@torch.no_grad()
def next_token_logits(model, tok, prompts: list[str], batch_size: int = 256) -> torch.Tensor:
    """Logits of the token after each prompt, ``[len(prompts), vocab]`` (right padding, batched)."""
    out = []
    dev = next(model.parameters()).device
    for i in range(0, len(prompts), batch_size):
        enc = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts[i:i + batch_size]]
        lens = torch.tensor([len(e) for e in enc])
        x = torch.full((len(enc), int(lens.max())), tok.pad_token_id, dtype=torch.long)
        for j, e in enumerate(enc):
            x[j, :len(e)] = torch.tensor(e)
        logits = model(input_ids=x.to(dev), attention_mask=(x != tok.pad_token_id).long().to(dev)).logits
        out.append(logits[torch.arange(len(enc), device=dev), (lens - 1).to(dev)].float().cpu())
    return torch.cat(out)


def _token_id(tok, word: str) -> int:
    ids = tok(" " + word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"{word!r} is not a single token: {ids}")
    return ids[0]


def evaluate_recall(model, tok, world: World, n_facts: int | None = None, seed: int = 0) -> dict:
    """Top-1 recall on trained and held-out (subject, template) pairs, overall and per relation.
    ``n_facts`` evaluates a seeded sample of facts (all facts if None)."""
    facts = list(world.facts)
    if n_facts is not None and n_facts < len(facts):
        facts = random.Random(f"recall-{seed}").sample(facts, n_facts)
    prompts, targets, kinds, rels = [], [], [], []
    pools = {r.id: torch.tensor([_token_id(tok, o) for o in r.objects]) for r in world.relations}
    for f in facts:
        for t in range(len(world.relation(f.relation).templates)):
            prompts.append(world.prompt(f, t))
            targets.append(_token_id(tok, f.object))
            kinds.append("heldout" if t == f.heldout else "trained")
            rels.append(f.relation)
    pred = next_token_logits(model, tok, prompts).argmax(-1)
    hit = (pred == torch.tensor(targets)).tolist()
    res: dict = {"n_facts": len(facts)}
    # the argmax is *some* object of the right relation (learned long before the facts themselves)
    res["type_accuracy"] = _mean([bool((pools[r] == p).any()) for p, r in zip(pred.tolist(), rels)])
    for kind in ("trained", "heldout"):
        sel = [h for h, k in zip(hit, kinds) if k == kind]
        res[kind] = sum(sel) / len(sel)
        res[f"{kind}_by_relation"] = {
            r.id: _mean([h for h, k, rr in zip(hit, kinds, rels) if k == kind and rr == r.id])
            for r in world.relations}
    return res


def _mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def evaluate_task(model, tok, world: World, task: str, n: int = 200, seed: int = 0) -> T.TaskResult:
    """Few-shot accuracy on ``n`` balanced evaluation examples of ``task``."""
    exs = T.make_examples(world, task, n, seed)
    logits = next_token_logits(model, tok, [T.build_prompt(world, task, e) for e in exs], batch_size=64)
    ids = torch.tensor([_token_id(tok, w) for w in T.label_words(task)])
    gold = torch.tensor([e.label for e in exs])
    acc = (logits[:, ids].argmax(-1) == gold).float().mean().item()
    strict = (logits.argmax(-1) == ids[gold]).float().mean().item()
    return T.TaskResult(task, acc, strict, n)


@torch.no_grad()
def evaluate_copying(model, tok, world: World, n: int = 50, length: int = 10, seed: int = 0) -> float:
    """Top-1 accuracy on the second copy of ``n`` random ``length``-word sequences written twice (objects and
    name words, no repeats within a sequence), not counting the second copy's first token (unpredictable)."""
    pool = sorted({o for r in world.relations for o in r.objects} | {p for s in world.subjects for p in s.split()})
    rng = random.Random(f"copy-{seed}")
    seqs = [rng.sample(pool, length) for _ in range(n)]
    x = torch.tensor([tok(" ".join(s + s), add_special_tokens=False)["input_ids"] for s in seqs])
    if x.shape[1] != 2 * length:
        raise ValueError("copy sequences must be one token per word")
    dev = next(model.parameters()).device
    pred = model(input_ids=x.to(dev)).logits.argmax(-1).cpu()
    return (pred[:, length:2 * length - 1] == x[:, length + 1:]).float().mean().item()


def evaluate_tasks(model, tok, world: World, n: int = 200, seed: int = 0) -> dict:
    out = {}
    for task in T.TASKS:
        r = evaluate_task(model, tok, world, task, n, seed)
        out[task] = {"accuracy": r.accuracy, "strict_accuracy": r.strict_accuracy, "n": r.n}
    return out
