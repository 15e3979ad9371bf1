"""The fact world's health probes (registered as ``factworld-recall`` and ``factworld-perplexity``).

- ``factworld-recall``: recall of 200 world facts whose (subject, relation) the stream never edits, each in a
  seeded trained template. The world has 8 facts per subject, so this keeps a health signal up to (and past) one
  edit per subject, where the CounterFact-style pool (one record per subject) runs out of unedited subjects.
- ``factworld-perplexity``: perplexity on 32 filler documents of an epoch the model was never trained on.
"""
from __future__ import annotations

import random

from editbench.factworld.corpus import corpus_texts
from editbench.factworld.world import load_world
from editbench.metrics.health import PerplexityProbe, RecallProbe
from editbench.metrics.probes import ProbeContext, WrappedProbe


class WorldRecall(WrappedProbe):
    name = "factworld-recall"
    metrics = {"recall": "higher"}
    N = 200

    @classmethod
    def build(cls, ctx: ProbeContext) -> "WorldRecall":
        world = load_world()
        edited = {(r.subject.strip(), r.relation_id) for r in ctx.stream}
        rng = random.Random(f"factworld-health:{ctx.seed}")
        free = [f for f in world.facts if (f.subject, f.relation) not in edited]
        pick = rng.sample(free, min(cls.N, len(free)))
        prompts = [world.prompt(f, rng.choice(f.trained_templates(world))) for f in pick]
        return cls(RecallProbe(ctx.tok, prompts, [f.object for f in pick], key="recall"))


class FillerPerplexity(WrappedProbe):
    name = "factworld-perplexity"
    metrics = {"ppl": "lower"}
    N_TEXTS = 32

    @classmethod
    def build(cls, ctx: ProbeContext) -> "FillerPerplexity":
        texts = corpus_texts(load_world(), epoch=10**6, facts=False, tasks=False)[:cls.N_TEXTS]
        return cls(PerplexityProbe(ctx.tok, texts))
