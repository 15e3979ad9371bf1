"""Second-moment statistics of MLP keys: C = E[k kᵀ] (ROME's and MEMIT's covariance).

A *key* k is the input of an MLP output projection (``adapter.mlp_out(layer)``) at one token. ROME solves
u = C⁻¹ k*, MEMIT solves with λC + KKᵀ, where C is the *uncentered* second moment of the keys over generic
text, estimated once per (model, layer) and cached on disk.

Definitions used here (documented because they differ from the reference code):

- ``n_samples`` counts **tokens** (key vectors), not texts. The reference (kmeng01/rome ``layer_stats``)
  counts Wikipedia articles truncated to the context length (100,000 articles ≈ 10⁸ tokens on GPU); on CPU and
  with the ~590k-token offline corpus a token budget is the meaningful unit. The first ``n_samples`` non-pad
  tokens of the corpus, in order, are used (fewer if the corpus is smaller: the sidecar records ``n_tokens``).
- Each document is tokenized without special tokens, cut into consecutive chunks of at most ``max_length``
  tokens (the reference truncates each article to the context instead; with 106 articles we keep all text),
  and each chunk gets the tokenizer's leading special tokens (``tok("")``: BOS for Llama, none for GPT-2).
- Keys are taken at every non-pad token; each batch is right-padded, ``kᵀk`` is accumulated in float64, the
  result C = Σ kkᵀ / n is returned as float32. Memory is O(d_mlp²) per layer plus one batch.
- The forward pass stops right after the deepest requested layer (nothing later is needed).

The documents come from the caller (this module reads no corpus): ``texts`` is an iterable of strings or a
zero-argument callable returning one, called only when some layer is not cached; ``corpus`` is its label in the
cache key. Corpus names ("auto", "gensim-wiki", ...) are resolved above this layer, by
:mod:`editbench.editors.toolkit.covariance` (through :mod:`editbench.data.corpora`).

Cache: ``<cache_dir>/<model_hash[:16]>/<corpus>/layer<L>_n<n_samples>_len<max_length>.safetensors`` with a
JSON sidecar; ``cache_dir`` defaults to ``<cache root>/stats`` (:func:`editbench.models.cache.cache_root`:
``$EDITBENCH_CACHE`` or ``~/.cache/editbench``).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Union

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from editbench.models.adapter import ModelAdapter
from editbench.models.cache import cache_root
from editbench.models.hooks import StopForward
from editbench.models.identity import model_identity
from editbench.models.tokens import pad_right, pad_token_id

FORMAT = "editbench.second_moment.v1"

Texts = Union[Iterable[str], Callable[[], Iterable[str]]]
"""Documents for the statistics: an iterable of strings, or a zero-argument callable returning one (lazy)."""


# ---------------------------------------------------------------------------------------------- identity
def model_fingerprint(model: torch.nn.Module) -> str:
    """A stable identity for the stats cache when the caller has no model hash.

    The loader's model hash if the loader produced the model (:func:`editbench.models.identity.model_identity`);
    otherwise sha256 of the config and the input embedding (editors leave embeddings alone, so the fingerprint
    survives edits of MLP weights).
    """
    ident = model_identity(model)
    if ident and ident[1]:
        return ident[1]
    digest = hashlib.sha256(model.config.to_json_string(use_diff=False).encode())
    emb = model.get_input_embeddings().weight.detach().float().cpu().contiguous()
    digest.update(emb.numpy().tobytes())
    return "fp-" + digest.hexdigest()


def default_cache_dir() -> Path:
    return cache_root() / "stats"


def cache_path(cache_dir: str | os.PathLike | None, model_hash: str, layer: int, corpus: str, n_samples: int,
               max_length: int) -> Path:
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return base / model_hash[:16] / corpus / f"layer{layer:02d}_n{n_samples}_len{max_length}.safetensors"


def _load_cached(path: Path, meta_expected: dict) -> torch.Tensor | None:
    side = path.with_suffix(".json")
    if not (path.exists() and side.exists()):
        return None
    meta = json.loads(side.read_text())
    if any(meta.get(k) != v for k, v in meta_expected.items()):
        return None  # same file name, different identity (e.g. hash prefix collision): recompute
    return load_file(str(path))["mom2"]


def _save(path: Path, mom2: torch.Tensor, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # per process: parallel workers may compute the same layer
    save_file({"mom2": mom2.contiguous()}, str(tmp), metadata={"format": FORMAT})
    side_tmp = path.with_suffix(f".{os.getpid()}.json.tmp")
    side_tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp, path)
    os.replace(side_tmp, path.with_suffix(".json"))


# ---------------------------------------------------------------------------------------------- streaming
def token_chunks(tok: Any, texts: Iterable[str], max_length: int) -> Iterator[list[int]]:
    """Tokenize documents and cut them into chunks of <= ``max_length`` ids, each with the leading specials."""
    specials = list(tok("")["input_ids"])
    room = max_length - len(specials)
    if room < 2:
        raise ValueError(f"max_length {max_length} too small")
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        for i in range(0, len(ids), room):
            piece = ids[i:i + room]
            if len(piece) >= 2:
                yield specials + piece


def _context_length(model: torch.nn.Module) -> int:
    cfg = model.config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 0:
            return v
    return 1 << 30


@torch.no_grad()
def _accumulate(model, tok, adapter: ModelAdapter, layers: list[int], texts: Iterable[str], n_samples: int,
                batch_size: int, max_length: int, progress: bool) -> tuple[dict[int, torch.Tensor], int]:
    """One streamed pass: hooks on every requested layer's MLP-out input; returns (Σ kkᵀ in float64, n)."""
    dev = next(model.parameters()).device
    width = adapter.mlp_width
    sums = {l: torch.zeros(width, width, dtype=torch.float64, device=dev) for l in layers}
    captured: dict[int, torch.Tensor] = {}
    last = max(layers)

    def make_hook(l):
        def hook(_mod, args):
            captured[l] = args[0]
            if l == last:
                raise StopForward
        return hook

    handles = [adapter.mlp_out(l).register_forward_pre_hook(make_hook(l)) for l in layers]
    n = 0
    bar = tqdm(total=n_samples, desc=f"C=E[kkᵀ] layers {layers}", unit="tok", disable=not progress)
    was_training = model.training
    model.eval()
    try:
        chunks = token_chunks(tok, texts, max_length)
        pad = pad_token_id(tok)  # any id: pads sit after the real tokens and are masked out
        while n < n_samples:
            batch = [c for _, c in zip(range(batch_size), chunks)]
            if not batch:
                break
            ids, mask = pad_right(batch, pad)
            try:
                model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=False)
            except StopForward:
                pass
            keep = mask.to(dev).reshape(-1).bool()
            take = min(int(keep.sum()), n_samples - n)
            for l in layers:
                k = captured[l].reshape(-1, width)[keep][:take].double()
                sums[l].addmm_(k.T, k)
            n += take
            bar.update(take)
    finally:
        for h in handles:
            h.remove()
        bar.close()
        model.train(was_training)
    return sums, n


# ---------------------------------------------------------------------------------------------- public API
def second_moments(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, layers: list[int], *,
                   corpus: str, texts: Texts, n_samples: int = 100_000, model_hash: str | None = None,
                   cache_dir: str | os.PathLike | None = None, batch_size: int = 8, max_length: int = 256,
                   progress: bool = True) -> dict[int, torch.Tensor]:
    """C_l = E[k kᵀ] (float32, shape (d_mlp, d_mlp)) for each layer in ``layers``, from cache or one pass.

    ``texts`` are the documents (an iterable, or a zero-argument callable returning one, called only if some
    layer is not cached) and ``corpus`` their label in the cache key: a concrete corpus id ("gensim-wiki", ...)
    or a name of its own for other texts (e.g. ``"test-texts"``). To go from a corpus *name* to texts use
    :func:`editbench.editors.toolkit.covariance.second_moments_of`. ``n_samples`` is a token count.
    ``model_hash`` identifies the model for the cache (default: :func:`model_fingerprint`). Layers already
    cached are loaded, the rest are computed together in a single streamed pass (one forward per batch, hooks
    on all of them).
    """
    layers = sorted(set(int(l) for l in layers))
    corpus_id = str(corpus)
    model_hash = model_hash or model_fingerprint(model)
    max_length = min(max_length, _context_length(model))
    out: dict[int, torch.Tensor] = {}
    todo = []
    for l in layers:
        expected = {"format": FORMAT, "model_hash": model_hash, "layer": l, "corpus": corpus_id,
                    "n_samples": n_samples, "max_length": max_length}
        cached = _load_cached(cache_path(cache_dir, model_hash, l, corpus_id, n_samples, max_length), expected)
        if cached is not None:
            out[l] = cached
        else:
            todo.append(l)
    if todo:
        t0 = time.perf_counter()
        docs = texts() if callable(texts) else texts
        sums, n = _accumulate(model, tok, adapter, todo, docs, n_samples, batch_size, max_length, progress)
        if n == 0:
            raise RuntimeError(f"corpus {corpus_id!r} produced no tokens")
        seconds = time.perf_counter() - t0
        for l in todo:
            mom2 = (sums[l] / n).float().cpu()
            meta = {"format": FORMAT, "model_hash": model_hash, "layer": l, "corpus": corpus_id,
                    "n_samples": n_samples, "n_tokens": n, "max_length": max_length,
                    "model_type": adapter.model_type, "mlp_width": adapter.mlp_width,
                    "definition": "uncentered E[k k^T] of the MLP output projection's input, non-pad tokens",
                    "seconds": round(seconds, 2), "layers_in_pass": todo}
            _save(cache_path(cache_dir, model_hash, l, corpus_id, n_samples, max_length), mom2, meta)
            out[l] = mom2
    return {l: out[l] for l in layers}


def second_moment(model: torch.nn.Module, tok: Any, adapter: ModelAdapter, layer: int, *, corpus: str,
                  texts: Texts, n_samples: int = 100_000, model_hash: str | None = None,
                  cache_dir: str | os.PathLike | None = None, batch_size: int = 8, max_length: int = 256,
                  progress: bool = True) -> torch.Tensor:
    """C = E[k kᵀ] (float32, (d_mlp, d_mlp)) of one layer's MLP keys; see :func:`second_moments`."""
    return second_moments(model, tok, adapter, [layer], corpus=corpus, texts=texts, n_samples=n_samples,
                          model_hash=model_hash, cache_dir=cache_dir, batch_size=batch_size, max_length=max_length,
                          progress=progress)[layer]
