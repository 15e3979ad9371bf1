"""What the conformance checks share: the two requests they edit with and byte-level snapshots of a model."""
from __future__ import annotations

from typing import Any

import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import EditResult
from editbench.editors.toolkit import preserve_global_rng
from editbench.models.loader import LoadedModel, load_model

# two requests in the tiny models' whole-word vocabulary (editbench.models.tiny.WORDS)
REQ_A = EditRequest("conformance-a", "The mother tongue of {} is", "Danielle Darrieux", "English", "French")
REQ_B = EditRequest("conformance-b", "{} lives in", "Toko Yasuda", "Paris", "Tokyo")


# -- helpers ---------------------------------------------------------------------------------------------------
def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every parameter and buffer (tied weights once)."""
    out = {n: p.detach().clone() for n, p in model.named_parameters()}
    out.update({f"buffer:{n}": b.detach().clone() for n, b in model.named_buffers()})
    return out


def same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.detach().cpu().contiguous().reshape(-1).view(torch.uint8),
                       b.detach().cpu().contiguous().reshape(-1).view(torch.uint8))


def differing(now: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> list[str]:
    """Names whose bytes differ between two snapshots (or that one of them lacks)."""
    return sorted(n for n in set(now) | set(ref) if n not in now or n not in ref or not same_bytes(now[n], ref[n]))


def _describe(names: list[str], now: dict, ref: dict, limit: int = 4) -> str:
    parts = []
    for n in names[:limit]:
        if n in now and n in ref and now[n].shape == ref[n].shape:
            d = (now[n].double() - ref[n].double()).abs().max().item()
            parts.append(f"{n} (max |diff| {d:.3g})")
        else:
            parts.append(n)
    return ", ".join(parts) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _fresh(family: str, make: Any) -> tuple[LoadedModel, Any]:
    lm = load_model(family)
    editor = make(lm)
    editor.prepare(lm.model, lm.tok)
    return lm, editor


def _apply(editor, lm: LoadedModel, requests) -> EditResult:
    res = editor.apply(lm.model, lm.tok, list(requests))
    assert isinstance(res, EditResult), f"{editor.name}: apply returned {type(res).__name__}, not an EditResult"
    return res


def ambient_rng(seed: int):
    """Seed the global torch / numpy / random generators for the block, then put their states back (the
    toolkit's :func:`~editbench.editors.toolkit.preserve_global_rng`)."""
    return preserve_global_rng(seed)


def assert_same(now: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], message: str) -> None:
    """AssertionError with ``message`` (its ``{diff}`` filled with the differing names and sizes) unless the two
    snapshots are byte-identical."""
    diff = differing(now, ref)
    assert not diff, message.format(diff=_describe(diff, now, ref))
