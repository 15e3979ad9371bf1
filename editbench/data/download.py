"""Download the full CounterFact (ROME format, 21,919 records, ~45 MB) from ROME's data host, verified.

The transfer itself is pooch's (:func:`pooch.retrieve` with its :class:`pooch.HTTPDownloader`: requests, a tqdm
progress bar, the body streamed into a temporary file beside the destination, the sha256 checked before the file
is moved into place). This module keeps only what pooch does not do (``tests/test_download.py``):

1. If the file is already in the cache (``$EDITBENCH_CACHE``, default ``~/.cache/editbench``), it is verified
   (see below) and returned: no network request (``force=True`` downloads again; pooch would keep a file whose
   hash matches).
2. Otherwise pooch downloads it into a fresh temporary directory *in the destination's directory*; a body shorter
   than its ``Content-Length`` is an error. A sha256 mismatch is :class:`ChecksumError` and leaves nothing behind.
3. Only then is the file renamed over the destination (``os.replace``, atomic on one filesystem), so a reader
   never sees half a file and an interrupted download leaves nothing behind.
4. Retries: a connection error or a short body is tried again (1 s, 2 s, ... pauses); an HTTP error status or a
   checksum mismatch is not (pooch's own ``retry_if_failed`` retries both).

The progress bar is drawn only when asked for *and* stderr is a terminal.

**About the expected hash, honestly.** This project was written without network access, so we could not
compute the sha256 of the real ``counterfact.json`` and pin it (nor find it published anywhere we could
check). ``COUNTERFACT_SHA256`` is therefore ``None`` and verification works trust-on-first-use (which pooch,
given no hash, does not do: it never checks the file again): the first successful download records its hash in a
sidecar file ``<name>.sha256``; every later use (a cached read, or a re-download after the file was deleted) is
verified against that sidecar. An explicit ``sha256=`` always takes precedence and is checked on first download
too. Once someone has the real hash, set ``COUNTERFACT_SHA256`` to it and first downloads become verified as well.

Trust on first use is **loud**: whenever a file is accepted without any expected hash -- a first download, or
a file found in the cache with no sidecar (which may have been planted there) -- an
:class:`UnverifiedDownloadWarning` names the file and the sha256 being recorded, so it can be checked against a
trusted copy. A sidecar that is empty, unreadable or not a 64-hex-digit sha256 is a :class:`ChecksumError`
naming it (never an IndexError, and never silently ignored: delete it to record a new hash). A malformed
explicit ``sha256=`` is a ValueError.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pooch
import requests

from editbench.models.cache import cache_root

COUNTERFACT_URL = "https://rome.baulab.info/data/dsets/counterfact.json"
COUNTERFACT_SHA256: str | None = None  # unknown offline; see the module docstring (trust on first use, warned)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DownloadError(RuntimeError):
    """The file could not be fetched (HTTP error, connection failure, short body)."""


class ChecksumError(DownloadError):
    """The bytes do not have the expected sha256, or the recorded expectation (the sidecar) is unusable."""


class UnverifiedDownloadWarning(UserWarning):
    """A file was accepted with no expected sha256 (trust on first use); the message names it and its hash."""


def cache_dir() -> Path:
    """Where downloads are cached: the one cache root (``$EDITBENCH_CACHE`` or ``~/.cache/editbench``)."""
    return cache_root()


def sha256_file(path: str | os.PathLike) -> str:
    return pooch.file_hash(str(path), alg="sha256")


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _expected_hash(dest: Path, sha256: str | None) -> str | None:
    """The explicit hash if given, else the one recorded in the sidecar, else None."""
    if sha256:
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.strip().lower()):
            raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
        return sha256.strip().lower()
    side = _sidecar(dest)
    if not side.exists():
        return None
    try:
        text = side.read_bytes().decode("ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise ChecksumError(f"sha256 sidecar {side} cannot be read ({e}); delete it to record a new hash") from None
    words = text.split()
    if not words:
        raise ChecksumError(f"sha256 sidecar {side} is empty; delete it to record a new hash (or pass sha256=)")
    if not _SHA256.fullmatch(words[0].lower()):
        raise ChecksumError(f"sha256 sidecar {side} is garbled (starts {words[0][:80]!r}, not 64 hex digits); "
                            "delete it to record a new hash (or pass sha256=)")
    return words[0].lower()


def _warn_unverified(dest: Path, digest: str, how: str) -> None:
    warnings.warn(f"{dest}: {how} with NO expected sha256 to check it against (trust on first use); recorded "
                  f"sha256 {digest} in {_sidecar(dest)}. Compare it with a trusted copy, or pin it (sha256=).",
                  UnverifiedDownloadWarning, stacklevel=3)


def _write_sidecar(dest: Path, digest: str) -> None:
    side = _sidecar(dest)
    tmp = side.with_name(f".{side.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{digest}  {dest.name}\n")
    os.replace(tmp, side)


def _verify(dest: Path, expected: str | None) -> Path:
    digest = sha256_file(dest)
    if expected is None:
        _write_sidecar(dest, digest)
        _warn_unverified(dest, digest, "accepted a file already in the cache")
    elif digest != expected:
        raise ChecksumError(f"cached {dest} has sha256 {digest}, expected {expected}; delete it (and its "
                            f".sha256 sidecar if the expected hash is wrong) or pass force=True")
    return dest


def verify_file(dest: str | os.PathLike, sha256: str | None = None) -> Path:
    """A file already in the cache, checked as :func:`download_file` checks one (no network): against ``sha256``
    if given, else its sidecar; with neither, its hash is recorded in a new sidecar and an
    :class:`UnverifiedDownloadWarning` names it. :class:`ChecksumError` on a mismatch."""
    dest = Path(dest)
    return _verify(dest, _expected_hash(dest, sha256))


def _retrieve(url: str, dest: Path, expected: str | None, timeout: float, progress: bool) -> None:
    """One pooch download of ``url`` to ``dest`` through a fresh directory beside it (so pooch always downloads
    and the final rename stays on one filesystem). pooch's INFO lines are left out: the caller warns or not."""
    tmp_dir = tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    log = pooch.get_logger()
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        fetcher = pooch.HTTPDownloader(progressbar=progress and sys.stderr.isatty(), timeout=timeout,
                                       chunk_size=1 << 16)  # pooch's 1 KiB default: 45 MiB in 1.14 s, not 0.23
        got = pooch.retrieve(url, known_hash=expected, fname=dest.name, path=tmp_dir, downloader=fetcher)
        os.replace(got, dest)
    finally:
        log.setLevel(level)
        shutil.rmtree(tmp_dir, ignore_errors=True)


def download_file(url: str, dest: str | os.PathLike, sha256: str | None = None, *, force: bool = False,
                  timeout: float = 60.0, retries: int = 2, progress: bool = True) -> Path:
    """Fetch ``url`` to ``dest`` (atomically, verified); return ``dest``. See the module docstring.

    ``sha256``: expected hex digest; None means "the sidecar's, if any, else record one" (trust on first use).
    ``force``: download again even if ``dest`` exists. ``retries``: extra attempts after a connection error
    or short body (not after an HTTP error status or a checksum mismatch), with 1 s, 2 s, ... pauses.
    """
    dest = Path(dest)
    expected = _expected_hash(dest, sha256)
    if dest.exists() and not dest.is_file():
        raise DownloadError(f"{dest} exists and is not a file")
    if dest.exists() and not force:
        return _verify(dest, expected)

    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            _retrieve(url, dest, expected, timeout, progress)
            digest = expected or sha256_file(dest)  # pooch has checked an expected hash already
            _write_sidecar(dest, digest)
            if expected is None:
                _warn_unverified(dest, digest, f"downloaded from {url}")
            return dest
        except requests.HTTPError as e:
            raise DownloadError(f"{url}: HTTP {e.response.status_code} {e.response.reason}") from e
        except ValueError as e:  # pooch: the downloaded file's hash is not the known one (else a bad URL)
            if "hash" not in str(e):
                raise DownloadError(f"{url}: {e}") from None
            raise ChecksumError(f"{url}: {e} (expected hash from "
                                f"{'the sha256 argument' if sha256 else _sidecar(dest)})") from None
        except requests.RequestException as e:  # connection refused/reset, timeout, short body: transient
            if attempt == retries:
                short = isinstance(e, requests.exceptions.ChunkedEncodingError)
                raise DownloadError(f"{url}: " + ("the body is shorter than its Content-Length " if short else "")
                                    + f"({e})") from e
            time.sleep(attempt + 1)
    raise AssertionError("unreachable")


def download_counterfact(url: str | None = None, sha256: str | None = None, cache: str | os.PathLike | None = None,
                         **kw) -> Path:
    """The full ROME CounterFact, cached as ``<cache>/counterfact.json``.

    ``url`` defaults to :data:`COUNTERFACT_URL` and ``sha256`` to :data:`COUNTERFACT_SHA256` (read at call time).
    """
    url = url or COUNTERFACT_URL
    sha256 = sha256 or COUNTERFACT_SHA256
    dest = Path(cache) if cache is not None else cache_dir()
    return download_file(url, dest / "counterfact.json", sha256, **kw)
