"""ROME / r-ROME hyperparameters (one frozen dataclass; presets in ``editbench/editors/hparams/rome.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass

from editbench.editors.base import HParams
from editbench.editors.ranges import SEED_MAX, hp


@dataclass(frozen=True)
class ROMEHParams(HParams):
    """Defaults are the published GPT-2-XL values of kmeng01/rome except ``layer`` (set per model by preset).

    The v* loss is ``mean NLL(target | templated prompts) + kl_factor·KL(P_δ‖P_0 on "{subject} is a")
    + v_weight_decay·‖δ‖/‖v₀‖²`` (the reference code's weight decay: ‖δ‖, not ‖δ‖²).
    """

    layer: int = hp(17, layer=True)
    """The MLP whose output projection is edited (a rank-one update)."""
    v_loss_layer: int | None = hp(None, layer=True)
    """Block whose output is read (through the final norm and LM head) for the target NLL; None = last."""
    v_lr: float = hp(0.5, gt=0)
    v_num_grad_steps: int = hp(20, ge=1)
    """Iterations of the v* loop; as in the reference the last one only evaluates (so 19 Adam steps at most)."""
    v_weight_decay: float = hp(0.5, ge=0)
    clamp_norm_factor: float = hp(4.0, gt=0)
    """After each step ‖δ‖ is clamped to clamp_norm_factor·‖v₀‖."""
    kl_factor: float = hp(0.0625, ge=0)
    early_stop_loss: float = hp(5e-2, ge=0)
    mom2_adjustment: bool = True
    """Use u = C⁻¹k* (True, the paper) or u = k* (False)."""
    mom2_corpus: str = "auto"
    """Corpus of the second-moment statistics (see :mod:`editbench.data.corpora`)."""
    mom2_n_samples: int = hp(100_000, ge=1)
    """Tokens (key vectors) for C = E[kkᵀ]."""
    mom2_max_length: int = hp(256, ge=2)
    context_template_spec: tuple = ((5, 10), (10, 10))
    """((length in tokens incl. the start token, count), ...) of the sampled prefixes."""
    context_template_top_k: int = hp(5, ge=1)
    fact_token: str = hp("subject_last", choices=("subject_last", "last"))
    """Where the key is read and δ inserted: "subject_last" (ROME) or "last" (last prompt token)."""
    seed: int = hp(0, ge=0, le=SEED_MAX)
    """Seeds the context-template sampler."""
    original_rome_key: bool = True
    """True: ROME as published — W k and uᵀk use the raw prompt's key. False: r-ROME — the averaged k*."""
    fast: bool = True
    """Fast v* optimisation (cached prefix, only the layers above the edit, LM head at scored positions).
    False: the straightforward full forward with a hook, as in the reference. Same result up to rounding."""

    def __post_init__(self):
        spec = tuple(tuple(int(x) for x in pair) for pair in self.context_template_spec)
        object.__setattr__(self, "context_template_spec", spec)
        if self.fact_token not in ("subject_last", "last"):
            raise ValueError(f"fact_token must be 'subject_last' or 'last', got {self.fact_token!r}")
