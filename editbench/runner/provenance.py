"""What a result needs to be reproduced: editor + hparams, model id + hash, dataset + record ids, seed,
package versions, git hash, device, and the machine its timings come from (CPU model, cores, torch threads, GPU).
Every result JSON embeds :func:`provenance`."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

PACKAGES = ("editbench", "torch", "transformers", "tokenizers", "datasets", "safetensors", "numpy")


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@functools.lru_cache(maxsize=1)
def git_hash() -> str | None:
    """The commit of the editbench checkout (with '-dirty' if it has uncommitted changes), or None."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where a time was measured: CPU model, logical cores, torch's intra-op threads now, and the GPU if any.
    (The same run differs by 3x between 2-core machines: every timing needs this beside it.)"""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(), "gpu": gpu}


def provenance(*, editor: Any = None, model_id: str | None = None, model_hash: str | None = None,
               dataset: str | None = None, record_ids: Sequence[Any] = (), seed: int | None = None,
               device: str | None = None, **extra: Any) -> dict:
    """A JSON-ready dict recording everything needed to reproduce a number."""
    out = {
        "editor": editor.describe() if hasattr(editor, "describe") else editor,
        "model": {"id": model_id, "hash": model_hash},
        "dataset": {"name": dataset, "record_ids": [str(r) for r in record_ids]},
        "seed": seed,
        "device": device,
        "versions": versions(),
        "git": git_hash(),
        "machine": machine(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out.update(extra)
    return out
