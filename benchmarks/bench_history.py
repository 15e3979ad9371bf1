"""How fast is the history re-evaluation of a sequential run? (issue 4, item 5)

Every ``history_every`` edits the runner re-scores the rewrite prompt of every earlier successful edit — two
(prompt, target) pairs per edit, target_new and target_true — and with hundreds of edits that dominates the cost
of a run. The runner tokenizes each edit's pairs once and scores all of them in one batched
:func:`editbench.metrics.scoring.score_ids` call. This module times, over the same pairs:

- ``batched``      the runner's call: ``score_ids`` on the pre-tokenized pairs;
- ``one_by_one``   one prompt at a time, the naive way: ``score_targets_one_by_one`` (tokenize, full forward,
                   logits over the whole sequence, per pair);
- ``ids_batch1``   ``score_ids`` with batch size 1 (the same code without batching);
- ``bare_trunk``   one bare batched forward pass of the transformer trunk (no LM head, no scoring) over exactly
                   the batches ``score_ids`` builds (same order, same padding), tensors built beforehand;
- ``bare_full``    the same with the full model (LM head over every position), for reference;
- ``shared``       what the runner calls since issue 14: :class:`~editbench.metrics.counterfact.RewriteScorer`,
                   i.e. ``score_branches`` — each rewrite prompt run once for both of its targets (tree mask);
- ``bare_distinct`` one bare batched trunk forward over the *distinct* tokens the check needs: per edit one row
                   ``prompt + target_new + target_true`` (the prompt once), plain causal mask, same batch size.

Targets: batched ≥ 10× faster than one_by_one; batched ≤ 1.3× bare_trunk; shared ≤ 1.0× bare_distinct (issue 14).
The seven are one pytest-benchmark group per model, so its table gives the ratios (the ``Min`` column's
parenthesized factor; the minimum is the estimate least disturbed by other processes on a shared machine).
``one_by_one`` and ``ids_batch1`` are slow: they are timed on a prefix of the pairs (``pairs`` in ``extra_info``;
scale by ``n_pairs / pairs``). ``test_history_agreement`` checks that the implementations give the same numbers.
Edits: 300 (600 pairs) on either model.

    pytest benchmarks/bench_history.py -k factworld
    EDITBENCH_RUN_SLOW=1 pytest benchmarks/bench_history.py -k smollm2        # docs/speed.md: 300 edits
"""
from __future__ import annotations

import pytest
import torch
from benchlib import FACTWORLD, bench_records, model_name

from editbench.metrics.counterfact import RewriteScorer
from editbench.metrics.scoring import encode_pair, score_ids, score_targets_one_by_one
from editbench.models.tokens import pad_right, pad_token_id


def history_pairs(tok, requests):
    """What the runner's history check scores: (rewrite prompt, new) and (rewrite prompt, true) per edit."""
    prefixes, targets = [], []
    for r in requests:
        for t in (r.target_new, r.target_true):
            prefixes.append(r.rewrite_prompt)
            targets.append(t)
    return prefixes, targets


def padded_batches(encoded, pad_id: int, batch_size: int):
    """The batches score_ids builds (sorted by length, right-padded), as ready tensors."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    out = []
    for start in range(0, len(order), batch_size):
        out.append(pad_right([encoded[i][0] for i in order[start:start + batch_size]], pad_id))
    return out


N_EDITS, BATCH = 300, 64


@pytest.fixture(scope="module")
def history(lm):
    """The runner's history check over N_EDITS edits, every input built beforehand (untimed)."""
    model, tok = lm.model, lm.tok
    reqs = [r for r in bench_records(lm, N_EDITS) if r.target_true is not None]
    prefixes, targets = history_pairs(tok, reqs)
    pad = pad_token_id(tok)
    encoded = [encode_pair(tok, p, x) for p, x in zip(prefixes, targets)]
    scorer = RewriteScorer(tok, BATCH)
    items = list(enumerate(reqs))
    distinct = [(p + sum(ts, []), len(p)) for p, ts in (scorer.encoded(i, r) for i, r in items)]
    return dict(model=model, tok=tok, prefixes=prefixes, targets=targets, pad=pad, encoded=encoded, scorer=scorer,
                items=items, batches=padded_batches(encoded, pad, BATCH),
                distinct_batches=padded_batches(distinct, pad, BATCH),
                info={"n_pairs": len(encoded), "n_tokens": sum(len(s) for s, _ in encoded), "batch_size": BATCH,
                      "n_distinct_tokens": sum(len(s) for s, _ in distinct)})


def prefix_pairs(lm) -> int:
    """How many pairs the slow variants are timed on (then scale by n_pairs / pairs)."""
    return 100 if model_name(lm) == FACTWORLD else 400


VARIANTS = {
    "batched": lambda h, k: score_ids(h["model"], h["encoded"], pad_id=h["pad"], batch_size=BATCH),
    "bare_trunk": lambda h, k: [h["model"].base_model(input_ids=i, attention_mask=m) for i, m in h["batches"]],
    "bare_full": lambda h, k: [h["model"](input_ids=i, attention_mask=m).logits for i, m in h["batches"]],
    "shared": lambda h, k: h["scorer"].score(h["model"], h["items"]),
    "bare_distinct": lambda h, k: [h["model"].base_model(input_ids=i, attention_mask=m)
                                   for i, m in h["distinct_batches"]],
    "one_by_one": lambda h, k: score_targets_one_by_one(h["model"], h["tok"], h["prefixes"][:k], h["targets"][:k]),
    "ids_batch1": lambda h, k: score_ids(h["model"], h["encoded"][:k], pad_id=h["pad"], batch_size=1),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_history(benchmark, lm, history, variant):
    k = prefix_pairs(lm) if variant in ("one_by_one", "ids_batch1") else len(history["encoded"])
    benchmark.group = f"history {model_name(lm)}"
    benchmark.extra_info.update(history["info"], variant=variant, pairs=k)
    with torch.no_grad():
        benchmark(VARIANTS[variant], history, k)


@torch.no_grad()
def test_history_agreement(lm, history):
    """The batched scores equal the one-at-a-time ones; the shared verdicts equal the pairwise ones."""
    h, k = history, prefix_pairs(lm)
    a = score_ids(h["model"], h["encoded"][:k], pad_id=h["pad"], batch_size=BATCH)
    b = score_targets_one_by_one(h["model"], h["tok"], h["prefixes"][:k], h["targets"][:k])
    assert float((a.nll - b.nll).abs().max()) < 1e-3 and bool((a.correct == b.correct).all())
    sh = h["scorer"].score(h["model"], h["items"])[0]
    pw = score_ids(h["model"], h["encoded"], pad_id=h["pad"], batch_size=BATCH)
    assert all((bool(pw.nll[2 * j] < pw.nll[2 * j + 1]), bool(pw.correct[2 * j])) == sh[j] for j in range(len(sh)))
