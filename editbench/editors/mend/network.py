"""MEND's editor network (Mitchell et al. 2021, sec. 3; eric-mitchell/mend ``algs/mend.py`` and ``nn.py``).

One :class:`GradientTransform` per edited weight *shape* (shared by the layers of that shape, as the reference's
``shared: true``): it receives the rank-1 factors of a weight's fine-tuning gradient, per token, ``u`` (the layer
input, size ``d_in``) and ``delta`` (the gradient of the loss with respect to the layer output, size ``d_out``),

1. normalizes each to zero mean and unit variance per coordinate with running statistics (Welford's update over
   every non-zero token seen in training; frozen at edit time),
2. passes the concatenation ``[u, delta]`` through an identity-initialized low-rank MLP: ``n_hidden + 1``
   residual layers ``z <- z + relu(scale_l * (U V z + b) + shift_l)``, ``U`` zero-initialized (so the untrained
   network is the identity), ``scale_l`` / ``shift_l`` a learned per-layer (per "mode") scale and offset,
3. splits the output back into ``u~`` and ``delta~``.

The reference clamps at zero in every layer of its IDMLP, the output layer included (its ``relu`` flag is unused);
this one does the same, since that is the network the paper's results come from.

:class:`MENDNetwork` holds the transforms (keyed ``"<d_out>x<d_in>"``), one learned step size per edited weight
(``edit_lrs``, initialized to ``edit_lr``), and the names of the weights it edits. :func:`save_network` /
:func:`load_network` write and read it as ``network.safetensors`` + ``network.json`` (no pickles).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

NET_WEIGHTS, NET_CONFIG = "network.safetensors", "network.json"
NORM_EPS = 1e-7  # the reference's std offset


def shape_key(d_out: int, d_in: int) -> str:
    return f"{d_out}x{d_in}"


class LowRankResidual(nn.Module):
    """``z + relu((U V z + b) * scale[mode] + shift[mode])`` with ``U`` (dim, rank) zero-initialized."""

    def __init__(self, dim: int, rank: int, n_modes: int, generator: torch.Generator | None = None):
        super().__init__()
        r = min(rank, dim)
        self.u = nn.Parameter(torch.zeros(dim, r))
        self.v = nn.Parameter(torch.randn(r, dim, generator=generator))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.mode_scale = nn.Parameter(torch.ones(n_modes, dim))
        self.mode_shift = nn.Parameter(torch.zeros(n_modes, dim))

    def forward(self, z: torch.Tensor, mode: int) -> torch.Tensor:
        pre = (z @ self.v.T) @ self.u.T + self.bias
        pre = pre * self.mode_scale[mode] + self.mode_shift[mode]
        return z + pre.clamp(min=0)  # clamp, not relu: a non-zero gradient at 0, as the reference


class GradientTransform(nn.Module):
    """Normalize (u, delta) with running statistics and map them through the low-rank residual MLP."""

    def __init__(self, d_in: int, d_out: int, rank: int, n_hidden: int, n_modes: int, norm: bool = True,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.d_in, self.d_out, self.norm = d_in, d_out, norm
        dim = d_in + d_out
        self.layers = nn.ModuleList([LowRankResidual(dim, rank, n_modes, generator) for _ in range(n_hidden + 1)])
        for side, d in (("u", d_in), ("d", d_out)):  # Welford: count k, mean, sum of squared deviations s
            self.register_buffer(f"{side}_mean", torch.zeros(d))
            self.register_buffer(f"{side}_s", torch.zeros(d))
        self.register_buffer("k", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update_stats(self, u: torch.Tensor, delta: torch.Tensor) -> None:
        """Welford's running mean/variance over the rows of ``u`` (n, d_in) and ``delta`` (n, d_out)."""
        for i in range(u.shape[0]):
            self.k += 1
            k = float(self.k)
            for side, x in (("u", u[i]), ("d", delta[i])):
                mean, s = getattr(self, f"{side}_mean"), getattr(self, f"{side}_s")
                new_mean = mean + (x - mean) / k
                s += (x - mean) * (x - new_mean)
                mean.copy_(new_mean)

    def std(self, side: str) -> torch.Tensor:
        if float(self.k) < 2:
            raise RuntimeError("MEND normalization needs statistics of at least 2 tokens (train the network first)")
        return (getattr(self, f"{side}_s") / (float(self.k) - 1)).sqrt()

    def forward(self, u: torch.Tensor, delta: torch.Tensor, mode: int) -> tuple[torch.Tensor, torch.Tensor]:
        u, delta = u.float(), delta.float()
        if self.norm:
            u = (u - self.u_mean) / (self.std("u") + NORM_EPS)
            delta = (delta - self.d_mean) / (self.std("d") + NORM_EPS)
        z = torch.cat([u, delta], dim=-1)
        for layer in self.layers:
            z = layer(z, mode)
        return z[:, :self.d_in], z[:, self.d_in:]


class MENDNetwork(nn.Module):
    """The trained editor for one model: transforms by weight shape, per-weight step sizes, the edited names.

    ``weights`` lists ``(param_name, d_out, d_in)`` of each edited weight in the (out, in) orientation; weights
    of the same shape share a transform and are told apart by their mode (index among that shape's weights).
    """

    def __init__(self, weights: list[tuple[str, int, int]], rank: int = 64, n_hidden: int = 1, edit_lr: float = 1e-4,
                 norm: bool = True, seed: int = 0, meta: dict | None = None):
        super().__init__()
        self.weights = [(str(n), int(o), int(i)) for n, o, i in weights]
        self.rank, self.n_hidden, self.norm, self.seed = int(rank), int(n_hidden), bool(norm), int(seed)
        self.edit_lr_init = float(edit_lr)
        self.meta = dict(meta or {})
        by_shape: dict[str, list[str]] = {}
        for n, o, i in self.weights:
            by_shape.setdefault(shape_key(o, i), []).append(n)
        self.modes = {n: (key, names.index(n)) for key, names in by_shape.items() for n in names}
        g = torch.Generator().manual_seed(self.seed)
        dims = {shape_key(o, i): (o, i) for _, o, i in self.weights}
        self.transforms = nn.ModuleDict({key: GradientTransform(dims[key][1], dims[key][0], rank, n_hidden,
                                                                len(names), norm, g)
                                         for key, names in by_shape.items()})
        self.edit_lrs = nn.Parameter(torch.full((len(self.weights),), self.edit_lr_init))

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.weights]

    def net_parameters(self) -> list[nn.Parameter]:
        """The transforms' parameters (Adam with the outer lr); ``edit_lrs`` is optimized separately."""
        return list(self.transforms.parameters())

    def transform(self, name: str, u: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key, mode = self.modes[name]
        return self.transforms[key](u, delta, mode)

    def update_stats(self, factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        for name, (u, delta) in factors.items():
            self.transforms[self.modes[name][0]].update_stats(u, delta)

    def updates(self, factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """``-edit_lr_l * sum_t delta~_t u~_t^T`` (out, in) for every edited weight (differentiable)."""
        out = {}
        for idx, name in enumerate(self.names):
            u, delta = factors[name]
            ut, dt = self.transform(name, u, delta)
            out[name] = -self.edit_lrs[idx] * (dt.T @ ut)
        return out

    def config(self) -> dict:
        return {"format": "editbench-mend-1", "weights": [list(w) for w in self.weights], "rank": self.rank,
                "n_hidden": self.n_hidden, "edit_lr": self.edit_lr_init, "norm": self.norm, "seed": self.seed,
                "meta": self.meta}

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def network_from_config(cfg: dict) -> MENDNetwork:
    if cfg.get("format") != "editbench-mend-1":
        raise ValueError(f"not an editbench MEND network config (format {cfg.get('format')!r})")
    return MENDNetwork([tuple(w) for w in cfg["weights"]], rank=cfg["rank"], n_hidden=cfg["n_hidden"],
                       edit_lr=cfg["edit_lr"], norm=cfg["norm"], seed=cfg.get("seed", 0), meta=cfg.get("meta"))


def save_network(net: MENDNetwork, directory: str | Path, dtype: torch.dtype = torch.float32,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write ``network.safetensors`` (parameters in ``dtype``; statistics always float32/64) + ``network.json``."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    params = {n for n, _ in net.named_parameters()}
    tensors = {k: (v.detach().to(dtype) if k in params and k != "edit_lrs" else v.detach()).contiguous().cpu()
               for k, v in net.state_dict().items()}
    save_file(tensors, str(d / NET_WEIGHTS))
    cfg = {**net.config(), "dtype": str(dtype).replace("torch.", ""), **(extra or {})}
    (d / NET_CONFIG).write_text(json.dumps(cfg, indent=2))
    return d


def load_network(directory: str | Path) -> MENDNetwork:
    """Read a network written by :func:`save_network` (parameters come back as float32)."""
    from safetensors.torch import load_file

    d = Path(directory)
    net = network_from_config(json.loads((d / NET_CONFIG).read_text()))
    state = load_file(str(d / NET_WEIGHTS))
    ref = net.state_dict()
    net.load_state_dict({k: v.to(ref[k].dtype) for k, v in state.items()}, strict=True)
    return net
