"""Datasets by name or path: what ``--dataset`` resolves through.

``load_records("counterfact", n=100, seed=0)`` returns the first 100 :class:`EditRequest` of the named dataset
after a shuffle seeded with 0 (no shuffle when ``seed`` is None). A path to a ``.json`` (a list of records) or
``.jsonl`` (one record a line) file works too; its format (ROME or EasyEdit CounterFact, MEND zsRE) is detected
from the first record. Selection happens on raw records *before* parsing, so the chosen case ids do not depend
on which records happen to be malformed.

Errors: ``on_error="raise"`` (default) raises the first :class:`RecordError` and returns a list;
``on_error="collect"`` returns ``(records, errors)`` -- the good records and one RecordError per bad one.

The shared data directory is ``$EDITBENCH_DATA_DIR``, else the first that exists of ``<cwd>/../shared/data``
and ``<repo root>/../shared/data`` (repo root = the directory holding the ``editbench`` package).
"""
from __future__ import annotations

import importlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from editbench.data.counterfact import PARSERS, detect_counterfact_format
from editbench.data.known import is_known, parse_known
from editbench.data.schema import EditRequest, RecordError, parse_records
from editbench.data.zsre import is_zsre, parse_zsre
from editbench.suggest import close_matches, did_you_mean

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Dataset:
    """A named dataset: a file under the shared data dir, the downloaded full CounterFact, or a factory."""

    name: str
    description: str
    file: str | None = None  # relative to data_dir()
    factory: str | None = None  # "module:attr", called with no arguments, returning ROME-format dicts
    download: bool = False  # the full CounterFact from ROME's data host (editbench.data.download)


DATASETS: dict[str, Dataset] = {d.name: d for d in [
    Dataset("counterfact", "CounterFact, EasyEdit format, 10,000 cases (shared data)",
            file="counterfact/counterfact-edit.json"),
    Dataset("counterfact-1k", "CounterFact, EasyEdit format, 1,000 cases (shared data)",
            file="counterfact/counterfact-edit-1k.json"),
    Dataset("counterfact-full", "CounterFact, ROME format, 21,919 cases (downloaded from ROME's data host, cached)",
            download=True),
    Dataset("zsre", "zsRE, MEND format, first 414 eval records (shared data)",
            file="zsre/zsre_mend_eval_first414.json"),
    Dataset("zsre-train", "zsRE, MEND format, 1,000 train records (shared data)",
            file="zsre/zsre_mend_train-1k.json"),
    Dataset("factworld", "CounterFact-format records of the embedded fact world (generated)",
            factory="editbench.factworld:factworld_records"),
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
    env = os.environ.get("EDITBENCH_DATA_DIR")
    if env:
        if not Path(env).is_dir():
            raise FileNotFoundError(f"EDITBENCH_DATA_DIR={env!r} is not a directory")
        return Path(env)
    tried = [Path.cwd() / ".." / "shared" / "data", REPO_ROOT / ".." / "shared" / "data"]
    for p in tried:
        if p.is_dir():
            return p.resolve()
    raise FileNotFoundError(f"shared data directory not found (tried {', '.join(map(str, tried))}); "
                            "set EDITBENCH_DATA_DIR")


def read_json_records(path: str | os.PathLike) -> list:
    """A ``.jsonl`` file (one JSON value a line, blank lines skipped) or a JSON file holding a list."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        if path.suffix == ".jsonl":
            out = []
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{lineno}: invalid JSON: {e}") from None
            return out
        data = json.load(f)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    return data


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
    raise ValueError(f"unrecognised record format (keys {keys}); expected CounterFact (ROME: requested_rewrite; "
                     "EasyEdit: prompt + ground_truth) or zsRE (MEND: src + answers)")


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
    """Parse already-read raw records (format detected from the first); see :func:`load_records`."""
    idx = _select(len(raw), n, seed)
    if not idx:
        return _finish([], [], on_error)
    fmt = detect_format(raw[0])
    if fmt == "known":
        raise ValueError(f"{source} holds known_1000-style facts, not edit requests; use load_known()")
    parse: Callable = PARSERS.get(fmt) or (lambda r, i, s: parse_zsre(r, i, s, target=target))
    good, errors = parse_records(((i, raw[i]) for i in idx), parse, on_error, source)
    return _finish(good, errors, on_error)


def _raw_for(name_or_path: str | os.PathLike) -> tuple[list, str]:
    """Raw records and a label for error messages."""
    name = str(name_or_path)
    d = DATASETS.get(name)
    if d is None:
        path = Path(name).expanduser()
        if path.is_file():
            return read_json_records(path), str(path)
        if path.suffix in (".json", ".jsonl") or os.sep in name:
            raise FileNotFoundError(f"dataset file {name!r} does not exist")
        raise UnknownDatasetError(name)
    if d.file:
        return read_json_records(data_dir() / d.file), d.file
    if d.download:
        from editbench.data.download import download_counterfact

        return read_json_records(download_counterfact()), "counterfact.json"
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
    path = Path(path) if path is not None else data_dir() / KNOWN_FILE
    raw = read_json_records(path)
    good, errors = parse_records(enumerate(raw), parse_known, on_error, str(path))
    return _finish(good, errors, on_error)


def load_edit_orders(path: str | os.PathLike | None = None) -> list[list[str]]:
    """The 10 random edit orders of the seed paper's code (lists of CounterFact case ids, as strings to match
    :attr:`EditRequest.case_id`). Ids span all 21,919 cases; see :func:`order_records`."""
    path = Path(path) if path is not None else data_dir() / EDIT_ORDERS_FILE
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of sample index -> list of case ids")
    orders = []
    for key in sorted(data, key=int):
        ids = data[key]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValueError(f"{path}: order {key!r} is not a list of int case ids")
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
