"""The MEND editor: one forward/backward pass on the edit, the trained network maps the gradient to an update.

``apply``: (1) the rank-1 factors (u, delta) of the edit loss's gradient for every weight the network edits
(:func:`~editbench.editors.mend.factors.gradient_factors`); (2) the network turns them into ``u~, delta~``;
(3) ``W <- W - edit_lr_l * sum_t delta~_t u~_t^T`` in place. Several requests at once are one gradient of their
mean loss (the reference trains with one edit per step; batches are supported, not tuned).

The trained network is not per-run state: ``prepare`` loads it (the package's network for a shipped model, else
the cache; :mod:`.store`) and nothing about it changes while editing, so ``reset``/``state_dict`` keep defaults.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import EditResult, Editor, save_originals
from editbench.editors.mend.factors import as_param, gradient_factors, out_in_shape
from editbench.editors.mend.hparams import MENDHParams
from editbench.editors.mend.network import MENDNetwork, load_network
from editbench.editors.mend.store import find_network, missing_network
from editbench.models.adapter import ModelAdapter


def check_network(net: MENDNetwork, model: torch.nn.Module, where: str) -> None:
    adapter, params = ModelAdapter(model), dict(model.named_parameters())
    for name, d_out, d_in in net.weights:
        if name not in params:
            raise ValueError(f"MEND network {where} edits {name!r}, which this model does not have")
        if out_in_shape(adapter, params[name]) != (d_out, d_in):
            raise ValueError(f"MEND network {where} expects {name} of shape (out, in) = {(d_out, d_in)}, the model's "
                             f"is {out_in_shape(adapter, params[name])}")


@torch.no_grad()
def apply_updates(model: torch.nn.Module, updates: dict[str, torch.Tensor]) -> None:
    adapter, params = ModelAdapter(model), dict(model.named_parameters())
    for name, upd in updates.items():
        p = params[name]
        p.add_(as_param(adapter, upd).to(p.device, p.dtype))


class MENDEditor(Editor):
    """MEND (Mitchell et al. 2021) with a network meta-trained for the model (``editbench mend train``)."""

    name = "mend"
    hparams_class = MENDHParams
    supports_batch = True

    def __init__(self, hparams: MENDHParams | None = None):
        super().__init__(hparams)
        self.network: MENDNetwork | None = None
        self._for: int | None = None  # id() of the model the network was checked against
        self.network_dir: str | None = None

    @classmethod
    def unavailable(cls, model_id: str, overrides=None) -> str | None:
        """The one-line "nothing trained for this model; train with ..." when no network exists for it."""
        return missing_network(model_id, explicit=(overrides or {}).get("network"))

    def use_network(self, net: MENDNetwork, model: torch.nn.Module, where: str = "(given)") -> None:
        check_network(net, model, where)
        self.network, self._for, self.network_dir = net.eval(), id(model), where

    def prepare(self, model: torch.nn.Module, tok: Any, cache_dir: str | os.PathLike | None = None) -> None:
        if self.network is not None and self._for == id(model):
            return
        d = find_network(model, self.hparams.network, cache_dir)
        net = load_network(d).to(next(model.parameters()).device)
        self.use_network(net, model, str(d))

    def apply(self, model: torch.nn.Module, tok: Any, requests: Sequence[EditRequest]) -> EditResult:
        self.check_batch(requests)
        requests = [r.validate() for r in requests]  # a malformed request: RecordError before any weight changes
        if not requests:
            return EditResult(stats={"loss": None})
        self.prepare(model, tok)
        net = self.network
        originals = save_originals(model, net.names)
        factors, loss = gradient_factors(model, tok, net.names, [r.rewrite_prompt for r in requests],
                                         [r.target_new for r in requests])
        with torch.no_grad():
            updates = net.updates(factors)
        apply_updates(model, updates)
        stats = {"loss_before": loss, "network": self.network_dir,
                 "update_norm": {n: float(u.norm()) for n, u in updates.items()},
                 "tokens": {n: int(f[0].shape[0]) for n, f in factors.items()}}
        return EditResult(originals=originals, stats=stats)
