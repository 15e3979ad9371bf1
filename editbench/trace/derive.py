"""Derived presets: edit layers for a model nobody published a preset for, by a stated rule, cached per model.

The rule (ROME, Meng et al. 2022, Sec. 2-3; MEMIT, Meng et al. 2023, Sec. 3-4):

* causal tracing (:func:`editbench.trace.tracing.trace_layers`, ``kind="mlp"``) over the first ``N_FACTS``
  known_1000 facts the model knows (its clean argmax is the answer's first token; the fact world's own facts for
  ``factworld``), ``N_SAMPLES`` noise draws each (σ = 3 × the std of the subjects' embedding outputs), MLP
  outputs restored in ROME's window of ``WINDOW`` layers;
* ROME / r-ROME edit the MLP layer with the largest average indirect effect at the subject's last token;
* MEMIT / AlphaEdit / ENCORE edit the *critical path* around it: the maximal run of consecutive layers containing
  that peak whose effect is ≥ ``FRAC`` × the peak, at most ``MAX_LAYERS`` layers, the weaker end dropped first
  (:func:`editbench.trace.tracing.suggest_layers`); MEMIT's λ (``mom2_update_weight``) by the width rule of the
  shipped presets, 15000 × d_mlp / 16384 (GPT-J's published λ scaled by the MLP width).

:func:`derive_layers` returns that choice with the trace summary and caches it as JSON under
``<cache root>/presets/<model hash>.json``; a cache made with other rule parameters is recomputed. The stack
(editors, runner) reaches this module through the registry string :data:`editbench.editors.presets.DERIVE_HOOK`.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from editbench.models.cache import cache_root
from editbench.trace import tracing
from editbench.trace.cli import load_trace_facts
from editbench.trace.core import as_trace_fact

N_FACTS, N_SAMPLES, WINDOW, SEED, FRAC, MAX_LAYERS = 30, 3, 10, 0, 0.5, 5
MAX_SCANNED = 400  # facts looked at to find N_FACTS known ones


class DerivationError(ValueError):
    """No layer can be derived (the model knows none of the facts, or the trace shows no positive effect)."""


def rule_text(n_facts: int, n_samples: int, window: int) -> str:
    return (f"causal trace (ROME Sec. 2) of MLP outputs over {n_facts} known facts, {n_samples} noise samples, "
            f"window {window}: ROME layer = largest average indirect effect at the subject's last token; "
            f"MEMIT layers = the critical path around it (consecutive layers with effect >= {FRAC} x peak, "
            f"at most {MAX_LAYERS}); MEMIT lambda = 15000 x d_mlp / 16384")


def cache_path(model_hash: str, cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir or cache_root()) / "presets" / f"{model_hash}.json"


def _facts(lm, dataset: str | None):
    facts, label = load_trace_facts(dataset or "auto", lm.model_id)
    return [as_trace_fact(f) for f in facts[:MAX_SCANNED]], label


def derive_layers(lm, *, n_facts: int | None = None, n_samples: int | None = None, window: int | None = None,
                  dataset: str | None = None, cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
                  progress: bool = False) -> dict:
    """The derived ROME layer and MEMIT layers of ``lm`` (a LoadedModel) with the rule and the trace summary.

    Keys: ``rule``, ``params``, ``rome_layer``, ``memit_layers``, ``mom2_update_weight``, ``trace`` (facts looked
    at / known / used, mean p clean / corrupted, the per-layer average and normalised indirect effects at the
    subject's last token), ``model_id``, ``model_hash``, ``dataset``, ``seconds``, ``cache``. Raises
    :class:`DerivationError` when nothing can be derived."""
    n_facts = N_FACTS if n_facts is None else n_facts  # the module's values at call time
    n_samples = N_SAMPLES if n_samples is None else n_samples
    window = WINDOW if window is None else window
    params = {"n_facts": n_facts, "n_samples": n_samples, "window": window, "seed": SEED, "frac": FRAC,
              "max_layers": MAX_LAYERS, "dataset": dataset or "auto"}
    path = cache_path(lm.model_hash, cache_dir)
    if use_cache and path.is_file():
        try:
            doc = json.loads(path.read_text())
            if doc.get("params") == params and doc.get("model_hash") == lm.model_hash:
                return {**doc, "cache": str(path)}
        except (OSError, ValueError):
            pass  # unreadable: recompute and overwrite
    t0 = time.time()
    print(f"editbench: no preset of its own for {lm.model_id!r}: deriving its edit layers by causal tracing "
          f"({n_facts} known facts; once per model, cached in {path})", file=sys.stderr)
    facts, label = _facts(lm, dataset)
    with torch.no_grad():
        res = tracing.trace_layers(lm, facts, kind="mlp", window=window, n_samples=n_samples, seed=SEED,
                                   require_known=True, max_facts=n_facts, frac=FRAC, max_layers=MAX_LAYERS,
                                   progress=progress)
    sug = res["suggested"]
    if not res["n_used"] or not sug or sug["rome_layer"] is None:
        raise DerivationError(
            f"cannot derive edit layers for {lm.model_id!r}: the causal trace found "
            + (f"no fact the model knows among the first {res['n_facts']} of {label}" if not res["n_used"] else
               f"no positive MLP effect at the subject's last token over {res['n_used']} known facts of {label}")
            + "; give the layers explicitly (--hparam rome.layer=N / memit.layers=[...])")
    d_mlp = lm.adapter.mlp_width
    doc = {
        "model_id": lm.model_id, "model_hash": lm.model_hash, "dataset": label, "rule": rule_text(n_facts, n_samples,
                                                                                                  window),
        "params": params, "rome_layer": sug["rome_layer"], "memit_layers": sug["memit_layers"],
        "mom2_update_weight": round(15000 * d_mlp / 16384),
        "trace": {"n_layers": res["n_layers"], "n_facts": res["n_facts"], "n_known": res["n_known"],
                  "n_used": res["n_used"], "p_clean": res["p_clean"], "p_corrupted": res["p_corrupted"],
                  "ate": res["ate"], "aie_subject_last": res["subject_last"]["aie"],
                  "normalized_subject_last": res["subject_last"]["normalized"], "threshold": sug["threshold"],
                  "noise_std": res["noise_std"]},
        "seconds": round(time.time() - t0, 1),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".derived-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    return {**doc, "cache": str(path)}
