"""The key covariance C = E[k kᵀ] of MLP output layers, for ROME and the MEMIT family: one way to get it.

:func:`second_moments_of` turns a corpus *name* ("auto", "gensim-wiki", "factworld", "wikitext") into texts
(:mod:`editbench.data.corpora`) and hands them to :func:`editbench.models.stats.second_moments`, which reads and
writes the on-disk cache (the texts are only read when some layer is not cached). :class:`CovarianceCache` is
what an editor holds: covariances the caller gave (``{layer: C}``) win; the others are computed once per model
object -- the first time, i.e. for the unedited weights, as in the reference code -- and reused for later edits
of the same (increasingly edited) model. Models are held weakly.
"""
from __future__ import annotations

import functools
import os
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from editbench.data.corpora import corpus_texts, resolve_corpus
from editbench.models.adapter import ModelAdapter
from editbench.models.stats import second_moments


def corpus_source(corpus: str, model: Any = None,
                  model_id: str | None = None) -> tuple[str, Callable[[], Iterator[str]]]:
    """``(corpus id, texts)``: ``"auto"`` resolved for the model, and a zero-argument callable that opens the
    corpus (nothing is read until it is called)."""
    corpus_id = resolve_corpus(corpus, model, model_id)
    return corpus_id, functools.partial(corpus_texts, corpus_id)


def second_moments_of(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, layers: Sequence[int], *,
                      corpus: str = "auto", n_samples: int = 100_000, model_hash: str | None = None,
                      cache_dir: str | os.PathLike | None = None, batch_size: int = 8, max_length: int = 256,
                      progress: bool = True) -> dict[int, torch.Tensor]:
    """:func:`editbench.models.stats.second_moments` over the named corpus (cached under the resolved id)."""
    corpus_id, texts = corpus_source(corpus, model)
    return second_moments(model, tok, adapter, list(layers), corpus=corpus_id, texts=texts, n_samples=n_samples,
                          model_hash=model_hash, cache_dir=cache_dir, batch_size=batch_size,
                          max_length=max_length, progress=progress)


def stats_cache_dir(explicit: str | os.PathLike | None,
                    cache_dir: str | os.PathLike | None = None) -> str | os.PathLike | None:
    """Where an editor's statistics live: its own ``explicit`` directory if set, else ``<cache_dir>/stats`` for an
    artefact cache root handed to ``Editor.prepare``, else None (the stats module's default, the same layout
    under :func:`editbench.models.cache.cache_root`)."""
    if explicit is not None:
        return explicit
    return None if cache_dir is None else Path(cache_dir) / "stats"


class CovarianceCache:
    """Per-model-object memory of computed key covariances (see the module docstring)."""

    def __init__(self) -> None:
        self._per_model: "weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, torch.Tensor]]" = \
            weakref.WeakKeyDictionary()

    def get(self, model: torch.nn.Module, tok: Any, adapter: ModelAdapter, layers: Sequence[int], *,
            given: Mapping[int, torch.Tensor] | None = None, corpus: str = "auto", n_samples: int = 100_000,
            max_length: int = 256, model_hash: str | None = None, cache_dir: str | os.PathLike | None = None,
            progress: bool = True) -> dict[int, torch.Tensor]:
        """``{layer: C}`` for ``layers``: from ``given``, else from this model's memory, else computed (or read
        from the disk cache) in one pass for all missing layers. The memory is keyed by what defines C (layer,
        corpus, n_samples, max_length), not by where the disk cache lives."""
        given = given or {}
        memo = self._per_model.setdefault(model, {})
        settings = (corpus, int(n_samples), int(max_length))
        missing = [l for l in layers if l not in given and (l, settings) not in memo]
        if missing:
            computed = second_moments_of(model, tok, adapter, missing, corpus=corpus, n_samples=n_samples,
                                         model_hash=model_hash, cache_dir=cache_dir, max_length=max_length,
                                         progress=progress)
            for l, c in computed.items():
                memo[(l, settings)] = c
        return {l: given[l] if l in given else memo[(l, settings)] for l in layers}
