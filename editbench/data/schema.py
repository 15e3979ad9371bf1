"""The edit-request schema shared by every loader, editor and scorer.

A record from any dataset (CounterFact in ROME or EasyEdit format, zsRE, the fact world) becomes an
:class:`EditRequest`. Validation is strict and typed: a malformed record raises :class:`RecordError`
naming the case id and the field, so a runner can report it and go on with the next record. A file that
cannot be read at all (not UTF-8, not JSON, nested too deeply, not a list) raises :class:`DatasetFileError`
naming the file.

**Text rules** (every prompt, subject, target and probe prompt of an edit record; :func:`text_problem`):

* **No normalization.** Strings are used exactly as the file spells them: no Unicode NFC/NFKC, no ``strip()``,
  no case folding (the tokenizer must see the file's bytes, and EasyEdit prompts must round-trip exactly).
  A subject spelled differently (e.g. NFD vs NFC) from its occurrence in the prompt is therefore an error, not
  silently matched.
* **Rejected characters:** control characters (Unicode category Cc: U+0000-U+001F, U+007F-U+009F, NUL included)
  except tab, line feed and carriage return (real CounterFact paraphrase prompts contain newlines); lone
  surrogates (category Cs, e.g. from a ``"\\ud800"`` escape: not valid Unicode text).
* **Empty** means no visible character: a string made only of whitespace and characters of categories Cf
  (format: zero-width space, BOM, joiners, bidi marks), Cc, Zs, Zl or Zp is rejected like ``""``. Such
  characters *inside* otherwise visible text are kept (zsRE has U+FEFF inside coordinates).
* **Size limits:** at most :data:`MAX_TEXT_CHARS` (2,000) characters per text field; a string case id at most
  :data:`MAX_ID_CHARS` (200) characters; a JSON integer at most :data:`MAX_INT_DIGITS` (100) digits (a longer
  one is read as an :class:`OversizedInt` marker, which every field rejects, instead of failing the whole file).
* **Probe lists** that the format has (ROME ``paraphrase_prompts`` etc., EasyEdit ``rephrase_prompt`` and
  ``locality_prompt`` when given as lists, zsRE ``answers``) must not be empty.
* **ROME templates** must contain exactly one ``{}`` placeholder *as* ``str.format`` *reads it*
  (``string.Formatter().parse``) and no other brace: ``"{{}} lives in"`` has no placeholder at all (it formats
  to ``"{} lives in"`` with no subject) and is rejected, as are ``"{0}"``, ``"{!r}"``, ``"{:>3}"`` and stray or
  escaped braces.

Errors name fields as the file spells them (``rephrase_prompt``, ``locality_prompt[1]``, ``requested_rewrite.prompt``);
:meth:`EditRequest.validate` is the last line of defence and uses the internal names.
"""
from __future__ import annotations

import re
import reprlib
import string
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

MAX_TEXT_CHARS = 2_000  # a prompt, subject, target or probe prompt
MAX_ID_CHARS = 200  # a string case id
MAX_INT_DIGITS = 100  # a JSON integer; longer ones become OversizedInt

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80
_repr.maxlevel, _repr.maxlist, _repr.maxdict = 3, 4, 4


def short(val: Any) -> str:
    """A bounded ``repr`` for error messages (long strings and deep or huge values are elided)."""
    try:
        return _repr.repr(val)
    except RecursionError:  # pragma: no cover - reprlib bounds the depth; belt and braces
        return f"<{type(val).__name__}>"


class OversizedInt:
    """Stands for a JSON integer of more than :data:`MAX_INT_DIGITS` digits (see :func:`json_int`).

    Not an int and not a str, so every typed field rejects it with a RecordError naming that field.
    """

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"<integer of {self.digits:,} digits>"


def json_int(text: str) -> "int | OversizedInt":
    """``parse_int`` for :func:`json.loads`: an int, or an :class:`OversizedInt` past the digit limit (Python
    refuses to convert more than 4,300 digits, which would otherwise fail the whole file)."""
    digits = len(text) - (text[:1] == "-")
    return int(text) if digits <= MAX_INT_DIGITS else OversizedInt(digits)


class DatasetFileError(ValueError):
    """A dataset file that cannot be read at all (I/O, encoding, JSON syntax, nesting, top-level shape, format).

    ``path`` names the file, ``problem`` says what is wrong. One per file, never a bare JSONDecodeError,
    UnicodeDecodeError or RecursionError.
    """

    def __init__(self, path: Any, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class DatasetFileMissing(DatasetFileError, FileNotFoundError):
    """The dataset file does not exist (a :class:`DatasetFileError` and a FileNotFoundError)."""


class RecordError(ValueError):
    """A malformed record. ``case_id`` and ``field`` say which record and which field."""

    def __init__(self, case_id: Any, field: str, problem: str, source: str | None = None):
        self.case_id = case_id
        self.field = field
        self.problem = problem
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(f"record {short(case_id)}{where}: field {short(field)}: {problem}")


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

        for name in ("prompt", "subject", "target_new"):
            if problem := text_problem(getattr(self, name)):
                bad(name, problem)
        if problem := template_problem(self.prompt):
            bad("prompt", problem)
        if self.target_true is not None:
            if problem := text_problem(self.target_true):
                bad("target_true", problem)
            if self.target_true.strip() == self.target_new.strip():
                bad("target_new", f"target_new equals target_true ({short(self.target_new)}): nothing to edit")
        for name in ("paraphrase_prompts", "neighborhood_prompts", "attribute_prompts", "generation_prompts"):
            vals = getattr(self, name)
            for i, p in enumerate(vals):
                if problem := text_problem(p):
                    bad(f"{name}[{i}]", problem)
        return self


# --- text and template rules (see the module docstring) -------------------------------------------------------

_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")  # Cc but \t\n\r; Cs
_INVISIBLE = frozenset(("Cc", "Cf", "Zs", "Zl", "Zp"))


def is_blank(text: str) -> bool:
    """True if ``text`` has no visible character (only whitespace and Cf/Cc/Zs/Zl/Zp characters)."""
    s = text.strip()
    if s and unicodedata.category(s[0]) not in _INVISIBLE:
        return False  # the common case, O(1)
    return all(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in s)


def text_problem(val: Any, max_chars: int = MAX_TEXT_CHARS, blank_ok: bool = False) -> str | None:
    """Why ``val`` is not an acceptable text field (wrong type, too long, a rejected character, empty), or None."""
    if not isinstance(val, str):
        return f"expected a string, got {type(val).__name__}"
    if len(val) > max_chars:
        return f"{len(val):,} characters, over the limit of {max_chars:,}"
    if m := _BAD_CHARS.search(val):
        ch = m.group()
        kind = "lone surrogate" if "\ud800" <= ch <= "\udfff" else "control character"
        return f"{kind} U+{ord(ch):04X} at position {m.start()}"
    if not blank_ok and is_blank(val):
        return "empty string" if not val else "empty: only whitespace or invisible characters"
    return None


def template_problem(template: str) -> str | None:
    """Why ``template`` is not a ROME template (exactly one ``{}`` as str.format reads it, no other brace)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        return f"not a format template ({e}): {short(template)}"
    fields = [(name, spec, conv) for _lit, name, spec, conv in parts if name is not None]
    if fields != [("", "", None)]:
        return (f"must contain exactly one '{{}}' placeholder for the subject, as str.format reads it "
                f"(found {len(fields)} replacement field(s)): {short(template)}")
    if any("{" in lit or "}" in lit for lit, *_ in parts):
        return f"must contain no brace besides the one '{{}}' (escaped '{{{{'/'}}}}' included): {short(template)}"
    return None


def check_subject_in_prompt(case_id: Any, prompt: str, subject: str, fld: str = "prompt",
                            source: str | None = None) -> str:
    """Turn a filled-in prompt into a ``{}`` template; raise if the subject is not in it."""
    if not subject:
        raise RecordError(case_id, "subject", "empty subject", source)
    if "{}" in prompt:
        return prompt
    idx = prompt.find(subject)
    if idx < 0:
        raise RecordError(case_id, fld, f"subject {short(subject)} does not occur in {short(prompt)}", source)
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


def require_text(rec: dict, key: str, case_id: Any, source: str | None = None, fld: str | None = None,
                 blank_ok: bool = False, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Fetch a required text field under the text rules (:func:`text_problem`); RecordError naming ``fld``
    (default ``key``) otherwise."""
    val = require(rec, key, case_id, source)
    if problem := text_problem(val, max_chars, blank_ok):
        raise RecordError(case_id, fld or key, problem, source)
    return val


def text_tuple(val: Any, fld: str, case_id: Any, source: str | None = None, single_ok: bool = False,
               allow_empty: bool = False) -> tuple[str, ...]:
    """A probe list (or a lone string when ``single_ok``) under the text rules, as a tuple.

    Errors name the field as the file spells it: ``fld`` for a lone string or an empty list, ``fld[i]`` for
    an element. An empty list is an error unless ``allow_empty``.
    """
    if single_ok and isinstance(val, str):
        if problem := text_problem(val):
            raise RecordError(case_id, fld, problem, source)
        return (val,)
    if not isinstance(val, list):
        raise RecordError(case_id, fld, f"expected a list of strings, got {type(val).__name__}", source)
    if not val and not allow_empty:
        raise RecordError(case_id, fld, "empty list: the format needs at least one prompt here", source)
    for i, v in enumerate(val):
        if problem := text_problem(v):
            raise RecordError(case_id, f"{fld}[{i}]", problem, source)
    return tuple(val)


def require_str(rec: dict, key: str, case_id: Any, source: str | None = None, empty_ok: bool = False) -> str:
    """Fetch a required string field; raise a RecordError if it is missing, not a string, or empty."""
    val = require(rec, key, case_id, source)
    if not isinstance(val, str):
        raise RecordError(case_id, key, f"expected a string, got {type(val).__name__}", source)
    if not empty_ok and not val.strip():
        raise RecordError(case_id, key, "empty string", source)
    return val


class UnreadableRecord:
    """Stands for a line of a ``.jsonl`` file that could not be read (bad UTF-8, bad JSON, nested too deeply).

    :func:`parse_records` turns it into one RecordError (field ``<record>``, source ``file:line``), so one bad
    line costs one record, not the file.
    """

    __slots__ = ("lineno", "problem")

    def __init__(self, lineno: int, problem: str):
        self.lineno = lineno
        self.problem = problem

    def __repr__(self) -> str:
        return f"<unreadable line {self.lineno}: {self.problem}>"


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
            if isinstance(rec, UnreadableRecord):  # a JSONL line that did not parse: named by file:line
                raise RecordError(f"#{index}", "<record>", rec.problem, f"{source or '?'}:{rec.lineno}")
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
