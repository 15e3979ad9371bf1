"""The architecture adapter on a tiny model of each family: paths, sizes, weight orientation, in-place updates.

The orientation tests are the ones that matter for editors: they hook the real MLP output module, capture its
input k (the "key" ROME/MEMIT write to) and its output, and check that the adapter's (out, in) view of the weight
reproduces the module — and that ``add_delta(ΔW)`` changes the output by exactly ``ΔW k`` — for GPT-2's Conv1D
(in, out) storage and for the ``nn.Linear`` (out, in) families alike.
"""
from types import SimpleNamespace

import pytest
import torch

from editbench.models.adapter import AdapterError, ModelAdapter
from editbench.models.hooks import hidden_of
from editbench.models.tiny import D_MODEL, N_LAYERS, build_family

# model_type -> (MLP width, stored as Conv1D, LM head tied to the embedding)
FAMILIES = {
    "gpt2": (4 * D_MODEL, True, True),
    "gptj": (4 * D_MODEL, False, False),
    "gpt_neox": (4 * D_MODEL, False, False),
    "llama": (96, False, False),
    "qwen2": (96, False, False),
    "mistral": (96, False, False),
}
STYLE = {"gpt2": "gpt", "gptj": "gpt", "gpt_neox": "neox"}
PROMPTS = ["The mother tongue of Danielle Darrieux is", "Paris is the capital of"]


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request):
    model, tok = build_family(request.param, tokenizer_style=STYLE.get(request.param, "llama"))
    return request.param, model, tok, ModelAdapter(model)


def _capture(adapter, model, tok, layer):
    """Run the prompts and return (k, out) seen by the MLP output module of ``layer``."""
    seen = {}

    def hook(_mod, inputs, output):
        seen["k"], seen["out"] = inputs[0].detach().clone(), output.detach().clone()

    handle = adapter.mlp_out(layer).register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(**tok(PROMPTS[:1], return_tensors="pt"))
    finally:
        handle.remove()
    return seen["k"][0], seen["out"][0]  # (T, d_mlp), (T, d_model)


def test_paths_exist_and_sizes(family):
    model_type, model, _tok, a = family
    width, conv1d, _tied = FAMILIES[model_type]
    assert a.model_type == model_type
    assert (a.n_layers, a.hidden_size, a.mlp_width, a.conv1d) == (N_LAYERS, D_MODEL, width, conv1d)
    params = dict(model.named_parameters())
    modules = dict(model.named_modules())
    for layer in range(a.n_layers):
        assert modules[a.block_name(layer)] is a.block(layer)
        assert modules[a.mlp_in_name(layer)] is a.mlp_in(layer)
        assert modules[a.mlp_out_name(layer)] is a.mlp_out(layer)
        assert params[a.mlp_out_weight_name(layer)] is a.mlp_out(layer).weight
        assert a.weight_out_in(layer).shape == (D_MODEL, width)
    assert a.lm_head is model.get_output_embeddings() and modules[a.lm_head_name] is a.lm_head
    assert a.embed is model.get_input_embeddings() and modules[a.embed_name] is a.embed
    assert isinstance(a.final_norm, torch.nn.Module)
    # the final norm really is the last thing before the head: its output, through the head, is the logits
    ids = _tok(PROMPTS[:1], return_tensors="pt")
    with torch.no_grad():
        hidden = model.base_model(**ids).last_hidden_state
        logits = model(**ids).logits
    torch.testing.assert_close(a.lm_head(hidden), logits)


def test_tied_lm_head_detection(family):
    model_type, model, _tok, a = family
    assert a.tied_lm_head is FAMILIES[model_type][2]
    if not a.tied_lm_head:  # the same family with a tied head (as SmolLM2 / many Llama-family models) is detected
        tied, _ = build_family(model_type, tokenizer_style=STYLE.get(model_type, "llama"), tie_word_embeddings=True)
        assert ModelAdapter(tied).tied_lm_head


@pytest.mark.parametrize("layer", [0, N_LAYERS - 1])
def test_orientation_weight_times_key_is_the_output(family, layer):
    _model_type, model, tok, a = family
    k, out = _capture(a, model, tok, layer)
    bias = a.mlp_out(layer).bias
    expected = k @ a.weight_out_in(layer).T + (bias if bias is not None else 0)
    torch.testing.assert_close(expected, out, rtol=1e-5, atol=1e-6)


def test_add_delta_rank_one_changes_output_by_delta_k(family):
    _model_type, model, tok, a = family
    layer = 1
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(a.hidden_size, generator=g), torch.randn(a.mlp_width, generator=g)
    delta = torch.outer(u, v) * 0.01  # (out, in), as every editor computes it
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    k0, out0 = _capture(a, model, tok, layer)
    a.add_delta(layer, delta)
    try:
        k1, out1 = _capture(a, model, tok, layer)
        torch.testing.assert_close(k1, k0)  # the key is computed before the edited matrix
        torch.testing.assert_close(out1 - out0, k0 @ delta.T, rtol=1e-4, atol=1e-6)
        changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
        assert changed == [a.mlp_out_weight_name(layer)]
        # weight_out_in is a view: it shows the update in (out, in) orientation for both storages
        w0 = before[a.mlp_out_weight_name(layer)]
        torch.testing.assert_close(a.weight_out_in(layer), (w0.T if a.conv1d else w0) + delta, rtol=0, atol=1e-6)
    finally:
        a.add_delta(layer, -delta)


# The table the adapter replaced (editbench/models/adapter.py before the layout was read off the model): the paths
# found from the module tree must be exactly these, so that every fixed-seed result of these families is unchanged.
OLD_TABLE = {
    "gpt2": ("transformer.h", "mlp.c_fc", "mlp.c_proj", "transformer.ln_f", "attn", True),
    "gptj": ("transformer.h", "mlp.fc_in", "mlp.fc_out", "transformer.ln_f", "attn", False),
    "gpt_neox": ("gpt_neox.layers", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h", "gpt_neox.final_layer_norm",
                 "attention", False),
    "llama": ("model.layers", "mlp.up_proj", "mlp.down_proj", "model.norm", "self_attn", False),
}


def test_layout_found_equals_the_old_table(family):
    model_type, _model, _tok, a = family
    old = OLD_TABLE.get(model_type, OLD_TABLE["llama"])  # qwen2 and mistral were llama aliases
    lay = a.layout
    assert (lay.blocks, lay.mlp_in, lay.mlp_out, lay.final_norm, lay.attn, lay.conv1d) == old
    assert a.final_norm_name == old[3] and a.final_norm is dict(_model.named_modules())[old[3]]


def test_not_a_causal_lm_is_a_clear_error():
    fake = torch.nn.Linear(2, 2)
    fake.config = SimpleNamespace(model_type="t5")
    with pytest.raises(AdapterError, match=r"model_type 't5'.*no LM head"):
        ModelAdapter(fake)


def test_head_is_final_norm_then_lm_head(family):
    _model_type, model, tok, a = family
    ids = tok(PROMPTS[:1], return_tensors="pt")
    with torch.no_grad():
        out = model(**ids)
        h = {}
        hook = a.block(a.n_layers - 1).register_forward_hook(lambda _m, _i, o: h.update(x=hidden_of(o)))
        model(**ids)
        hook.remove()
        torch.testing.assert_close(a.head(h["x"]), out.logits)
