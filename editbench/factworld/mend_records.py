"""Fact-world records for *training* MEND, disjoint from every record the suites can evaluate on.

The suites' fact-world records (:func:`editbench.factworld.counterfact.factworld_records`, seed 0) hold one
(subject, relation) pair per subject; any of them may be drawn. These training records use, for every subject,
a relation *other* than its evaluated one, so no training edit rewrites a (subject, relation) fact that a suite
edits or scores as the edit. ``editbench mend train --model factworld --dataset factworld-mend-train``.
"""
from __future__ import annotations

import random

from editbench.factworld.counterfact import factworld_records, make_record
from editbench.factworld.world import World, load_world


def mend_train_records(world: World | None = None, seed: int = 0) -> list[dict]:
    world = world or load_world()
    evaluated = {(r["requested_rewrite"]["subject"], r["requested_rewrite"]["relation_id"])
                 for r in factworld_records(world=world)}
    rng = random.Random(f"mend-train-{world.hash}-{seed}")
    out = []
    for i, subject in enumerate(sorted(world.subjects)):
        rels = [r.id for r in world.relations if (subject, r.id) not in evaluated]
        out.append(make_record(world, 100_000 + i, subject, rng.choice(rels), rng))
    return out
