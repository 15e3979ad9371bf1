"""The model loader: built-in tiny models, determinism and identity hashes, local directories, the hub path offline,
and the tokenizer conventions the tiny models keep on purpose (GPT-2 without a pad token, Llama padding left)."""
import hashlib
import shutil
import time
from pathlib import Path

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from editbench.editors.base import restore, save_originals
from editbench.models import loader
from editbench.models.loader import (LoadedModel, ModelLoadError, builtin_models, describe_builtins, load_hub,
                                     load_model, state_hash)
from editbench.models.paths import EMBEDDED_DIR
from editbench.models.tiny import TINY, build_tiny, build_tokenizer

TINY_NAMES = sorted(TINY)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_gpt2():
    return load_model("tiny-gpt2")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_builtins_listed_with_descriptions():
    names = builtin_models()
    assert {"factworld", "smollm2-135m", *TINY} <= set(names)
    assert set(describe_builtins()) == set(names) and all(describe_builtins().values())


@pytest.mark.parametrize("name", TINY_NAMES)
def test_load_tiny(name):
    lm = load_model(name)
    assert isinstance(lm, LoadedModel)
    assert lm.model_id == name
    assert lm.preset_keys == [name, TINY[name].model_type]
    assert lm.adapter.model_type == TINY[name].model_type and lm.adapter.n_layers == 4
    assert not lm.model.training and not any(p.requires_grad for p in lm.model.parameters())
    assert len(lm.model_hash) == 64 and lm.model_hash == state_hash(build_tiny(name)[0])
    ids = lm.tok(["The capital of France is"], return_tensors="pt")
    with torch.no_grad():
        logits = lm.model(**ids).logits
    assert logits.shape == (1, ids["input_ids"].shape[1], len(lm.tok)) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", TINY_NAMES)
def test_tiny_is_deterministic_and_leaves_global_rng_alone(name):
    rng = torch.get_rng_state()
    a, b = build_tiny(name, seed=0)[0], build_tiny(name, seed=0)[0]
    assert torch.equal(torch.get_rng_state(), rng)
    assert state_hash(a) == state_hash(b)
    assert state_hash(build_tiny(name, seed=1)[0]) != state_hash(a)


def test_state_hash_sees_one_ulp_and_restore_is_exact(tiny_gpt2):
    model, a = tiny_gpt2.model, tiny_gpt2.adapter
    h0 = state_hash(model)
    name = a.mlp_out_weight_name(2)
    originals = save_originals(model, [name])
    w = a.mlp_out(2).weight
    with torch.no_grad():  # the smallest possible change: one element moved by one ulp
        w.view(-1)[7] = torch.nextafter(w.view(-1)[7], torch.tensor(float("inf")))
    assert state_hash(model) != h0
    restore(model, originals)
    assert state_hash(model) == h0
    other = state_hash(model, names=[a.mlp_out_weight_name(1)])
    a.add_delta(2, torch.ones(a.hidden_size, a.mlp_width))
    assert state_hash(model) != h0
    assert state_hash(model, names=[a.mlp_out_weight_name(1)]) == other  # a subset hash sees only its subset
    h_sub = state_hash(model, names=[name])
    restore(model, originals)
    assert state_hash(model) == h0 and state_hash(model, names=[name]) != h_sub
    with pytest.raises(KeyError):
        state_hash(model, names=["no.such.weight"])


def test_state_hash_covers_buffers_and_other_dtypes():
    lm = load_model("tiny-llama", dtype=torch.bfloat16)
    assert next(lm.model.parameters()).dtype == torch.bfloat16
    h = state_hash(lm.model)
    buf_name, buf = next(iter(lm.model.named_buffers()))  # rotary inv_freq
    with torch.no_grad():
        buf.mul_(2)
    assert state_hash(lm.model) != h, buf_name
    assert lm.model_hash == load_model("tiny-llama").model_hash  # identity is of the weights, not the dtype


def test_state_hash_is_fast_enough():
    model = torch.nn.Linear(2048, 2048)  # 16 MiB of float32
    t = time.perf_counter()
    state_hash(model)
    assert time.perf_counter() - t < 1.0


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_local_directory_round_trip(name, tmp_path):
    lm = load_model(name)
    lm.model.save_pretrained(tmp_path / "m")
    lm.tok.save_pretrained(tmp_path / "m")
    back = load_model(str(tmp_path / "m"))
    assert back.model_id == str(tmp_path / "m")
    assert back.preset_keys == ["m", TINY[name].model_type]
    assert back.model_hash == _sha256(tmp_path / "m" / "model.safetensors")  # = `sha256sum model.safetensors`
    assert state_hash(back.model) == state_hash(lm.model)
    assert back.adapter.tied_lm_head == lm.adapter.tied_lm_head
    text = "The mother tongue of Danielle Darrieux is French"
    assert back.tok(text)["input_ids"] == lm.tok(text)["input_ids"]
    assert (back.tok.padding_side, back.tok.pad_token) == (lm.tok.padding_side, lm.tok.pad_token)


def test_hub_name_offline_is_a_clear_error():
    t = time.perf_counter()
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE is set"):
        load_model("openai-community/gpt2-xl-not-cached")
    assert time.perf_counter() - t < 10  # no network waits


def test_misspelled_builtin_suggests_the_right_name():
    with pytest.raises(ModelLoadError, match="Did you mean 'tiny-gpt2'"):
        load_model("tiny-gtp2")


def test_missing_paths_and_bad_directories(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model directory"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path))


def test_hub_id_from_the_local_cache(tiny_gpt2, tmp_path):
    """The hub path, offline: a hub id is found in a (here hand-made) Hugging Face cache and hashed by file."""
    repo = tmp_path / "models--editbench-test--tiny"
    snap = repo / "snapshots" / ("0" * 40)
    tiny_gpt2.model.save_pretrained(snap)
    tiny_gpt2.tok.save_pretrained(snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    lm = load_hub("editbench-test/tiny", cache_dir=str(tmp_path))
    assert lm.model_id == "editbench-test/tiny"
    assert lm.preset_keys == ["editbench-test/tiny", "tiny", "gpt2"]
    assert lm.model_hash == _sha256(snap / "model.safetensors")
    assert state_hash(lm.model) == state_hash(tiny_gpt2.model)


def test_identity_is_looked_up_not_set_on_the_module(tiny_gpt2):
    from editbench.models.identity import model_identity
    from editbench.models.stats import model_fingerprint

    assert not [k for k in vars(tiny_gpt2.model) if k.startswith("editbench")]
    assert model_identity(tiny_gpt2.model) == ("tiny-gpt2", tiny_gpt2.model_hash)
    assert model_fingerprint(tiny_gpt2.model) == tiny_gpt2.model_hash
    other, _ = build_tiny("tiny-gpt2")  # not from the loader: unknown, fingerprinted
    assert model_identity(other) is None and model_fingerprint(other).startswith("fp-")


def test_factworld_missing_is_a_clear_error(monkeypatch, tmp_path):
    from editbench.factworld import profile as factworld_profile

    monkeypatch.setattr(factworld_profile, "CHECKPOINT_DIR", tmp_path)
    with pytest.raises(ModelLoadError, match="fact-world checkpoint is missing"):
        load_model("factworld")


@pytest.mark.skipif(not (EMBEDDED_DIR / "factworld" / "config.json").is_file(),
                    reason="the fact-world checkpoint has not been built yet (editbench/models/embedded/factworld/)")
def test_factworld_loads():
    lm = load_model("factworld")
    assert lm.model_id == "factworld" and lm.preset_keys == ["factworld", "gpt2"]
    files = loader.weight_files(EMBEDDED_DIR / "factworld")
    assert lm.model_hash == loader.hash_files(files)


# -- tokenizers ------------------------------------------------------------------------------------------------
def test_tokenizer_conventions():
    gpt2, gptj, neox, llama = (build_tokenizer(s) for s in ("gpt", "gpt", "neox", "llama"))
    for tok in (gpt2, gptj):  # like GPT-2 / GPT-J: no pad token at all
        assert tok.pad_token is None and tok.padding_side == "right"
        with pytest.raises(ValueError, match="padding token"):
            tok(["a", "a b c"], padding=True)
    assert (neox.pad_token, neox.padding_side) == ("<|padding|>", "right")
    assert llama.padding_side == "left" and llama.pad_token == "</s>"
    batch = llama(["France", "The capital of France"], padding=True)["input_ids"]
    assert batch[0][0] == llama.pad_token_id and batch[1][0] == llama.bos_token_id  # left-padded, BOS first
    assert llama("Paris")["input_ids"][0] == llama.bos_token_id
    assert gpt2("Paris")["input_ids"] == gpt2("Paris", add_special_tokens=False)["input_ids"]  # no BOS


def test_tokenizer_words_and_fallback():
    tok = build_tokenizer("gpt")
    assert tok.convert_ids_to_tokens(tok(" French", add_special_tokens=False)["input_ids"]) == ["\u0120French"]
    assert len(tok("The mother tongue of Danielle Darrieux is")["input_ids"]) == 7  # one token per known word
    assert len(tok(" Zqxv")["input_ids"]) == 5  # unknown word: spelled out byte by byte (space, Z, q, x, v)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=40))
def test_tokenizer_round_trips_any_text(text):
    """Every string survives encode/decode (special-token strings like "<s>" are parsed as specials, as usual)."""
    for style in ("gpt", "llama"):
        tok = _TOKS.setdefault(style, build_tokenizer(style))
        assume(not any(sp in text for sp in tok.all_special_tokens))
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text


_TOKS: dict = {}


def test_copy_of_builtin_dir_keeps_hash(tiny_gpt2, tmp_path):
    """model_hash depends on the bytes only, not on where the directory lives."""
    tiny_gpt2.model.save_pretrained(tmp_path / "a")
    tiny_gpt2.tok.save_pretrained(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert load_model(str(tmp_path / "a")).model_hash == load_model(str(tmp_path / "b")).model_hash
