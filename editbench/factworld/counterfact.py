"""CounterFact-format edit records generated from the fact world (ROME's JSON layout).

One record per subject (subjects are unique across records), for a seeded random relation:

- ``requested_rewrite.prompt``: a *trained* template of that (subject, relation), ``{}`` for the subject;
  ``target_true`` the world's object, ``target_new`` another object of the same relation.
- ``paraphrase_prompts``: the fact's *held-out* template (never in the training corpus), plain and after a
  generic filler sentence (as CounterFact's paraphrases follow a short unrelated prefix).
- ``neighborhood_prompts``: other subjects with the same relation *and* the same true object, each in one of
  its trained templates (their right answer stays ``target_true`` after the edit).
- ``attribute_prompts``: other subjects whose object for the relation is ``target_new``.
- ``generation_prompts``: the subject in the relation's question and completion templates.
- ``subject_facts`` (an extra key the ROME parser ignores): the subject's *other* facts as (prompt, target),
  to measure whether an edit wrecks what the model knows about the subject.
"""
from __future__ import annotations

import random

from editbench.factworld.corpus import filler_sentence
from editbench.factworld.world import World, load_world

N_NEIGHBORS = 10


def _trained_prompt(world: World, subject: str, rid: str, rng: random.Random) -> str:
    f = world.fact(subject, rid)
    return world.prompt(f, rng.choice(f.trained_templates(world)))


_BY_OBJECT: dict[str, dict] = {}


def _subjects_by_object(world: World) -> dict[tuple[str, str], list[str]]:
    """(relation id, object) -> subjects with that fact, in world order (cached per world)."""
    if world.hash not in _BY_OBJECT:
        idx: dict[tuple[str, str], list[str]] = {}
        for f in world.facts:
            idx.setdefault((f.relation, f.object), []).append(f.subject)
        _BY_OBJECT[world.hash] = idx
    return _BY_OBJECT[world.hash]


def make_record(world: World, case_id: int, subject: str, rid: str, rng: random.Random) -> dict:
    rel = world.relation(rid)
    fact = world.fact(subject, rid)
    template = rel.templates[rng.choice(fact.trained_templates(world))]
    target_new = rng.choice([o for o in rel.objects if o != fact.object])
    held = world.prompt(fact, fact.heldout)
    by_obj = _subjects_by_object(world)
    same_true = [s for s in by_obj[(rid, fact.object)] if s != subject]
    same_new = by_obj.get((rid, target_new), [])
    neighbors = rng.sample(same_true, min(N_NEIGHBORS, len(same_true)))
    attributes = rng.sample(same_new, min(N_NEIGHBORS, len(same_new)))
    return {
        "case_id": case_id,
        "requested_rewrite": {
            "prompt": template, "subject": subject, "relation_id": rid,
            "target_new": {"str": target_new, "id": target_new},
            "target_true": {"str": fact.object, "id": fact.object},
        },
        "paraphrase_prompts": [held, f"{filler_sentence(rng)} . {held}"],
        "neighborhood_prompts": [_trained_prompt(world, s, rid, rng) for s in neighbors],
        "attribute_prompts": [_trained_prompt(world, s, rid, rng) for s in attributes],
        "generation_prompts": [rel.question.format(subject)] + [t.format(subject) for t in rel.templates],
        "subject_facts": [{"relation_id": f.relation, "prompt": _trained_prompt(world, subject, f.relation, rng),
                           "target": f.object} for f in world.facts_of(subject) if f.relation != rid],
    }


def factworld_records(n: int | None = None, seed: int = 0, world: World | None = None) -> list[dict]:
    """``n`` ROME-format records (all subjects if None), deterministic for (world, seed). ``world`` defaults
    to the shipped model's world (:func:`load_world`)."""
    world = world or load_world()
    rng = random.Random(f"counterfact-{world.hash}-{seed}")
    subjects = rng.sample(list(world.subjects), len(world.subjects))
    n = len(subjects) if n is None else min(n, len(subjects))
    return [make_record(world, i, s, rng.choice(world.relations).id, rng) for i, s in enumerate(subjects[:n])]
