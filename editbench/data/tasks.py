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

from editbench.data.registry import read_json_records
from editbench.data.sources import locate
from editbench.data.schema import RecordError, require, require_str
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
    raw = read_json_records(locate(task.file))  # the local mirror; no public source of the balanced sets
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
