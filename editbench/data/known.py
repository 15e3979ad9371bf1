"""known_1000: facts GPT-2-XL knows, the prompts ROME's causal tracing runs on.

A record (``../shared/data/counterfact/known_1000.json``, 1,209 of them despite the name)::

    {"known_id": 0, "subject": "Vinson Massif", "attribute": "Antarctica",
     "template": "{} is located in the continent", "prediction": " of Antarctica. It is the largest of the three",
     "prompt": "Vinson Massif is located in the continent of", "relation_id": "P30"}

``template`` is the relation's ROME template; ``prompt`` is what causal tracing actually feeds the model: the
filled template (always a prefix of it; checked), sometimes extended with the first words of GPT-2-XL's greedy
``prediction`` so that the next token is the ``attribute``. Both contain the subject. These are not edit
requests (there is no new target), so they become :class:`KnownFact`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from editbench.data.schema import RecordError, require, require_str


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
        raise RecordError(where, "known_id", f"expected an int, got {kid!r}", source)
    subject = require_str(rec, "subject", kid, source)
    template = require_str(rec, "template", kid, source)
    if template.count("{}") != 1:
        raise RecordError(kid, "template", f"must contain exactly one '{{}}', got {template!r}", source)
    prompt = require_str(rec, "prompt", kid, source)
    if subject not in prompt:
        raise RecordError(kid, "prompt", f"subject {subject!r} does not occur in {prompt!r}", source)
    filled = template.replace("{}", subject)
    if not prompt.startswith(filled):
        raise RecordError(kid, "prompt", f"{prompt!r} does not start with the filled template {filled!r}", source)
    attribute = require_str(rec, "attribute", kid, source)
    relation_id = require_str(rec, "relation_id", kid, source)
    prediction = require_str(rec, "prediction", kid, source, empty_ok=True) if "prediction" in rec else ""
    return KnownFact(known_id=kid, subject=subject, template=template, attribute=attribute,
                     relation_id=relation_id, prompt=prompt, prediction=prediction)


def is_known(rec: Any) -> bool:
    return isinstance(rec, dict) and "known_id" in rec
