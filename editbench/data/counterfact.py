"""CounterFact records -> :class:`EditRequest`, from either of the two formats in circulation.

**ROME format** (``counterfact.json`` from ROME's data host, 21,919 records; also what the fact world emits)::

    {"case_id": 0, "pararel_idx": 2796,
     "requested_rewrite": {"prompt": "The mother tongue of {} is", "subject": "Danielle Darrieux",
                           "relation_id": "P103", "target_new": {"str": "English", "id": "Q1860"},
                           "target_true": {"str": "French", "id": "Q150"}},
     "paraphrase_prompts": [...], "neighborhood_prompts": [...], "attribute_prompts": [...],
     "generation_prompts": [...]}

**EasyEdit format** (``../shared/data/counterfact/counterfact-edit*.json``)::

    {"case_id": 0, "prompt": "The mother tongue of Danielle Darrieux is", "subject": "Danielle Darrieux",
     "target_new": "English", "ground_truth": "French",
     "rephrase_prompt": "Where Danielle Darrieux is from, people speak the language of",
     "locality_prompt": "Michel Rocard is a native speaker of", "locality_ground_truth": "French"}

EasyEdit fills the subject into the prompt; we turn it back into a ROME ``"{}"`` template by replacing the
first occurrence of the subject, so ``template.format(subject)`` gives the original prompt back exactly.
``rephrase_prompt`` becomes ``paraphrase_prompts`` and ``locality_prompt`` ``neighborhood_prompts`` (a string
or a list of strings is accepted for each). In CounterFact a neighborhood prompt is about another subject whose
true answer is the edited subject's ``target_true``, so a ``locality_ground_truth`` that differs from
``ground_truth`` is rejected: neighborhood scoring (NS) would compare the wrong targets.

Every check raises :class:`RecordError` naming the case id and the field as the file spells it (an empty
EasyEdit ``rephrase_prompt`` is reported as ``rephrase_prompt``, not as the internal ``paraphrase_prompts[0]``).
Text fields follow the rules in :mod:`editbench.data.schema` (no normalization; control characters, lone
surrogates, invisible-only strings and strings over 2,000 characters rejected; ROME templates checked with
``string.Formatter().parse``; probe lists must not be empty).
"""
from __future__ import annotations

from typing import Any

from editbench.data.schema import (MAX_ID_CHARS, EditRequest, OversizedInt, RecordError, check_subject_in_prompt,
                                   require, require_text, short, template_problem, text_problem, text_tuple)

PROBE_FIELDS = ("paraphrase_prompts", "neighborhood_prompts", "attribute_prompts", "generation_prompts")


def record_case_id(rec: Any, index: int | None, source: str | None = None, key: str = "case_id") -> str:
    """The record's ``case_id`` as a string (ints and strings accepted).

    A record that has no case id yet is named ``"#<index>"`` (its position in the file) in the error.
    """
    where = f"#{index}" if index is not None else "?"
    val = require(rec, key, where, source)
    if isinstance(val, bool) or not isinstance(val, (int, str)):
        raise RecordError(where, key, f"expected a non-empty int or string, got {short(val)}", source)
    if isinstance(val, str) and (problem := text_problem(val, MAX_ID_CHARS)):
        raise RecordError(where, key, f"{problem} (got {short(val)})", source)
    return str(val)


def _target(rr: dict, key: str, cid: str, source: str | None) -> tuple[str, Any]:
    """``{"str": ..., "id": ...}`` -> (str, id)."""
    val = require(rr, key, cid, source)
    fld = f"requested_rewrite.{key}"
    if not isinstance(val, dict):
        raise RecordError(cid, fld, f"expected {{'str': ..., 'id': ...}}, got {type(val).__name__}", source)
    s = val.get("str")
    if s is None:
        raise RecordError(cid, f"{fld}.str", "missing key", source)
    if problem := text_problem(s):
        raise RecordError(cid, f"{fld}.str", problem, source)
    if isinstance(val.get("id"), OversizedInt):
        raise RecordError(cid, f"{fld}.id", f"integer too large ({val['id']!r})", source)
    return s, val.get("id")


def _check_template(template: str, subject: str, cid: str, fld: str, source: str | None) -> None:
    """A ROME template must take the subject through exactly one ``{}`` and nothing else."""
    if problem := template_problem(template):
        raise RecordError(cid, fld, problem, source)
    try:
        template.format(subject)
    except (IndexError, KeyError, ValueError) as e:
        raise RecordError(cid, fld, f"template does not format with the subject ({e!r}): {short(template)}", source)


def parse_rome(rec: Any, index: int | None = None, source: str | None = None) -> EditRequest:
    """One ROME-format CounterFact record -> a validated :class:`EditRequest`."""
    cid = record_case_id(rec, index, source)
    rr = require(rec, "requested_rewrite", cid, source)
    if not isinstance(rr, dict):
        raise RecordError(cid, "requested_rewrite", f"expected an object, got {type(rr).__name__}", source)
    prompt = require_text(rr, "prompt", cid, source, fld="requested_rewrite.prompt")
    subject = require_text(rr, "subject", cid, source, fld="requested_rewrite.subject")
    _check_template(prompt, subject, cid, "requested_rewrite.prompt", source)
    new, new_id = _target(rr, "target_new", cid, source)
    true, true_id = _target(rr, "target_true", cid, source)
    rel = rr.get("relation_id")
    if rel is not None and not isinstance(rel, str):
        raise RecordError(cid, "requested_rewrite.relation_id", f"expected a string, got {short(rel)}", source)
    probes = {f: text_tuple(require(rec, f, cid, source), f, cid, source) for f in PROBE_FIELDS}
    meta = {"format": "rome", "target_new_id": new_id, "target_true_id": true_id}
    if isinstance(rec.get("pararel_idx"), OversizedInt):
        raise RecordError(cid, "pararel_idx", f"integer too large ({rec['pararel_idx']!r})", source)
    if "pararel_idx" in rec:
        meta["pararel_idx"] = rec["pararel_idx"]
    req = EditRequest(case_id=cid, prompt=prompt, subject=subject, target_new=new, target_true=true,
                      relation_id=rel, meta=meta, **probes)
    return req.validate(source)


def easyedit_template(case_id: Any, prompt: str, subject: str, source: str | None = None) -> str:
    """A filled-in prompt -> ``"{}"`` template (first occurrence of the subject). Round-trips exactly."""
    if "{" in prompt or "}" in prompt:
        raise RecordError(case_id, "prompt", f"a filled-in prompt must not contain braces: {short(prompt)}", source)
    template = check_subject_in_prompt(case_id, prompt, subject, "prompt", source)
    assert template.format(subject) == prompt
    return template


def parse_easyedit(rec: Any, index: int | None = None, source: str | None = None) -> EditRequest:
    """One EasyEdit-format CounterFact record -> a validated :class:`EditRequest`."""
    cid = record_case_id(rec, index, source)
    subject = require_text(rec, "subject", cid, source)
    prompt = easyedit_template(cid, require_text(rec, "prompt", cid, source), subject, source)
    new = require_text(rec, "target_new", cid, source)
    true = require_text(rec, "ground_truth", cid, source)
    para = text_tuple(require(rec, "rephrase_prompt", cid, source), "rephrase_prompt", cid, source, single_ok=True)
    neigh = text_tuple(require(rec, "locality_prompt", cid, source), "locality_prompt", cid, source, single_ok=True)
    loc_gt = require_text(rec, "locality_ground_truth", cid, source)
    if loc_gt.strip() != true.strip():
        raise RecordError(cid, "locality_ground_truth",
                          f"{short(loc_gt)} differs from ground_truth {short(true)}: CounterFact neighbors share the "
                          "true object, and NS scores them against it", source)
    req = EditRequest(case_id=cid, prompt=prompt, subject=subject, target_new=new, target_true=true,
                      paraphrase_prompts=para, neighborhood_prompts=neigh, meta={"format": "easyedit"})
    return req.validate(source)


def detect_counterfact_format(rec: Any) -> str | None:
    """``"rome"``, ``"easyedit"`` or None, from one record's keys."""
    if not isinstance(rec, dict):
        return None
    if "requested_rewrite" in rec:
        return "rome"
    if "prompt" in rec and "ground_truth" in rec:
        return "easyedit"
    return None


PARSERS = {"rome": parse_rome, "easyedit": parse_easyedit}
