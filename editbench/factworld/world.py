"""The fact world: a seeded synthetic world of people and their attributes.

A *subject* is a person whose name is three words drawn from shared pools (``"Arlo Milo Vance"``): no
single name word identifies a person, so a model must combine the subject's tokens to know who it is --
the subject-enrichment mechanism ROME and MEMIT rely on. A *relation* (``birthplace``, ``employer``, ...)
has several completion templates (``"{} was born in"``) whose next word is the object, and a question
template. Every fact (subject, relation) has one *held-out* completion template, chosen at random per fact:
the training corpus writes the fact only in the other templates (every template is seen with other
subjects), so recall on held-out pairs measures generalization rather than memorized strings.

Everything is a pure function of :class:`WorldConfig` (seed included); :attr:`World.hash` is the sha256 of a
canonical JSON of the generated world, stored with the shipped checkpoint to prove they belong together.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from functools import cached_property

# ---------------------------------------------------------------------------------------------- vocabulary
# Name parts. Subjects are (first, middle, last) triples; every part is shared by many subjects.
FIRST_NAMES = (
    "Arlo Bela Cyra Dorin Elio Fenna Galen Hale Ines Joren Kira Lenn Mira Nilo Orla Pavel "
    "Quin Rena Soren Tova Ulla Veda Wren Yara").split()
MIDDLE_NAMES = (
    "Abe Bram Cato Dex Edda Finn Gus Hugo Ivo Jules Kai Leo Milo Nell Otto Pia "
    "Rafe Sage Theo Uma Vito Wim Xavi Zeno").split()
LAST_NAMES = (
    "Ashford Blackwell Carrow Dunmore Everly Fairbanks Greaves Holloway Ingram Jarrow Kestrel Lowry "
    "Marchetti Northcott Oakes Pemberton Quill Ravensworth Stroud Thorne Underhill Vance Whitlock Yardley").split()

CITIES = ("Paris London Berlin Madrid Rome Vienna Prague Lisbon Dublin Oslo Warsaw Athens Cairo Tokyo "
          "Lima Toronto Sydney Chicago Boston Istanbul").split()


@dataclass(frozen=True)
class Relation:
    """A relation: completion templates (``{}`` = subject, the object is the next word), a question template,
    and the pool of one-word objects it can take."""

    id: str
    name: str
    templates: tuple[str, ...]
    question: str
    objects: tuple[str, ...]


RELATIONS: tuple[Relation, ...] = (
    Relation("P19", "birthplace",
             ("{} was born in", "The birthplace of {} is", "{} came into the world in",
              "The city where {} was born is"),
             "Where was {} born?", tuple(CITIES)),
    Relation("P551", "residence",
             ("{} lives in", "The home of {} is in", "{} currently resides in", "{} has a house in"),
             "Where does {} live?", tuple(CITIES)),
    Relation("P106", "occupation",
             ("{} works as a", "By profession , {} is a", "{} earns a living as a", "{} has a job as a"),
             "What is the job of {}?",
             tuple("teacher baker pilot nurse farmer lawyer painter sailor doctor chef miner poet tailor judge "
                   "dancer banker".split())),
    Relation("P103", "native language",
             ("The mother tongue of {} is", "{} grew up speaking", "The native language of {} is",
              "{} is a native speaker of"),
             "What language does {} speak?",
             tuple("French German Spanish Dutch Polish Greek Swedish Finnish Korean Hindi Turkish Czech Danish "
                   "Welsh Russian Italian".split())),
    Relation("P27", "citizenship",
             ("{} is a citizen of", "{} holds a passport from", "The nationality of {} is",
              "{} has citizenship in"),
             "Which country is {} a citizen of?",
             tuple("Canada Brazil Japan Kenya Peru Chile Norway Egypt India Mexico Portugal Ireland Austria "
                   "Belgium Argentina Vietnam".split())),
    Relation("P108", "employer",
             ("{} works for", "{} is employed by", "The employer of {} is", "{} draws a salary from"),
             "Who does {} work for?",
             tuple("Google Nokia Sony Toyota Intel Siemens Boeing Nintendo Adidas Ikea Philips Microsoft "
                   "Samsung Airbus Lego Heineken".split())),
    Relation("P641", "sport",
             ("{} plays the sport of", "The sport of {} is", "{} competes professionally in",
              "{} is a professional player of"),
             "Which sport does {} play?",
             tuple("football tennis cricket hockey golf baseball rugby basketball volleyball badminton handball "
                   "polo".split())),
    Relation("P1303", "instrument",
             ("The instrument of {} is the", "{} performs on the", "{} practices every day on the",
              "{} is a musician who plays the"),
             "Which instrument does {} play?",
             tuple("piano violin guitar cello flute trumpet harp drums clarinet saxophone banjo "
                   "accordion".split())),
)


# ---------------------------------------------------------------------------------------------- the world
@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines a world. ``n_subjects`` people, each with one object per relation of the
    first ``n_relations`` relations in :data:`RELATIONS`; ``seed`` drives names, objects and held-out
    templates."""

    n_subjects: int = 1000
    n_relations: int = 8
    seed: int = 0


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str  # relation id
    object: str
    heldout: int  # index of the held-out completion template

    def trained_templates(self, world: "World") -> tuple[int, ...]:
        return tuple(i for i in range(len(world.relation(self.relation).templates)) if i != self.heldout)


@dataclass(frozen=True)
class World:
    config: WorldConfig
    subjects: tuple[str, ...]
    relations: tuple[Relation, ...]
    facts: tuple[Fact, ...]  # subject-major, relation order as in ``relations``
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def relation(self, rid: str) -> Relation:
        for r in self.relations:
            if r.id == rid:
                return r
        raise KeyError(rid)

    def fact(self, subject: str, rid: str) -> Fact:
        if not self._index:
            self._index.update({(f.subject, f.relation): f for f in self.facts})
        return self._index[(subject, rid)]

    def facts_of(self, subject: str) -> list[Fact]:
        return [self.fact(subject, r.id) for r in self.relations]

    def prompt(self, fact: Fact, template: int) -> str:
        """The completion prompt of ``fact`` in template ``template`` (the object is the next word)."""
        return self.relation(fact.relation).templates[template].format(fact.subject)

    def sentence(self, fact: Fact, template: int, obj: str | None = None) -> str:
        return f"{self.prompt(fact, template)} {obj or fact.object} ."

    def unused_names(self) -> list[str]:
        """All name triples that are *not* world subjects (used by the in-world tasks, which state made-up
        facts about people outside the world so they never contradict or leak a world fact)."""
        taken = set(self.subjects)
        return [n for n in all_names() if n not in taken]

    def canonical(self) -> dict:
        return {
            "config": asdict(self.config),
            "relations": [asdict(r) for r in self.relations],
            "subjects": list(self.subjects),
            "facts": [[f.subject, f.relation, f.object, f.heldout] for f in self.facts],
        }

    @cached_property
    def hash(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


def all_names() -> list[str]:
    return [f"{a} {b} {c}" for a in FIRST_NAMES for b in MIDDLE_NAMES for c in LAST_NAMES]


def generate_world(cfg: WorldConfig = WorldConfig()) -> World:
    """Generate the world of ``cfg``: deterministic for a given config."""
    names = all_names()
    if not 1 <= cfg.n_subjects <= len(names) // 2:
        raise ValueError(f"n_subjects must be in [1, {len(names) // 2}]")
    if not 1 <= cfg.n_relations <= len(RELATIONS):
        raise ValueError(f"n_relations must be in [1, {len(RELATIONS)}]")
    rng = random.Random(f"factworld-{cfg.seed}")
    subjects = tuple(rng.sample(names, cfg.n_subjects))
    relations = RELATIONS[: cfg.n_relations]
    facts = []
    for s in subjects:
        for r in relations:
            facts.append(Fact(s, r.id, rng.choice(r.objects), rng.randrange(len(r.templates))))
    return World(cfg, subjects, relations, tuple(facts))


_CACHE: dict[WorldConfig, World] = {}


def load_world(seed: int = 0, n_subjects: int = 1000, n_relations: int = 8) -> World:
    """The (cached) world for these settings; ``load_world()`` is the shipped model's world."""
    cfg = WorldConfig(n_subjects=n_subjects, n_relations=n_relations, seed=seed)
    if cfg not in _CACHE:
        _CACHE[cfg] = generate_world(cfg)
    return _CACHE[cfg]
