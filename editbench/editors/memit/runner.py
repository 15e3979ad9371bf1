"""Run part of a decoder: capture activations at a layer, stop early, or re-run only the blocks after a layer.

Generic pieces any locate-then-edit method can use (MEMIT's z, ROME's v*):

* :func:`hidden_of` — a decoder block's output is a tensor in recent transformers and a tuple in older ones;
  taking ``out[0]`` blindly would silently pick batch element 0 of a tensor.
* :func:`forward_until` — one forward pass that records what you ask for and stops right after the last
  module you need (the layers above it are never run).
* :class:`Suffix` — one clean forward pass records the residual stream h_L after block ``layer`` *and the exact
  arguments the model passed to every later block* (causal/padding mask, rotary position embeddings of
  Llama-family models, position ids...). ``Suffix.logits(h, rows, cols)`` then replays only blocks L+1..N-1 on a
  modified h and applies the final norm and the LM head at the requested positions only. Because the replayed
  calls receive the very arguments the model built, this works for every architecture the adapter knows
  without re-implementing masks or rotary embeddings, and equals the full forward pass at those positions.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from editbench.models.adapter import ModelAdapter


def hidden_of(out):
    """The hidden states of a block's output, whether the block returns a tensor or a tuple."""
    return out[0] if isinstance(out, tuple) else out


def with_hidden(out, hidden: torch.Tensor):
    """A block output of the same kind as ``out`` carrying ``hidden`` instead."""
    return (hidden,) + tuple(out[1:]) if isinstance(out, tuple) else hidden


class _Stop(Exception):
    """Raised by a hook to end a forward pass once everything needed has been recorded."""


def forward_until(model: torch.nn.Module, inputs: dict, *, inputs_of: Sequence[torch.nn.Module] = (),
                  outputs_of: Sequence[torch.nn.Module] = ()) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Run ``model(**inputs)`` under no_grad, record the first positional input of each module in ``inputs_of``
    and the (hidden) output of each module in ``outputs_of``, and stop the pass once all are recorded."""
    wanted = len(inputs_of) + len(outputs_of)
    got_in: dict[int, torch.Tensor] = {}
    got_out: dict[int, torch.Tensor] = {}
    handles = []

    def check_done():
        if len(got_in) + len(got_out) == wanted:
            raise _Stop

    for i, mod in enumerate(inputs_of):
        def pre(_m, args, i=i):
            got_in[i] = args[0].detach()
            check_done()
        handles.append(mod.register_forward_pre_hook(pre))
    for i, mod in enumerate(outputs_of):
        def post(_m, _args, out, i=i):
            got_out[i] = hidden_of(out).detach()
            check_done()
        handles.append(mod.register_forward_hook(post))
    try:
        with torch.no_grad():
            model(**inputs, use_cache=False)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    if len(got_in) + len(got_out) != wanted:
        raise RuntimeError("forward_until: some requested modules were never called")
    return [got_in[i] for i in range(len(inputs_of))], [got_out[i] for i in range(len(outputs_of))]


class Suffix:
    """The part of the network above block ``layer``, ready to be re-run on a modified residual stream."""

    def __init__(self, model: torch.nn.Module, adapter: ModelAdapter, layer: int, inputs: dict):
        self.adapter = adapter
        self.layer = layer
        self.calls: list[tuple[torch.nn.Module, tuple, dict]] = []
        captured: dict[int, torch.Tensor] = {}
        last = adapter.n_layers - 1

        def grab(_m, _a, out):
            captured[0] = hidden_of(out).detach()
            if layer == last:
                raise _Stop

        def record(m, args, kwargs):
            self.calls.append((m, tuple(args[1:]), dict(kwargs)))

        def stop(_m, _a, _out):
            raise _Stop  # the final norm and the LM head are not needed here

        handles = [adapter.block(layer).register_forward_hook(grab)]
        for i in range(layer + 1, adapter.n_layers):
            handles.append(adapter.block(i).register_forward_pre_hook(record, with_kwargs=True))
        if layer < last:
            handles.append(adapter.block(last).register_forward_hook(stop))
        try:
            with torch.no_grad():
                model(**inputs, use_cache=False)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        self.h: torch.Tensor = captured[0]
        """Residual stream after block ``layer`` (batch, seq, d_model), from the clean pass."""

    def run(self, h: torch.Tensor) -> torch.Tensor:
        """Blocks layer+1..N-1 applied to ``h``; returns the last block's output (before the final norm)."""
        for block, args, kwargs in self.calls:
            h = hidden_of(block(h, *args, **kwargs))
        return h

    def logits(self, h: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """LM-head logits at positions (rows[i], cols[i]) when the residual after ``layer`` is ``h``."""
        top = self.run(h)[rows, cols]
        return self.adapter.lm_head(self.adapter.final_norm(top))


def add_at(h: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``h`` with ``delta`` added at the positions (rows[i], cols[i]) — out of place, differentiable."""
    mask = torch.zeros(h.shape[:2], dtype=h.dtype, device=h.device)
    mask[rows, cols] = 1.0
    return h + mask.unsqueeze(-1) * delta.to(h.dtype)


def adding_hook(rows: torch.Tensor, cols: torch.Tensor, delta_fn: Callable[[], torch.Tensor]):
    """A forward hook for a block that adds ``delta_fn()`` to its output at (rows, cols) (the slow path)."""
    def hook(_m, _args, out):
        return with_hidden(out, add_at(hidden_of(out), rows, cols, delta_fn()))
    return hook
