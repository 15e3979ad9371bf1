"""Datasets by name or path: what ``--dataset`` resolves through.

``load_records("counterfact", n=100, seed=0)`` returns the first 100 :class:`EditRequest` of the named dataset
after a shuffle seeded with 0 (no shuffle when ``seed`` is None). A path to a ``.json`` (a list of records) or
``.jsonl`` (one record a line) file works too; its format (ROME or EasyEdit CounterFact, MEND zsRE) is detected
from the records that can be recognised (the most common format among them; ties go to the one seen first), so
a malformed first record costs that record, not the file. Selection happens on raw records *before* parsing, so
the chosen case ids do not depend on which records happen to be malformed.

Errors: ``on_error="raise"`` (default) raises the first :class:`RecordError` and returns a list;
``on_error="collect"`` returns ``(records, errors)`` -- the good records and one RecordError per bad one (a
record that is not an object, or lacks a key its file's format needs, is one RecordError naming the record and
the field; an unreadable ``.jsonl`` line is one RecordError whose source is ``file:line``).
A file that cannot be read at all raises :class:`DatasetFileError` (a ValueError naming the file) in either
mode: not UTF-8 (a UTF-8 BOM is accepted), not JSON, nested too deeply, not a list, no record in a known
format, or known_1000 facts (use :func:`load_known`). A missing file raises :class:`DatasetFileMissing`, which
is both a DatasetFileError and a FileNotFoundError.

The shared data directory is ``$EDITBENCH_DATA_DIR``, else the first that exists of ``<cwd>/../shared/data``
and ``<repo root>/../shared/data`` (repo root = the directory holding the ``editbench`` package). A named file
missing there is read from the download cache, or downloaded from its original source on first use
(:func:`editbench.data.sources.locate`; offline, :class:`~editbench.data.sources.DataNotAvailable` says what to
fetch or set).
"""
from __future__ import annotations

import importlib
import json
import os
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from editbench.data.counterfact import PARSERS, detect_counterfact_format
from editbench.data.known import is_known, parse_known
from editbench.data.schema import (DatasetFileError, DatasetFileMissing, EditRequest, RecordError, UnreadableRecord,
                                   json_int, parse_records, short)
from editbench.data.sources import REPO_ROOT, locate, mirror_dir, obtain  # noqa: F401 (REPO_ROOT: importers)
from editbench.data.zsre import is_zsre, parse_zsre
from editbench.suggest import close_matches, did_you_mean


@dataclass(frozen=True)
class Dataset:
    """A named dataset: a file under the shared data dir, the downloaded full CounterFact, or a factory."""

    name: str
    description: str
    file: str | None = None  # mirror layout: relative to data_dir() (or the download cache; data/sources.py)
    factory: str | None = None  # "module:attr", called with no arguments, returning ROME-format dicts
    download: bool = False  # the full CounterFact from ROME's data host (editbench.data.download)


DATASETS: dict[str, Dataset] = {d.name: d for d in [
    Dataset("counterfact", "CounterFact, EasyEdit format, 10,000 cases (shared data or KnowledgeSpread download)",
            file="counterfact/counterfact-edit.json"),
    Dataset("counterfact-1k", "CounterFact, EasyEdit format, 1,000 cases (shared data or KnowledgeSpread download)",
            file="counterfact/counterfact-edit-1k.json"),
    Dataset("counterfact-full", "CounterFact, ROME format, 21,919 cases (downloaded from ROME's data host, cached)",
            download=True),
    Dataset("zsre", "zsRE, MEND format, first 414 eval records (shared data or ROME's data host)",
            file="zsre/zsre_mend_eval_first414.json"),
    Dataset("zsre-train", "zsRE, MEND format, 1,000 train records (shared data or KnowledgeSpread download)",
            file="zsre/zsre_mend_train-1k.json"),
    Dataset("factworld", "CounterFact-format records of the embedded fact world (generated)",
            factory="editbench.factworld:factworld_records"),
    Dataset("factworld-mend-train", "CounterFact-format records of fact-world relations the suites never edit "
                                    "(generated; MEND's training set for the fact world)",
            factory="editbench.factworld.mend_records:mend_train_records"),
]}
KNOWN_FILE = "counterfact/known_1000.json"
EDIT_ORDERS_FILE = "counterfact/counterfact_sampled_unique_cf_10_20000.json"


class UnknownDatasetError(ValueError):
    """A ``--dataset`` value that is neither a known name nor an existing file."""

    def __init__(self, name: str):
        self.name = name
        self.suggestions = close_matches(name, DATASETS)
        super().__init__(f"unknown dataset {name!r}.{did_you_mean(self.suggestions)} "
                         f"Known datasets: {', '.join(DATASETS)}; or give a path to a .json/.jsonl file.")


def list_datasets() -> dict[str, str]:
    """Name -> one-line description, for ``--help``."""
    return {name: d.description for name, d in DATASETS.items()}


def data_dir() -> Path:
    """The shared data directory (see the module docstring); FileNotFoundError saying where it looked."""
    return mirror_dir()


BAD_LINES = ("raise", "keep")
_BOM = b"\xef\xbb\xbf"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetFileMissing(path, "no such file") from None
    except IsADirectoryError:
        raise DatasetFileError(path, "is a directory, not a dataset file") from None
    except OSError as e:
        raise DatasetFileError(path, f"cannot be read: {e.strerror or e}") from None


def _json_problem(e: Exception) -> str:
    """Why a JSON text did not load, in one line (no bare JSONDecodeError/RecursionError/ValueError)."""
    if isinstance(e, json.JSONDecodeError):
        return f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
    if isinstance(e, RecursionError):
        return "JSON nested too deeply to read"
    return f"invalid JSON: {short(str(e))}"


def _utf8_problem(data: bytes, e: UnicodeDecodeError, offset: int = 0) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "UTF-16 encoded (byte-order mark FF FE / FE FF); save it as UTF-8"
    return f"not valid UTF-8: byte 0x{data[e.start]:02x} at offset {offset + e.start}"


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in ``path`` (UTF-8, a BOM accepted); one :class:`DatasetFileError` naming the file if it
    cannot be read. Integers of more than 100 digits become :class:`~editbench.data.schema.OversizedInt`."""
    path = Path(path)
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetFileError(path, _utf8_problem(data, e)) from None
    try:
        return json.loads(text, parse_int=json_int)
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        hint = ""
        if isinstance(e, json.JSONDecodeError) and e.msg == "Extra data":
            hint = " (several JSON values: a file of one record a line needs the .jsonl suffix)"
        raise DatasetFileError(path, _json_problem(e) + hint) from None


def read_json_records(path: str | os.PathLike, bad_lines: str = "raise") -> list:
    """A ``.jsonl`` file (one JSON value a line, blank lines skipped) or a JSON file holding a list.

    The file is UTF-8 (a leading BOM accepted). A file that cannot be read raises :class:`DatasetFileError`.
    ``bad_lines`` (``.jsonl`` only): ``"raise"`` -> a DatasetFileError naming ``file:line`` for the first line
    that is not valid UTF-8/JSON; ``"keep"`` -> such a line becomes an
    :class:`~editbench.data.schema.UnreadableRecord` in its place, which the parsers report as one RecordError
    (what :func:`load_records` uses, so one bad line costs one record).
    """
    if bad_lines not in BAD_LINES:
        raise ValueError(f"bad_lines must be one of {BAD_LINES}, got {bad_lines!r}")
    path = Path(path)
    if path.suffix.lower() != ".jsonl":
        data = read_json(path)
        if not isinstance(data, list):
            raise DatasetFileError(path, f"expected a JSON list of records, got {type(data).__name__}")
        return data
    data = _read_bytes(path)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DatasetFileError(path, "UTF-16 encoded (byte-order mark FF FE / FE FF); save it as UTF-8")
    out: list = []
    for lineno, line in enumerate(data.splitlines(), 1):  # bytes.splitlines: \n, \r\n, \r only
        if line.startswith(_BOM):
            line = line[len(_BOM):]
        problem = None
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            problem = f"not valid UTF-8: byte 0x{line[e.start]:02x} at column {e.start + 1}"
        else:
            if not text.strip():
                continue
            try:
                out.append(json.loads(text, parse_int=json_int))
            except (ValueError, RecursionError) as e:
                problem = _json_problem(e).replace(" at line 1, column", " at column")
        if problem is not None:
            if bad_lines == "raise":
                raise DatasetFileError(f"{path}:{lineno}", problem)
            out.append(UnreadableRecord(lineno, problem))
    return out


def detect_format(rec: Any) -> str:
    """``"rome"``, ``"easyedit"``, ``"zsre"`` or ``"known"`` from one record; ValueError if none fits."""
    fmt = detect_counterfact_format(rec)
    if fmt:
        return fmt
    if is_zsre(rec):
        return "zsre"
    if is_known(rec):
        return "known"
    keys = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
    raise ValueError(f"unrecognised record format (keys {short(keys)}); expected {_EXPECTED}")


_EXPECTED = "CounterFact (ROME: requested_rewrite; EasyEdit: prompt + ground_truth) or zsRE (MEND: src + answers)"


def detect_file_format(raw: list, source: str) -> str:
    """The format of a file's records: the most common among the records that can be recognised (ties: the one
    seen first). Records that cannot be recognised do not vote; each becomes a RecordError when parsed.
    :class:`DatasetFileError` if no record can be recognised."""
    votes: Counter = Counter()
    for rec in raw:
        if isinstance(rec, dict):
            try:
                votes[detect_format(rec)] += 1  # Counter keeps first-seen order: max() breaks ties by it
            except ValueError:
                pass
    if not votes:
        readable = [r for r in raw if not isinstance(r, UnreadableRecord)]
        if not readable:
            what = "no line is readable"
        elif isinstance(readable[0], dict):
            what = f"first readable record has keys {short(sorted(readable[0]))}"
        else:
            what = f"first readable record is a {type(readable[0]).__name__}"
        raise DatasetFileError(source, f"none of its {len(raw):,} records is in a known format ({what}); "
                                       f"expected {_EXPECTED}")
    return max(votes, key=votes.__getitem__)


def _select(count: int, n: int | None, seed: int | None) -> list[int]:
    idx = list(range(count))
    if seed is not None:
        random.Random(seed).shuffle(idx)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int or None, got {n!r}")
        idx = idx[:n]  # like slicing: n beyond the dataset's size gives all of it
    return idx


def _finish(good: list, errors: list[RecordError], on_error: str):
    return good if on_error == "raise" else (good, errors)


def parse_raw(raw: list, source: str, n: int | None = None, seed: int | None = None, on_error: str = "raise",
              target: str = "answers"):
    """Parse already-read raw records (format detected from the recognisable ones); see :func:`load_records`."""
    idx = _select(len(raw), n, seed)
    if not idx:
        return _finish([], [], on_error)
    fmt = detect_file_format(raw, source)
    if fmt == "known":
        raise DatasetFileError(source, "holds known_1000-style facts, not edit requests; use load_known()")
    parse: Callable = PARSERS.get(fmt) or (lambda r, i, s: parse_zsre(r, i, s, target=target))
    good, errors = parse_records(((i, raw[i]) for i in idx), parse, on_error, source)
    return _finish(good, errors, on_error)


def _raw_for(name_or_path: str | os.PathLike) -> tuple[list, str]:
    """Raw records and a label for error messages."""
    name = str(name_or_path)
    d = DATASETS.get(name)
    if d is None:
        path = Path(name).expanduser()
        if path.exists():
            return read_json_records(path, bad_lines="keep"), str(path)
        if path.suffix in (".json", ".jsonl") or os.sep in name:
            raise DatasetFileMissing(name, "dataset file does not exist")
        raise UnknownDatasetError(name)
    if d.file:
        return read_json_records(locate(d.file), bad_lines="keep"), d.file
    if d.download:
        return read_json_records(obtain(d.name), bad_lines="keep"), "counterfact.json"
    mod, _, attr = d.factory.partition(":")
    try:
        factory = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ImportError(f"dataset {d.name!r} needs {d.factory}, which failed to import: {e}") from e
    return list(factory()), d.name


def load_records(name_or_path: str | os.PathLike, n: int | None = None, seed: int | None = None,
                 on_error: str = "raise", target: str = "answers"):
    """Edit requests of a named dataset or a file.

    ``n``: how many (the first n after the optional shuffle; None, or more than there are, gives all).
    ``seed``: shuffle with ``random.Random(seed)`` before taking n; None keeps file order.
    ``on_error``: ``"raise"`` -> ``list[EditRequest]``; ``"collect"`` -> ``(list[EditRequest], list[RecordError])``.
    ``target``: zsRE only -- ``"answers"`` (ROME, default) or ``"alt"`` (EasyEdit); see :mod:`editbench.data.zsre`.
    """
    raw, source = _raw_for(name_or_path)
    return parse_raw(raw, source, n=n, seed=seed, on_error=on_error, target=target)


def load_known(path: str | os.PathLike | None = None, on_error: str = "raise"):
    """known_1000 facts (default: the shared ``counterfact/known_1000.json``) as :class:`KnownFact`."""
    path = Path(path) if path is not None else locate(KNOWN_FILE)
    raw = read_json_records(path, bad_lines="keep")
    good, errors = parse_records(enumerate(raw), parse_known, on_error, str(path))
    return _finish(good, errors, on_error)


def load_edit_orders(path: str | os.PathLike | None = None) -> list[list[str]]:
    """The 10 random edit orders of the seed paper's code (lists of CounterFact case ids, as strings to match
    :attr:`EditRequest.case_id`). Ids span all 21,919 cases; see :func:`order_records`."""
    path = Path(path) if path is not None else locate(EDIT_ORDERS_FILE)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DatasetFileError(path, "expected an object of sample index -> list of case ids")
    if not all(k.isdigit() for k in data):
        raise DatasetFileError(path, f"sample indices must be integers, got keys {short(sorted(data))}")
    orders = []
    for key in sorted(data, key=int):
        ids = data[key]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise DatasetFileError(path, f"order {short(key)} is not a list of int case ids")
        orders.append([str(i) for i in ids])
    return orders


def order_records(records: list[EditRequest], order: list[str], missing: str = "skip") -> list[EditRequest]:
    """``records`` rearranged in ``order`` (case ids). Ids not among the records are skipped
    (``missing="skip"``, for orders over the full CounterFact applied to a subset) or a KeyError (``"raise"``)."""
    by_id = {r.case_id: r for r in records}
    if missing == "raise":
        absent = [c for c in order if c not in by_id]
        if absent:
            raise KeyError(f"{len(absent)} case ids of the order are not among the records, e.g. {absent[:5]}")
    elif missing != "skip":
        raise ValueError(f"missing must be 'skip' or 'raise', got {missing!r}")
    return [by_id[c] for c in order if c in by_id]
