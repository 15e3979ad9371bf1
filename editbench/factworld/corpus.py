"""The training corpus of the fact world: biographies, question-answer lines, task blocks and filler.

Facts are taught with *knowledge augmentation* (Allen-Zhu & Li, "Physics of Language Models 3.1"): each
epoch every subject gets fresh biographies, each a random permutation of the subject's relations, each
sentence rendered in a random *trained* template of that fact, with the full name written out in every
sentence. Storing attributes on the name tokens (subject enrichment) is then the cheapest way to predict the
objects -- the mechanism ROME/MEMIT edit -- rather than a late lookup tied to one sentence position.

A held-out (subject, template) pair is never written: biographies only use ``Fact.trained_templates``, the
question lines use the question template, and the task blocks are about people outside the world.

Documents are plain strings of space-separated words; ``corpus_texts(world, epoch)`` is a pure function of
its arguments (and of :class:`CorpusConfig`).
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Iterator

from editbench.factworld import tasks as T
from editbench.factworld.filler import filler_sentence, filler_words  # noqa: F401 (filler_words: re-exported)
from editbench.factworld.world import World, load_world


@dataclass(frozen=True)
class CorpusConfig:
    """How much of each kind of document one epoch holds."""

    bios_per_subject: int = 1  # fresh random biographies per subject per epoch
    qa_prob: float = 0.25  # chance a biography ends with one question-answer line ("Where was X born? Paris .")
    task_blocks: int = 16  # few-shot blocks per task per epoch
    filler_docs: int = 30  # generic documents of 3-6 filler sentences per epoch
    intro_prob: float = 0.0  # chance a biography opens with an intro line: the name, then its objects (see below)
    # mrpc/nli curriculum (tasks.LEVELS): over the first N epochs their blocks climb levels 0 -> 3, N/4 epochs
    # each, then stay at the full few-shot format; 0 = full blocks from the start (the shipped recipe)
    task_curriculum_epochs: int = 0
    comparison_blocks: int = -1  # blocks per epoch for mrpc and nli; -1 = task_blocks (the shipped recipe)
    tasks_only_epochs: int = 0  # the first N epochs hold only task blocks (no biographies, no filler)


def task_level(epoch: int, cfg: CorpusConfig) -> int:
    """The comparison tasks' curriculum level in ``epoch`` (0-based)."""
    if cfg.task_curriculum_epochs <= 0:
        return T.FULL
    return min(T.FULL, epoch * len(T.LEVELS) // cfg.task_curriculum_epochs)


def intro_line(world: World, subject: str, rng: random.Random) -> str:
    """``"Arlo Milo Vance : Paris , teacher , French , ... ."`` -- the subject's objects in random order right
    after the name. The word after the name's last token is then one of the subject's own objects, so the
    model is pushed to assemble the subject's attributes *at the subject's last token* (what real text does:
    "Danielle Darrieux , the French actress ..."), the subject enrichment ROME and MEMIT edit."""
    objs = [f.object for f in world.facts_of(subject)]
    rng.shuffle(objs)
    return f"{subject} : " + " , ".join(objs) + " ."


def biography(world: World, subject: str, rng: random.Random, qa_prob: float = 0.25,
              intro_prob: float = 0.0) -> str:
    facts = world.facts_of(subject)
    rng.shuffle(facts)
    sents = [world.sentence(f, rng.choice(f.trained_templates(world))) for f in facts]
    if intro_prob and rng.random() < intro_prob:
        sents.insert(0, intro_line(world, subject, rng))
    if rng.random() < qa_prob:
        f = rng.choice(facts)
        sents.append(f"{world.relation(f.relation).question.format(subject)} {f.object} .")
    return " ".join(sents)


def filler_doc(rng: random.Random) -> str:
    return " ".join(filler_sentence(rng) + " ." for _ in range(rng.randint(3, 6)))


def corpus_texts(world: World, epoch: int = 0, cfg: CorpusConfig = CorpusConfig(), facts: bool = True,
                 filler: bool = True, tasks: bool = True) -> list[str]:
    """The documents of one training epoch (shuffled). ``facts``/``filler``/``tasks`` select the kinds,
    e.g. ``corpus_texts(w, filler=True, facts=False, tasks=False)`` is generic text only."""
    rng = random.Random(f"corpus-{world.hash}-{epoch}")
    docs: list[str] = []
    if epoch < cfg.tasks_only_epochs:
        facts = filler = False
    if facts:
        for _ in range(cfg.bios_per_subject):
            docs += [biography(world, s, rng, cfg.qa_prob, cfg.intro_prob) for s in world.subjects]
    if filler:
        docs += [filler_doc(rng) for _ in range(cfg.filler_docs)]
    if tasks:
        for task in T.TASKS:
            n = cfg.comparison_blocks if task in T.COMPARISON and cfg.comparison_blocks >= 0 else cfg.task_blocks
            docs += T.training_blocks(world, task, n, seed=f"{epoch}", level=task_level(epoch, cfg))
    rng.shuffle(docs)
    return docs


def endless_corpus_texts() -> Iterator[str]:
    """The shipped world's training documents, epoch after epoch (endless; the caller stops reading): the
    ``"factworld"`` corpus of :mod:`editbench.data.corpora`, which reaches it by name (the stack never imports
    the fact world)."""
    world = load_world()
    for epoch in itertools.count():
        yield from corpus_texts(world, epoch=epoch)
