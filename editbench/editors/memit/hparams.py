"""MEMIT hyperparameters (Meng et al. 2022b, "Mass-Editing Memory in a Transformer").

Defaults are the published GPT-2-XL values of the reference implementation (kmeng01/memit,
``hparams/MEMIT/gpt2-xl.json``). Per-model presets live in ``editbench/editors/hparams/memit.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass

from editbench.editors.base import HParams
from editbench.editors.ranges import SEED_MAX, hp


def _tuple(x) -> tuple:
    """YAML gives lists; a frozen dataclass wants hashable tuples (nested for the template spec)."""
    if isinstance(x, (list, tuple)):
        return tuple(_tuple(v) for v in x)
    return x


@dataclass(frozen=True)
class MEMITHParams(HParams):
    # --- where to write ---------------------------------------------------------------------------------
    layers: tuple[int, ...] = hp((13, 14, 15, 16, 17), layer=True)
    """Edited layers R, ascending. The target z lives on the residual stream after the LAST of them."""

    # --- the target z = h_L + delta (optimized like ROME's v*) -----------------------------------------------
    v_num_grad_steps: int = hp(20, ge=1)
    """Loop iterations of the delta optimization (the last one only evaluates: steps-1 Adam updates)."""
    v_lr: float = hp(0.5, gt=0)
    """Adam learning rate for delta."""
    v_weight_decay: float = hp(0.5, ge=0)
    """Weight of the decay term ``v_weight_decay * |delta| / |h_L|^2`` (the reference code's form)."""
    clamp_norm_factor: float = hp(0.75, gt=0)
    """After each step, |delta| is clamped to ``clamp_norm_factor * |h_L|``."""
    kl_factor: float = hp(0.0625, ge=0)
    """Weight of KL(P_delta || P_0) on "{subject} is a" at the subject's last token (essence drift)."""
    early_stop_loss: float = hp(0.05, ge=0)
    """Stop the delta optimization once the total loss is below this."""

    # --- the update ------------------------------------------------------------------------------------------
    mom2_update_weight: float = hp(20000.0, ge=0)
    """lambda in  dW = R K^T (lambda C + K K^T)^-1 ; depends on the scale of C for the model at hand."""
    mom2_n_samples: int = hp(100000, ge=1)
    """Tokens (key vectors) for the key second moment C = E[k k^T] (the reference counts 100k Wikipedia articles
    instead; see :mod:`editbench.models.stats`)."""
    mom2_corpus: str = "auto"
    """Corpus name for :mod:`editbench.editors.toolkit.covariance` ("auto" picks per model)."""

    post_norm_targets: bool = True
    """On blocks that normalise the MLP output before the residual add (Gemma 2/3), write each layer's residual
    share as the MLP output change that moves the normalised contribution by it (True; :mod:`post_norm`), or
    as the MLP output change itself (False: MEMIT's GPT-style assumption; no effect on other families)."""

    # --- context templates -----------------------------------------------------------------------------------
    context_template_spec: tuple[tuple[int, int], ...] = ((10, 5),)
    """(length in tokens, count) groups of model-generated prefixes, after the bare "{}" template.
    MEMIT's reference uses one group of 5 prefixes of 10 tokens (ROME uses (5,10),(10,10))."""
    context_template_openings: tuple[str, ...] = ("The", "Therefore", "Because", "I", "You")
    """Opening words the reference MEMIT samples each prefix from (count // len(openings) each); empty: sample
    from the start token as ROME does."""
    context_template_top_k: int = hp(5, ge=1)
    seed: int = hp(0, ge=0, le=SEED_MAX)
    """Seed of the context-template sampling (the reference is unseeded)."""

    # --- implementation switches (same result either way) ---------------------------------------------------
    fast_z: bool = True
    """Optimize delta by replaying only the blocks after L and the LM head at the scored positions (True),
    or by a full forward pass with a hook adding delta (False; the straightforward reference path)."""
    fast_solve: bool = True
    """Keep each edit layer's lam C Cholesky-factored across edits and solve (lam C + K K^T) X = K by the Woodbury
    identity (True), or solve the summed d x d system afresh per layer per edit (False; the reference's way).
    Equal up to float64 rounding (tests/test_memit.py)."""

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(int(x) for x in _tuple(self.layers)))
        object.__setattr__(self, "context_template_spec", _tuple(self.context_template_spec))
        object.__setattr__(self, "context_template_openings", _tuple(self.context_template_openings))
        object.__setattr__(self, "mom2_update_weight", float(self.mom2_update_weight))
        if not self.layers:
            raise ValueError("MEMIT needs at least one edit layer")
        if list(self.layers) != sorted(set(self.layers)):
            raise ValueError(f"MEMIT layers must be strictly ascending, got {self.layers}")
