"""Built-in models shipped as GGUF files in pip packages: de-quantized once into a safetensors cache.

Shared by :mod:`editbench.models.smollm2` and :mod:`editbench.models.gemma3`. ``transformers`` reads GGUF files
(it needs the ``gguf`` and ``accelerate`` packages) and de-quantizes them to float32; :func:`convert` writes the
result as a ``save_pretrained`` directory with ``model.safetensors``; :func:`ensure_cached` keeps that directory
under the cache root, tagged with the source's sha256 (``editbench-meta.json``) and rebuilt when the source changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

import torch

from editbench.models.errors import ModelLoadError


def sha256_of(paths: Iterable[Path]) -> str:
    """sha256 of the files' bytes concatenated in order (one file: ``sha256sum``)."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 24):
                h.update(block)
    return h.hexdigest()


def convert(gguf: Path, out: Path, install: str) -> dict:
    """De-quantize ``gguf`` to float32 and write model.safetensors + config + tokenizer into ``out``."""
    from importlib import util

    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    missing = [m for m in ("gguf", "accelerate") if util.find_spec(m) is None]
    if missing:  # transformers' GGUF reader needs both
        raise ModelLoadError(f"reading {gguf.name} needs the package(s) {missing}: {install}")
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The loaded model is flagged as GGUF-quantized, which save_pretrained refuses; its tensors are plain
    # float32 already, so write them directly. A tied head is stored once, as the embedding (as HF does).
    cfg = model.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    state = model.state_dict()
    if cfg.tie_word_embeddings:
        state.pop(next(n for n, _ in model.named_parameters(remove_duplicate=False) if n.startswith("lm_head")))
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / "model.safetensors"), metadata={"format": "pt"})
    cfg.save_pretrained(out)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(out)
    tok.save_pretrained(out)
    return {"seconds": round(time.perf_counter() - t0, 1)}


def valid_cache(target: Path, source_sha: str) -> bool:
    meta_path = target / "editbench-meta.json"
    if not (meta_path.is_file() and (target / "model.safetensors").is_file()):
        return False
    return json.loads(meta_path.read_text()).get("source_sha256") == source_sha


def ensure_cached(name: str, target: Path, source: str, source_sha: str, build: Callable[[Path], dict],
                  verbose: bool = True, **meta_extra) -> Path:
    """``target`` if it holds a conversion of the source with sha256 ``source_sha``; else ``build(tmp_dir)``
    writes a fresh one (``source`` describes it for the message and the metadata) that replaces ``target``.

    The conversion goes into a sibling temp dir renamed into place, so a crash or a concurrent process never
    leaves (or sees) a half-written cache; a valid cache another process finished meanwhile is never replaced.
    """
    if valid_cache(target, source_sha):
        return target
    if verbose:
        print(f"editbench: converting {source} to float32 safetensors in {target} (one time)", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        info = build(tmp)
        import transformers

        meta = {"source": source, "source_sha256": source_sha, **meta_extra,
                "transformers": transformers.__version__, "convert_seconds": info["seconds"]}
        (tmp / "editbench-meta.json").write_text(json.dumps(meta, indent=1))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary shared directory
        if valid_cache(target, source_sha):
            return target
        if target.exists():  # stale (other source): move it aside first, then delete it
            stale = Path(tempfile.mkdtemp(prefix=f".{name}-stale-", dir=target.parent))
            os.rename(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not valid_cache(target, source_sha):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
