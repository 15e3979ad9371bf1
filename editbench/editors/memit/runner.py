"""Generic forward-pass helpers: stop a pass once what you need is recorded; add a vector at chosen positions.

(The "replay only the blocks above layer L" machinery is ROME's :class:`editbench.editors.rome.forward.FastForward`,
which MEMIT's z optimization reuses; :func:`hidden_of` comes from there too.)
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from editbench.editors.rome.forward import hidden_of, with_hidden
from editbench.models.stats import StopForward

__all__ = ["forward_until", "add_at", "adding_hook", "hidden_of"]


def forward_until(model: torch.nn.Module, inputs: dict, *, inputs_of: Sequence[torch.nn.Module] = (),
                  outputs_of: Sequence[torch.nn.Module] = ()) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Run ``model(**inputs)`` under no_grad, record the first positional input of each module in ``inputs_of``
    and the hidden-state output of each module in ``outputs_of`` (a block's output may be a tensor or a tuple),
    and abandon the pass as soon as all are recorded: the layers above are never run."""
    wanted = len(inputs_of) + len(outputs_of)
    got_in: dict[int, torch.Tensor] = {}
    got_out: dict[int, torch.Tensor] = {}

    def check_done():
        if len(got_in) + len(got_out) == wanted:
            raise StopForward

    def pre(i):
        def hook(_m, args):
            got_in[i] = args[0].detach()
            check_done()
        return hook

    def post(i):
        def hook(_m, _args, out):
            got_out[i] = hidden_of(out).detach()
            check_done()
        return hook

    handles = [m.register_forward_pre_hook(pre(i)) for i, m in enumerate(inputs_of)]
    handles += [m.register_forward_hook(post(i)) for i, m in enumerate(outputs_of)]
    try:
        with torch.no_grad():
            model(**inputs, use_cache=False)
    except StopForward:
        pass
    finally:
        for h in handles:
            h.remove()
    if len(got_in) + len(got_out) != wanted:
        raise RuntimeError("forward_until: some requested modules were never called")
    return [got_in[i] for i in range(len(inputs_of))], [got_out[i] for i in range(len(outputs_of))]


def add_at(h: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``h`` (batch, seq, d) with ``delta[i]`` added at position (rows[i], cols[i]); ``delta`` is (len(rows), d),
    or (d,) for one vector everywhere. Out of place and differentiable with respect to ``delta``."""
    d = delta.to(h.dtype).expand(len(rows), h.shape[-1])
    return h + torch.zeros_like(h).index_put((rows, cols), d)


def adding_hook(rows: torch.Tensor, cols: torch.Tensor, delta_fn: Callable[[], torch.Tensor]):
    """A forward hook for a block that adds ``delta_fn()`` to its hidden output at (rows, cols)."""
    def hook(_m, _args, out):
        return with_hidden(out, add_at(hidden_of(out), rows, cols, delta_fn()))
    return hook
