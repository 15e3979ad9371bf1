"""Task sets for downstream probes: labelled classification examples (GLUE-style), not edit records.

The seed paper measures downstream ability on SST-2, MRPC, CoLA and RTE (and NLI) with few-shot prompts, on
balanced evaluation sets its authors' code ships. Those sets are here by name::

    load_taskset("sst2", n=100, seed=0)      -> [TaskExample(task="sst2", idx=427, inputs={"sentence": ...}, label=1)]

``inputs`` holds the task's text fields in order (one sentence, or a sentence pair); ``label`` is an index into
the set's ``labels`` (e.g. SST-2: 0 negative, 1 positive; RTE: 0 entailment, 1 not entailment). How an example
is turned into a prompt (shots, answer words, scoring) is the probe's business, in metrics/.

Errors follow the edit records': a malformed example raises a :class:`~editbench.data.schema.RecordError` naming
its ``idx`` and field, or is collected with ``on_error="collect"`` while the good ones are returned.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from editbench.data.registry import read_json_records
from editbench.data.sources import DataNotAvailable, locate
from editbench.data.schema import RecordError, require, require_str
from editbench.models.cache import cache_root, local_only
from editbench.suggest import close_matches, did_you_mean


@dataclass(frozen=True)
class TaskSet:
    name: str
    description: str
    file: str                      # relative to data_dir()
    fields: tuple[str, ...]        # the text fields, in prompt order
    labels: tuple[str, ...]        # label index -> name


TASKSETS: dict[str, TaskSet] = {t.name: t for t in [
    TaskSet("sst2", "SST-2 sentiment, balanced eval set of the seed paper's code (856)",
            "glue/sst2_eval_balanced.json", ("sentence",), ("negative", "positive")),
    TaskSet("mrpc", "MRPC paraphrase, balanced eval set of the seed paper's code (258)",
            "glue/mrpc_eval_balanced.json", ("sentence1", "sentence2"), ("not equivalent", "equivalent")),
    TaskSet("cola", "CoLA acceptability, balanced eval set of the seed paper's code (644)",
            "glue/cola_eval_balanced.json", ("sentence",), ("unacceptable", "acceptable")),
    TaskSet("rte", "RTE entailment, balanced eval set of the seed paper's code (262)",
            "glue/rte_eval_balanced.json", ("sentence1", "sentence2"), ("entailment", "not entailment")),
]}


@dataclass(frozen=True)
class TaskExample:
    task: str
    idx: int
    inputs: dict
    label: int


def list_tasksets() -> dict[str, str]:
    return {name: t.description for name, t in TASKSETS.items()}


def parse_example(task: TaskSet, rec, position: int, source: str | None = None) -> TaskExample:
    """One raw record -> TaskExample; RecordError naming the record (its ``idx``, else its position) and field."""
    idx = rec.get("idx", position) if isinstance(rec, dict) else position
    inputs = {f: require_str(rec, f, idx, source) for f in task.fields}
    label = require(rec, "label", idx, source)
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(task.labels):
        raise RecordError(idx, "label", f"expected an integer in 0..{len(task.labels) - 1}, got {label!r}", source)
    return TaskExample(task.name, int(idx) if isinstance(idx, int) else position, inputs, int(label))


def load_taskset(name: str, n: int | None = None, seed: int | None = None, on_error: str = "raise"):
    """The first ``n`` examples of task set ``name`` after a shuffle seeded with ``seed`` (no shuffle for None).
    ``on_error="collect"`` returns ``(examples, errors)``; the default raises the first RecordError."""
    if name not in TASKSETS:
        raise ValueError(f"unknown task set {name!r}.{did_you_mean(close_matches(name, TASKSETS))} "
                         f"Known: {', '.join(TASKSETS)}")
    task = TASKSETS[name]
    raw = read_raw(task)
    order = list(range(len(raw)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    if n is not None:
        order = order[:n]
    examples, errors = [], []
    for i in order:
        try:
            examples.append(parse_example(task, raw[i], i, task.file))
        except RecordError as e:
            if on_error != "collect":
                raise
            errors.append(e)
    return (examples, errors) if on_error == "collect" else examples


# ------------------------------------------------------------------------------------------------------------
# class-balanced subsets, and the GLUE fallback for a user without the mirror
# ------------------------------------------------------------------------------------------------------------
GLUE_SEED = 0  # the seed of the balanced sets built from GLUE (fixed: one cached file per task)


def read_raw(task: TaskSet) -> list:
    """The raw records of ``task``: the authors' balanced set from the local mirror (or the cache), else the same
    kind of set built from GLUE by :func:`build_from_glue` (cached); DataNotAvailable saying what is missing."""
    try:
        return read_json_records(locate(task.file))
    except DataNotAvailable as missing:
        return read_json_records(build_from_glue(task.name, reason=str(missing)))


def glue_cache_file(name: str) -> Path:
    return cache_root() / "data" / "glue" / f"{name}_balanced_from_glue_seed{GLUE_SEED}.json"


def build_from_glue(name: str, reason: str = "") -> Path:
    """Build a class-balanced set of task ``name`` from the public GLUE validation split
    (``datasets.load_dataset("glue", name, split="validation")``): every example of the rarer class and as many
    of each other class, drawn with seed :data:`GLUE_SEED`, in a seeded shuffled order; written once as JSON under
    the editbench cache root (``<cache>/data/glue/``) and read from there afterwards."""
    import json

    task = TASKSETS[name]
    path = glue_cache_file(name)
    if path.is_file():
        return path
    try:
        from datasets import load_dataset
    except ImportError:
        raise DataNotAvailable(task.file, f"{reason}; building it from GLUE needs the `datasets` package "
                                          "(pip install datasets) and network once") from None
    try:
        with local_only():  # EDITBENCH_OFFLINE=1: only the Hugging Face datasets cache is read
            rows = list(load_dataset("glue", name, split="validation"))
    except Exception as e:  # noqa: BLE001 - offline, hub down, no cached copy
        raise DataNotAvailable(task.file, f"{reason}; building it from GLUE failed: datasets.load_dataset('glue', "
                                          f"{name!r}, split='validation') raised {type(e).__name__}: {e} (it needs "
                                          "network once, or the GLUE set in the Hugging Face datasets cache)") from None
    by_label: dict[int, list] = {}
    for i, r in enumerate(rows):
        rec = {f: r[f] for f in task.fields}
        rec.update(label=int(r["label"]), idx=int(r.get("idx", i)))
        if 0 <= rec["label"] < len(task.labels):
            by_label.setdefault(rec["label"], []).append(rec)
    if len(by_label) < len(task.labels):
        raise DataNotAvailable(task.file, f"GLUE {name} validation has labels {sorted(by_label)} only")
    rng = random.Random(f"glue-balanced-{name}-{GLUE_SEED}")
    k = min(len(v) for v in by_label.values())
    out = [r for label in sorted(by_label) for r in rng.sample(by_label[label], k)]
    rng.shuffle(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


def load_balanced(name: str, n: int | None = None, seed: int = 0) -> list[TaskExample]:
    """``n`` examples of task set ``name`` with the classes equally represented (n // K of each, the first ones
    after a shuffle seeded with ``seed``; an odd remainder goes to the lowest labels), in a seeded mixed order;
    ``n`` None = the whole set. Raises ValueError when a class has fewer than n // K examples."""
    examples = load_taskset(name)
    if n is None:
        return examples
    k = len(TASKSETS[name].labels)
    rng = random.Random(f"balanced-{name}-{seed}")
    by_label = {c: [e for e in examples if e.label == c] for c in range(k)}
    out = []
    for c in range(k):
        want = n // k + (1 if c < n % k else 0)
        if want > len(by_label[c]):
            raise ValueError(f"task set {name!r} has {len(by_label[c])} examples of label {c}, fewer than the "
                             f"{want} a balanced set of {n} needs")
        out += rng.sample(by_label[c], want)
    rng.shuffle(out)
    return out
