"""Hyperparameters of the fine-tuning editors (presets: ``editors/hparams/ft.yaml`` and ``ft-c.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass

from editbench.editors.base import HParams
from editbench.editors.ranges import hp


@dataclass(frozen=True)
class FTHyperParams(HParams):
    """Fine-tune the MLP output matrix of ``layers`` on the edit prompt.

    layers           which blocks' MLP output (down-projection) weight is trained; nothing else moves
    lr               Adam learning rate
    num_steps        at most this many optimizer steps
    norm_constraint  epsilon of the L-infinity ball around the original weights, enforced by clamping after every
                     step (FT-C); ``None`` = unconstrained FT
    weight_decay     Adam's (L2) weight decay; 0 in the reference configs
    stop_loss        stop as soon as the mean target NLL is below this (checked before each step)
    """

    layers: tuple[int, ...] = hp((0,), layer=True)
    lr: float = hp(5e-4, gt=0)
    num_steps: int = hp(25, ge=1)
    norm_constraint: float | None = hp(None, gt=0)
    weight_decay: float = hp(0.0, ge=0)
    stop_loss: float = hp(1e-2, ge=0)

    def __post_init__(self):
        layers = self.layers if isinstance(self.layers, (list, tuple)) else (self.layers,)
        layers = tuple(int(layer) for layer in layers)
        if not layers:
            raise ValueError("FT needs at least one layer to train")
        if len(set(layers)) != len(layers):
            raise ValueError(f"duplicate layers {layers}")
        object.__setattr__(self, "layers", layers)  # YAML gives lists; keep the dataclass hashable
        if self.lr <= 0 or self.num_steps < 0:
            raise ValueError(f"need lr > 0 and num_steps >= 0, got lr={self.lr}, num_steps={self.num_steps}")
        if self.norm_constraint is not None and self.norm_constraint <= 0:
            raise ValueError(f"norm_constraint must be > 0 or None, got {self.norm_constraint}")


@dataclass(frozen=True)
class FTCHyperParams(FTHyperParams):
    """FT-C: as :class:`FTHyperParams` but the L-infinity constraint is mandatory (GPT-2-XL reference 5e-4)."""

    norm_constraint: float = hp(5e-4, gt=0)

    def __post_init__(self):
        if self.norm_constraint is None:
            raise ValueError("FT-C needs a norm_constraint (epsilon); use the 'ft' editor for unconstrained FT")
        super().__post_init__()
