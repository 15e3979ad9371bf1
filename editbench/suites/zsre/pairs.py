"""Question / completion pairs: one fact in two formats, for the zsRE-vs-completion transfer suite.

The seed paper (Gupta et al. 2024, appendix A.1) edits a fact in zsRE's question form ("The college Herb Pomeroy
attended was what?") and probes it in completion form ("Herb Pomeroy attended the college of"). A
:class:`FormPair` holds both forms of one fact as :class:`EditRequest` objects with the same subject and targets:
``question`` (the zsRE-style prompt) and ``completion`` (the CounterFact-style prompt). Pair sources
(:data:`PAIR_SOURCES`, what the suite's ``--dataset`` names):

* ``zsre`` -- the paper's exact setting: the 280 pairs of ``zsre/zsre_text_completion_prompts.json``
  (``{case_index, question, text_completion_prompt}``), where ``case_index`` i is record i of
  ``zsre/zsre_mend_eval_first414.json`` (MEND format, :mod:`editbench.data.zsre`); the pair's ``question`` must
  equal that record's ``src``. The target is ``answers[0]`` (``target="answers"``, ROME's convention and the
  paper's: no target_true) or ``alt`` (``target="alt"``, EasyEdit's: target_true = ``answers[0]``).
* ``counterfact`` -- ``counterfact/counterfact_qna.json`` (``{case_index, question, subject, answer,
  qna_question}``: a CounterFact completion prompt -- its ``question`` key -- and its question form
  ``qna_question``; ``answer`` is CounterFact's target_new, ``case_index`` its case id). target_true is the
  ``ground_truth`` of the same case in ``counterfact/counterfact-edit.json`` when that file is here and holds the
  case with the same subject and target (450 of the 1,000), else None.
* ``factworld`` -- the fact world's question template against a completion template of the same fact
  (``editbench.factworld.zsre_pairs:factworld_pairs``, generated).
* a path to a JSON (list) or JSONL file of generic pairs ``{case_id, subject, question, completion, target_new,
  target_true?}`` (prompts with the subject filled in, or ``{}`` templates); files in the two published layouts
  above are recognised too (a ``text_completion_prompt`` file pairs with the shared zsRE eval records).

Malformed records are :class:`RecordError` naming the record and the field as the file spells it, raised or
collected (``on_error``) as in :mod:`editbench.data.registry`; selection (``n``, ``seed``) happens on raw records
before parsing.
"""
from __future__ import annotations

import importlib
import os
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from editbench.data.download import DownloadError
from editbench.data.registry import _select, read_json_records  # _select: one selection rule for every loader
from editbench.data.schema import (DatasetFileError, EditRequest, OversizedInt, RecordError, check_subject_in_prompt,
                                   parse_records, require, require_text, short, template_problem)
from editbench.data.sources import locate
from editbench.data.zsre import ZSRE_TARGETS, parse_zsre
from editbench.models.profiles import profile
from editbench.suggest import close_matches, did_you_mean

FORMS = ("question", "completion")
DIRECTIONS = {"q2c": ("question", "completion"), "c2q": ("completion", "question")}
"""direction -> (the form the edit is made in, the form it is probed in)."""
ZSRE_COMPLETION_FILE = "zsre/zsre_text_completion_prompts.json"
ZSRE_EVAL_FILE = "zsre/zsre_mend_eval_first414.json"
CF_QNA_FILE = "counterfact/counterfact_qna.json"
CF_TRUTH_FILE = "counterfact/counterfact-edit.json"


@dataclass(frozen=True)
class FormPair:
    """One fact in question form and in completion form (same subject, target_new and target_true)."""

    case_id: str
    question: EditRequest
    completion: EditRequest
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def form(self, name: str) -> EditRequest:
        if name not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {name!r}")
        return self.question if name == "question" else self.completion


def default_pair_source(model: str) -> str:
    """The model profile's pair source: the fact world's own pairs on the fact world, else the seed paper's 280 zsRE
    pairs."""
    return profile(model).pair_source


def pair_source_of(dataset: str | None, model: str) -> str:
    """The pairs a zsRE run reads: ``--dataset`` when given, else the model's :func:`default_pair_source`."""
    return dataset or default_pair_source(model)


@dataclass(frozen=True)
class PairSource:
    name: str
    description: str
    kind: str                      # "zsre" | "counterfact-qna" | "pairs"
    file: str | None = None        # mirror layout (editbench.data.sources)
    factory: str | None = None     # "module:attr" returning generic pair dicts


PAIR_SOURCES: dict[str, PairSource] = {s.name: s for s in [
    PairSource("zsre", "the seed paper's 280 zsRE question -> completion pairs (zsre_text_completion_prompts.json "
                       "over the first 414 zsRE eval records)", "zsre", ZSRE_COMPLETION_FILE),
    PairSource("counterfact", "1,000 CounterFact completion prompts with their question form (counterfact_qna.json; "
                              "target_true from counterfact-edit.json where present)", "counterfact-qna", CF_QNA_FILE),
    PairSource("factworld", "the fact world's question template vs a completion template of the same fact "
                            "(generated)", "pairs", factory="editbench.factworld.zsre_pairs:factworld_pairs"),
]}


class UnknownPairSourceError(ValueError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"no question/completion pairs for {name!r}.{did_you_mean(close_matches(name, PAIR_SOURCES))}"
                         f" Known: {', '.join(PAIR_SOURCES)}; or a JSON/JSONL file of pairs "
                         "{case_id, subject, question, completion, target_new, target_true?}")


def check_target(target: str) -> str:
    if target not in ZSRE_TARGETS:
        raise ValueError(f"zsRE target must be one of {ZSRE_TARGETS}, got {target!r}")
    return target


# --- parsers -----------------------------------------------------------------------------------------------------

def _index(rec: Any, key: str, cid: Any, source: str | None) -> int:
    val = require(rec, key, cid, source)
    if isinstance(val, OversizedInt) or isinstance(val, bool) or not isinstance(val, int) or val < 0:
        raise RecordError(cid, key, f"expected a non-negative integer, got {short(val)}", source)
    return val


def _form(cid: str, prompt: str, subject: str, fld: str, source: str | None) -> str:
    """A filled-in prompt (or a ``{}`` template) -> a ROME template, with errors naming ``fld``."""
    template = check_subject_in_prompt(cid, prompt, subject, fld, source)
    if problem := template_problem(template):
        raise RecordError(cid, fld, problem, source)
    return template


def _pair(cid: str, subject: str, question: str, completion: str, new: str, true: str | None, source: str | None,
          qfield: str, cfield: str, meta: dict, base: EditRequest | None = None) -> FormPair:
    q_t = _form(cid, question, subject, qfield, source)
    c_t = _form(cid, completion, subject, cfield, source)
    q = base or EditRequest(case_id=cid, prompt=q_t, subject=subject, target_new=new, target_true=true, meta=meta)
    try:
        q = replace(q, paraphrase_prompts=()).validate(source)
        c = EditRequest(case_id=cid, prompt=c_t, subject=subject, target_new=new, target_true=true,
                        meta=meta).validate(source)
    except RecordError as e:  # name the file's field, not the internal one
        fld = {"prompt": qfield}.get(e.field, e.field)
        raise RecordError(cid, fld, e.problem, source) from None
    return FormPair(cid, q, c, meta)


def parse_zsre_pair(rec: Any, index: int, source: str | None, zsre: list, zsre_source: str,
                    target: str = "answers") -> FormPair:
    """One ``zsre_text_completion_prompts.json`` record joined with zsRE eval record ``case_index``."""
    cid = f"#{index}"
    i = _index(rec, "case_index", cid, source)
    cid = str(i)
    question = require_text(rec, "question", cid, source)
    completion = require_text(rec, "text_completion_prompt", cid, source)
    if i >= len(zsre):
        raise RecordError(cid, "case_index", f"no zsRE record {i} (the eval file has {len(zsre)})", source)
    req = parse_zsre(zsre[i], i, zsre_source, target=target)  # a malformed zsRE record: its own RecordError
    if zsre[i]["src"] != question:
        raise RecordError(cid, "question", f"{short(question)} is not the src of zsRE record {i} "
                                           f"({short(zsre[i]['src'])})", source)
    meta = {"source": "zsre", "target": target, "answers": req.meta["answers"], "alt": req.meta["alt"]}
    return _pair(cid, req.subject, question, completion, req.target_new, req.target_true, source, "question",
                 "text_completion_prompt", meta, base=replace(req, meta=meta))


def parse_qna_pair(rec: Any, index: int, source: str | None, truths: dict | None = None) -> FormPair:
    """One ``counterfact_qna.json`` record; ``truths``: case id -> (subject, target_new, ground_truth)."""
    cid = f"#{index}"
    i = _index(rec, "case_index", cid, source)
    cid = str(i)
    subject = require_text(rec, "subject", cid, source)
    completion = require_text(rec, "question", cid, source)
    question = require_text(rec, "qna_question", cid, source)
    new = require_text(rec, "answer", cid, source)
    true = None
    known = (truths or {}).get(i)
    if known and known[0] == subject and known[1] == new:
        true = known[2]
    meta = {"source": "counterfact", "target_true_from": CF_TRUTH_FILE if true is not None else None}
    return _pair(cid, subject, question, completion, new, true, source, "qna_question", "question", meta)


def parse_generic_pair(rec: Any, index: int, source: str | None) -> FormPair:
    """``{case_id, subject, question, completion, target_new, target_true?}``."""
    raw_id = require(rec, "case_id", f"#{index}", source)
    if isinstance(raw_id, bool) or not isinstance(raw_id, (int, str)) or not str(raw_id).strip():
        raise RecordError(f"#{index}", "case_id", f"expected a string or integer, got {short(raw_id)}", source)
    cid = str(raw_id)
    subject = require_text(rec, "subject", cid, source)
    question = require_text(rec, "question", cid, source)
    completion = require_text(rec, "completion", cid, source)
    new = require_text(rec, "target_new", cid, source)
    true = require_text(rec, "target_true", cid, source) if rec.get("target_true") is not None else None
    meta = {"source": "pairs", **({"relation_id": rec["relation_id"]} if isinstance(rec.get("relation_id"), str)
                                  else {})}
    return _pair(cid, subject, question, completion, new, true, source, "question", "completion", meta)


def detect_pair_format(raw: list, source: str) -> str:
    """``"zsre"``, ``"counterfact-qna"`` or ``"pairs"`` from the first record that is an object."""
    for rec in raw:
        if isinstance(rec, dict):
            if "text_completion_prompt" in rec:
                return "zsre"
            if "qna_question" in rec:
                return "counterfact-qna"
            if "completion" in rec and "question" in rec:
                return "pairs"
    raise DatasetFileError(source, "no record in a known pair format: expected zsre_text_completion_prompts "
                                   "(case_index, question, text_completion_prompt), counterfact_qna (case_index, "
                                   "question, subject, answer, qna_question) or generic pairs (case_id, subject, "
                                   "question, completion, target_new)")


def cf_truths(path: str | os.PathLike | None = None) -> dict[int, tuple[str, str, str]]:
    """case id -> (subject, target_new, ground_truth) of the EasyEdit-format CounterFact file (records that lack
    a field are left out: they only cost that pair its target_true); {} when the file is not here."""
    try:
        raw = read_json_records(Path(path) if path else locate(CF_TRUTH_FILE), bad_lines="keep")
    except (OSError, ValueError, DownloadError):  # not here (offline, no mirror) or unreadable: no target_true
        return {}
    out = {}
    for r in raw:
        if isinstance(r, dict) and isinstance(r.get("case_id"), int) and all(
                isinstance(r.get(k), str) for k in ("subject", "target_new", "ground_truth")):
            out[r["case_id"]] = (r["subject"], r["target_new"], r["ground_truth"])
    return out


# --- loading -----------------------------------------------------------------------------------------------------


def raw_pairs(name_or_path: str | os.PathLike) -> tuple[list, str, str]:
    """(raw records, their format, a label for messages) of a pair source name or a pairs file."""
    name = str(name_or_path)
    s = PAIR_SOURCES.get(name)
    if s is None:
        path = Path(name).expanduser()
        if not path.is_file():
            if path.suffix in (".json", ".jsonl") or os.sep in name:
                raise DatasetFileError(name, "pairs file does not exist")
            raise UnknownPairSourceError(name)
        raw = read_json_records(path, bad_lines="keep")
        return raw, detect_pair_format(raw, str(path)), str(path)
    if s.factory:
        mod, _, attr = s.factory.partition(":")
        return list(getattr(importlib.import_module(mod), attr)()), s.kind, s.name
    return read_json_records(locate(s.file), bad_lines="keep"), s.kind, s.file


def load_pairs(name_or_path: str | os.PathLike, n: int | None = None, seed: int | None = None,
               on_error: str = "raise", target: str = "answers", zsre_path: str | os.PathLike | None = None,
               truths_path: str | os.PathLike | None = None):
    """Question/completion pairs of a source (see the module docstring): ``list[FormPair]``, or ``(pairs,
    errors)`` with ``on_error="collect"``. ``n``/``seed``: the first n after a ``random.Random(seed)`` shuffle
    (None: file order). ``target``: zsRE only (``"answers"`` | ``"alt"``). ``zsre_path`` / ``truths_path``
    override the zsRE eval records and the CounterFact file target_true is read from."""
    check_target(target)
    raw, fmt, source = raw_pairs(name_or_path)
    idx = _select(len(raw), n, seed)
    if fmt == "zsre":
        zpath = Path(zsre_path) if zsre_path else locate(ZSRE_EVAL_FILE)
        zsre = read_json_records(zpath, bad_lines="keep")
        label = str(zsre_path) if zsre_path else ZSRE_EVAL_FILE

        def parse(rec, i, src):
            return parse_zsre_pair(rec, i, src, zsre, label, target)
    elif fmt == "counterfact-qna":
        truths = cf_truths(truths_path)

        def parse(rec, i, src):
            return parse_qna_pair(rec, i, src, truths)
    else:
        parse = parse_generic_pair
    good, errors = parse_records(((i, raw[i]) for i in idx), parse, on_error, source)
    return good if on_error == "raise" else (good, errors)


__all__ = ["CF_QNA_FILE", "DIRECTIONS", "FORMS", "PAIR_SOURCES", "ZSRE_COMPLETION_FILE", "FormPair", "PairSource",
           "UnknownPairSourceError", "check_target", "detect_pair_format", "load_pairs", "parse_generic_pair",
           "parse_qna_pair", "parse_zsre_pair"]
