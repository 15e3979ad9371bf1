"""Sequential editing at scale (the seed paper's sections 3–4): edits accumulate on one model.

Per editor and sample (edit order): a run of ``--n-edits`` edits, scored immediately, with the edit history
re-scored every k = 10 edits (fact forgetting), weight distance after every edit, and a model-health probe
(recall of unedited facts + perplexity on generic text) at every check. The catastrophic-forgetting (CF) point is
detected automatically (:mod:`editbench.metrics.collapse`). Results: ``<reports>/runs/sequential/<editor>/
<model>/sample_<s>/`` (results.jsonl, summary.json, PNG), resumable with ``--resume``.

Gates (suites/thresholds.yaml, suite ``sequential``): ``no_cf_before`` (no CF point before that many edits),
``forgetting_max`` (argmax forgetting at the end), ``es_window_min`` (the 50-edit ES window at the end).

    pytest suites -m sequential --editor memit                  # the fact world, default --n-edits
    pytest suites -m sequential --editor rome --n-edits 1000 --samples 4
"""
from pathlib import Path

import pytest

from editbench.data import load_records
from editbench.gates import check_gates, gates_for
from editbench.metrics.health import PerplexityProbe, RecallProbe, combine
from editbench.models.loader import load_model
from editbench.runner import SequentialConfig, make_stream, run_sequential

pytestmark = pytest.mark.sequential

DEFAULT_N_EDITS = 100


def _generic_texts(model_id: str, n: int = 32) -> list[str]:
    """Held-out generic text for the perplexity probe: fact-world filler (an epoch never trained on) or wiki."""
    if model_id == "factworld":
        from editbench.data.factworld import corpus, world
        return corpus.corpus_texts(world.load_world(), epoch=10**6, facts=False, tasks=False)[:n]
    from editbench.data.corpora import corpus_texts
    try:
        return [t for _, t in zip(range(n), corpus_texts("gensim-wiki"))]
    except Exception:  # noqa: BLE001 — no generic corpus installed: health uses recall only
        return []


def _gate_values(summary: dict) -> dict:
    fin = summary.get("forgetting_final") or {}
    windows = summary.get("final_windows") or {}
    return {
        "no_cf_before": float("inf") if summary["cf_edit"] is None else summary["cf_edit"],
        "forgetting_max": fin.get("forget_argmax_now"),
        "es_window_min": windows.get("es_50", windows.get("es")),
    }


def _check(values: dict, gates: dict) -> list[str]:
    spec = {}
    for key, bound in gates.items():
        spec[key] = {"max": bound} if key.endswith("_max") else {"min": bound}
    return check_gates(values, spec)


def test_sequential(request, editor, editor_name, eb_dataset_name, eb_seed, eb_sample, thresholds, eb_record):
    config = request.config
    model_name = config.getoption("--model")
    n_edits = config.getoption("--n-edits") or DEFAULT_N_EDITS
    lm = load_model(model_name, device=config.getoption("--device"))  # fresh: edits accumulate in this test
    pool, errors = load_records(eb_dataset_name, seed=None, on_error="collect")
    assert pool, f"no valid records in {eb_dataset_name!r}"
    out_dir = (Path(config.getoption("--reports-dir")) / "runs" / "sequential" / editor_name
               / Path(lm.model_id).name / f"sample_{eb_sample}")
    cfg = SequentialConfig(n_edits=n_edits, seed=eb_seed, sample=eb_sample, out_dir=str(out_dir),
                           resume=config.getoption("--resume"),
                           order="published" if eb_dataset_name.startswith("counterfact") else "seeded")
    stream = make_stream(pool, cfg.order, cfg.seed, cfg.sample, n_edits)
    probes = [RecallProbe.unedited(lm.tok, pool, stream, n=200, seed=eb_seed)]
    texts = _generic_texts(lm.model_id)
    if texts:
        probes.append(PerplexityProbe(lm.tok, texts))
    summary = run_sequential(editor, lm, pool, cfg, health_probe=combine(*probes), dataset=eb_dataset_name)
    gates = gates_for(thresholds, "sequential", lm.model_id, editor.name)
    values = _gate_values(summary)
    failures = _check(values, gates)
    eb_record(suite="sequential", editor=editor.describe(), model={"id": lm.model_id, "hash": lm.model_hash},
              metrics={"n": summary["n_edits"], "es": summary["immediate_mean"].get("es"),
                       "ps": summary["immediate_mean"].get("ps"), "ns": summary["immediate_mean"].get("ns")},
              summary=summary, gate_values=values, gates=gates, failures=failures, sample=eb_sample,
              record_errors=[str(e) for e in errors[:20]], verdict="pass" if not failures else "FAIL")
    assert summary["complete"], f"run stopped after {summary['n_edits']} of {summary['n_planned']} edits"
    assert gates, (f"no sequential gates for editor {editor.name!r} on model {lm.model_id!r} in "
                   "suites/thresholds.yaml")
    assert not failures, "; ".join(failures)
