"""A local directory holding a built-in's very weights is that built-in: its presets, and provenance saying why
(editbench.models.twins; tiny models, seconds). The real case, Gemma 3 270M saved with save_pretrained, is the
slow test in test_suite_gemma.py."""
from __future__ import annotations

import pytest
import torch

from editbench.editors.presets import resolve
from editbench.models.loader import load_dir, load_model, state_hash
from editbench.models.twins import builtin_twin, index_path, remember_builtin
from editbench.runner.experiment import Experiment, make_editor


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _save(lm, path, **kw):
    lm.model.save_pretrained(path, **kw)
    lm.tok.save_pretrained(path)
    return path


@pytest.fixture()
def builtin_dir(tmp_path, cache):
    """tiny-llama saved as a directory and loaded as the built-in the loader records (like gemma3-270m's)."""
    path = _save(load_model("tiny-llama"), tmp_path / "builtin")
    lm = load_dir(path, model_id="tiny-llama", preset_keys=["tiny-llama"])
    remember_builtin("tiny-llama", lm.model_hash, lm.model, state_hash)
    return path, lm


def test_a_copy_of_a_builtin_gets_its_preset_and_says_why(builtin_dir, tmp_path):
    path, builtin = builtin_dir
    assert index_path().is_file()
    copy = load_model(str(path))  # the same files as a user's directory
    assert copy.model_hash == builtin.model_hash and copy.model_id == str(path)
    assert copy.twin_of == {"name": "tiny-llama", "matched_by": "model hash"}
    assert copy.preset_keys[:2] == ["builtin", "tiny-llama"]
    values, prov = resolve("rome", copy, derive=lambda _lm: pytest.fail("derived although the weights are known"))
    assert values == {} and prov["section"] == "tiny-llama" and "holds the weights of the built-in" in prov["matched_by"]
    editor = make_editor(Experiment(suite="single", editor="rome", model=str(path)), copy)
    ref = make_editor(Experiment(suite="single", editor="rome", model="tiny-llama"), builtin)
    assert editor.hparams.to_dict() == ref.hparams.to_dict()
    assert "matched_by" in editor.preset and "matched_by" not in ref.preset


def test_a_reserialised_copy_is_found_by_its_tensors(builtin_dir, tmp_path):
    _, builtin = builtin_dir
    resharded = _save(builtin, tmp_path / "resharded", max_shard_size="100KB")  # other files, same tensors
    copy = load_model(str(resharded))
    assert copy.model_hash != builtin.model_hash
    assert copy.twin_of == {"name": "tiny-llama", "matched_by": "tensor hash"}


def test_other_weights_are_not_a_twin(builtin_dir, tmp_path):
    _, builtin = builtin_dir
    with torch.no_grad():
        builtin.model.model.layers[0].mlp.down_proj.weight[0, 0] += 1e-3
    other = load_model(str(_save(builtin, tmp_path / "other")))
    assert other.twin_of is None and "tiny-llama" not in other.preset_keys
    assert builtin_twin("0" * 64, other.model, state_hash) is None


def test_no_index_no_twin_and_no_hashing(cache, tmp_path):
    path = _save(load_model("tiny-llama"), tmp_path / "d")

    def no_hash(_model):
        raise AssertionError("hashed the tensors with nothing to compare them with")

    lm = load_dir(path)
    assert lm.twin_of is None and builtin_twin(lm.model_hash, lm.model, no_hash) is None


def test_a_model_of_another_size_is_not_hashed(builtin_dir):
    def no_hash(_model):
        raise AssertionError("hashed a model no built-in has the size of")

    other = load_model("tiny-gpt2")
    assert builtin_twin(other.model_hash, other.model, no_hash) is None
