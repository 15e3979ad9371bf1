"""Weight drift: how far every edited weight has moved from its original, after every edit.

The seed paper (Sec. 3.4, footnote 5) plots "the L2 norm between original and post-edit weights of the layer
being edited, normalized by the number of neurons in the layer". Its authors' code
(scalable-model-editing/rebuilding-rome, ``get_model_distance``) computes

    dist = ‖W − W₀‖_F / W.numel()

i.e. the Frobenius norm divided by the number of *entries* of the matrix. We follow the code — it is what
produced the published numbers (Table 2: 8.2e-7 for a normal GPT-J ROME edit, 3.3e-4 for a disabling one) —
and also record the raw Frobenius norm ``fro`` and the relative drift ``rel = ‖W − W₀‖_F / ‖W₀‖_F``, so
any other normalization (e.g. by the number of rows or columns) can be derived from a run's records. The
edited matrix's own norm ``norm`` = ‖W‖_F and its growth ``norm_ratio`` = ‖W‖_F / ‖W₀‖_F are recorded too
(AlphaEdit's and ENCORE's papers plot that growth: ENCORE's norm constraint exists to stop it).

A :class:`DistanceTracker` keeps a float32 copy of each edited parameter's original value (taken from the
``originals`` an editor returns, the first time a parameter is touched; on the device the editor saved it on,
so a GPU run does not copy matrices to the host after every edit) and measures all of them after every edit:
a later edit to layer A can move the distance of layer B only if it touches B, but measuring all is cheap (one
subtraction per edited matrix) and catches editors that touch more than they report.

:meth:`DistanceTracker.nonfinite` names the tracked parameters that hold NaN or inf, at almost no cost: a finite
distance proves a finite weight, so only a parameter whose distance is not finite is scanned (a non-finite
distance alone can also be a float32 overflow of huge but finite weights).
"""
from __future__ import annotations

import math
import re
from typing import Iterable

import torch


def layer_label(name: str) -> str:
    """A short label for a parameter name: ``transformer.h.3.mlp.c_proj.weight`` -> ``L3 mlp.c_proj``."""
    m = re.search(r"\.(\d+)\.(.+?)(?:\.weight|\.bias)?$", name)
    if not m:
        return name
    return f"L{m.group(1)} {m.group(2)}"


@torch.no_grad()
def weight_distance(current: torch.Tensor, original: torch.Tensor, w0_norm: float | None = None) -> dict[str, float]:
    """``fro`` = ‖W − W₀‖_F, ``dist`` = fro / numel (the seed paper's code), ``rel`` = fro / ‖W₀‖_F,
    ``norm`` = ‖W‖_F and ``norm_ratio`` = ‖W‖_F / ‖W₀‖_F."""
    original = original.detach().to(current.device, torch.float32)
    cur = current.detach().float()
    fro = float(torch.linalg.vector_norm(cur - original))
    norm = float(torch.linalg.vector_norm(cur))
    w0 = float(torch.linalg.vector_norm(original)) if w0_norm is None else w0_norm
    nan = float("nan")
    return {"fro": fro, "dist": fro / original.numel(), "rel": fro / w0 if w0 > 0 else nan,
            "norm": norm, "norm_ratio": norm / w0 if w0 > 0 else nan}


class DistanceTracker:
    """Originals of every parameter touched so far, and the distance of each from its original."""

    def __init__(self):
        self.originals: dict[str, torch.Tensor] = {}
        self.norms: dict[str, float] = {}  # ‖W₀‖_F of each

    @property
    def names(self) -> list[str]:
        return sorted(self.originals)

    def track(self, originals: dict[str, torch.Tensor]) -> list[str]:
        """Remember the originals of newly touched parameters (the first original of each wins); return new names."""
        new = []
        for name, value in originals.items():
            if name not in self.originals:
                self.originals[name] = value.detach().to(torch.float32, copy=True)
                self.norms[name] = float(torch.linalg.vector_norm(self.originals[name]))
                new.append(name)
        return new

    def track_from_model(self, model: torch.nn.Module, names: Iterable[str]) -> None:
        """Take originals from an *unedited* model (used on resume, before the checkpoint is loaded)."""
        params = dict(model.named_parameters())
        self.track({n: params[n] for n in names})

    @torch.no_grad()
    def measure(self, model: torch.nn.Module) -> dict[str, dict[str, float]]:
        """``{param name: {"fro", "dist", "rel", "norm", "norm_ratio"}}`` for every tracked parameter, plus
        ``"total"`` over all of them taken as one vector (fro and norm = root of the summed squares, dist = fro /
        total entries)."""
        params = dict(model.named_parameters())
        out: dict[str, dict[str, float]] = {}
        sq, numel, sq0, sqw = 0.0, 0, 0.0, 0.0
        for name in self.names:
            d = weight_distance(params[name], self.originals[name], self.norms[name])
            out[name] = d
            sq += d["fro"] ** 2
            sqw += d["norm"] ** 2
            numel += self.originals[name].numel()
            sq0 += self.norms[name] ** 2
        if out:
            fro = sq ** 0.5
            nan = float("nan")
            out["total"] = {"fro": fro, "dist": fro / numel, "rel": fro / sq0 ** 0.5 if sq0 > 0 else nan,
                            "norm": sqw ** 0.5, "norm_ratio": (sqw / sq0) ** 0.5 if sq0 > 0 else nan}
        return out

    @torch.no_grad()
    def nonfinite(self, model: torch.nn.Module, measured: dict[str, dict[str, float]] | None = None) -> list[str]:
        """Tracked parameters of ``model`` holding a NaN or inf (sorted). ``measured`` (the output of
        :meth:`measure` for the model as it is) lets parameters with a finite distance skip the scan."""
        params = dict(model.named_parameters())
        bad = []
        for name in self.names:
            fro = (measured or {}).get(name, {}).get("fro") if measured is not None else None
            if fro is not None and math.isfinite(fro):
                continue  # ‖W − W₀‖ finite (and W₀ finite): every entry of W is finite
            if not bool(torch.isfinite(params[name]).all()):
                bad.append(name)
        return bad
