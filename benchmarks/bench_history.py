"""How fast is the history re-evaluation of a sequential run? (issue 4, item 5)

Every ``history_every`` edits the runner re-scores the rewrite prompt of every earlier successful edit — two
(prompt, target) pairs per edit, target_new and target_true — and with hundreds of edits that dominates the cost
of a run. The runner tokenizes each edit's pairs once and scores all of them in one batched
:func:`editbench.metrics.scoring.score_ids` call. This script measures, over the same pairs:

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
Times are the best of ``--repeats`` interleaved rounds after a warm-up (the machine is shared; the minimum is the
least disturbed estimate).

    .venv/bin/python benchmarks/bench_history.py                      # tiny-gpt2, 500 edits = 1000 pairs
    .venv/bin/python benchmarks/bench_history.py --model factworld --n-edits 1000
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from editbench.data import load_records
from editbench.models.tokens import pad_right, pad_token_id
from editbench.metrics.counterfact import RewriteScorer
from editbench.metrics.scoring import encode_pair, score_ids, score_targets_one_by_one
from editbench.models.loader import load_model
from editbench.runner.provenance import machine


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


def timed(fns: dict, repeats: int) -> dict[str, float]:
    """Best (minimum) time of each function over ``repeats`` rounds after a warm-up. The functions are run
    interleaved, round by round, so that load from other processes hits them alike; the minimum is the estimate
    least disturbed by it."""
    for fn in fns.values():
        fn()
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
    return {k: min(v) for k, v in ts.items()}


@torch.no_grad()
def bench(model_name: str = "tiny-gpt2", n_edits: int = 500, batch_size: int = 64, repeats: int = 5,
          dataset: str = "counterfact-1k", threads: int | None = None, one_by_one_max: int = 400) -> dict:
    if threads:
        torch.set_num_threads(threads)
    lm = load_model(model_name)
    model, tok = lm.model, lm.tok
    device = next(model.parameters()).device
    reqs = [r for r in load_records(dataset, n=n_edits) if r.target_true is not None]
    prefixes, targets = history_pairs(tok, reqs)
    pad = pad_token_id(tok)
    t = time.perf_counter()
    encoded = [encode_pair(tok, p, x) for p, x in zip(prefixes, targets)]
    tokenize_s = time.perf_counter() - t
    batches = [(i.to(device), m.to(device)) for i, m in padded_batches(encoded, pad, batch_size)]
    scorer = RewriteScorer(tok, batch_size)
    items = list(enumerate(reqs))
    groups = [scorer.encoded(i, r) for i, r in items]
    distinct = [(p + sum(ts, []), len(p)) for p, ts in groups]
    distinct_batches = [(i.to(device), m.to(device)) for i, m in padded_batches(distinct, pad, batch_size)]

    res = {"model": model_name, "dataset": dataset, "device": str(device), "machine": machine(),
           "threads": torch.get_num_threads(), "n_pairs": len(encoded),
           "n_tokens": sum(len(s) for s, _ in encoded), "batch_size": batch_size, "tokenize_once_s": tokenize_s}
    res.update({f"{k}_s": v for k, v in timed({
        "batched": lambda: score_ids(model, encoded, pad_id=pad, batch_size=batch_size),
        "bare_trunk": lambda: [model.base_model(input_ids=i, attention_mask=m) for i, m in batches],
        "bare_full": lambda: [model(input_ids=i, attention_mask=m).logits for i, m in batches],
        "shared": lambda: scorer.score(model, items),
        "bare_distinct": lambda: [model.base_model(input_ids=i, attention_mask=m) for i, m in distinct_batches],
    }, repeats).items()})
    res["n_distinct_tokens"] = sum(len(s) for s, _ in distinct)
    res["ratio_shared_vs_bare_distinct"] = res["shared_s"] / res["bare_distinct_s"]
    res["ratio_shared_vs_batched"] = res["shared_s"] / res["batched_s"]
    # one at a time is slow: time it on a prefix of the pairs and scale linearly (it is per-pair work)
    k = min(len(encoded), one_by_one_max)
    scale = len(encoded) / k
    slow = timed({"one_by_one": lambda: score_targets_one_by_one(model, tok, prefixes[:k], targets[:k]),
                  "ids_batch1": lambda: score_ids(model, encoded[:k], pad_id=pad, batch_size=1)}, 1)
    res.update({f"{key}_s": scale * v for key, v in slow.items()})
    res["one_by_one_measured_pairs"] = k
    res["speedup_vs_one_by_one"] = res["one_by_one_s"] / res["batched_s"]
    res["speedup_vs_ids_batch1"] = res["ids_batch1_s"] / res["batched_s"]
    res["ratio_vs_bare_trunk"] = res["batched_s"] / res["bare_trunk_s"]
    res["ratio_vs_bare_full"] = res["batched_s"] / res["bare_full_s"]
    # the two implementations agree (same pairs, same numbers)
    a = score_ids(model, encoded[:k], pad_id=pad, batch_size=batch_size)
    b = score_targets_one_by_one(model, tok, prefixes[:k], targets[:k])
    res["max_abs_nll_diff"] = float((a.nll - b.nll).abs().max())
    res["correct_agree"] = bool((a.correct == b.correct).all())
    res["targets_met"] = {"speedup_vs_one_by_one>=10": res["speedup_vs_one_by_one"] >= 10,
                          "ratio_vs_bare_trunk<=1.3": res["ratio_vs_bare_trunk"] <= 1.3,
                          "shared_vs_bare_distinct<=1.0": res["ratio_shared_vs_bare_distinct"] <= 1.0}
    sh = scorer.score(model, items)[0]
    pw = score_ids(model, encoded, pad_id=pad, batch_size=batch_size)
    res["shared_agrees_with_pairwise"] = all(
        (bool(pw.nll[2 * j] < pw.nll[2 * j + 1]), bool(pw.correct[2 * j])) == sh[j] for j in range(len(sh)))
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-gpt2")
    ap.add_argument("--n-edits", type=int, default=500, help="edits in the history (2 pairs each)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dataset", default=None, help="default: factworld for --model factworld, else counterfact-1k")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--one-by-one-max", type=int, default=400, help="pairs timed one at a time (then scaled)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON only")
    a = ap.parse_args(argv)
    dataset = a.dataset or ("factworld" if a.model == "factworld" else "counterfact-1k")
    res = bench(a.model, a.n_edits, a.batch_size, a.repeats, dataset, a.threads, a.one_by_one_max)
    if a.json:
        print(json.dumps(res, indent=1))
        return res
    print(f"{res['model']} ({res['dataset']}) on {res['device']} ({res['machine']['cpu']}, {res['threads']} threads): "
          f"{res['n_pairs']} pairs, {res['n_tokens']} tokens, batch {res['batch_size']}")
    print(f"  distinct tokens (prompt once per edit): {res['n_distinct_tokens']}")
    for key in ("batched_s", "bare_trunk_s", "bare_full_s", "ids_batch1_s", "one_by_one_s", "shared_s",
                "bare_distinct_s"):
        print(f"  {key:<14} {res[key]:9.4f} s")
    print(f"  batched vs one at a time : {res['speedup_vs_one_by_one']:7.1f}x faster   (target >= 10x)")
    print(f"  batched vs score_ids b=1 : {res['speedup_vs_ids_batch1']:7.1f}x faster")
    print(f"  batched / bare trunk     : {res['ratio_vs_bare_trunk']:7.2f}x          (target <= 1.3x)")
    print(f"  batched / bare full model: {res['ratio_vs_bare_full']:7.2f}x")
    print(f"  shared / bare distinct   : {res['ratio_shared_vs_bare_distinct']:7.2f}x          (target <= 1.0x)")
    print(f"  shared / batched (pairs) : {res['ratio_shared_vs_batched']:7.2f}x")
    print(f"  shared verdicts == pairwise verdicts: {res['shared_agrees_with_pairwise']}")
    print(f"  agreement with one-by-one: max |dNLL| {res['max_abs_nll_diff']:.2e}, argmax equal {res['correct_agree']}")
    return res


if __name__ == "__main__":
    main()
