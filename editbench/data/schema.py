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


# --- helpers for loaders (added with editbench/data/{counterfact,zsre,known,registry}.py) --------------------

ON_ERROR = ("raise", "collect")


def require_str(rec: dict, key: str, case_id: Any, source: str | None = None, empty_ok: bool = False) -> str:
    """Fetch a required string field; raise a RecordError if it is missing, not a string, or empty."""
    val = require(rec, key, case_id, source)
    if not isinstance(val, str):
        raise RecordError(case_id, key, f"expected a string, got {type(val).__name__}", source)
    if not empty_ok and not val.strip():
        raise RecordError(case_id, key, "empty string", source)
    return val


def str_tuple(val: Any, fld: str, case_id: Any, source: str | None = None, single_ok: bool = False
              ) -> tuple[str, ...]:
    """A list of strings as a tuple (a lone string too when ``single_ok``); raise a RecordError otherwise."""
    if single_ok and isinstance(val, str):
        val = [val]
    if not isinstance(val, list):
        raise RecordError(case_id, fld, f"expected a list of strings, got {type(val).__name__}", source)
    for i, v in enumerate(val):
        if not isinstance(v, str):
            raise RecordError(case_id, f"{fld}[{i}]", f"expected a string, got {type(v).__name__}", source)
    return tuple(val)


def parse_records(items, parse_one, on_error: str = "raise", source: str | None = None):
    """Run ``parse_one(record, index, source)`` over ``(index, record)`` pairs.

    Returns ``(good, errors)``. With ``on_error="raise"`` the first :class:`RecordError` propagates; with
    ``"collect"`` bad records are skipped and their errors returned, so a runner can report them and go on.
    A repeated ``case_id`` is an error too (field ``case_id``): results are keyed by it.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    good, errors, seen = [], [], set()
    for index, rec in items:
        try:
            out = parse_one(rec, index, source)
            cid = getattr(out, "case_id", None)
            if cid in seen:
                raise RecordError(cid, "case_id", "duplicate case id", source)
            seen.add(cid)
            good.append(out)
        except RecordError as e:
            if on_error == "raise":
                raise
            errors.append(e)
    return good, errors
