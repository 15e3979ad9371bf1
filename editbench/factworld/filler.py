"""The fact world's filler language: generic sentences from a tiny grammar, used by the training corpus
(:mod:`.corpus`), the in-world CoLA task (:mod:`.tasks`) and the CounterFact records (:mod:`.counterfact`)."""
from __future__ import annotations

import random

F_NOUNS = ("dog cat river house garden road tree bird child window table book letter boat bridge market "
           "song cloud forest lamp door field hill village").split()
F_ADJS = "old small green quiet bright cold tall young empty narrow heavy soft".split()
F_VT = "saw found opened carried painted followed crossed watched cleaned built".split()
F_VI = "slept waited smiled rested fell ran".split()
F_PREPS = "near under behind across beside".split()
F_FRAMES = ("the {adj} {noun} {vt} the {noun}", "a {noun} {vi} {prep} the {adj} {noun}", "the {noun} {vi}",
            "every {noun} {prep} the {noun} is {adj}", "the {noun} and the {noun} {vi} {prep} the {noun}",
            "a {adj} {noun} {vt} a {adj} {noun}")


def filler_sentence(rng: random.Random) -> str:
    """One generic sentence from a tiny grammar (no final period)."""
    frame = rng.choice(F_FRAMES)
    for slot, pool in (("{adj}", F_ADJS), ("{noun}", F_NOUNS), ("{vt}", F_VT), ("{vi}", F_VI),
                       ("{prep}", F_PREPS)):
        while slot in frame:
            frame = frame.replace(slot, rng.choice(pool), 1)
    return frame


def filler_words() -> list[str]:
    return F_NOUNS + F_ADJS + F_VT + F_VI + F_PREPS + [w for f in F_FRAMES for w in f.split()] + ["."]
