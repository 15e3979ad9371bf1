"""One loader for a hub name, a local directory (offline) and the built-in models by short name.

``load_model(name_or_path)`` asks the model's profile (:func:`editbench.models.profiles.profile`) how to load it:

1. a **registered short name** (:func:`builtin_models`; :data:`editbench.registry.PROFILES`): the embedded fact
   world (its profile in :mod:`editbench.factworld.profile`), the tiny random models of each architecture family
   (``tiny-gpt2``, ``tiny-gptj``, ``tiny-neox``, ``tiny-llama``; :mod:`editbench.models.tiny`), ``smollm2-135m``
   and ``gemma3-270m`` (real pretrained models from pip packages, :mod:`editbench.models.smollm2` and
   :mod:`editbench.models.gemma3`), and any profile a third-party package registers;
2. otherwise the generic profile (:func:`load_path_or_hub`): an existing **local directory** holding a
   ``save_pretrained`` model and tokenizer (never touches the network), else a **Hugging Face hub id**
   (``gpt2-xl``, ``EleutherAI/gpt-j-6b``): downloaded on first use, or read from the local hub cache; offline
   (``HF_HUB_OFFLINE=1``) only the cache is consulted.

Every model comes back in eval mode with ``requires_grad`` off (editors switch on what they optimise), with an
identity (``model_id`` and ``model_hash``) for result records and caches, and an architecture adapter.

``model_hash`` is the sha256 of the weight files' bytes, concatenated in file-name order (for one file it equals
``sha256sum model.safetensors``); for the in-memory tiny models it is :func:`state_hash` of the freshly built
float32 weights. :func:`state_hash` hashes the live parameters and buffers and is what proves a restore exact.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

from editbench.models.adapter import ModelAdapter
from editbench.models.cache import offline_flag
from editbench.models.errors import ModelLoadError
from editbench.models.identity import register_identity
from editbench.models.profiles import all_profiles, profile, registered_models
from editbench.models.tiny import build_tiny
from editbench.suggest import close_matches, did_you_mean

__all__ = ["LoadedModel", "ModelLoadError", "builtin_models", "describe_builtins", "close_builtins",
           "hash_files", "load_dir", "load_hub", "load_model", "load_path_or_hub", "state_hash", "weight_files"]


@dataclass
class LoadedModel:
    """A model ready for editing: HF model + tokenizer + identity + adapter.

    ``preset_keys`` is the lookup order for editor hyperparameter presets, most specific first
    (e.g. ``["smollm2-135m", "llama"]``: short name, then model family).
    """

    model: torch.nn.Module
    tok: Any
    model_id: str
    model_hash: str
    adapter: ModelAdapter
    preset_keys: list[str] = field(default_factory=list)
    twin_of: dict | None = None
    """``{"name", "matched_by"}`` when a local directory or hub snapshot holds a built-in's very weights
    (:mod:`editbench.models.twins`): its preset keys then include the built-in's name."""


def builtin_models() -> list[str]:
    """Short names ``load_model`` accepts without a path or hub id (the registered model profiles)."""
    return registered_models()


def describe_builtins() -> dict[str, str]:
    """Short name -> one-line description (for ``--help`` and ``editbench ls``)."""
    return {name: p.description for name, p in all_profiles().items()}


def close_builtins(name: str) -> list[str]:
    """Built-in names close to a mistyped ``name`` (best first; may be empty)."""
    return close_matches(name, builtin_models())


# -- hashing ----------------------------------------------------------------------------------------------------
def _update_with_tensor(h, t: torch.Tensor) -> None:
    t = t.detach()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    # A flat byte view of the tensor's memory: no per-element Python work, no copy when already on CPU.
    h.update(t.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy())


def state_hash(model: torch.nn.Module, names: Iterable[str] | None = None) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes) in name order.

    Equal hashes mean byte-identical weights: the single-edit suite compares this before an edit and after the
    restore. Tied parameters are counted once (``named_parameters`` de-duplicates them). ``names`` restricts the
    hash to those parameters/buffers (KeyError for an unknown name) — e.g. the ones an editor touched, when the
    full hash of a large model (≈ 1 s for SmolLM2's 540 MB) is too slow to repeat.
    """
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    if names is not None:
        tensors = {n: tensors[n] for n in names}
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        _update_with_tensor(h, tensors[name])
    return h.hexdigest()


WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")


def weight_files(directory: str | Path) -> list[Path]:
    """The weight files of a ``save_pretrained`` directory (safetensors preferred), sorted by name."""
    d = Path(directory)
    for pattern in WEIGHT_PATTERNS:
        files = sorted(p for p in d.glob(pattern) if p.is_file())
        if files:
            return files
    return []


def hash_files(files: list[Path], chunk: int = 1 << 24) -> str:
    """sha256 of the files' bytes concatenated in the given order (``sha256sum`` for a single file)."""
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


# -- loading ----------------------------------------------------------------------------------------------------
def _finish(model, tok, model_id: str, model_hash: str, preset_keys: list[str], device, dtype) -> LoadedModel:
    if getattr(model, "editbench_device_map", None):  # placed by accelerate (EDITBENCH_DEVICE_MAP): leave it there
        model = model.eval()
    else:
        model = model.to(device=device, dtype=dtype).eval()
    model.requires_grad_(False)
    register_identity(model, model_id, model_hash)  # editbench.models.identity: stats cache keys, corpus "auto"
    keys = list(dict.fromkeys([*preset_keys, model.config.model_type]))  # de-duplicated, order kept
    return LoadedModel(model=model, tok=tok, model_id=model_id, model_hash=model_hash,
                       adapter=ModelAdapter(model), preset_keys=keys)


DEVICE_MAP_ENV = "EDITBENCH_DEVICE_MAP"


def _from_pretrained(source: str, dtype, **kw):
    """``from_pretrained`` of model and tokenizer. With ``EDITBENCH_DEVICE_MAP`` set (``auto``, ``balanced``, a
    device), the model is placed by accelerate's ``device_map`` (models larger than one GPU; its layers may then sit
    on several devices, and ``--device`` is not applied on top)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device_map = os.environ.get(DEVICE_MAP_ENV)
    extra = {"device_map": device_map} if device_map else {}
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kw, **extra)
    if device_map:
        model.editbench_device_map = device_map
    tok = AutoTokenizer.from_pretrained(source, **kw)
    return model, tok


def load_dir(path: str | Path, model_id: str | None = None, preset_keys: list[str] | None = None,
             device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a ``save_pretrained`` directory (model + tokenizer) without network access."""
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{str(path)!r} is not a model directory: it has no config.json")
    files = weight_files(path)
    if not files:
        raise ModelLoadError(f"model directory {str(path)!r} has no weight files ({', '.join(WEIGHT_PATTERNS)})")
    model, tok = _from_pretrained(str(path), dtype, local_files_only=True)
    model_hash = hash_files(files)
    if preset_keys is not None:  # a built-in's own directory
        return _finish(model, tok, model_id or str(path), model_hash, preset_keys, device, dtype)
    return _with_twin(model, tok, model_id or str(path), model_hash, [path.resolve().name], device, dtype)


def _with_twin(model, tok, model_id: str, model_hash: str, keys: list[str], device, dtype) -> LoadedModel:
    """A user's model (directory or hub id): when it holds a built-in's weights, that built-in's name joins its
    preset keys (so it gets the built-in's presets) and ``twin_of`` says so."""
    from editbench.models.twins import builtin_twin

    twin = builtin_twin(model_hash, model, state_hash)
    if twin:
        keys = [*keys, twin[0]]
    lm = _finish(model, tok, model_id, model_hash, keys, device, dtype)
    if twin:
        lm.twin_of = {"name": twin[0], "matched_by": twin[1]}
    return lm


def load_builtin_dir(path: Path, name: str, device="cpu", dtype=torch.float32) -> LoadedModel:
    """A real built-in from its converted directory (the smollm2 and gemma3 profiles' loader), recorded in the twins
    index (:mod:`editbench.models.twins`) so that a saved copy of it is recognised."""
    from editbench.models.twins import remember_builtin

    lm = load_dir(path, model_id=name, preset_keys=[name], device=device, dtype=dtype)
    remember_builtin(name, lm.model_hash, lm.model, state_hash)
    return lm


def load_hub(name: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
             cache_dir: str | None = None) -> LoadedModel:
    """Load a hub model by id (``gpt2-xl``, ``EleutherAI/gpt-j-6b``); offline, only from the local hub cache."""
    offline = offline_flag()  # EDITBENCH_OFFLINE too (editbench.models.cache: the one offline switch)
    try:
        model, tok = _from_pretrained(name, dtype, cache_dir=cache_dir, local_files_only=bool(offline))
    except (OSError, ValueError) as err:  # hub errors (not found, no connection) are OSErrors
        why = (f"{offline} is set, so only the local cache was searched" if offline
               else "the hub could not be reached or has no such model")
        raise ModelLoadError(
            f"cannot load model {name!r}: it is not a built-in ({', '.join(builtin_models())}), not a local "
            f"directory, and not in the local Hugging Face cache ({why})."
            + did_you_mean(close_builtins(name))
            + f" [{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}]") from err
    files = []
    try:  # the snapshot the weights came from, to hash the files (no download: local_files_only)
        from huggingface_hub import snapshot_download
        files = weight_files(snapshot_download(name, cache_dir=cache_dir, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure here only means "hash the tensors instead"
        pass
    model_hash = hash_files(files) if files else state_hash(model)
    return _with_twin(model, tok, name, model_hash, hub_preset_keys(name), device, dtype)


# Hub ids whose published presets go by another name (the reference repositories' file names): the lower-cased
# last part of the id -> the preset keys the editors' YAML files use for it.
PRESET_ALIASES: dict[str, tuple[str, ...]] = {
    "gpt-j-6b": ("gpt-j-6b",),
    "llama-2-7b-hf": ("llama-2-7b", "llama2-7b"),
    "llama-2-7b": ("llama-2-7b", "llama2-7b"),
    "meta-llama-3-8b": ("llama3-8b",),
    "llama-3-8b": ("llama3-8b",),
    "meta-llama-3-8b-instruct": ("llama3-8b",),
}


def hub_preset_keys(name: str) -> list[str]:
    """Preset lookup keys of a hub model, most specific first: the id, its last part, that lower-cased, then the
    names the published presets use for it (:data:`PRESET_ALIASES`; e.g. ``meta-llama/Meta-Llama-3-8B`` ->
    ``llama3-8b``, the name of AlphaEdit's and ENCORE's Llama-3-8B files). The family (model_type) comes last,
    added by the loader."""
    short = name.rstrip("/").split("/")[-1]
    return list(dict.fromkeys([name, short, short.lower(), *PRESET_ALIASES.get(short.lower(), ())]))


def load_tiny(name: str, device="cpu", dtype=torch.float32) -> LoadedModel:
    """The loader of the tiny random models' profiles (:mod:`editbench.models.tiny`)."""
    model, tok = build_tiny(name)
    return _finish(model, tok, name, state_hash(model), [name], device, dtype)


def load_path_or_hub(name: str, device="cpu", dtype=torch.float32) -> LoadedModel:
    """The generic profile's loader: a local ``save_pretrained`` directory, else a hub id."""
    path = Path(name).expanduser()
    if path.is_dir():
        return load_dir(path, device=device, dtype=dtype)
    if name.startswith((".", "/", "~")) or path.suffix in {".safetensors", ".bin", ".gguf"}:
        raise ModelLoadError(f"no such model directory: {name!r}")
    return load_hub(name, device=device, dtype=dtype)


def load_model(name_or_path: str, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a built-in short name, a local ``save_pretrained`` directory or a hub id (see the module docstring)."""
    name = str(name_or_path)
    return profile(name).load(name, device=device, dtype=dtype)
