"""The public toolkit for editor authors: everything a third-party editor may import, from one module.

    from editbench.editors.toolkit import Editor, HParams, EditResult, ModelAdapter, CovarianceCache, ...

Only the names in :data:`__all__` are public (documented in docs/authors/, one page per topic; kept stable); the
submodules below are editbench's own building blocks and may change:

- the contract (docs/authors/apply.md): :class:`Editor`, :class:`HParams`, :class:`EditResult`,
  :func:`save_originals`, :func:`restore`, :class:`EditRequest`, :class:`RecordError`;
- the model adapter (docs/authors/adapter.md): :class:`ModelAdapter` (blocks, MLP projections, attention, final
  norm, LM head, embedding, weight orientation);
- token positions and hooks (docs/authors/tokens-and-hooks.md): the prompt + target batch, target log-probs/NLL,
  the subject's last token, right padding; hooks that capture, stop a forward pass early or add a vector;
- the key covariance (docs/authors/covariance.md): :class:`CovarianceCache`, :func:`second_moments_of`;
- context templates (ROME/MEMIT): :func:`context_templates`, :func:`memit_context_templates`;
- seeds and determinism (docs/authors/determinism.md): :func:`editor_generator`, :func:`preserve_global_rng`;
- model identity (cache keys): :func:`model_identity`, :func:`model_fingerprint`.

The submodules (:mod:`.forward`, :mod:`.templates`, :mod:`.covariance`, :mod:`.linalg`) are the shared building
blocks of ROME, MEMIT and the MEMIT family.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from editbench.data.schema import EditRequest, RecordError
from editbench.editors.base import EditResult, Editor, HParams, restore, save_originals
from editbench.editors.toolkit.covariance import CovarianceCache, second_moments_of
from editbench.editors.toolkit.templates import context_templates, memit_context_templates
from editbench.models.adapter import ModelAdapter
from editbench.models.hooks import StopForward, add_at, adding_hook, forward_until, hidden_of, with_hidden
from editbench.models.identity import model_identity
from editbench.models.stats import model_fingerprint
from editbench.models.tokens import (PromptTargetBatch, encode_prefix, encode_target, fill_template, pad_right,
                                     pad_token_id, subject_last_token_index, target_argmax_correct,
                                     target_log_probs, target_nll, tokenize_prompt_target)

__all__ = [
    # the contract
    "Editor", "HParams", "EditResult", "save_originals", "restore", "EditRequest", "RecordError",
    # architecture
    "ModelAdapter",
    # tokens and positions
    "PromptTargetBatch", "tokenize_prompt_target", "target_log_probs", "target_nll", "target_argmax_correct",
    "subject_last_token_index", "fill_template", "encode_prefix", "encode_target", "pad_right", "pad_token_id",
    # hooks
    "StopForward", "forward_until", "hidden_of", "with_hidden", "add_at", "adding_hook",
    # statistics and templates
    "CovarianceCache", "second_moments_of", "context_templates", "memit_context_templates",
    # seeds, identity
    "editor_generator", "preserve_global_rng", "model_identity", "model_fingerprint",
]


def editor_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` seeded with the editor's ``seed`` hyperparameter: draw every random number of an
    edit from it (``torch.randn(..., generator=g)``), never from the global generators."""
    return torch.Generator(device=device).manual_seed(int(seed))


@contextmanager
def preserve_global_rng(seed: int | None = None) -> Iterator[None]:
    """Run code that draws from (or reseeds) the global torch / numpy / ``random`` generators -- third-party code
    you wrap, dropout in train mode -- and put all three states back afterwards, so the caller's streams are as
    before. ``seed``: seed the three generators for the block (deterministic wrapped code)."""
    import random

    import numpy as np
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed)
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)
