"""Checkpoints of a sequential run: edited parameters, editor state and runner state — no pickle.

A checkpoint is a directory ``<out_dir>/ckpt/step_<n>/`` holding

- ``params.safetensors`` — the current values of the parameters edited so far (only those: the rest of the
  model is the unedited model the run started from, which the caller loads again on resume);
- ``editor.safetensors`` — the editor's state, if it has any (the ``Editor`` contract's ``state_dict()`` /
  ``load_state_dict(d)``: AlphaEdit's accumulated keys, a counter...; stateless editors return ``{}``);
- ``state.json`` — the runner's position in the stream, the byte offset of the results JSONL at that moment,
  RNG states (torch, Python, NumPy) as plain JSON lists, the forgetting tracker, the moving windows, the config,
  and a SHA-256 of each edited parameter's *original* value (so resuming onto the wrong model is an error).

The directory is written under a temporary name and renamed into place, then ``ckpt/LATEST`` is replaced
atomically: a run killed while checkpointing keeps the previous checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE_VERSION = 1


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
    full = {"version": STATE_VERSION, "position": position, "params": list(param_names), "rng": rng_state(),
            **state}
    with open(tmp / "state.json", "w", encoding="utf-8") as f:
        json.dump(full, f)
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
    latest = ckpt_root(out_dir) / "LATEST"
    if not latest.exists():
        return None
    path = ckpt_root(out_dir) / latest.read_text().strip()
    return path if (path / "state.json").exists() else None


def read_state(path: Path) -> dict:
    """The ``state.json`` of a checkpoint directory (checked for the format version)."""
    with open(path / "state.json", encoding="utf-8") as f:
        state = json.load(f)
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: checkpoint version {state.get('version')} != {STATE_VERSION}")
    return state


def load_checkpoint(path: Path, model: torch.nn.Module, editor: Any) -> dict:
    """Load parameters (into ``model``, in place) and editor state from a checkpoint; return its state dict.
    RNG states are *not* set here: the runner sets them last, right before it continues."""
    state = read_state(path)
    params = dict(model.named_parameters())
    saved = load_file(str(path / "params.safetensors"))
    missing = [n for n in saved if n not in params]
    if missing:
        raise KeyError(f"{path}: the model has no parameter(s) {missing}")
    with torch.no_grad():
        for n, v in saved.items():
            params[n].copy_(v.to(params[n].device, params[n].dtype))
    ed_path = path / "editor.safetensors"
    editor.load_state_dict(load_file(str(ed_path)) if ed_path.exists() else {})
    return state


def clear_run(out_dir: str | Path) -> None:
    """Remove a previous run's checkpoints (a fresh, non-resumed run starts clean)."""
    shutil.rmtree(ckpt_root(out_dir), ignore_errors=True)
