"""Per-editor apply latency, and the scoring of edits, on the fact world (SmolLM2-135M under ``slow``).

    pytest benchmarks/bench_editors.py -k factworld --benchmark-json out.json
    pytest benchmarks/bench_editors.py -k "factworld and memit" --benchmark-min-rounds 10
    EDITBENCH_RUN_SLOW=1 pytest benchmarks/bench_editors.py -k "smollm2 and (rome or memit)"

``test_apply``: every registered editor (the built-ins and any installed plugin: ``editbench.editors`` entry
points), with its preset for the model, after ``prepare`` (key covariances, from the disk cache or computed once,
outside the timing): one record per round, the model restored between rounds. ``extra_info`` holds the editor's
own stats per round (e.g. MEMIT's z / update split) and the edits' efficacy (ES: the new target beats the true
one on the rewrite prompt, mean over the timed edits, with n) -- a fast editor that does not edit shows it.
An editor that cannot run on the model (MEND without a trained network) is skipped, saying why.

``test_score``: :func:`editbench.metrics.counterfact.score_requests` (what every suite runs after an edit) on
10 records, one scoring protocol at a time (``prob``: teacher-forced probabilities; ``token_acc``; ``gen``:
greedy generation).
"""
from __future__ import annotations

import pytest
from benchlib import bench_records, rounds

from editbench import registry
from editbench.metrics.counterfact import PROTOCOLS, aggregate, score_requests

EDITORS = registry.available()


@pytest.mark.parametrize("editor", EDITORS)
def test_apply(bench_edits, benchmark, request, lm, editor):
    try:
        ed = registry.create(editor, model_keys=lm.preset_keys)
        ed.prepare(lm.model, lm.tok)
    except FileNotFoundError as e:  # MEND: no trained network for this model
        pytest.skip(f"{editor}: {e}")
    benchmark.group = f"apply {benchmark.extra_info['model']}"
    recs = bench_records(lm, rounds(request) + 1)
    per: list[dict] = []
    bench_edits(lm, ed, [[r] for r in recs], after=lambda res, batch: per.extend(
        score_requests(lm.model, lm.tok, batch, protocols=("prob",))))
    benchmark.extra_info.update(editor=editor, es_after=aggregate(per)["es"] if per else None, n=len(per))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_score(benchmark, lm, protocol):
    recs = bench_records(lm, 10)
    benchmark.group = f"score {benchmark.extra_info['model']}"
    benchmark.extra_info.update(protocol=protocol, n=len(recs))
    benchmark(score_requests, lm.model, lm.tok, recs, protocols=(protocol,))
