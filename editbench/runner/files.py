"""Files that must never be lost or written half: atomic writes with a named fallback, and one writer per run.

:func:`write_atomic` writes a file under a temporary name in its directory, fsyncs it and renames it into place:
a reader sees the old file or the new one, never a part. When the destination cannot be written (a full disk,
a read-only mount, a directory removed under the run), the text goes to a fallback file in the system's
temporary directory and :class:`WriteFailed` names both paths: the results are kept and the error says where.

:class:`RunLock` holds ``<run dir>/.editbench.lock`` (an ``fcntl`` lock plus the holder's pid and host in the
file) while a run writes the directory; a second run into the same directory is refused with one line naming the
holder. The lock dies with its process, so a run killed with ``kill -9`` leaves nothing that blocks its resume.
"""
from __future__ import annotations

import errno
import os
import socket
import tempfile
import time
from pathlib import Path

LOCK_NAME = ".editbench.lock"


class WriteFailed(OSError):
    """The destination could not be written; ``fallback`` (if not None) holds the text instead."""

    def __init__(self, path: Path, reason: str, fallback: Path | None):
        self.path, self.reason, self.fallback = Path(path), reason, fallback
        kept = f"the results were written to {fallback} instead" if fallback else \
            "and the fallback in the temporary directory failed too"
        super().__init__(f"cannot write {path} ({reason}); {kept}")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_atomic(path: str | Path, text: str, *, exclusive: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file + rename); return the path written.

    ``exclusive``: never replace an existing file; a taken name gets ``_2``, ``_3``... before its suffix (two
    sessions finishing in the same second keep both files). On failure the text goes to a fallback file and
    :class:`WriteFailed` is raised naming it."""
    path = Path(path)
    data = text.encode("utf-8")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would make it (mkstemp's are private)
        os.close(fd)
        tmp = Path(name)
        _write_synced(tmp, data)
        if not exclusive:
            os.replace(tmp, path)
            return path
        target, n = path, 1
        while True:
            try:
                os.link(tmp, target)  # fails if the name is taken: no race between two writers
                break
            except FileExistsError:
                n += 1
                target = path.with_name(f"{path.stem}_{n}{path.suffix}")
        tmp.unlink()
        return target
    except OSError as e:
        if tmp is not None:
            try:
                tmp.unlink()
            except OSError:
                pass
        raise WriteFailed(path, e.strerror or type(e).__name__, _fallback(path, data)) from e


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fallback(path: Path, data: bytes) -> Path | None:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    try:
        fd, name = tempfile.mkstemp(prefix=f"editbench-{stamp}-{path.stem}-", suffix=path.suffix or ".txt")
        os.close(fd)
        _write_synced(Path(name), data)
        return Path(name)
    except OSError:
        return None


class RunLocked(RuntimeError):
    """Another live process holds the run directory's lock (``holder``: "pid N on HOST")."""

    def __init__(self, message: str, holder: str):
        super().__init__(message)
        self.holder = holder


def lock_holder(directory: str | Path) -> str | None:
    """Who holds ``directory``'s run lock ("pid N on HOST"), or None when nobody does (checked, not taken)."""
    lock = Path(directory) / LOCK_NAME
    if not lock.is_file():
        return None
    try:
        with RunLock(directory):
            return None
    except RunLocked as e:
        return e.holder
    except OSError:
        return None


class RunLock:
    """``with RunLock(run_dir):`` — the one writer of a run directory (see the module docstring)."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.path = self.dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        import fcntl

        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunLocked(f"{self.dir} is being written by another run ({holder}); wait for it to finish or "
                                "write this run elsewhere (--out / --reports-dir)", holder) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock; the file stays (deleting it would race a waiting writer)
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = ["LOCK_NAME", "RunLock", "RunLocked", "WriteFailed", "lock_holder", "write_atomic"]
