"""Causal tracing (editbench.trace) on the tiny random models: the restorations are exact, the noise is seeded,
the shapes are right, the layer-suggestion rule does what docs/trace.md says, and ``editbench trace`` runs."""
import json

import pytest
import torch

from editbench.models.tokens import encode_prefix, subject_last_token_index
from editbench.models.loader import load_model
from editbench.trace import (TraceFact, encode_fact, restored_probs, subject_token_range, suggest_layers,
                             trace_fact, trace_layers, window_layers)
from editbench.trace.core import clean_run, make_noise, range_by_decoding

FACT = TraceFact("The mother tongue of Danielle Darrieux is", "Danielle Darrieux", "French", "dd")
FAMILIES = ["tiny-gpt2", "tiny-gptj", "tiny-neox", "tiny-llama"]


@pytest.fixture(scope="module")
def models():
    return {name: load_model(name) for name in FAMILIES}


def assert_close64(a, b):
    torch.testing.assert_close(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                               rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", FAMILIES)
def test_restoring_every_position_of_a_hidden_layer_gives_the_clean_probability(models, name):
    lm = models[name]
    enc = encode_fact(lm.tok, FACT)
    probs, clean = clean_run(lm, enc, "hidden")
    noise = make_noise(3, enc.subject[1] - enc.subject[0], lm.adapter.hidden_size, 1.0, seed=0)
    T, L = len(enc.ids), lm.adapter.n_layers
    sets = [[]] + [[(l, t) for t in range(T)] for l in range(L)]
    p = restored_probs(lm, enc, "hidden", clean, noise, sets)
    assert abs(float(p[0]) - float(probs[enc.answer_id])) > 1e-7  # the noise does change the output
    assert_close64(p[1:], probs[enc.answer_id].expand(L))
    # the last position's final hidden state alone decides the next token: effect = total effect
    last = restored_probs(lm, enc, "hidden", clean, noise, [[(L - 1, T - 1)]])
    assert_close64(last, probs[enc.answer_id].unsqueeze(0))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn"])
def test_no_restoration_is_the_corrupted_run(models, name, kind):
    """An empty patch set equals a plain forward on noised input embeddings (no hooks at all)."""
    lm = models[name]
    enc = encode_fact(lm.tok, FACT)
    probs, clean = clean_run(lm, enc, kind)
    s0, s1 = enc.subject
    noise = make_noise(4, s1 - s0, lm.adapter.hidden_size, 0.5, seed=3)
    p = restored_probs(lm, enc, kind, clean, noise, [[]])
    ids = torch.tensor([enc.ids])
    with torch.no_grad():
        emb = lm.adapter.embed(ids).repeat(4, 1, 1)
        emb[:, s0:s1] += noise
        ref = torch.softmax(lm.model(inputs_embeds=emb).logits[:, -1], -1)[:, enc.answer_id].mean()
    assert_close64(p, ref.unsqueeze(0))
    # no noise: the clean run
    assert_close64(restored_probs(lm, enc, kind, clean, None, [[]]), probs[enc.answer_id].unsqueeze(0))


def test_noise_is_seeded(models):
    lm = models["tiny-gpt2"]
    a = trace_fact(lm, FACT, kind="mlp", n_samples=3, seed=7, noise=0.5)
    b = trace_fact(lm, FACT, kind="mlp", n_samples=3, seed=7, noise=0.5)
    c = trace_fact(lm, FACT, kind="mlp", n_samples=3, seed=8, noise=0.5)
    assert a["effect"] == b["effect"] and a["p_corrupted"] == b["p_corrupted"]
    assert a["p_corrupted"] != c["p_corrupted"]


@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn"])
def test_trace_fact_shapes_and_batching(models, kind):
    lm = models["tiny-llama"]
    g = trace_fact(lm, FACT, kind=kind, n_samples=2, noise=0.5)
    T, L = len(g["tokens"]), lm.adapter.n_layers
    assert g["positions"] == list(range(T)) and torch.tensor(g["effect"]).shape == (T, L)
    assert g["tokens"][0] == "<s>" and g["subject_range"][0] >= 1  # BOS counted in the positions
    # positions before the subject see no noise: restoring them changes nothing
    assert torch.tensor(g["effect"][:g["subject_range"][0]]).abs().max() < 1e-6
    # one forward per patch set gives the same numbers as many sets per forward
    small = trace_fact(lm, FACT, kind=kind, n_samples=2, noise=0.5, max_rows=2)
    assert_close64(small["effect"], g["effect"])


def test_trace_layers_shapes_and_aggregates(models):
    lm = models["tiny-gpt2"]
    facts = [FACT, TraceFact("Paris is the capital of", "Paris", "France", "p")]
    r = trace_layers(lm, facts, kind="mlp", window=2, n_samples=2, noise=0.5, require_known=False)
    L = lm.adapter.n_layers
    assert (r["n_facts"], r["n_used"], r["layers"]) == (2, 2, list(range(L)))
    for where in ("subject_last", "last_token"):
        assert len(r[where]["aie"]) == len(r[where]["normalized"]) == L
        per_fact = torch.tensor([f[where] for f in r["facts"]])
        assert_close64(r[where]["aie"], per_fact.mean(0))
    assert r["peak_layer"] == max(range(L), key=lambda l: r["subject_last"]["aie"][l])
    assert r["suggested"] is not None and trace_layers(lm, facts, kind="hidden", n_samples=1,
                                                       require_known=False)["suggested"] is None
    # a random model knows nothing: with require_known no fact is traced
    assert trace_layers(lm, facts, n_samples=1, noise=0.5)["n_used"] == 0


def test_known_filter_keeps_the_facts_whose_answer_is_the_clean_argmax():
    lm = load_model("tiny-gpt2")  # fresh: we permute two rows of its (tied) embedding
    enc = encode_fact(lm.tok, FACT)
    top = int(clean_run(lm, enc, "mlp")[0].argmax())
    assert top != enc.answer_id and top not in enc.ids and enc.answer_id not in enc.ids
    with torch.no_grad():  # swap " French" with the argmax token: now the model "knows" the fact
        w = lm.adapter.embed.weight
        w[[top, enc.answer_id]] = w[[enc.answer_id, top]]
    other = TraceFact("Paris is the capital of", "Paris", "France", "p")
    r = trace_layers(lm, [other, FACT, other], n_samples=1, noise=0.5, max_facts=5)
    assert (r["n_facts"], r["n_known"], r["n_used"]) == (3, 1, 1) and r["facts"][0]["case_id"] == "dd"
    assert r["facts"][0]["index"] == 1 and r["facts"][0]["p_clean"] > 0
    # max_facts stops the scan once enough known facts were traced
    assert trace_layers(lm, [FACT, other, other], n_samples=1, noise=0.5, max_facts=1)["n_facts"] == 1


def test_subject_range_matches_the_editors_subject_position(models):
    for lm in models.values():
        for prompt, subj in [(FACT.prompt, FACT.subject), ("Paris is the capital of", "Paris")]:
            s0, s1 = subject_token_range(lm.tok, prompt, subj)
            template = prompt.replace(subj, "{}", 1)
            assert s1 - 1 == subject_last_token_index(lm.tok, template, subj)
            ids = encode_prefix(lm.tok, prompt)
            assert subj in lm.tok.decode(ids[s0:s1]) and subj not in lm.tok.decode(ids[s0 + 1:s1])
            assert range_by_decoding(lm.tok, ids, subj) == (s0, s1)  # the slow-tokenizer path agrees


def test_window_is_romes():
    # ROME: range(max(0, l - w // 2), min(L, l - (-w // 2)))
    assert window_layers(10, 30, "mlp", 10) == list(range(5, 15))
    assert window_layers(2, 30, "attn", 10) == list(range(0, 7))
    assert window_layers(28, 30, "mlp", 10) == list(range(23, 30))
    assert window_layers(3, 30, "mlp", 3) == [2, 3, 4]
    assert window_layers(7, 30, "hidden", 10) == [7]


def test_suggest_layers_rule():
    bump = [0.0, 0.1, 0.3, 0.6, 0.8, 1.0, 0.7, 0.2, 0.0]
    s = suggest_layers(bump)
    assert s["rome_layer"] == 5 and s["memit_layers"] == [3, 4, 5, 6] and s["threshold"] == 0.5
    # a long plateau is trimmed to max_layers by dropping the weaker end; ties drop the upper end
    plateau = [0.1, 0.6, 0.7, 0.8, 0.9, 1.0, 0.9, 0.8, 0.7, 0.6, 0.1]
    assert suggest_layers(plateau)["memit_layers"] == [3, 4, 5, 6, 7]
    assert suggest_layers(plateau, max_layers=4)["memit_layers"] == [3, 4, 5, 6]
    assert suggest_layers(plateau, frac=0.95)["memit_layers"] == [5]
    # the range is contiguous: a second bump beyond a dip is not included
    assert suggest_layers([1.0, 0.9, 0.1, 0.95, 0.2])["memit_layers"] == [0, 1]
    assert suggest_layers([0.2, 1.0, 1.0, 0.1])["rome_layer"] == 1  # first peak on ties
    none = suggest_layers([-0.1, -0.2, 0.0])
    assert none["rome_layer"] is None and none["memit_layers"] == []


def test_cli_end_to_end(tmp_path):
    from editbench.cli import main

    facts = [{"known_id": 0, "subject": "Danielle Darrieux", "attribute": "French", "relation_id": "P103",
              "template": "The mother tongue of {} is", "prompt": "The mother tongue of Danielle Darrieux is"},
             {"known_id": 1, "subject": "Paris", "attribute": "France", "relation_id": "P1376",
              "template": "{} is the capital of", "prompt": "Paris is the capital of"}]
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts))
    out = tmp_path / "out"
    rc = main(["trace", "--model", "tiny-gpt2", "--dataset", str(path), "--n", "2", "--kind", "all",
               "--samples", "2", "--include-unknown", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "tiny-gpt2_facts.json").read_text())
    assert set(doc["traces"]) == {"hidden", "mlp", "attn"} and set(doc["grids"]) == {"hidden", "mlp", "attn"}
    assert doc["traces"]["mlp"]["n_used"] == 2 and len(doc["traces"]["mlp"]["subject_last"]["aie"]) == 4
    assert (out / "tiny-gpt2_facts.png").stat().st_size > 10_000
