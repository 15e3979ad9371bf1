"""Fact forgetting and moving windows over a stream of sequential edits.

**Fact forgetting** (seed paper Sec. 3.2): of the edits that were *successful right after they were made*, the
share that are no longer successful now. Two definitions of "successful", both reported:

- ``prob``:   the probability-based one, ES on the rewrite prompt: NLL(target_new) < NLL(target_true);
- ``argmax``: every target_new token is the argmax under teacher forcing (``es_correct``) — the one the paper's
  forgetting curves use (its code reads ``rewrite_prompts_correct``).

and two ways of counting, both reported:

- ``now``:  the edit fails at the current check (it may come back later: sequential edits are not monotone);
- ``ever``: the edit failed at *some* check so far (the paper's code records a fact's first ``forget_index`` and
  never re-scores it; its curve is "forgotten so far / correct so far").

The denominator is the number of edits successful right after they were made, up to the current check. Edits
that failed right away are never "forgotten" (they were never learned); that is efficacy, not forgetting.

A :class:`ForgettingTracker` holds, per edit, its immediate success under both definitions and whether it has
failed at any check — a plain JSON-able state, so a resumed run continues exactly.
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

DEFINITIONS = ("prob", "argmax")


@dataclass
class EditMemory:
    """What the tracker remembers about one edit (``index`` = 1-based position in the stream)."""

    index: int
    case_id: str
    ok: dict[str, bool]                                   # immediate success per definition
    now: dict[str, bool] = field(default_factory=dict)    # success at the latest check
    ever_failed: dict[str, bool] = field(default_factory=dict)


class ForgettingTracker:
    """Immediate successes, re-checks, and the forgetting fractions they give."""

    def __init__(self):
        self.edits: list[EditMemory] = []

    # -- recording -----------------------------------------------------------------------------------------
    def add(self, index: int, case_id: str, ok_prob: bool, ok_argmax: bool) -> None:
        ok = {"prob": bool(ok_prob), "argmax": bool(ok_argmax)}
        self.edits.append(EditMemory(index, str(case_id), ok, now=dict(ok), ever_failed={d: False for d in ok}))

    def to_recheck(self) -> list[int]:
        """Positions (into ``self.edits``) of edits that were successful right after they were made under at
        least one definition: those a history check must re-score."""
        return [i for i, e in enumerate(self.edits) if any(e.ok.values())]

    def update(self, positions: Sequence[int], ok_prob: Sequence[bool], ok_argmax: Sequence[bool]) -> None:
        """Record the results of a history check for the edits at ``positions``."""
        for p, okp, oka in zip(positions, ok_prob, ok_argmax, strict=True):
            e = self.edits[p]
            for d, ok in (("prob", bool(okp)), ("argmax", bool(oka))):
                e.now[d] = ok
                if e.ok[d] and not ok:
                    e.ever_failed[d] = True

    # -- reading -------------------------------------------------------------------------------------------
    def fractions(self) -> dict[str, float | None]:
        """``forget_{prob,argmax}_{now,ever}`` (None while nothing was learned) and the counts behind them."""
        out: dict[str, float | int | None] = {}
        for d in DEFINITIONS:
            learned = [e for e in self.edits if e.ok[d]]
            n_now = sum(1 for e in learned if not e.now[d])
            n_ever = sum(1 for e in learned if e.ever_failed[d])
            out[f"learned_{d}"] = len(learned)
            out[f"forgotten_{d}_now"] = n_now
            out[f"forgotten_{d}_ever"] = n_ever
            out[f"forget_{d}_now"] = n_now / len(learned) if learned else None
            out[f"forget_{d}_ever"] = n_ever / len(learned) if learned else None
        return out

    def held(self, definition: str = "argmax") -> str:
        """One character per edit so far, in stream order: ``1`` successful at the latest check, ``0`` learned
        but failing now, ``-`` never learned (failed right after it was made). A row of the retention heatmap
        (:mod:`editbench.report.retention`): edit i x check t."""
        return "".join("-" if not e.ok[definition] else ("1" if e.now[definition] else "0") for e in self.edits)

    def forgotten_case_ids(self, definition: str = "argmax") -> list[str]:
        return [e.case_id for e in self.edits if e.ok[definition] and not e.now[definition]]

    # -- state ---------------------------------------------------------------------------------------------
    def state(self) -> list[dict]:
        return [asdict(e) for e in self.edits]

    @classmethod
    def from_state(cls, state: Iterable[dict]) -> "ForgettingTracker":
        t = cls()
        t.edits = [EditMemory(**e) for e in state]
        return t


class Windows:
    """Trailing means of per-edit metrics over the last ``w`` edits (the paper's dotted w=5 / solid w=50 lines).

    A window is reported as soon as one value exists (over fewer than ``w`` edits at the start of a run — the
    record says how many with ``n``); ``None`` values (a metric a request cannot have, e.g. NS without
    neighborhood prompts) are skipped.
    """

    def __init__(self, sizes: Sequence[int] = (5, 50)):
        self.sizes = tuple(sorted(set(int(s) for s in sizes)))
        if not self.sizes or self.sizes[0] < 1:
            raise ValueError(f"window sizes must be positive, got {sizes}")
        self._hist: dict[str, deque] = {}

    def push(self, metrics: dict) -> None:
        for k, v in metrics.items():
            if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            self._hist.setdefault(k, deque(maxlen=self.sizes[-1])).append(float(v))

    def means(self) -> dict[str, float]:
        """``{"{metric}_w{size}": mean}`` for every metric seen and every window size."""
        out = {}
        for k, hist in self._hist.items():
            vals = list(hist)
            for w in self.sizes:
                tail = vals[-w:]
                out[f"{k}_w{w}"] = sum(tail) / len(tail)
        return out

    def state(self) -> dict:
        return {"sizes": list(self.sizes), "hist": {k: list(v) for k, v in self._hist.items()}}

    @classmethod
    def from_state(cls, state: dict) -> "Windows":
        w = cls(state["sizes"])
        for k, vals in state["hist"].items():
            w._hist[k] = deque(vals, maxlen=w.sizes[-1])
        return w
