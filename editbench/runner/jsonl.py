"""Durable JSON-lines results: one record per line, flushed and fsync'd as soon as it is written.

A run that is killed (SIGKILL, power loss) leaves at most one torn line at the end of its file. Readers skip a
final line without a trailing newline; :func:`truncate` cuts a file back to a byte offset recorded in a
checkpoint, so a resumed run rewrites exactly the lines that came after it.

A complete line that is not a JSON object (bytes overwritten on disk, an editor's stray write), or that a
caller's ``check`` rejects, is *damaged*: :func:`read_jsonl` raises :class:`DamagedLineError` naming the file and
line, or, given a list as ``damaged``, skips the line and appends its 1-based number there (the summary reports
them).

Records are written with sorted keys and ``allow_nan=False``: a float NaN/inf becomes ``null`` (JSON has no
NaN), so every line is standard JSON that any reader can parse.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator

TIMING_KEY = "timing"  # every wall-clock number of a record lives under this key (see :func:`strip_timing`)


def jsonable(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps(allow_nan=False)`` accepts: NaN/inf -> None, tuples -> lists,
    tensors/numpy scalars -> Python numbers, dict keys -> str."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # torch / numpy scalars and arrays
        return jsonable(obj.tolist())
    raise TypeError(f"cannot write {type(obj).__name__} to JSON: {obj!r}")


def dumps(record: dict) -> str:
    return json.dumps(jsonable(record), sort_keys=True, allow_nan=False, separators=(",", ":"))


class JsonlWriter:
    """Append records to ``path``; each :meth:`write` is flushed and fsync'd before it returns.

    ``truncate_to`` (bytes) cuts the existing file back first (resume); ``None`` appends, ``0`` starts empty.
    """

    def __init__(self, path: str | Path, truncate_to: int | None = None, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_to is not None:
            truncate(self.path, truncate_to)
        self._f = open(self.path, "ab")
        self.fsync = fsync

    def write(self, record: dict) -> int:
        """Write one record as one line; return the file size after it (a resumable offset)."""
        self._f.write((dumps(record) + "\n").encode("utf-8"))
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        return self._f.tell()

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def truncate(path: str | Path, offset: int) -> None:
    """Cut ``path`` to ``offset`` bytes (creating it empty if it does not exist)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        size = f.tell()
        if offset > size:
            raise ValueError(f"{path} has {size} bytes, cannot truncate to {offset}: the file was cut or replaced")
        f.truncate(offset)
        f.flush()
        os.fsync(f.fileno())


class DamagedLineError(ValueError):
    """A complete line of a JSONL file that is not a JSON object (or that the reader's ``check`` rejects)."""


def _parse_line(line: bytes, check: Callable[[dict], Any] | None) -> dict:
    rec = json.loads(line.decode("utf-8"))  # UnicodeDecodeError / JSONDecodeError: both ValueErrors
    if not isinstance(rec, dict):
        raise ValueError(f"not a JSON object but {type(rec).__name__}")
    if check is not None:
        check(rec)  # raises ValueError (or KeyError/TypeError) for a record it rejects
    return rec


def iter_jsonl(path: str | Path, damaged: list[int] | None = None,
               check: Callable[[dict], Any] | None = None) -> Iterator[dict]:
    """Records of a JSONL file; a final line without a newline (a torn write) is skipped. A damaged line (not
    UTF-8 JSON, not an object, or rejected by ``check``) raises :class:`DamagedLineError`, or with ``damaged`` (a
    list) is skipped and its 1-based line number appended to it."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    for i, line in enumerate(lines[:-1], start=1):  # the part after the last newline is empty or torn
        if not line.strip():
            continue
        try:
            rec = _parse_line(line, check)
        except (ValueError, KeyError, TypeError) as e:
            if damaged is None:
                raise DamagedLineError(f"{path}, line {i} is damaged ({type(e).__name__}: {e})") from e
            damaged.append(i)
            continue
        yield rec


def read_jsonl(path: str | Path, damaged: list[int] | None = None,
               check: Callable[[dict], Any] | None = None) -> list[dict]:
    return list(iter_jsonl(path, damaged, check))


def strip_timing(record: Any) -> Any:
    """``record`` without any ``timing`` entries (recursively): what must be identical across reruns."""
    if isinstance(record, dict):
        return {k: strip_timing(v) for k, v in record.items() if k != TIMING_KEY}
    if isinstance(record, list):
        return [strip_timing(v) for v in record]
    return record
