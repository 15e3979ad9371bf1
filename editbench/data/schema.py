"""The edit-request schema shared by every loader, editor and scorer.

A record from any dataset (CounterFact in ROME or EasyEdit format, zsRE, the fact world) becomes an
:class:`EditRequest`. Validation is strict and typed: a malformed record raises :class:`RecordError`
naming the case id and the field, so a runner can report it and go on with the next record.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


class RecordError(ValueError):
    """A malformed record. ``case_id`` and ``field`` say which record and which field."""

    def __init__(self, case_id: Any, field: str, problem: str, source: str | None = None):
        self.case_id = case_id
        self.field = field
        self.problem = problem
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(f"record {case_id!r}{where}: field {field!r}: {problem}")


@dataclass(frozen=True)
class EditRequest:
    """One requested edit plus the probes that score it.

    ``prompt`` is a template with ``{}`` where the subject goes (ROME convention), e.g.
    ``"{} is a citizen of"``. Probe prompts are full strings (subject already filled in).
    ``neighborhood_prompts`` are about *other* subjects whose true answer is ``target_true``.
    """

    case_id: str
    prompt: str
    subject: str
    target_new: str
    target_true: str | None = None
    relation_id: str | None = None
    paraphrase_prompts: tuple[str, ...] = ()
    neighborhood_prompts: tuple[str, ...] = ()
    attribute_prompts: tuple[str, ...] = ()
    generation_prompts: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def rewrite_prompt(self) -> str:
        """The edit prompt with the subject filled in."""
        return self.prompt.format(self.subject)

    def with_target(self, target_new: str) -> "EditRequest":
        return replace(self, target_new=target_new)

    def validate(self, source: str | None = None) -> "EditRequest":
        """Raise :class:`RecordError` if the request is malformed; return self otherwise."""
        cid = self.case_id

        def bad(fld: str, problem: str):
            raise RecordError(cid, fld, problem, source)

        if not isinstance(self.prompt, str) or not self.prompt.strip():
            bad("prompt", "empty prompt")
        if self.prompt.count("{}") != 1:
            bad("prompt", f"must contain exactly one '{{}}' placeholder for the subject, got {self.prompt!r}")
        if not isinstance(self.subject, str) or not self.subject.strip():
            bad("subject", "empty subject")
        if not isinstance(self.target_new, str) or not self.target_new.strip():
            bad("target_new", "empty target")
        if self.target_true is not None:
            if not isinstance(self.target_true, str) or not self.target_true.strip():
                bad("target_true", "empty target")
            if self.target_true.strip() == self.target_new.strip():
                bad("target_new", f"target_new equals target_true ({self.target_new!r}): nothing to edit")
        for name in ("paraphrase_prompts", "neighborhood_prompts", "attribute_prompts", "generation_prompts"):
            vals = getattr(self, name)
            for i, p in enumerate(vals):
                if not isinstance(p, str) or not p.strip():
                    bad(f"{name}[{i}]", "empty prompt")
        return self


def check_subject_in_prompt(case_id: Any, prompt: str, subject: str, fld: str = "prompt",
                            source: str | None = None) -> str:
    """Turn a filled-in prompt into a ``{}`` template; raise if the subject is not in it."""
    if not subject:
        raise RecordError(case_id, "subject", "empty subject", source)
    if "{}" in prompt:
        return prompt
    idx = prompt.find(subject)
    if idx < 0:
        raise RecordError(case_id, fld, f"subject {subject!r} does not occur in {prompt!r}", source)
    return prompt[:idx] + "{}" + prompt[idx + len(subject):]


def require(rec: dict, key: str, case_id: Any, source: str | None = None) -> Any:
    """Fetch a required key of a raw record or raise a RecordError naming it."""
    if not isinstance(rec, dict):
        raise RecordError(case_id, "<record>", f"expected a JSON object, got {type(rec).__name__}", source)
    if key not in rec:
        raise RecordError(case_id, key, "missing key", source)
    return rec[key]
