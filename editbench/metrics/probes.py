"""Probes: pluggable measurements a runner takes of the model at checkpoints (health now; GLUE, entropy next).

A probe is a class registered in :data:`editbench.registry.PROBES` (built-ins lazily, third-party ones through the
``editbench.probes`` entry-point group). It declares the metrics it yields and which direction is better, is
built once per run from a :class:`ProbeContext` (the model's tokenizer and identity, the record pool, the edit
stream, the seed), and is then called on the model at every check::

    class MyProbe(Probe):
        name = "my-probe"
        metrics = {"my_acc": "higher"}

        @classmethod
        def build(cls, ctx):  # None when the probe cannot run for this model/data (said in ``skip_reason``)
            return cls(...)

        def run(self, model, tok) -> dict[str, float]: ...

The runner combines the selected probes (:func:`build_probes`) into one ``probe(model, tok) -> dict`` and records
each metric's direction in the run header, which collapse detection and plots read.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from editbench.data.schema import EditRequest
from editbench.metrics.health import PerplexityProbe, RecallProbe, combine

DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class ProbeContext:
    """What a probe may be built from: the run's tokenizer and model id, the record pool, the stream it edits."""

    tok: Any
    model_id: str
    pool: Sequence[EditRequest] = ()
    stream: Sequence[EditRequest] = ()
    seed: int = 0
    dataset: str | None = None
    notes: list = field(default_factory=list)  # probes that could not be built say why here


class Probe(ABC):
    """Base class of probes: ``name``, ``metrics`` ({key: "higher"|"lower"}), :meth:`build`, :meth:`run`."""

    name: ClassVar[str] = "probe"
    metrics: ClassVar[dict[str, str]] = {}

    @classmethod
    @abstractmethod
    def build(cls, ctx: ProbeContext) -> "Probe | None":
        """The probe for this run, or None (with a line in ``ctx.notes``) when it cannot be measured here."""

    @abstractmethod
    def run(self, model: Any, tok: Any) -> dict[str, float]:
        """Measure the model now: one float per declared metric."""

    def __call__(self, model: Any, tok: Any = None) -> dict[str, float]:
        return self.run(model, tok)


class WrappedProbe(Probe):
    """A probe whose measurement is a callable ``inner(model, tok) -> dict`` (the health probes of
    :mod:`editbench.metrics.health`) built by :meth:`build`."""

    def __init__(self, inner: Any):
        self.inner = inner

    def run(self, model, tok) -> dict[str, float]:
        return self.inner(model, tok)


class UneditedRecall(WrappedProbe):
    """Recall (argmax exact match) of ``target_true`` for 200 pool records whose subjects the stream never edits."""

    name = "recall-unedited"
    metrics = {"recall": "higher"}
    N = 200

    @classmethod
    def build(cls, ctx: ProbeContext) -> "UneditedRecall | None":
        try:
            return cls(RecallProbe.unedited(ctx.tok, ctx.pool, ctx.stream, n=cls.N, seed=ctx.seed))
        except ValueError as e:
            ctx.notes.append(f"{cls.name}: {e}")
            return None


class WikiPerplexity(WrappedProbe):
    """Perplexity on 32 held-out generic documents (real Wikipedia from the gensim wheel, read offline)."""

    name = "perplexity"
    metrics = {"ppl": "lower"}
    N_TEXTS = 32

    @classmethod
    def build(cls, ctx: ProbeContext) -> "WikiPerplexity | None":
        from editbench.data.corpora import corpus_texts
        try:
            texts = [t for _, t in zip(range(cls.N_TEXTS), corpus_texts("gensim-wiki"))]
        except Exception as e:  # noqa: BLE001 — no generic corpus installed: say so, the run goes on
            ctx.notes.append(f"{cls.name}: no generic text ({type(e).__name__}: {e})")
            return None
        return cls(PerplexityProbe(ctx.tok, texts)) if texts else None


def build_probes(names: Sequence[str], ctx: ProbeContext) -> tuple[Any, dict[str, str]]:
    """The selected probes combined into one callable (None if none could be built) and the direction of each of
    their metrics (``{"ppl": "lower", "recall": "higher"}``)."""
    from editbench.registry import PROBES

    built, directions = [], {}
    for name in names:
        cls = PROBES.get(name)
        probe = cls.build(ctx)
        if probe is None:
            continue
        bad = {k: d for k, d in cls.metrics.items() if d not in DIRECTIONS}
        if bad:
            raise ValueError(f"probe {name!r} declares metric direction(s) {bad}; expected one of {DIRECTIONS}")
        built.append(probe)
        directions.update(cls.metrics)
    return (combine(*built) if built else None), directions
