"""Per-edit latency of MEMIT (fast and straightforward z paths) at batch sizes 1 and 10, and a lambda sweep.

    pytest benchmarks/bench_memit.py -k factworld
    EDITBENCH_RUN_SLOW=1 pytest benchmarks/bench_memit.py -k "smollm2 and fast-1"        # docs/speed.md
    EDITBENCH_RUN_SLOW=1 pytest benchmarks/bench_memit.py -k "smollm2 and sweep"

Records are the first ones of the model's dataset (the fact world's own; real CounterFact for SmolLM2). Context
templates and the covariances C_l are prepared once before any timing (C from the disk cache of
editbench.models.stats, computed on first use). ``test_memit_batch``: each round edits one batch of ``batch``
records with the fast z path or the straightforward one (full forward pass per step, the reference code's way;
identical inputs), the model restored between rounds, after one untimed warm-up batch. ``extra_info``: per round
the split into z optimization and layer updates (``rounds[i].timing``: ``z_s``, ``update_s``, ``total_s``,
``total_cpu_s``), ES of the batch before/after the edit (mean over the timed rounds' records, n), and for the
straightforward path the relative difference of its weight update from the fast path's on the same batch.
The benchmark's time is per batch: divide by ``batch_size`` for seconds per edit.

``test_memit_lambda_sweep`` measures single edits instead of latency: z of N records is optimized once in one
batch (the timed part: z does not depend on lambda, and one request's z does not depend on the others'), then for
every lambda (the preset's, and 10x it) each record alone is written into the layers, scored (ES/PS/NS and
magnitudes, editbench.metrics.counterfact) and restored; the scores per lambda go to ``extra_info``.
"""
from __future__ import annotations

import pytest
from benchlib import FACTWORLD, bench_records, model_name, rel_diff, rounds, weight_update

from editbench.editors.base import restore
from editbench.editors.memit import MEMITEditor, spread_updates
from editbench.editors.memit.compute_z import compute_zs
from editbench.metrics.counterfact import aggregate, score_requests


def efficacy(lm, requests) -> float:
    """ES: the share of rewrite prompts on which the new target has a lower NLL than the true one."""
    return aggregate(score_requests(lm.model, lm.tok, requests, protocols=("prob",)))["es"]


@pytest.fixture(scope="module")
def memit(lm):
    ed = MEMITEditor.from_preset(lm.preset_keys)
    ed.model_hash = lm.model_hash
    ed.templates(lm.model, lm.tok)
    ed.covariance(lm.model, lm.tok, lm.adapter)
    return ed


@pytest.mark.parametrize("batch", [1, 10])
@pytest.mark.parametrize("path", ["fast", "straightforward"])
def test_memit_batch(bench_edits, benchmark, request, lm, memit, path, batch):
    hp = memit.hparams
    ed = memit if path == "fast" else MEMITEditor(hp.replace(fast_z=False), context_templates=memit.context_templates,
                                                 covariances=memit.covariance(lm.model, lm.tok, lm.adapter))
    recs = bench_records(lm, (rounds(request) + 1) * batch)
    batches = [recs[i:i + batch] for i in range(0, len(recs), batch)]
    es_before = [efficacy(lm, b) for b in batches[1:]]
    es_after, diffs = [], []

    def check(res, reqs):
        es_after.append(efficacy(lm, reqs))
        if path == "straightforward":
            d = weight_update(lm.adapter, res.originals, hp.layers)
            restore(lm.model, res.originals)
            res_f = memit.apply(lm.model, lm.tok, reqs)
            diffs.append(rel_diff(weight_update(lm.adapter, res_f.originals, hp.layers), d))
            restore(lm.model, res_f.originals)

    benchmark.group = f"memit {model_name(lm)} batch {batch}"
    bench_edits(lm, ed, batches, after=check)
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    benchmark.extra_info.update(path=path, layers=list(hp.layers), lambda_=hp.mom2_update_weight,
                                es_before=mean(es_before), es_after=mean(es_after), n=len(es_after) * batch,
                                rel_diff=max(diffs, default=None))


def test_memit_lambda_sweep(benchmark, lm, memit):
    hp = memit.hparams
    groups = memit.templates(lm.model, lm.tok)
    covs = memit.covariance(lm.model, lm.tok, lm.adapter)
    records = bench_records(lm, 10 if model_name(lm) == FACTWORLD else 20)
    benchmark.group = f"memit {model_name(lm)} sweep"
    zs = benchmark.pedantic(compute_zs, args=(lm.model, lm.tok, lm.adapter, records, [t for g in groups for t in g],
                                              hp), rounds=1)
    keys = ("es", "ps", "ns", "em", "pm", "nm")
    show = lambda m: {k: m[k] for k in keys if m.get(k) is not None}  # noqa: E731
    sweep = {"unedited": show(aggregate(score_requests(lm.model, lm.tok, records)))}
    names = {lm.adapter.mlp_out_weight_name(layer) for layer in hp.layers}
    for lam in (hp.mom2_update_weight, 10 * hp.mom2_update_weight):
        per, norms = [], []
        for req, z in zip(records, zs):
            originals = {n: p.detach().clone() for n, p in lm.model.named_parameters() if n in names}
            dn, _ = spread_updates(lm.model, lm.tok, lm.adapter, [req], groups, z.z[:, None], covs,
                                   hp.replace(mom2_update_weight=lam))
            per += score_requests(lm.model, lm.tok, [req])
            norms.append(sum(dn.values()) / len(dn))
            restore(lm.model, originals)
        sweep[f"lambda {lam:g}"] = {**show(aggregate(per)), "mean_dW_norm_per_layer": sum(norms) / len(norms)}
    benchmark.extra_info.update(n=len(records), sweep=sweep, z_nll_init=sum(z.nll_init for z in zs) / len(zs),
                                z_nll_final=sum(z.nll_final for z in zs) / len(zs))
