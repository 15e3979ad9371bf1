"""One Experiment config, one --hparam syntax, one model per session, one result schema for every suite."""
from __future__ import annotations

import json

import pytest

from editbench.models.loader import state_hash
from editbench.runner.experiment import (DEFAULT_N, Experiment, ExperimentError, ModelCache, make_editor,
                                         parse_hparams, run_sequential_sample)
from editbench.runner.results import RESULT_SCHEMA, make_result, validate

from test_plugin import run_pytest  # tests/ is on sys.path (rootdir-relative test modules)


def test_hparam_syntax_is_editor_dot_key_everywhere():
    assert parse_hparams(["rome.layer=3", "rome.v_lr=5e-1", "memit.layers=[2, 3]"]) == \
        {"rome": {"layer": 3, "v_lr": 0.5}, "memit": {"layers": [2, 3]}}
    for bad in ("layer=3", "rome.layer", ".layer=3", "rome.=3"):
        with pytest.raises(ExperimentError, match="EDITOR.KEY=VALUE"):
            parse_hparams([bad])


def test_experiment_defaults_and_checks():
    e = Experiment(suite="sequential", editor="memit", hparams=(("b", 1), ("a", 2)))
    assert e.n_resolved == DEFAULT_N["sequential"] == 100 and e.dataset_name == "counterfact"
    assert e.hparams == (("a", 2), ("b", 1)) and e.probe_names == ("recall-unedited", "perplexity")
    assert Experiment(suite="single", editor="rome", model="factworld").dataset_name == "factworld"
    assert Experiment(suite="single", editor="rome", model="factworld").probe_names[0] == "factworld-recall"
    d = e.to_dict()
    assert d["hparams"] == {"a": 2, "b": 1} and d["n"] == 100 and json.dumps(d)
    assert e.protocols == ("prob", "token_acc", "gen")
    # a suite is any registered package (editbench.suites.SUITES, a layer above): here, a package name
    assert Experiment(suite="repeat", editor="rome").n_resolved == DEFAULT_N["single"]
    for bad in ({"n": 0}, {"samples": -1}, {"batch_size": 0}, {"history_every": 0}, {"suite": "No Such"},
                {"protocols": ("prob", "guess")}, {"protocols": ()}, {"on_nonfinite": "ignore"}):
        with pytest.raises(ExperimentError):
            Experiment(**{"suite": "single", "editor": "rome", **bad})


def test_one_model_serves_every_sample(tmp_path):
    cache = ModelCache()
    lm = cache.get("tiny-gpt2")
    assert cache.get("tiny-gpt2") is lm
    h0 = state_hash(lm.model)
    exp = Experiment(suite="sequential", editor="ft", model="tiny-gpt2", dataset="counterfact-1k", n=4,
                     history_every=2, hparams=(("num_steps", 2), ("lr", 0.05)), probes=(), out_dir=str(tmp_path))
    summaries = []
    for sample in (0, 1):
        s, errors = run_sequential_sample(exp, make_editor(exp, lm), lm, sample=sample, progress=False)
        assert state_hash(lm.model) == h0  # handed back unedited, so the next sample starts from the same model
        summaries.append(s)
    assert [s["n_edits"] for s in summaries] == [4, 4] and not errors
    assert summaries[0]["provenance"]["dataset"]["record_ids"] != summaries[1]["provenance"]["dataset"]["record_ids"]
    assert (tmp_path / "runs" / "sequential" / "ft" / "tiny-gpt2" / "sample_1" / "results.jsonl").exists()


def test_result_schema_is_checked():
    good = dict(suite="single", test="t", experiment={}, metrics={"es": 1.0}, n=1, gates={}, gate_values={},
                failures=[], verdict="NO GATES",
                provenance={k: None for k in ("editor", "model", "dataset", "seed", "device", "versions", "git",
                                              "created")})
    r = make_result(**good)
    assert r["schema"] == RESULT_SCHEMA and validate(r) == []
    assert any("missing field 'verdict'" in p for p in validate({k: v for k, v in r.items() if k != "verdict"}))
    assert any("not a number" in p for p in validate({**r, "metrics": {"es": "high"}}))
    assert any("unknown field" in p for p in validate({**r, "surprise": 1}))
    with pytest.raises(ValueError, match="verdict"):
        make_result(**{**good, "verdict": "ok"})


def test_sequential_suite_results_share_the_single_suite_schema(tmp_path):
    gates = tmp_path / "gates.yaml"
    gates.write_text("sequential:\n  default:\n    default: {no_cf_before: 0}\n")
    reports = tmp_path / "reports"
    r = run_pytest("suites", "-m", "sequential", "--model", "tiny-gpt2", "--dataset", "counterfact-1k",
                   "--editor", "ft-c", "--n-edits", "3", "--samples", "2", "--thresholds", str(gates),
                   "--reports-dir", str(reports))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (f,) = reports.glob("editbench-*.json")
    payload = json.loads(f.read_text())
    results = payload["results"]
    assert [x["suite"] for x in results] == ["sequential", "sequential"]
    for x in results:
        assert validate(x) == [] and x["provenance"]["model"]["id"] == "tiny-gpt2" and x["n"] == 3
        assert x["artefacts"]["plot"].endswith("sequential.png")
        cost = x["cost"]  # measured, per phase
        assert cost["apply_s_total"] > 0 and cost["eval_s"] > 0 and cost["peak_rss_mb"] > 50
        assert cost["prepare_s"] is not None and set(cost["eval_breakdown_s"]) == {"immediate", "history", "health"}
    assert {x["experiment"]["sample"] for x in results} == {0, 1}
