"""Checkpoints of a sequential run: edited parameters, editor state and runner state — no pickle.

A checkpoint is a directory ``<out_dir>/ckpt/step_<n>/`` holding

- ``params.safetensors`` — the current values of the parameters edited so far (only those: the rest of the
  model is the unedited model the run started from, which the caller loads again on resume);
- ``editor.safetensors`` — the editor's state, if it has any (the ``Editor`` contract's ``state_dict()`` /
  ``load_state_dict(d)``: AlphaEdit's accumulated keys, a counter...; stateless editors return ``{}``);
- ``state.json`` — the runner's position in the stream, the byte offset of the results JSONL at that moment,
  RNG states (torch, Python, NumPy) as plain JSON lists, the forgetting tracker, the moving windows, the config,
  and a SHA-256 of each edited parameter's *original* value (so resuming onto the wrong model is an error), and
  under ``files`` a SHA-256 of the bytes of ``params.safetensors`` and ``editor.safetensors`` (computed when they
  are written, verified when they are read: overwritten tensor bytes cannot resume silently).

- ``manifest.json`` — a SHA-256 of every other file of the checkpoint, ``state.json`` included, verified before
  anything of it is used: an edited position, metric or RNG state in ``state.json`` cannot resume silently
  (checkpoints of format version 1, written before the manifest, still resume, said as unverified).

``state.json`` also holds the run's ``identity`` (editor and its resolved hyperparameters, the model hash, the
dataset, the front end's ``--hparam`` overrides): a resume whose identity or config differs raises
:class:`ResumeMismatch` naming every difference (:func:`differences`).

The directory is written under a temporary name and renamed into place, then ``ckpt/LATEST`` is replaced
atomically: a run killed while checkpointing keeps the previous checkpoint. ``LATEST`` must name a
``step_<7 digits>`` directory inside ``ckpt/``; without ``LATEST`` (a run killed between renaming its first
checkpoint into place and writing ``LATEST``) the newest complete ``step_*`` directory is used.

Anything wrong with a checkpoint the user asked to resume from — a ``LATEST`` naming a missing or foreign
directory, a missing or truncated ``state.json``, a missing tensor file, a hash that does not match — raises
:class:`CheckpointError` naming the file and the problem; it never falls back to a fresh start.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_bytes, save_file

STATE_VERSION = 2  # 2: manifest.json hashes every file; 1 (no manifest, maybe no ``files``) still loads, unverified
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
STEP_RE = re.compile(r"step_\d{7}")
TENSOR_FILES = ("params.safetensors", "editor.safetensors")
STATE_KEYS = ("position", "params", "rng", "batch_index", "jsonl_offset", "config", "stream", "originals_sha",
              "forgetting", "windows", "last_check", "last_check_n")
RERUN = "rerun without --resume (resume=False) to start the run over"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from: names the file and what is wrong with it."""


class ResumeMismatch(ValueError):
    """A resume whose configuration differs from the checkpoint's (a usage error: the options, not the files)."""


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def differences(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """``["seed: 0 -> 1", "hparams.layer: 5 -> 3", ...]``: every key whose value differs (nested dicts by
    dotted key; a key on one side only shows as ``(none)`` on the other)."""
    out = []
    for key in sorted(set(saved) | set(now), key=str):
        a, b = saved.get(key, "(none)"), now.get(key, "(none)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {_short(a)} -> {_short(b)}")
    return out


def file_sha(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_sha(t: torch.Tensor) -> str:
    t = t.detach().to("cpu").contiguous()
    h = hashlib.sha256(str((tuple(t.shape), str(t.dtype))).encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# -- RNG states as JSON ------------------------------------------------------------------------------------
def rng_state() -> dict:
    np_state = np.random.get_state()
    out = {
        "torch": torch.get_rng_state().tolist(),
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return out


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# -- checkpoints -------------------------------------------------------------------------------------------
def ckpt_root(out_dir: str | Path) -> Path:
    return Path(out_dir) / "ckpt"


def save_checkpoint(out_dir: str | Path, position: int, model: torch.nn.Module, param_names: list[str],
                    editor: Any, state: dict, keep: int = 1) -> Path:
    """Write checkpoint ``step_<position>`` atomically and point ``LATEST`` at it; keep the newest ``keep``."""
    root = ckpt_root(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{position:07d}"
    tmp = root / (name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    params = dict(model.named_parameters())
    tensors = {n: params[n].detach().to("cpu").contiguous().clone() for n in param_names}
    save_file(tensors, str(tmp / "params.safetensors"))
    ed = {k: v.detach().to("cpu").contiguous().clone() for k, v in editor.state_dict().items()}
    if ed:
        save_file(ed, str(tmp / "editor.safetensors"))
    files = {f: file_sha(tmp / f) for f in TENSOR_FILES if (tmp / f).exists()}
    full = {"version": STATE_VERSION, "position": position, "params": list(param_names), "rng": rng_state(),
            **state, "files": files}
    with open(tmp / "state.json", "w", encoding="utf-8") as f:
        json.dump(full, f)
        f.flush()
        os.fsync(f.fileno())
    manifest = {"files": {p.name: file_sha(p) for p in sorted(tmp.iterdir()) if p.is_file()}}
    with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f)
        f.flush()
        os.fsync(f.fileno())
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    latest_tmp = root / "LATEST.tmp"
    with open(latest_tmp, "w", encoding="utf-8") as f:
        f.write(name)
        f.flush()
        os.fsync(f.fileno())
    os.replace(latest_tmp, root / "LATEST")
    old = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and p.name != name)
    for p in old[:max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The checkpoint directory to resume ``out_dir`` from, or None when the run has none (it never reached one;
    a ``.tmp`` directory of a checkpoint cut by a kill does not count). Raises :class:`CheckpointError` when
    ``LATEST`` is damaged, names a directory that is not there or lies outside ``ckpt/``, or that directory has no
    ``state.json``."""
    root = ckpt_root(out_dir)
    latest = root / "LATEST"
    if latest.exists():
        try:
            name = latest.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{latest} cannot be read ({e}); {RERUN}") from e
        if not STEP_RE.fullmatch(name):
            raise CheckpointError(f"{latest} does not name a checkpoint (step_<7 digits>) but {name[:80]!r}; {RERUN}")
        path = root / name
        if not path.is_dir():
            raise CheckpointError(f"{latest} names {path}, which does not exist; {RERUN}")
        if path.resolve().parent != root.resolve():
            raise CheckpointError(f"{latest} names {path}, which resolves outside {root} (to {path.resolve()}); "
                                  f"{RERUN}")
    else:  # no LATEST: either no checkpoint yet, or a kill between renaming one into place and writing LATEST
        steps = sorted(p for p in root.iterdir() if p.is_dir() and STEP_RE.fullmatch(p.name)) if root.is_dir() else []
        if not steps:
            return None
        path = steps[-1]
    if not (path / "state.json").is_file():
        raise CheckpointError(f"{path / 'state.json'} is missing: the checkpoint is incomplete; {RERUN}")
    return path


def read_manifest(path: Path) -> dict[str, str] | None:
    """The ``{file: sha256}`` of a checkpoint's ``manifest.json`` (None when it has none: format version 1)."""
    f = Path(path) / MANIFEST
    if not f.exists():
        return None
    try:
        files = json.loads(f.read_bytes().decode("utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{f} is damaged ({type(e).__name__}); {RERUN}") from e
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise CheckpointError(f"{f} is damaged (files: not a mapping of file -> SHA-256); {RERUN}")
    return files


def verify_manifest(path: Path, contents: dict[str, bytes]) -> None:
    """Check the given files' bytes (and that every file of the directory is in the manifest) against the
    checkpoint's ``manifest.json``; nothing to check without one."""
    files = read_manifest(path)
    if files is None:
        return
    extra = sorted(p.name for p in Path(path).iterdir() if p.name != MANIFEST and p.name not in files)
    if extra:
        raise CheckpointError(f"{Path(path) / extra[0]} is not one of the files this checkpoint wrote "
                              f"({sorted(files)}); {RERUN}")
    for name, data in contents.items():
        expected = files.get(name)
        if expected is None:
            raise CheckpointError(f"{Path(path) / MANIFEST} does not list {name}; {RERUN}")
        got = hashlib.sha256(data).hexdigest()
        if got != expected:
            raise CheckpointError(f"{Path(path) / name} is damaged: its SHA-256 {got[:16]}... is not the "
                                  f"{expected[:16]}... recorded in {MANIFEST} when it was written; {RERUN}")


def read_state(path: Path) -> dict:
    """The ``state.json`` of a checkpoint directory (checked for the format version and its keys)."""
    f = Path(path) / "state.json"
    try:
        data = f.read_bytes()
    except FileNotFoundError as e:
        raise CheckpointError(f"{f} is missing: the checkpoint is incomplete; {RERUN}") from e
    except OSError as e:
        raise CheckpointError(f"{f} cannot be read ({e}); {RERUN}") from e
    verify_manifest(Path(path), {"state.json": data})  # before a byte of it is trusted
    try:
        state = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError / UnicodeDecodeError: truncated or overwritten
        raise CheckpointError(f"{f} is damaged (not readable JSON: {e}); {RERUN}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{f} is damaged (not a JSON object); {RERUN}")
    if state.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{f}: checkpoint version {state.get('version')!r} is not one of {READABLE_VERSIONS}; "
                              f"{RERUN}")
    if state["version"] >= 2 and not (Path(path) / MANIFEST).is_file():
        raise CheckpointError(f"{Path(path) / MANIFEST} is missing: the checkpoint cannot be verified; {RERUN}")
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{f} is damaged (no {missing}); {RERUN}")
    return state


def read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(state, params, editor_state)`` of a checkpoint directory, every file checked: tensor files present,
    their bytes matching the SHA-256 recorded in ``state.json`` when they were written, and ``params`` holding
    exactly the parameters the state lists. Raises :class:`CheckpointError` otherwise."""
    path = Path(path)
    state = read_state(path)
    hashes = state.get("files")  # absent in checkpoints written before hashes were recorded
    if hashes is not None and not isinstance(hashes, dict):
        raise CheckpointError(f"{path / 'state.json'} is damaged (files: {hashes!r}); {RERUN}")
    tensors = {}
    for name in TENSOR_FILES:
        f = path / name
        expected = hashes.get(name) if hashes is not None else None
        if not f.is_file():
            if name == "params.safetensors" or expected is not None:
                raise CheckpointError(f"{f} is missing; {RERUN}")
            tensors[name] = {}  # a stateless editor writes no editor.safetensors
            continue
        if hashes is not None and expected is None:
            raise CheckpointError(f"{f} is not one of the files this checkpoint wrote ({sorted(hashes)}); {RERUN}")
        data = f.read_bytes()
        verify_manifest(path, {name: data})
        if expected is not None:
            got = hashlib.sha256(data).hexdigest()
            if got != expected:
                raise CheckpointError(f"{f} is damaged: its SHA-256 {got[:16]}... is not the {expected[:16]}... "
                                      f"recorded in state.json when it was written; {RERUN}")
        try:
            tensors[name] = load_bytes(data)
        except Exception as e:  # safetensors' own error type for a bad header
            raise CheckpointError(f"{f} is damaged ({type(e).__name__}: {e}); {RERUN}") from e
    params = tensors["params.safetensors"]
    if sorted(params) != sorted(state["params"]):
        raise CheckpointError(f"{path / 'params.safetensors'} holds {sorted(params)}, but state.json lists "
                              f"{sorted(state['params'])}; {RERUN}")
    return state, params, tensors["editor.safetensors"]


def apply_checkpoint(params_saved: dict[str, torch.Tensor], editor_state: dict[str, torch.Tensor],
                     model: torch.nn.Module, editor: Any, where: Path | str = "checkpoint") -> None:
    """Copy saved parameter values into ``model`` (in place) and hand ``editor`` its saved state."""
    params = dict(model.named_parameters())
    missing = [n for n in params_saved if n not in params]
    if missing:
        raise KeyError(f"{where}: the model has no parameter(s) {missing}")
    with torch.no_grad():
        for n, v in params_saved.items():
            if tuple(v.shape) != tuple(params[n].shape):
                raise CheckpointError(f"{where}: parameter {n} has shape {tuple(v.shape)} in the checkpoint, "
                                      f"{tuple(params[n].shape)} in the model; {RERUN}")
            params[n].copy_(v.to(params[n].device, params[n].dtype))
    editor.load_state_dict(editor_state)


def load_checkpoint(path: Path, model: torch.nn.Module, editor: Any) -> dict:
    """Load parameters (into ``model``, in place) and editor state from a checkpoint (verified, see
    :func:`read_checkpoint`); return its state dict. RNG states are *not* set here: the runner sets them last,
    right before it continues."""
    state, params, ed = read_checkpoint(path)
    apply_checkpoint(params, ed, model, editor, path)
    return state


def clear_run(out_dir: str | Path) -> None:
    """Remove a previous run's checkpoints (a fresh, non-resumed run starts clean)."""
    shutil.rmtree(ckpt_root(out_dir), ignore_errors=True)
