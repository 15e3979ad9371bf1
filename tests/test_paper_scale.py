"""The gpu suite's models (GPT-2-XL, GPT-J 6B) checked without downloading them: meta-device copies built from their
published configurations, every preset layer of every paper editor resolved to a module of the right shape; plus
the suite's collection and skip on a machine without CUDA, and accelerate's device_map loading path."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPTJConfig

from editbench.editors.base import load_preset
from editbench.models.adapter import ModelAdapter
from editbench.models.loader import hub_preset_keys
from editbench.suites.test_paper_scale import PAPER_MODELS, PAPER_RUNS, paper_experiment

CONFIGS = {  # the hub configs' architecture fields (gpt2-xl/config.json, EleutherAI/gpt-j-6b/config.json)
    "gpt2-xl": GPT2Config(n_embd=1600, n_layer=48, n_head=25, n_positions=1024, vocab_size=50257),
    "gpt-j": GPTJConfig(n_embd=4096, n_layer=28, n_head=16, rotary_dim=64, n_positions=2048, vocab_size=50400),
}
EXPECTED = {  # the reference presets (kmeng01/rome, kmeng01/memit hparams/*.json)
    ("gpt2-xl", "rome"): [17], ("gpt2-xl", "memit"): [13, 14, 15, 16, 17],
    ("gpt-j", "rome"): [5], ("gpt-j", "memit"): [3, 4, 5, 6, 7, 8],
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def meta_model(request):
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(CONFIGS[request.param])
    return request.param, model


def _layers(editor: str, preset: dict) -> list[int]:
    if "layers" in preset:
        return list(preset["layers"])
    return [preset["layer"]] if "layer" in preset else []


def test_paper_presets_resolve_on_meta_models(meta_model):
    name, model = meta_model
    adapter = ModelAdapter(model)
    keys = [*hub_preset_keys(PAPER_MODELS[name]), model.config.model_type]
    d, n_layers = adapter.hidden_size, adapter.n_layers
    assert n_layers == CONFIGS[name].n_layer
    for m, editor, _ in PAPER_RUNS:
        if m != name:
            continue
        preset = load_preset(editor, keys)
        layers = _layers(editor, preset)
        if (name, editor) in EXPECTED:
            assert layers == EXPECTED[(name, editor)], (name, editor, preset)
        for layer in layers:
            assert 0 <= layer < n_layers
            w = dict(model.named_parameters())[adapter.mlp_out_weight_name(layer)]
            assert w.is_meta and sorted(w.shape) == sorted((d, 4 * d))  # the MLP output projection


def test_paper_experiments_are_the_papers_settings():
    exp = paper_experiment("gpt-j", "memit", 2000)
    assert (exp.model, exp.dataset, exp.samples, exp.history_every, exp.downstream_every) == \
        ("EleutherAI/gpt-j-6b", "counterfact", 4, 10, 10)
    assert {e for _, e, _ in PAPER_RUNS} == {"rome", "memit", "ft-c"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skip on a machine without CUDA")
def test_gpu_suite_is_collected_and_skipped_without_cuda():
    from tests.test_plugin import run_pytest
    r = run_pytest("suites/test_paper_scale.py", "-rs", "--model", "tiny-gpt2")
    assert r.returncode == 0, r.stdout[-2000:]
    assert "6 skipped" in r.stdout and "needs CUDA" in r.stdout


def test_device_map_env_loads_through_accelerate(tmp_path, monkeypatch):
    from editbench.models.loader import load_dir
    from editbench.models.tiny import build_tiny
    model, tok = build_tiny("tiny-gpt2")
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    seen = {}
    import transformers
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*a, **kw):
        seen.update(kw)
        return real(*a, **kw)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    monkeypatch.setenv("EDITBENCH_DEVICE_MAP", "cpu")   # no GPU here ("auto" would split across the GPUs)
    lm = load_dir(tmp_path / "m")
    assert seen["device_map"] == "cpu" and lm.model.editbench_device_map == "cpu"
    assert next(lm.model.parameters()).device.type == "cpu"
