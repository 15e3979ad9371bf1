"""Presets for models nobody published one for: the derivation rule, its cache, and the provenance every result
records (fact world and tiny models: seconds)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from editbench.editors.presets import DERIVED_FIELDS, describe_presets, resolve, section_provenance
from editbench.models.loader import load_model
from editbench.runner.experiment import Experiment, make_editor
from editbench.runner.provenance import provenance
from editbench.trace import derive
from editbench.trace.tracing import suggest_layers

FAST = dict(n_facts=4, n_samples=2, window=1)  # the fact world's MLP effect shows with window 1 only


@pytest.fixture(scope="module")
def world():
    return load_model("factworld")


def _unknown(lm, name="my-model"):
    """The same weights under a name no preset file has (only its family key, gpt2, may match)."""
    return dataclasses.replace(lm, model_id=name, preset_keys=[name, lm.model.config.model_type])


def test_the_rule_is_the_trace_peak_and_its_critical_path(world, tmp_path):
    doc = derive.derive_layers(world, dataset="factworld", cache_dir=tmp_path, **FAST)
    aie = doc["trace"]["aie_subject_last"]
    assert len(aie) == world.adapter.n_layers and doc["trace"]["n_used"] == 4
    expect = suggest_layers(aie, derive.FRAC, derive.MAX_LAYERS)
    assert doc["rome_layer"] == expect["rome_layer"] == max(range(len(aie)), key=lambda i: (aie[i], -i))
    assert doc["memit_layers"] == expect["memit_layers"] and doc["rome_layer"] in doc["memit_layers"]
    assert doc["mom2_update_weight"] == round(15000 * world.adapter.mlp_width / 16384)
    assert "causal trace" in doc["rule"] and "4 known facts" in doc["rule"]


def test_derivation_is_cached_per_model_hash(world, tmp_path, monkeypatch):
    first = derive.derive_layers(world, dataset="factworld", cache_dir=tmp_path, **FAST)
    path = tmp_path / "presets" / f"{world.model_hash}.json"
    assert first["cache"] == str(path) and json.loads(path.read_text())["rome_layer"] == first["rome_layer"]

    def no_trace(*_a, **_k):
        raise AssertionError("traced again although the cache is valid")

    monkeypatch.setattr("editbench.trace.tracing.trace_layers", no_trace)
    again = derive.derive_layers(world, dataset="factworld", cache_dir=tmp_path, **FAST)
    assert {k: again[k] for k in ("rome_layer", "memit_layers")} == {k: first[k] for k in ("rome_layer", "memit_layers")}
    with pytest.raises(AssertionError, match="traced again"):  # other rule parameters: not the cached answer
        derive.derive_layers(world, dataset="factworld", cache_dir=tmp_path, n_facts=3, n_samples=2, window=1)


def test_a_model_that_knows_nothing_cannot_be_derived(world, tmp_path):
    tiny = load_model("tiny-gpt2")  # random weights: knows none of the fact world's facts
    with pytest.raises(derive.DerivationError, match="no fact the model knows"):
        derive.derive_layers(tiny, dataset="factworld", cache_dir=tmp_path, **FAST)
    with pytest.raises(derive.DerivationError, match="no positive MLP effect"):  # ROME's window 10 on 8 layers
        derive.derive_layers(world, dataset="factworld", cache_dir=tmp_path, n_facts=4, n_samples=2, window=10)


def test_published_and_derived_sections_are_named():
    assert section_provenance("rome", "gpt2-xl") == {"kind": "published", "section": "gpt2-xl",
                                                     "source": "kmeng01/rome hparams/ROME/gpt2-xl.json"}
    assert section_provenance("r-rome", "gpt2-xl")["kind"] == "published"
    assert section_provenance("memit", "smollm2-135m")["kind"] == "derived"
    assert section_provenance("rome", "gemma3-270m")["kind"] == "derived"
    enc = section_provenance("encore", "gpt-j-6b")  # MEMIT's published values, ENCORE's defaults: not published
    assert enc["kind"] == "shipped" and "no encore preset was published" in enc["source"]
    assert section_provenance("rome", "tiny-gpt2")["kind"] == "shipped"
    for editor in DERIVED_FIELDS:
        assert ("gemma3-270m", "derived") in describe_presets(editor), editor


def test_a_model_with_its_own_section_is_not_derived(world):
    def boom(_lm):
        raise AssertionError("derived although the model has a section")

    for editor in ("rome", "memit", "mend", "null"):
        values, prov = resolve(editor, world, derive=boom)
        assert values == {} and prov["kind"] in ("shipped", "default"), (editor, prov)


def test_no_section_derives_the_layers(world, tmp_path):
    lm = _unknown(world)
    fake = {"rome_layer": 2, "memit_layers": [1, 2], "mom2_update_weight": 469, "rule": "the rule",
            "trace": {"n_facts": 9, "n_known": 5, "n_used": 4, "p_clean": 0.9, "p_corrupted": 0.1,
                      "aie_subject_last": [0.1, 0.2, 0.3]}, "dataset": "factworld", "cache": "x.json"}
    values, prov = resolve("rome", lm, derive=lambda _lm: fake)
    assert values == {"layer": 2} and prov["kind"] == "derived" and prov["rule"] == "the rule"
    assert prov["section"] == "gpt2" and "another model" in prov["other_fields_from"]  # rome.yaml's family section
    values, prov = resolve("memit", lm, derive=lambda _lm: fake)
    assert values == {"layers": [1, 2], "mom2_update_weight": 469} and prov["section"] is None
    assert prov["trace"]["n_used"] == 4


def test_a_failed_derivation_says_whose_values_run(world):
    def fail(_lm):
        raise derive.DerivationError("knows nothing")

    with pytest.warns(UserWarning, match="none could be derived"):
        values, prov = resolve("memit", _unknown(world), derive=fail)
    assert values == {} and prov["kind"] == "default" and prov["why_not_derived"] == "knows nothing"
    _, prov = resolve("ft-c", _unknown(world), derive=fail)  # FT derives nothing: the family section, said so
    assert prov["kind"] == "family" and "another model" in prov["source"]


def test_every_result_records_the_preset(world, tmp_path, monkeypatch):
    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(derive, "N_FACTS", 4)
    monkeypatch.setattr(derive, "N_SAMPLES", 2)
    monkeypatch.setattr(derive, "WINDOW", 1)
    lm = _unknown(world)
    editor = make_editor(Experiment(suite="single", editor="rome", model="my-model"), lm)
    prov = provenance(editor=editor, model_id=lm.model_id)["editor"]["preset"]
    assert prov["kind"] == "derived" and editor.hparams.layer == prov["values"]["layer"]
    assert prov["overrides"] == [] and prov["section"] == "gpt2"  # rome.yaml's family section, other fields
    assert (tmp_path / "presets" / f"{lm.model_hash}.json").is_file()
    editor = make_editor(Experiment(suite="single", editor="rome", model="factworld", hparams=(("layer", 0),)), world)
    prov = provenance(editor=editor)["editor"]["preset"]
    assert prov["kind"] == "shipped" and prov["overrides"] == ["layer"] and editor.hparams.layer == 0
    assert prov["source"] == "built-in" and "rome.yaml section 'factworld'" in prov["origin"]


def test_ls_marks_derived_presets(capsys):
    from editbench.cli import main

    assert main(["ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rome = lines[next(i for i, line in enumerate(lines) if line.strip().startswith("rome ")) + 1]
    assert "gpt2-xl, gpt2-large" in rome and "(built-in, published)" in rome
    assert "smollm2-135m, gemma3-270m (built-in, derived)" in rome
    assert "any other model: derived by causal trace at first use" in rome
