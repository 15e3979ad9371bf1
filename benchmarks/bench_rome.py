"""Per-edit latency of ROME / r-ROME (fast and straightforward v* paths) and of the second-moment statistics.

    pytest benchmarks/bench_rome.py -k factworld
    EDITBENCH_RUN_SLOW=1 pytest benchmarks/bench_rome.py -k smollm2 --benchmark-min-rounds 3   # docs/speed.md

``test_rome_edit``: one record per round, edited with ``fast=True`` or with ``fast=False`` (identical inputs: same
templates, same C, computed once before the timing); the model is restored to its original weights between
rounds. ``extra_info``: per round the editor's stats (``edit_time_s``, ``v_steps``), the target probability on
the rewrite prompt before/after (mean), and for the straightforward path the relative difference of its weight
update from the fast path's on the same record (``rel_diff``: they compute the same v*).

``test_second_moments``: C = E[kkᵀ] of the edit layer on ``tokens`` tokens computed into an empty cache directory
(``compute``), or read back from it (``cached``); both give the same matrix.
"""
from __future__ import annotations

import tempfile

import pytest
import torch
from benchlib import FACTWORLD, bench_records, model_name, rel_diff, rounds, weight_update

from editbench.editors.base import restore
from editbench.editors.rome import ROMEEditor, RROMEEditor
from editbench.editors.toolkit.covariance import second_moments_of
from editbench.models.tokens import target_nll, tokenize_prompt_target

EDITORS = {"rome": ROMEEditor, "r-rome": RROMEEditor}


def target_prob(model, tok, prompt: str, target: str) -> float:
    batch = tokenize_prompt_target(tok, [prompt], [target])
    with torch.no_grad():
        logits = model(**batch.model_inputs()).logits
    return float(torch.exp(-target_nll(logits, batch))[0])


@pytest.mark.parametrize("path", ["fast", "straightforward"])
@pytest.mark.parametrize("editor", list(EDITORS))
def test_rome_edit(bench_edits, benchmark, request, lm, editor, path):
    cls = EDITORS[editor]
    fast = cls.from_preset(lm.preset_keys)
    fast.prepare(lm.model, lm.tok)  # C once (disk cache), outside the per-edit timing
    hp = fast.hparams
    ed = fast if path == "fast" else cls(hp.replace(fast=False),
                                         covariance={hp.layer: fast._cov(lm.model, lm.tok, lm.adapter)})
    recs = bench_records(lm, rounds(request) + 1)
    prob = lambda r: target_prob(lm.model, lm.tok, r.rewrite_prompt, r.target_new)  # noqa: E731
    before = [prob(r) for r in recs[1:]]
    after, diffs = [], []

    def check(res, batch):
        after.append(prob(batch[0]))
        if path == "straightforward":
            d = weight_update(lm.adapter, res.originals, [hp.layer])
            restore(lm.model, res.originals)
            res_f = fast.apply(lm.model, lm.tok, batch)
            diffs.append(rel_diff(weight_update(lm.adapter, res_f.originals, [hp.layer]), d))
            restore(lm.model, res_f.originals)

    benchmark.group = f"rome {model_name(lm)}"
    bench_edits(lm, ed, [[r] for r in recs], after=check)
    benchmark.extra_info.update(editor=editor, path=path, layer=hp.layer, p_before=sum(before) / len(before),
                                p_after=sum(after) / max(len(after), 1), rel_diff=max(diffs, default=None))


@pytest.mark.parametrize("which", ["compute", "cached"])
def test_second_moments(benchmark, lm, which):
    ed = ROMEEditor.from_preset(lm.preset_keys)
    layer, tokens = ed.hparams.layer, 5000 if model_name(lm) == FACTWORLD else 20000
    benchmark.group = f"second moments {model_name(lm)}"
    benchmark.extra_info.update(layer=layer, tokens=tokens)
    with tempfile.TemporaryDirectory() as d:
        def stats(cache_dir):
            return second_moments_of(lm.model, lm.tok, lm.adapter, [layer], n_samples=tokens,
                                     model_hash=lm.model_hash, cache_dir=cache_dir, progress=False)[layer]
        first = stats(d)
        if which == "compute":  # a fresh, empty cache directory per round
            c = benchmark.pedantic(stats, setup=lambda: ((tempfile.mkdtemp(dir=d),), {}), rounds=3, warmup_rounds=0)
        else:
            c = benchmark(stats, d)
        assert torch.equal(c, first)
