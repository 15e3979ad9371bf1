"""The embedded fact world: a seeded synthetic world, its training corpus, in-world tasks, CounterFact-format
records, and the build of the GPT-2 model that knows it (a fast fixture for code paths; see docs/factworld.md).

Public API::

    load_world(seed=0) / generate_world(WorldConfig(...)) -> World      world.hash, world.facts, world.prompt(...)
    corpus_texts(world, epoch=0) -> list[str]                           one epoch of training documents
    factworld_records(n=None, seed=0) -> list[dict]                     CounterFact (ROME format) records
    tasks.make_examples / tasks.build_prompt / tasks.label_words         the four in-world few-shot tasks
    evaluate_recall(model, tok, world) / evaluate_tasks(model, tok, world)
    build(out_dir, quick=False, seed=0) -> dict                         python -m editbench.factworld.build
    EMBEDDED_DIR                                                         the shipped checkpoint directory
"""
from editbench.factworld import tasks
from editbench.factworld.corpus import CorpusConfig, corpus_texts
from editbench.factworld.counterfact import factworld_records
from editbench.factworld.evaluate import evaluate_recall, evaluate_task, evaluate_tasks
from editbench.factworld.world import RELATIONS, Fact, Relation, World, WorldConfig, generate_world, load_world
from editbench.factworld.profile import CHECKPOINT_DIR as EMBEDDED_DIR


def build(out_dir, quick: bool = False, seed: int = 0, **kw) -> dict:
    """Build a fact-world model into ``out_dir`` (see :mod:`editbench.factworld.build`)."""
    # imported here: the build imports transformers (`import editbench.factworld.build` 5.7 s cold against 1.8 s
    # for this package, measured); the records, probes and tasks need none of it
    from editbench.factworld.build import build as _build

    return _build(out_dir, quick=quick, seed=seed, **kw)


__all__ = ["EMBEDDED_DIR", "RELATIONS", "CorpusConfig", "Fact", "Relation", "World", "WorldConfig", "build",
           "corpus_texts", "evaluate_recall", "evaluate_task", "evaluate_tasks", "factworld_records",
           "generate_world", "load_world", "tasks"]
