"""Meta-training examples for MEND, from edit records, and the train/validation split.

One example per record (MEND's zsRE setup, eric-mitchell/mend ``data_classes/zsre.py``):

- the **edit**: the filled rewrite prompt and ``target_new`` (zsRE loaded with ``target="alt"``: the reference
  edits toward the counterfactual ``alt`` answer);
- the **equivalents** the edit must carry over to: the rewrite itself and the record's first paraphrase (the
  reference's ``edit_outer`` is the rephrase alone; editbench adds the rewrite, since the suites score ES on it);
- the **locality** text, a prompt + answer about something unrelated whose next-token distributions must not move:
  zsRE's NQ ``loc`` question + ``loc_ans`` (the reference's locality set is NQ), CounterFact's first neighborhood
  prompt + ``target_true``.

**Which records.** editbench trains on ``zsre-train`` (``zsre/zsre_mend_train-1k.json``, 1,000 records of zsRE's
*train* split); no suite evaluates on it (the zsRE suite uses the *eval* split, the CounterFact suites CounterFact).
:data:`EVAL_DATASETS` are the datasets the suites evaluate on: training on them needs ``allow_eval_overlap``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from editbench.data.schema import EditRequest

EVAL_DATASETS = ("counterfact", "counterfact-1k", "counterfact-full", "zsre", "factworld")


@dataclass(frozen=True)
class TrainExample:
    case_id: str
    prompt: str
    target: str
    equivalents: tuple[str, ...]
    loc_prompt: str
    loc_target: str


def example_from(req: EditRequest) -> TrainExample | None:
    """The example of one record, or None when it has no paraphrase or no locality text."""
    meta = req.meta or {}
    if meta.get("format") == "zsre":
        loc = (meta.get("loc"), meta.get("loc_ans"))
    elif req.neighborhood_prompts and req.target_true:
        loc = (req.neighborhood_prompts[0], req.target_true)
    else:
        return None
    if not req.paraphrase_prompts or not loc[0] or not loc[1]:
        return None
    return TrainExample(str(req.case_id), req.rewrite_prompt, req.target_new,
                        (req.rewrite_prompt, req.paraphrase_prompts[0]), str(loc[0]), str(loc[1]))


def split_examples(records: Sequence[EditRequest], n_val: int, seed: int = 0
                   ) -> tuple[list[TrainExample], list[TrainExample]]:
    """(train, validation): usable records shuffled with ``seed``, the first ``n_val`` for validation."""
    examples = [e for e in (example_from(r) for r in records) if e is not None]
    if len(examples) < n_val + 1:
        raise ValueError(f"MEND training needs more than n_val={n_val} usable records (with a paraphrase and a "
                         f"locality prompt), got {len(examples)}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    return [examples[i] for i in order[n_val:]], [examples[i] for i in order[:n_val]]


def example_at(train: Sequence[TrainExample], step: int, seed: int = 0) -> TrainExample:
    """The example of training step ``step`` (0-based): epoch-wise permutations seeded by (seed, epoch), so a
    resumed run sees the same sequence as an uninterrupted one."""
    epoch, i = divmod(step, len(train))
    order = list(range(len(train)))
    random.Random(f"{seed}-{epoch}").shuffle(order)
    return train[order[i]]
