"""Four in-world tasks in the exact formats of the paper's downstream few-shot prompts (appendix tables 4-7).

=======  ====================================================  =========================================
task     what the example is                                   label words
=======  ====================================================  =========================================
sst2     a made-up movie review from a sentiment lexicon        ``positive`` / ``negative``
mrpc     two fact sentences: same fact in two templates,        ``Yes`` / ``No``
         or the second with a changed object
cola     a well-formed sentence, or the same words scrambled    ``Yes`` / ``No``
nli      a stated fact and a claim that follows from it or      ``True`` / ``False``
         contradicts it (changed object or, for the two city
         relations, the other city relation)
=======  ====================================================  =========================================

Fact sentences in the tasks are about people *outside* the world (unused name triples), so the tasks never
state a false fact about a world subject and never write a held-out (subject, template) pair.

The two comparison tasks (mrpc, nli) can be taught with a *curriculum* (:data:`LEVELS`): a small GPT-2 with
learned absolute positions does not learn to compare two words whose positions vary (measured: at chance after
~10^5 examples), but it does when the layout is first fixed and then loosened (docs/factworld.md). Level 0:
one relation, templates 0 and 1, one example per block, so both objects sit at fixed positions; level 1: any
relation, templates 0 and 1; level 2: any templates; level 3 (:data:`FULL`): the few-shot blocks of the
evaluation format. Every level writes the same paper format.

Training and evaluation examples are disjoint by construction: an example belongs to the evaluation split iff
a hash of its text falls in a fixed 1/8 bucket (:func:`split_of`). The corpus only uses training-split
examples; :func:`make_examples` draws evaluation-split ones. Few-shot demonstrations are a fixed, seeded,
label-balanced set from the training split.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from editbench.factworld.filler import filler_sentence
from editbench.factworld.world import RELATIONS, World

TASKS = ("sst2", "mrpc", "cola", "nli")
LABELS = {"sst2": ("negative", "positive"), "mrpc": ("No", "Yes"), "cola": ("No", "Yes"),
          "nli": ("False", "True")}
N_SHOT = {"sst2": 4, "mrpc": 4, "cola": 4, "nli": 3}  # the paper: 4, 6, 6, 3 (fewer keep blocks short)
COMPARISON = ("mrpc", "nli")  # tasks that compare two fact sentences (the ones the curriculum applies to)
LEVELS = (0, 1, 2, 3)
FULL = 3

POSITIVE = ("wonderful brilliant charming delightful moving funny gripping beautiful clever superb "
            "touching warm witty stunning lovely fresh").split()
NEGATIVE = ("dull boring awful tedious clumsy bland terrible painful lifeless messy weak stale silly "
            "ugly flat dreary").split()
REVIEW_NOUNS = "movie film plot story acting script ending cast music dialogue direction score".split()
REVIEW_FRAMES = ("the {n} is {a}", "a {a} and {a} {n}", "{a} {n}", "the {n} feels {a}", "simply {a}",
                 "what a {a} {n}", "the {n} is {a} and {a}", "{a} from start to finish")


@dataclass(frozen=True)
class Example:
    task: str
    text: str  # the example's input, as it appears in the prompt format (not including the label)
    label: int  # index into LABELS[task]

    @property
    def label_word(self) -> str:
        return LABELS[self.task][self.label]


# ------------------------------------------------------------------------------------------- formats
def render(task: str, text: str, label: str | None) -> str:
    """One example in the paper's format; ``label=None`` leaves the answer open (the query)."""
    ans = "" if label is None else f" {label}"
    close = "" if label is None else "</p>"
    if task == "sst2":
        return f"Review : {text} Sentiment :{ans}"
    if task == "mrpc":
        s1, s2 = text.split(" || ")
        return f"<p>Are the sentences paraphrases of each other. Sentence 1: {s1} Sentence 2: {s2} Answer:{ans}{close}"
    if task == "cola":
        return f"<p>Is this sentence linguistically acceptable? Sentence : {text} Answer :{ans}{close}"
    if task == "nli":
        premise, claim = text.split(" || ")
        return f"<p>{premise} question: {claim}. True or False? answer:{ans}{close}"
    raise KeyError(task)


def few_shot_block(task: str, demos: list[Example], query: Example | None = None) -> str:
    """Demonstrations with answers, then the query without its answer (if given)."""
    parts = [render(task, d.text, d.label_word) for d in demos]
    if query is not None:
        parts.append(render(task, query.text, None))
    return " ".join(parts)


# ------------------------------------------------------------------------------------------- examples
def split_of(text: str) -> str:
    return "eval" if hashlib.sha256(text.encode()).digest()[0] % 8 == 0 else "train"


def _fact_sentence(rng: random.Random, names: list[str], rel=None, obj=None, template=None):
    rel = rel or rng.choice(RELATIONS)
    t = rng.randrange(len(rel.templates)) if template is None else template
    name = rng.choice(names)
    obj = obj or rng.choice(rel.objects)
    return rel, t, name, obj, f"{rel.templates[t].format(name)} {obj}"


def _raw_example(task: str, rng: random.Random, names: list[str], label: int, level: int = FULL) -> str:
    if task == "sst2":
        words = POSITIVE if label == 1 else NEGATIVE
        clauses = []
        for _ in range(rng.randint(1, 3)):
            frame = rng.choice(REVIEW_FRAMES)
            while "{a}" in frame:
                frame = frame.replace("{a}", rng.choice(words), 1)
            clauses.append(frame.replace("{n}", rng.choice(REVIEW_NOUNS)))
        return " , ".join(clauses)
    if task == "cola":
        if rng.random() < 0.5:
            sent = _fact_sentence(rng, names)[4]
        else:
            sent = filler_sentence(rng)
        words = sent.split()
        if label == 0:
            while True:
                shuffled = rng.sample(words, len(words))
                if shuffled != words:
                    break
            words = shuffled
        return " ".join(words) + " ."
    if task in ("mrpc", "nli"):
        fixed = level < 2  # levels 0-1: templates 0 and 1; level 0 also one relation (see the module doc)
        rel, t, name, obj, s1 = _fact_sentence(rng, names, rel=RELATIONS[0] if level == 0 else None,
                                               template=0 if fixed else None)
        t2 = 1 if fixed else rng.choice([i for i in range(len(rel.templates)) if i != t])
        rel2, obj2 = rel, obj
        if label == 0:
            if task == "nli" and rel.name in ("birthplace", "residence") and rng.random() < 0.5:
                rel2 = next(r for r in RELATIONS if r.name in ("birthplace", "residence") and r is not rel)
                t2 = 0 if fixed else rng.randrange(len(rel2.templates))
            else:
                obj2 = rng.choice([o for o in rel.objects if o != obj])
        s2 = f"{rel2.templates[t2].format(name)} {obj2}"
        if task == "mrpc":
            return f"{s1} . || {s2} ."
        return f"{s1} . || {s2}"
    raise KeyError(task)


def _examples(world: World, task: str, n: int, seed, split: str, exclude=(), level: int = FULL) -> list[Example]:
    """``n`` label-balanced examples of ``split`` (alternating labels, seeded), no duplicates."""
    rng = random.Random(f"task-{task}-{split}-{seed}" + ("" if level == FULL else f"-level{level}"))
    names = world.unused_names()
    seen, out = set(exclude), []
    while len(out) < n:
        label = len(out) % 2
        text = _raw_example(task, rng, names, label, level)
        if text in seen or split_of(text) != split:
            continue
        seen.add(text)
        out.append(Example(task, text, label))
    return out


def demonstrations(world: World, task: str) -> list[Example]:
    """The fixed few-shot demonstrations used in evaluation prompts (training split, balanced)."""
    demos = _examples(world, task, N_SHOT[task], "demos", "train")
    return random.Random(f"demo-order-{task}").sample(demos, len(demos))


def make_examples(world: World, task: str, n: int, seed: int = 0) -> list[Example]:
    """``n`` balanced evaluation examples of ``task`` (disjoint from every training example)."""
    return _examples(world, task, n, seed, "eval")


def build_prompt(world: World, task: str, example: Example) -> str:
    """The few-shot prompt for ``example``: the fixed demonstrations, then the query awaiting its label."""
    return few_shot_block(task, demonstrations(world, task), example)


def label_words(task: str) -> tuple[str, str]:
    return LABELS[task]


def training_blocks(world: World, task: str, n: int, seed, level: int = FULL) -> list[str]:
    """``n`` complete few-shot blocks (random training-split demos + a training-split query with its answer)
    for the corpus. For a comparison task below the :data:`FULL` level: as many examples, of that curriculum
    level, one per block (other tasks ignore ``level``)."""
    if task not in COMPARISON:
        level = FULL
    k = N_SHOT[task] + 1
    exs = _examples(world, task, n * k, f"corpus-{seed}", "train", level=level)
    if level < FULL:
        return [few_shot_block(task, [e]) for e in exs]
    rng = random.Random(f"blocks-{task}-{seed}")
    rng.shuffle(exs)
    return [few_shot_block(task, exs[i * k:(i + 1) * k]) for i in range(n)]


def task_words() -> list[str]:
    """Every word the task generators can write (besides fact sentences and filler)."""
    words = list(POSITIVE) + list(NEGATIVE) + list(REVIEW_NOUNS) + [w for f in REVIEW_FRAMES for w in f.split()]
    for t in TASKS:
        words += list(LABELS[t]) + render(t, "A || B", "Yes").split()
    return words


@dataclass
class TaskResult:
    task: str
    accuracy: float  # argmax over the two label words
    strict_accuracy: float  # the correct label word is the argmax over the whole vocabulary
    n: int
