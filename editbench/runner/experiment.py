"""One sequential experiment from names: (editor, model, dataset, sample) → a run directory and its summary.

Shared by the ``sequential`` suite and ``editbench sequential`` so both build the stream, the health probe and
the run directory the same way:  records → stream → editor.apply … → results.jsonl → summary (+ PNG).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from editbench.data import load_records
from editbench.metrics.health import PerplexityProbe, RecallProbe, combine
from editbench.models.loader import LoadedModel, load_model
from editbench.runner.schedule import make_stream
from editbench.runner.sequential import SequentialConfig, run_sequential


def generic_texts(model_id: str, n: int = 32) -> list[str]:
    """Held-out generic text for the perplexity probe: fact-world filler (an epoch never trained on) or wiki."""
    if model_id == "factworld":
        from editbench.factworld import corpus, world
        return corpus.corpus_texts(world.load_world(), epoch=10**6, facts=False, tasks=False)[:n]
    from editbench.data.corpora import corpus_texts
    try:
        return [t for _, t in zip(range(n), corpus_texts("gensim-wiki"))]
    except Exception:  # noqa: BLE001 — no generic corpus installed: health uses recall only
        return []


def factworld_unedited_probe(tok, stream, n: int = 200, seed: int = 0) -> RecallProbe:
    """Recall of ``n`` fact-world facts whose (subject, relation) the stream never edits, each in a seeded trained
    template. The world has 8 facts per subject, so this works up to (and past) one edit per subject, where the
    CounterFact-style pool (one record per subject) runs out of unedited subjects."""
    import random

    from editbench.factworld.world import load_world
    world = load_world()
    edited = {(r.subject.strip(), r.relation_id) for r in stream}
    rng = random.Random(f"factworld-health:{seed}")
    free = [f for f in world.facts if (f.subject, f.relation) not in edited]
    pick = rng.sample(free, min(n, len(free)))
    prompts = [world.prompt(f, rng.choice(f.trained_templates(world))) for f in pick]
    return RecallProbe(tok, prompts, [f.object for f in pick], key="recall")


def health_probe(lm: LoadedModel, pool, stream, seed: int = 0, dataset: str | None = None):
    """Recall of 200 unedited facts (+ perplexity on generic text where some is available). On the fact world
    the facts come from the world (any unedited (subject, relation)); elsewhere from the pool's unedited
    subjects."""
    if dataset == "factworld":
        probes = [factworld_unedited_probe(lm.tok, stream, n=200, seed=seed)]
    else:
        probes = [RecallProbe.unedited(lm.tok, pool, stream, n=200, seed=seed)]
    texts = generic_texts(lm.model_id)
    if texts:
        probes.append(PerplexityProbe(lm.tok, texts))
    return combine(*probes)


def default_order(dataset: str) -> str:
    """Real CounterFact uses the published edit orders; everything else a seeded order over unique subjects."""
    return "published" if dataset.startswith("counterfact") else "seeded"


def run_experiment(editor: Any, model: str, dataset: str, *, n_edits: int, sample: int = 0, seed: int = 0,
                   out_root: str | Path = "reports", resume: bool = False, device: str = "cpu",
                   **config: Any) -> tuple[dict, list]:
    """Run one sample on a freshly loaded model; return (summary, malformed-record errors)."""
    lm = load_model(model, device=device)
    pool, errors = load_records(dataset, seed=None, on_error="collect")
    if not pool:
        raise ValueError(f"no valid records in {dataset!r} ({len(errors)} malformed)")
    out_dir = Path(out_root) / "runs" / "sequential" / editor.name / Path(lm.model_id).name / f"sample_{sample}"
    cfg = SequentialConfig(n_edits=n_edits, seed=seed, sample=sample, out_dir=str(out_dir), resume=resume,
                           order=config.pop("order", default_order(dataset)), **config)
    stream = make_stream(pool, cfg.order, cfg.seed, cfg.sample, n_edits)
    summary = run_sequential(editor, lm, pool, cfg, health_probe=health_probe(lm, pool, stream, seed, dataset),
                             dataset=dataset)
    summary["model_hash"] = lm.model_hash
    return summary, errors
