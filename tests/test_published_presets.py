"""The published presets resolve on the published models (issue 12 item 4), with no weights: each model is built
on the meta device from its published config, looked up by its hub id as a user would pass it (``--model
EleutherAI/gpt-j-6B``), and every editor's preset must (a) carry the reference repositories' values and (b) name
layers and modules that exist in that architecture, with the matrix shapes the editor expects.

Reference values, read from the reference repositories' hparams files:
- ROME: kmeng01/rome hparams/ROME/{gpt2-xl,EleutherAI_gpt-j-6B}.json; Llama-2-7b: scalable-model-editing/
  rebuilding-rome hparams/ROME/llama2-7b.json.
- MEMIT: kmeng01/memit hparams/MEMIT/{gpt2-xl,EleutherAI_gpt-j-6B}.json; Llama-2-7b: EasyEdit hparams/MEMIT/llama-7b.
- AlphaEdit: jianghoucheng/AlphaEdit hparams/AlphaEdit/{gpt2-xl,EleutherAI_gpt-j-6B,Llama3-8B}.json.
- ENCORE: scalable-model-editing/knowledge-editing-regularization hparams/ENCORE/{gpt2-xl,llama2-7b,llama3-8b}.json.
- FT-C: the seed paper (appendix A.2): norm 5e-4 (GPT-2-XL), 5e-5 (GPT-J), at ROME's layer (sec. 3).
"""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPTJConfig, LlamaConfig

from editbench import registry
from editbench.models.adapter import ModelAdapter
from editbench.models.loader import hub_preset_keys

CONFIGS = {  # the published architectures (config.json of each hub repository), as transformers configs
    "openai-community/gpt2-xl": lambda: GPT2Config(n_layer=48, n_embd=1600, n_head=25, n_positions=1024,
                                                   vocab_size=50257),
    "EleutherAI/gpt-j-6B": lambda: GPTJConfig(n_layer=28, n_embd=4096, n_head=16, rotary_dim=64, n_positions=2048,
                                              vocab_size=50400),
    "meta-llama/Llama-2-7b-hf": lambda: LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                                    num_attention_heads=32, num_key_value_heads=32, vocab_size=32000),
    "meta-llama/Meta-Llama-3-8B": lambda: LlamaConfig(hidden_size=4096, intermediate_size=14336,
                                                      num_hidden_layers=32, num_attention_heads=32,
                                                      num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0),
}

# (editor, hub id) -> the reference's values of the fields editbench names the same way
PUBLISHED = {
    ("rome", "openai-community/gpt2-xl"): {"layer": 17},
    ("rome", "EleutherAI/gpt-j-6B"): {"layer": 5},
    ("rome", "meta-llama/Llama-2-7b-hf"): {"layer": 5, "v_loss_layer": 27, "v_num_grad_steps": 25},
    ("memit", "openai-community/gpt2-xl"): {"layers": (13, 14, 15, 16, 17), "mom2_update_weight": 20000,
                                            "v_num_grad_steps": 20, "v_lr": 0.5, "clamp_norm_factor": 0.75},
    ("memit", "EleutherAI/gpt-j-6B"): {"layers": (3, 4, 5, 6, 7, 8), "mom2_update_weight": 15000,
                                       "v_num_grad_steps": 25, "v_lr": 0.5},
    ("memit", "meta-llama/Llama-2-7b-hf"): {"layers": (4, 5, 6, 7, 8), "mom2_update_weight": 15000,
                                            "v_num_grad_steps": 25, "clamp_norm_factor": 4, "v_weight_decay": 1e-3},
    ("alphaedit", "openai-community/gpt2-xl"): {"layers": (13, 14, 15, 16, 17), "mom2_update_weight": 20000,
                                                "v_num_grad_steps": 20, "v_lr": 0.5, "nullspace_threshold": 2e-2,
                                                "L2": 10},
    ("alphaedit", "EleutherAI/gpt-j-6B"): {"layers": (3, 4, 5, 6, 7, 8), "v_num_grad_steps": 25, "v_lr": 0.5,
                                           "clamp_norm_factor": 0.75, "v_weight_decay": 0.5,
                                           "nullspace_threshold": 2e-2, "L2": 10},
    ("alphaedit", "meta-llama/Meta-Llama-3-8B"): {"layers": (4, 5, 6, 7, 8), "v_num_grad_steps": 25, "v_lr": 0.1,
                                                  "clamp_norm_factor": 0.75, "v_weight_decay": 0.5,
                                                  "nullspace_threshold": 2e-2, "L2": 10},
    ("encore", "openai-community/gpt2-xl"): {"layers": (13, 14, 15, 16, 17), "mom2_update_weight": 20000,
                                             "v_num_grad_steps": 20, "prob_cutoff": -4, "update_norm_lambda": 10},
    ("encore", "meta-llama/Llama-2-7b-hf"): {"layers": (4, 5, 6, 7, 8), "mom2_update_weight": 15000,
                                             "v_num_grad_steps": 25, "v_lr": 0.5, "clamp_norm_factor": 0.75,
                                             "v_weight_decay": 0.5, "prob_cutoff": -3, "update_norm_lambda": 10},
    ("encore", "meta-llama/Meta-Llama-3-8B"): {"layers": (4, 5, 6, 7, 8), "mom2_update_weight": 15000,
                                               "v_num_grad_steps": 25, "v_lr": 0.5, "clamp_norm_factor": 0.75,
                                               "v_weight_decay": 0.5, "prob_cutoff": -2, "update_norm_lambda": 20},
    ("ft-c", "openai-community/gpt2-xl"): {"layers": (17,), "norm_constraint": 5e-4},
    ("ft-c", "EleutherAI/gpt-j-6B"): {"layers": (5,), "norm_constraint": 5e-5},
}


@pytest.fixture(scope="module")
def meta_models():
    """Each published architecture on the meta device (shapes, no memory), built once."""
    built = {}
    for hub_id, make in CONFIGS.items():
        with torch.device("meta"):
            built[hub_id] = AutoModelForCausalLM.from_config(make())
    return built


def _keys(hub_id: str, model) -> list[str]:
    # the loader's order for a hub model: the id's keys, then the family (editbench.models.loader._finish)
    return list(dict.fromkeys([*hub_preset_keys(hub_id), model.config.model_type]))


def test_hub_ids_find_the_published_preset_names():
    assert "llama3-8b" in hub_preset_keys("meta-llama/Meta-Llama-3-8B")
    assert {"llama-2-7b", "llama2-7b"} <= set(hub_preset_keys("meta-llama/Llama-2-7b-hf"))
    assert "gpt2-xl" in hub_preset_keys("openai-community/gpt2-xl")
    assert "gpt-j-6b" in hub_preset_keys("EleutherAI/gpt-j-6B")
    assert hub_preset_keys("gpt2-xl")[0] == "gpt2-xl"  # a plain id stays the most specific key


@pytest.mark.parametrize("editor,hub_id", sorted(PUBLISHED), ids=[f"{e}-{h.split('/')[-1]}" for e, h in sorted(PUBLISHED)])
def test_published_preset_values_and_modules(editor, hub_id, meta_models):
    model = meta_models[hub_id]
    ed = registry.create(editor, model_keys=_keys(hub_id, model))
    hp = ed.hparams
    for field, value in PUBLISHED[(editor, hub_id)].items():
        got = getattr(hp, field)
        got = tuple(got) if isinstance(got, (list, tuple)) else got
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, \
            f"{editor} on {hub_id}: {field} = {got!r}, the reference has {value!r}"
    adapter = ModelAdapter(model)
    layers = tuple(getattr(hp, "layers", None) or (hp.layer,))
    assert all(0 <= layer < adapter.n_layers for layer in layers), (layers, adapter.n_layers)
    loss_layer = getattr(hp, "v_loss_layer", None)
    assert loss_layer is None or 0 <= loss_layer < adapter.n_layers
    params = dict(model.named_parameters())
    for layer in layers:
        name = adapter.mlp_out_weight_name(layer)
        assert name in params, f"{editor} on {hub_id}: no parameter {name}"
        w = adapter.weight_out_in(layer)  # (out, in) = (d_model, mlp width), whatever the storage orientation
        assert tuple(w.shape) == (adapter.hidden_size, adapter.mlp_width), (name, tuple(w.shape))
        assert adapter.block(layer) is not None and adapter.attn(layer) is not None
    assert adapter.final_norm is not None and adapter.lm_head is not None
