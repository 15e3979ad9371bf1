"""Every decoder family of :data:`editbench.models.families.TESTED` is adapted from its module tree and edited.

Tiny random models from transformers' own config classes (2 layers, hidden 32, MLP width 64, no downloads; 2-D
weights at std 0.15 so that an edit can move a probability, as in test_memit.py). For each family ``null``, ROME
and MEMIT apply one edit (small hparams: few v*/z steps, covariances from random tokens, short templates): the
new target's probability rises (ROME, MEMIT) or nothing changes (null), only the edited matrices change, and the
restore is byte-identical (:func:`~editbench.models.loader.state_hash`). The rewrite prompt ends with the subject:
random weights have no learned route from the subject to later positions. Mixture-of-experts families are refused
with :class:`~editbench.models.adapter.MixtureOfExpertsError`. ``docs/models.md`` holds the table generated from
these lists (:func:`~editbench.models.families.support_table`).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import restore
from editbench.editors.memit import MEMITEditor, MEMITHParams
from editbench.editors.null import NullEditor
from editbench.editors.rome import ROMEEditor, ROMEHParams
from editbench.models.adapter import AdapterError, MixtureOfExpertsError, ModelAdapter
from editbench.models.families import REFUSED, TESTED, build_tiny_family, installed, support_table
from editbench.models.hooks import forward_until
from editbench.models.loader import state_hash
from editbench.models.tokens import target_nll, tokenize_prompt_target

from test_memit import _one_thread  # noqa: F401 (autouse fixture)

REQ = EditRequest("fam-0", "The mother tongue of {}", "Danielle Darrieux", "German", "French")
TEMPLATES = [["{}"], ["The city of Paris. {}", "I speak French. {}"]]
WIDTH_4D = ("gpt2", "gptj", "falcon", "gpt_bigcode", "bloom")  # MLP width 4 x hidden: these configs take no width
DOC = Path(__file__).resolve().parents[1] / "docs" / "models.md"


def _present(types):
    return [pytest.param(t, marks=pytest.mark.skipif(not installed(t), reason=f"transformers has no {t}"))
            for t in sorted(types)]


def _covariances(model, ad, layers):
    """C of the MLP-out keys over 256 random tokens, plus 1e-3 I (full rank; test_memit.py uses 2048 tokens)."""
    ids = torch.randint(0, model.config.vocab_size, (16, 16), generator=torch.Generator().manual_seed(1))
    keys, _ = forward_until(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                            inputs_of=[ad.mlp_out(l) for l in layers])
    flat = [k.reshape(-1, k.shape[-1]) for k in keys]
    return {l: (k.T @ k / k.shape[0]).float() + 1e-3 * torch.eye(ad.mlp_width) for l, k in zip(layers, flat)}


def _nll(model, tok) -> float:
    b = tokenize_prompt_target(tok, [REQ.rewrite_prompt], [REQ.target_new])
    with torch.no_grad():
        return float(target_nll(model(**b.model_inputs()).logits, b)[0])


def _editors(model, ad):
    rome = ROMEEditor(ROMEHParams(layer=0, v_num_grad_steps=8, context_template_spec=((3, 2),)),
                      covariance=_covariances(model, ad, [0]), progress=False)
    memit = MEMITEditor(MEMITHParams(layers=(0, 1), v_num_grad_steps=8, clamp_norm_factor=4,
                                     mom2_update_weight=60, mom2_n_samples=256))
    memit.covariances, memit.context_templates = _covariances(model, ad, [0, 1]), TEMPLATES
    return {"null": NullEditor(), "rome": rome, "memit": memit}


@pytest.mark.parametrize("model_type", _present(TESTED))
def test_family_is_adapted_and_edited(model_type):
    model, tok = build_tiny_family(model_type)
    ad = ModelAdapter(model)
    width = 128 if model_type in WIDTH_4D else 64
    assert (ad.n_layers, ad.hidden_size, ad.mlp_width) == (2, 32, width)
    assert ad.weight_out_in(1).shape == (ad.hidden_size, ad.mlp_width)
    h0, nll0 = state_hash(model), _nll(model, tok)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for name, editor in _editors(model, ad).items():
        res = editor.apply(model, tok, [REQ])
        nll1 = _nll(model, tok)
        changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        if name == "null":
            assert state_hash(model) == h0 and nll1 == nll0
        else:
            layers = [0] if name == "rome" else [0, 1]
            assert set(res.originals) == changed == {ad.mlp_out_weight_name(l) for l in layers}
            assert nll1 < nll0 - 0.05, f"{name} on {model_type}: target NLL {nll0:.3f} -> {nll1:.3f}"
        restore(model, res.originals)
        assert state_hash(model) == h0, f"{name} on {model_type}: restore not byte-identical"


@pytest.mark.parametrize("model_type", _present(REFUSED))
def test_refused_families_say_why(model_type):
    model, _tok = build_tiny_family(model_type, weight_std=None)
    moe = "mixture-of-experts" in REFUSED[model_type]
    with pytest.raises(MixtureOfExpertsError if moe else AdapterError,
                       match=rf"model_type '{model_type}'.*{'mixture-of-experts MLP' if moe else 'not supported'}"):
        ModelAdapter(model)


def test_enough_families():
    assert sum(installed(t) for t in TESTED) >= 15


def test_docs_table_is_generated_from_these_lists():
    text = DOC.read_text()
    begin, end = "<!-- families table: begin -->\n", "<!-- families table: end -->"
    assert begin in text and end in text, f"{DOC} lost its table markers"
    table = text.split(begin, 1)[1].split(end, 1)[0]
    assert table == support_table(), ("docs/models.md's families table is out of date: regenerate it with "
                                      "`python -m editbench.models.families`")
