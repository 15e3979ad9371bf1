"""MEND's hyperparameters (presets: ``editors/hparams/mend.yaml``). The architecture fields are used when a
network is *trained* (``editbench mend train``); at edit time the trained network's own config wins, and these
fields only say which network to look for.

network   directory of a trained network (``network.safetensors`` + ``network.json``); ``None`` = the shipped
          network of the model (``editbench/editors/mend/weights/<model>/``), else the cache
          (``<cache root>/mend/<model>/``)
layers    blocks whose MLP weights are edited; ``None`` = the last three (the paper: GPT-2-XL's 46-48)
modules   which weights of each block: ``mlp_out`` (the down/output projection) and/or ``mlp_in``
rank      rank of each low-rank layer of the editor MLP (reference 1920)
n_hidden  hidden layers of the editor MLP (reference 1: two residual low-rank layers)
edit_lr   initial value of every learned per-layer step size (reference 1e-4)
norm      normalize u and delta with running statistics (reference true)
"""
from __future__ import annotations

from dataclasses import dataclass

from editbench.editors.base import HParams
from editbench.editors.ranges import hp


@dataclass(frozen=True)
class MENDHParams(HParams):
    network: str | None = None
    layers: tuple[int, ...] | None = hp(None, layer=True)
    modules: tuple[str, ...] = ("mlp_out",)
    rank: int = hp(1920, ge=1)
    n_hidden: int = hp(1, ge=0)
    edit_lr: float = hp(1e-4, gt=0)
    norm: bool = True

    def __post_init__(self):
        if self.layers is not None:
            layers = self.layers if isinstance(self.layers, (list, tuple)) else (self.layers,)
            object.__setattr__(self, "layers", tuple(int(x) for x in layers))
            if not self.layers or len(set(self.layers)) != len(self.layers):
                raise ValueError(f"MEND layers must be non-empty and distinct, got {self.layers}")
        mods = self.modules if isinstance(self.modules, (list, tuple)) else (self.modules,)
        object.__setattr__(self, "modules", tuple(str(m) for m in mods))
        bad = [m for m in self.modules if m not in ("mlp_out", "mlp_in")]
        if bad or not self.modules:
            raise ValueError(f"MEND modules must be among 'mlp_out', 'mlp_in', got {self.modules}")
        if self.rank < 1 or self.n_hidden < 0 or self.edit_lr <= 0:
            raise ValueError(f"need rank >= 1, n_hidden >= 0, edit_lr > 0 (got {self.rank}, {self.n_hidden}, "
                             f"{self.edit_lr})")

    def edited_layers(self, n_layers: int) -> tuple[int, ...]:
        return self.layers if self.layers is not None else tuple(range(max(0, n_layers - 3), n_layers))
