"""Edit streams and evaluation schedules of a sequential run.

**The stream.** A sequential run edits one model with an ordered stream of requests, no two about the same
subject (the seed paper: "the same subject is not edited twice", so no edit overwrites an earlier one). Several
orders of the same pool are *samples*. Two ways to order:

- ``"seeded"``: a permutation of the pool by ``random.Random(f"{seed}:{sample}")`` (string seeding is stable
  across Python versions and processes), then the first request of each subject is kept;
- ``"published"``: sample ``sample`` (0–9) of the seed paper's orders (``counterfact_sampled_unique_cf_10_20000
  .json``, via :func:`editbench.data.load_edit_orders`), restricted to the case ids present in the pool;
- ``"given"``: the pool as passed (deduplicated by subject).

**The schedules** (the field mixes these up; a run names the ones it uses):

- ``"immediate"`` — right after each edit (or batch), full CounterFact metrics of the new edit(s): ES/PS/NS,
  magnitudes, argmax correctness. Gives the per-edit curves and their moving windows.
- ``"history"`` — every ``history_every`` edits, re-score the rewrite prompt of *every earlier edit that was
  successful right after it was made*, in one batched pass: gives fact forgetting. (Knowing "successful right
  after" needs the rewrite prompt scored right after each edit, so this schedule always does that much — two
  pairs per edit — even without ``"immediate"``.)
- ``"final"`` — after the last edit, full metrics of every edit of the run.
"""
from __future__ import annotations

import random
from typing import Iterator, Sequence

from editbench.data.schema import EditRequest

SCHEDULES = ("immediate", "history", "final")
ORDERS = ("seeded", "published", "given")
PUBLISHED_SAMPLES = 10  # orders in counterfact_sampled_unique_cf_10_20000.json (its name says so)


def unique_subjects(requests: Sequence[EditRequest]) -> list[EditRequest]:
    """The first request of each subject, order kept (subjects compared after stripping, case-sensitive)."""
    seen, out = set(), []
    for r in requests:
        key = r.subject.strip()
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def seeded_order(requests: Sequence[EditRequest], seed: int, sample: int) -> list[EditRequest]:
    """A reproducible permutation of ``requests`` for (seed, sample)."""
    rng = random.Random(f"{seed}:{sample}")
    idx = list(range(len(requests)))
    rng.shuffle(idx)
    return [requests[i] for i in idx]


def published_order(requests: Sequence[EditRequest], sample: int, path=None) -> list[EditRequest]:
    """The seed paper's order ``sample`` restricted to the pool's case ids (CounterFact ids as strings)."""
    from editbench.data import load_edit_orders, order_records

    orders = load_edit_orders(path)
    if not 0 <= sample < len(orders):
        raise ValueError(f"published orders have samples 0..{len(orders) - 1}, got {sample}")
    out = order_records(list(requests), orders[sample], missing="skip")
    if not out:
        raise ValueError("none of the pool's case ids occurs in the published order: is this CounterFact?")
    return out


def make_stream(requests: Sequence[EditRequest], order: str = "seeded", seed: int = 0, sample: int = 0,
                n_edits: int | None = None, orders_path=None) -> list[EditRequest]:
    """The ordered, subject-unique stream of a run (its first ``n_edits``; all if None)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if order == "seeded":
        ordered = seeded_order(list(requests), seed, sample)
    elif order == "published":
        ordered = published_order(requests, sample, orders_path)
    else:
        ordered = list(requests)
    stream = unique_subjects(ordered)
    if n_edits is not None:
        if n_edits < 1:
            raise ValueError(f"n_edits must be >= 1, got {n_edits}")
        if n_edits > len(stream):
            raise ValueError(f"asked for {n_edits} edits but the pool has only {len(stream)} unique subjects")
        stream = stream[:n_edits]
    return stream


def batches(stream: Sequence[EditRequest], batch_size: int, start: int = 0) -> Iterator[tuple[int, list]]:
    """``(position, batch)`` pairs from ``start``: batches of ``batch_size`` applied in sequence (the last may be
    shorter); ``position`` is the number of requests applied before the batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for pos in range(start, len(stream), batch_size):
        yield pos, list(stream[pos:pos + batch_size])


def crossed(before: int, after: int, every: int | None) -> bool:
    """Did the edit count pass a multiple of ``every`` going from ``before`` to ``after`` (batches jump)?"""
    return bool(every) and after // every > before // every
