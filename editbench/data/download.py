"""Download the full CounterFact (ROME format, 21,919 records, ~45 MB) from ROME's data host, verified.

How a download goes:

1. If the file is already in the cache (``$EDITBENCH_CACHE``, default ``~/.cache/editbench``), it is verified
   (see below) and returned: no network request.
2. Otherwise the response is streamed into a hidden ``.part`` file *in the same directory*, hashing as it goes,
   with a tqdm progress bar. A short body (fewer bytes than ``Content-Length``) is an error.
3. The sha256 is checked; on a mismatch the partial file is deleted and :class:`ChecksumError` raised.
4. Only then is the ``.part`` file renamed over the destination (``os.replace``, atomic on one filesystem), so
   a reader never sees half a file and an interrupted download leaves nothing behind.

**About the expected hash, honestly.** This project was written without network access, so we could not
compute the sha256 of the real ``counterfact.json`` and pin it (nor find it published anywhere we could
check). ``COUNTERFACT_SHA256`` is therefore ``None`` and verification works trust-on-first-use: the first
successful download records its hash in a sidecar file ``<name>.sha256``; every later use (a cached read, or a
re-download after the file was deleted) is verified against that sidecar. An explicit ``sha256=`` always takes
precedence and is checked on first download too. Once someone has the real hash, set ``COUNTERFACT_SHA256`` to
it and first downloads become verified as well.

Trust on first use is **loud**: whenever a file is accepted without any expected hash -- a first download, or
a file found in the cache with no sidecar (which may have been planted there) -- an
:class:`UnverifiedDownloadWarning` names the file and the sha256 being recorded, so it can be checked against a
trusted copy. A sidecar that is empty, unreadable or not a 64-hex-digit sha256 is a :class:`ChecksumError`
naming it (never an IndexError, and never silently ignored: delete it to record a new hash). A malformed
explicit ``sha256=`` is a ValueError.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import re
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from editbench.models.cache import cache_root

COUNTERFACT_URL = "https://rome.baulab.info/data/dsets/counterfact.json"
COUNTERFACT_SHA256: str | None = None  # unknown offline; see the module docstring (trust on first use, warned)
CHUNK = 1 << 16
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
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


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


def _stream(url: str, fh, timeout: float, progress: bool, desc: str) -> str:
    """Copy the response body of ``url`` into the open file ``fh``; return its sha256."""
    from tqdm import tqdm

    h = hashlib.sha256()
    got = 0
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
            while chunk := resp.read(CHUNK):
                fh.write(chunk)
                h.update(chunk)
                got += len(chunk)
                bar.update(len(chunk))
    if total is not None and got != total:
        raise DownloadError(f"{url}: got {got} bytes, Content-Length said {total}")
    return h.hexdigest()


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
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                digest = _stream(url, fh, timeout, progress, dest.name)
            if expected is not None and digest != expected:
                raise ChecksumError(f"{url}: downloaded sha256 {digest}, expected {expected} (from "
                                    f"{'the sha256 argument' if sha256 else _sidecar(dest)})")
            os.replace(tmp, dest)
            _write_sidecar(dest, digest)
            if expected is None:
                _warn_unverified(dest, digest, f"downloaded from {url}")
            return dest
        except urllib.error.HTTPError as e:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
        except ChecksumError:
            raise
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, DownloadError) as e:
            if attempt == retries:
                if isinstance(e, DownloadError):
                    raise
                raise DownloadError(f"{url}: {e}") from e
            time.sleep(attempt + 1)  # transient: connection refused/reset, timeout, short body
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
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
