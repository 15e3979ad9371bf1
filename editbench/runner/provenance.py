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
def _cpuinfo() -> dict[str, str]:
    """The first processor's ``/proc/cpuinfo`` fields (empty where there is none)."""
    out: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            out[key.strip()] = value.strip()
    except OSError:
        pass
    return out


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


# AMD's family/model numbers per core generation. A virtual machine often names every AMD CPU just "AMD EPYC";
# the generation is what sets the FP32 width of its FMA units (Zen/Zen+ 2 x 128-bit, Zen 2/3 2 x 256-bit, Zen 4
# 256-bit with AVX-512 in two halves, Zen 5 up to 2 x 512-bit), i.e. up to 4x between 2-core machines.
_AMD_GENERATIONS = ((0x17, range(0x00, 0x30), "Zen/Zen+"), (0x17, range(0x30, 0x100), "Zen 2"),
                    (0x19, range(0x00, 0x10), "Zen 3"), (0x19, range(0x10, 0x20), "Zen 4"),
                    (0x19, range(0x20, 0x60), "Zen 3"), (0x19, range(0x60, 0x80), "Zen 4"),
                    (0x19, range(0xA0, 0xB0), "Zen 4"), (0x1A, range(0x00, 0x100), "Zen 5"))


# Intel's family-6 server (Xeon) model numbers. A virtual machine often names them just "Intel(R) Xeon(R)
# Processor"; the generation says whether it has AVX-512 (Skylake-SP on; 2 x 512-bit FMA on most Xeon Gold/Platinum,
# one on some) and AMX (Sapphire Rapids on; bf16/int8 tiles only, unused by fp32 editing).
_INTEL_GENERATIONS = ((0x06, (0x3F,), "Haswell-EP"), (0x06, (0x4F, 0x56), "Broadwell-EP"),
                      (0x06, (0x55,), "Skylake-SP/Cascade Lake"), (0x06, (0x6A, 0x6C), "Ice Lake-SP"),
                      (0x06, (0x8F,), "Sapphire Rapids"), (0x06, (0xCF,), "Emerald Rapids"),
                      (0x06, (0xAD, 0xAE), "Granite Rapids"), (0x06, (0xAF,), "Sierra Forest"))


def cpu_generation(vendor: str, family: int | None, model: int | None) -> str | None:
    """The core generation of an AMD CPU ("Zen 2") or an Intel Xeon ("Emerald Rapids") from its family/model
    numbers, else None (other vendors and desktop Intel parts: the SIMD level, see :func:`machine`, says what
    matters)."""
    table = {"AuthenticAMD": _AMD_GENERATIONS, "GenuineIntel": _INTEL_GENERATIONS}.get(vendor)
    if table is None or family is None or model is None:
        return None
    return next((name for fam, models, name in table if fam == family and model in models), None)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def machine() -> dict:
    """Where a time was measured: CPU model, its vendor/family/model numbers and (AMD, Intel Xeon) core generation,
    the SIMD level torch's kernels use (AVX2, AVX512, ...), the clock /proc/cpuinfo reports, logical cores, torch's
    intra-op threads now, and the GPU if any. (The same run differs by 3x between 2-core machines that all call themselves
    "AMD EPYC" or "Intel Xeon": every timing needs this beside it; docs/speed.md says why.)"""
    import torch

    info = _cpuinfo()
    vendor, family, model = info.get("vendor_id"), _int(info.get("cpu family")), _int(info.get("model"))
    try:
        simd = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        simd = None
    mhz = info.get("cpu MHz")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cpu_vendor": vendor, "cpu_family": family, "cpu_model_number": model,
            "cpu_generation": cpu_generation(vendor or "", family, model), "simd": simd,
            "mhz": round(float(mhz)) if mhz else None, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "gpu": gpu}


def _model(model_id: str | None, model_hash: str | None) -> dict:
    """``{"id", "hash"}``, plus ``"name"`` (exactly what the model is) for a built-in with a variant to name."""
    from editbench.models import gemma3, smollm2
    out = {"id": model_id, "hash": model_hash}
    named = {m.NAME: m.FULL_NAME for m in (smollm2, gemma3)}
    if model_id in named:
        out["name"] = named[model_id]
    elif model_hash:  # a local copy of a built-in (editbench.models.twins): name what it is
        from editbench.models.twins import recorded_name
        twin = recorded_name(model_hash)
        if twin in named:
            out["name"], out["same_weights_as"] = named[twin], twin
    return out


def provenance(*, editor: Any = None, model_id: str | None = None, model_hash: str | None = None,
               dataset: str | None = None, record_ids: Sequence[Any] = (), seed: int | None = None,
               device: str | None = None, **extra: Any) -> dict:
    """A JSON-ready dict recording everything needed to reproduce a number."""
    out = {
        "editor": editor.describe() if hasattr(editor, "describe") else editor,
        "model": _model(model_id, model_hash),
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
