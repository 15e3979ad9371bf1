"""Forward hooks used by every method: capture activations, stop a pass early, add a vector at positions.

The bottom of the stack (with :mod:`editbench.models.tokens`): editors, metrics, covariance statistics and causal
tracing all reach hidden states through these helpers instead of hard-coding a block's return type.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import torch

__all__ = ["StopForward", "hidden_of", "with_hidden", "cache_kwarg", "output_cache", "forward_until", "add_at",
           "adding_hook"]


class StopForward(Exception):
    """Raised inside a hook to abandon a forward pass once the needed activations are captured."""


def hidden_of(out: Any) -> torch.Tensor:
    """A decoder block returns a tensor (transformers 5) or a tuple (older): never take ``out[0]`` blindly."""
    return out[0] if isinstance(out, tuple) else out


def with_hidden(out: Any, h: torch.Tensor) -> Any:
    return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h


def cache_kwarg(module: torch.nn.Module) -> str:
    """The name of the KV-cache argument: ``cache`` (transformers >= 5.2x) or ``past_key_values``."""
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def output_cache(out: Any) -> Any:
    for name in ("cache", "past_key_values"):
        c = out.get(name) if hasattr(out, "get") else getattr(out, name, None)
        if c is not None:
            return c
    raise RuntimeError("the model returned no KV cache")


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
