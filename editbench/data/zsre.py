"""zsRE question answering records (MEND format) -> :class:`EditRequest`.

A MEND-format record (``../shared/data/zsre/zsre_mend_*.json``)::

    {"subject": "Watts Humphrey", "src": "What university did Watts Humphrey attend?",
     "rephrase": "What university did Watts Humphrey take part in?", "answers": ["Illinois Institute of Technology"],
     "alt": "University of Michigan", "pred": "Trinity College",
     "loc": "nq question: who played desmond doss father in hacksaw ridge", "loc_ans": "Hugo Weaving",
     "cond": "Trinity College >> University of Michigan || What university did Watts Humphrey attend?"}

Records carry no id; ``case_id`` is the record's index in the file (as ROME's ``MENDQADataset`` does).

**Which answer is the edit target differs between code bases**, so it is a parameter here:

* ``target="answers"`` (default, ROME/MEMIT convention): ``target_new = answers[0]``, the *correct* answer.
  ROME gives no real ``target_true`` (it writes ``"<|endoftext|>"``); we leave it ``None``.
* ``target="alt"`` (EasyEdit convention): ``target_new = alt``, a counterfactual answer, and
  ``target_true = answers[0]``. A few records have an empty ``alt`` or ``alt == answers[0]``; those are
  RecordErrors under this convention (nothing to edit).

``src`` becomes the ``"{}"`` template (subject replaced), ``rephrase`` the one paraphrase prompt. zsRE has no
CounterFact-style neighborhood (its ``loc`` question is about something unrelated and is scored by absolute
accuracy on ``loc_ans``), so ``loc``/``loc_ans`` go in ``meta`` together with ``answers``, ``alt``, ``pred`` and
``cond``; ``neighborhood_prompts`` stays empty.

Text fields (``subject``, ``src``, ``rephrase``, ``answers[i]``, ``alt``, ``loc``, ``loc_ans``) follow the rules in
:mod:`editbench.data.schema`; ``alt`` may be empty (it is only the target under ``target="alt"``).
"""
from __future__ import annotations

from typing import Any

from editbench.data.counterfact import easyedit_template
from editbench.data.schema import (EditRequest, OversizedInt, RecordError, is_blank, require, require_text, short,
                                   text_tuple)

ZSRE_TARGETS = ("answers", "alt")


def parse_zsre(rec: Any, index: int | None = None, source: str | None = None, target: str = "answers"
               ) -> EditRequest:
    """One MEND-format zsRE record -> a validated :class:`EditRequest` (``case_id = str(index)``)."""
    if target not in ZSRE_TARGETS:
        raise ValueError(f"zsRE target must be one of {ZSRE_TARGETS}, got {target!r}")
    cid = str(index) if index is not None else "?"
    subject = require_text(rec, "subject", cid, source)
    src = require_text(rec, "src", cid, source)
    try:
        template = easyedit_template(cid, src, subject, source)
    except RecordError as e:  # name the zsRE field, not the EasyEdit one
        raise RecordError(cid, "src", e.problem, source) from None
    rephrase = require_text(rec, "rephrase", cid, source)
    answers = text_tuple(require(rec, "answers", cid, source), "answers", cid, source)
    alt = require_text(rec, "alt", cid, source, blank_ok=True)
    loc = require_text(rec, "loc", cid, source)
    loc_ans = require_text(rec, "loc_ans", cid, source)
    for key in ("pred", "cond"):
        if isinstance(rec.get(key), OversizedInt):
            raise RecordError(cid, key, f"integer too large ({rec[key]!r})", source)
    meta = {"format": "zsre", "target": target, "answers": list(answers), "alt": alt, "loc": loc,
            "loc_ans": loc_ans, "pred": rec.get("pred"), "cond": rec.get("cond")}
    if target == "answers":
        new, true = answers[0], None
    else:
        if is_blank(alt):
            raise RecordError(cid, "alt", "empty target (target='alt')", source)
        new, true = alt, answers[0]
    req = EditRequest(case_id=cid, prompt=template, subject=subject, target_new=new, target_true=true,
                      paraphrase_prompts=(rephrase,), meta=meta)
    try:
        return req.validate(source)
    except RecordError as e:  # target_new == target_true under target='alt': point at the zsRE field
        if e.field == "target_new" and target == "alt":
            raise RecordError(cid, "alt", f"alt equals answers[0] ({short(alt)}): nothing to edit", source) from None
        raise


def is_zsre(rec: Any) -> bool:
    return isinstance(rec, dict) and "src" in rec and "answers" in rec
