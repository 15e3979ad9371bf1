"""known_1000: facts GPT-2-XL knows, the prompts ROME's causal tracing runs on.

A record (``../shared/data/counterfact/known_1000.json``, 1,209 of them despite the name)::

    {"known_id": 0, "subject": "Vinson Massif", "attribute": "Antarctica",
     "template": "{} is located in the continent", "prediction": " of Antarctica. It is the largest of the three",
     "prompt": "Vinson Massif is located in the continent of", "relation_id": "P30"}

``template`` is the relation's ROME template; ``prompt`` is what causal tracing actually feeds the model: the
filled template (always a prefix of it; checked), sometimes extended with the first words of GPT-2-XL's greedy
``prediction`` so that the next token is the ``attribute``. Both contain the subject. These are not edit
requests (there is no new target), so they become :class:`KnownFact`. ``subject``, ``template``, ``prompt``,
``attribute`` and ``relation_id`` follow the text rules of :mod:`editbench.data.schema` (``template`` is checked
like a ROME template); ``prediction`` may be empty.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from editbench.data.schema import RecordError, require, require_text, short, template_problem


@dataclass(frozen=True)
class KnownFact:
    """One known fact for causal tracing: ``prompt`` contains ``subject``; the model should say ``attribute``."""

    known_id: int
    subject: str
    template: str  # ROME template with "{}" for the subject
    attribute: str
    relation_id: str
    prompt: str  # the causal-tracing prompt, subject filled in
    prediction: str = ""

    @property
    def case_id(self) -> str:
        return str(self.known_id)


def parse_known(rec: Any, index: int | None = None, source: str | None = None) -> KnownFact:
    """One known_1000 record -> a validated :class:`KnownFact`."""
    where = f"#{index}" if index is not None else "?"
    kid = require(rec, "known_id", where, source)
    if isinstance(kid, bool) or not isinstance(kid, int):
        raise RecordError(where, "known_id", f"expected an int, got {short(kid)}", source)
    subject = require_text(rec, "subject", kid, source)
    template = require_text(rec, "template", kid, source)
    if problem := template_problem(template):
        raise RecordError(kid, "template", problem, source)
    prompt = require_text(rec, "prompt", kid, source)
    if subject not in prompt:
        raise RecordError(kid, "prompt", f"subject {short(subject)} does not occur in {short(prompt)}", source)
    filled = template.replace("{}", subject)
    if not prompt.startswith(filled):
        raise RecordError(kid, "prompt", f"{short(prompt)} does not start with the filled template {short(filled)}",
                          source)
    attribute = require_text(rec, "attribute", kid, source)
    relation_id = require_text(rec, "relation_id", kid, source)
    prediction = require_text(rec, "prediction", kid, source, blank_ok=True) if "prediction" in rec else ""
    return KnownFact(known_id=kid, subject=subject, template=template, attribute=attribute,
                     relation_id=relation_id, prompt=prompt, prediction=prediction)


def is_known(rec: Any) -> bool:
    return isinstance(rec, dict) and "known_id" in rec
