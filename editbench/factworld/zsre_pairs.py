"""Question / completion pairs of the fact world, for the zsRE-vs-completion transfer suite.

The same facts, subjects and counterfactual targets as :func:`editbench.factworld.counterfact.factworld_records`
(one record per subject): the completion form is the record's rewrite prompt (a trained completion template of
the relation), the question form the relation's question template (``"Where was {} born?"``), which the training
corpus teaches in its question-answer lines. Generic pair dicts (:func:`editbench.suites.zsre.pairs.parse_generic_pair`):
``{case_id, subject, relation_id, question, completion, target_new, target_true}``.
"""
from __future__ import annotations

from editbench.factworld.counterfact import factworld_records
from editbench.factworld.world import World, load_world


def factworld_pairs(n: int | None = None, seed: int = 0, world: World | None = None) -> list[dict]:
    world = world or load_world()
    out = []
    for rec in factworld_records(n, seed=seed, world=world):
        rw = rec["requested_rewrite"]
        rel = world.relation(rw["relation_id"])
        out.append({"case_id": rec["case_id"], "subject": rw["subject"], "relation_id": rel.id,
                    "question": rel.question, "completion": rw["prompt"],
                    "target_new": rw["target_new"]["str"], "target_true": rw["target_true"]["str"]})
    return out
