"""Second-moment statistics, corpora and ROME context templates (tiny models; seconds)."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from editbench.data.corpora import resolve_corpus, strip_wiki_markup
from editbench.editors.toolkit.templates import context_templates
from editbench.models.adapter import ModelAdapter
from editbench.models.stats import cache_path, second_moment, second_moments
from editbench.models.tiny import build_tiny

TEXTS = ["The mother tongue of Danielle Darrieux is French .",
         "Toko Yasuda plays the guitar and lives in Tokyo , Japan .",
         "Paris is the capital city of France and London is the capital of England ."]


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def tiny(request):
    model, tok = build_tiny(request.param)
    return model, tok, ModelAdapter(model)


def _count_forwards(model):
    """Count forward passes *started* (the stats pass aborts after the last needed layer)."""
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    return calls, handle


def _direct(model, tok, adapter, layer, texts):
    """C computed the obvious way: each text alone (no padding), all keys stacked, KᵀK / n."""
    keys = []
    handle = adapter.mlp_out(layer).register_forward_pre_hook(lambda _m, a: keys.append(a[0][0]))
    with torch.no_grad():
        for t in texts:
            model(input_ids=torch.tensor([tok(t)["input_ids"]]))
    handle.remove()
    K = torch.cat(keys).double()
    return (K.T @ K / K.shape[0]).float(), K.shape[0]


def test_second_moment_equals_direct_computation(tiny, tmp_path):
    model, tok, ad = tiny
    expected, n = _direct(model, tok, ad, 2, TEXTS)
    got = second_moment(model, tok, ad, 2, corpus="test-texts", texts=TEXTS, n_samples=10_000, model_hash="t",
                        cache_dir=tmp_path, batch_size=2, progress=False)
    assert got.dtype == torch.float32 and got.shape == (ad.mlp_width, ad.mlp_width)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    side = cache_path(tmp_path, "t", 2, "test-texts", 10_000, 256).with_suffix(".json")
    assert f'"n_tokens": {n}' in side.read_text()  # corpus smaller than n_samples: every token used, recorded


def test_token_budget_is_exact(tiny, tmp_path):
    model, tok, ad = tiny
    keys = []
    h = ad.mlp_out(1).register_forward_pre_hook(lambda _m, a: keys.append(a[0][0]))
    with torch.no_grad():
        model(input_ids=torch.tensor([tok(TEXTS[0])["input_ids"]]))
    h.remove()
    K = keys[0][:5].double()
    got = second_moment(model, tok, ad, 1, corpus="t5", texts=TEXTS, n_samples=5, model_hash="t",
                        cache_dir=tmp_path, progress=False)
    torch.testing.assert_close(got, (K.T @ K / 5).float(), rtol=1e-5, atol=1e-6)


def test_cache_hit_skips_the_model_and_key_includes_n_samples(tiny, tmp_path):
    model, tok, ad = tiny
    kw = dict(corpus="test-texts", texts=TEXTS, model_hash="abc", cache_dir=tmp_path, batch_size=1, progress=False)
    calls, h = _count_forwards(model)
    first = second_moment(model, tok, ad, 1, n_samples=20, **kw)
    assert len(calls) > 0
    calls.clear()
    again = second_moment(model, tok, ad, 1, n_samples=20, **kw)
    assert len(calls) == 0 and torch.equal(first, again)
    other = second_moment(model, tok, ad, 1, n_samples=30, **kw)  # different key -> recomputed, different C
    h.remove()
    assert len(calls) > 0 and not torch.equal(first, other)
    assert cache_path(tmp_path, "abc", 1, "test-texts", 20, 256).exists()
    assert cache_path(tmp_path, "abc", 1, "test-texts", 30, 256).exists()


def test_several_layers_one_pass(tiny, tmp_path):
    model, tok, ad = tiny
    kw = dict(corpus="test-texts", texts=TEXTS, model_hash="m", n_samples=1000, batch_size=3, progress=False)
    calls, h = _count_forwards(model)
    both = second_moments(model, tok, ad, [2, 0], cache_dir=tmp_path / "a", **kw)
    h.remove()
    assert sorted(both) == [0, 2]
    assert len(calls) == 1  # 3 texts, batch of 3: one forward for both layers
    single = second_moment(model, tok, ad, 2, cache_dir=tmp_path / "b", **kw)
    torch.testing.assert_close(both[2], single)


def test_texts_callable_is_only_opened_when_something_is_missing(tiny, tmp_path):
    model, tok, ad = tiny
    opened = []

    def texts():
        opened.append(1)
        return iter(TEXTS)

    kw = dict(corpus="lazy", texts=texts, model_hash="lz", cache_dir=tmp_path, n_samples=50, progress=False)
    first = second_moments(model, tok, ad, [1], **kw)
    assert opened == [1]
    again = second_moments(model, tok, ad, [1], **kw)  # cached: the corpus is never opened
    assert opened == [1] and torch.equal(first[1], again[1])
    torch.testing.assert_close(second_moment(model, tok, ad, 1, **{**kw, "texts": TEXTS, "cache_dir": tmp_path / "b"}),
                               first[1])


def test_strip_wiki_markup():
    raw = ("{{Infobox person|name=X|born={{birth date|1900|1|1}}}}\n'''Ada Lovelace''' was an [[England|English]] "
           "[[mathematician]].<ref>Some book, p. 3</ref> She wrote ''notes''.<ref name=\"a\"/>\n\n== Life ==\n"
           "[[File:Ada.jpg|thumb|A [[portrait]] of her]]\n{| class=\"wikitable\"\n|-\n| cell || cell\n|}\n"
           "* She worked with [http://example.org Charles Babbage] on the engine for years.\n[[Category:Women]]")
    paras = strip_wiki_markup(raw)
    text = " ".join(paras)
    assert "Ada Lovelace was an English mathematician. She wrote notes." in text
    assert "She worked with Charles Babbage on the engine for years." in text
    for junk in ("[[", "]]", "{{", "}}", "'''", "<ref", "Life", "thumb", "cell", "Category", "http"):
        assert junk not in text


@pytest.mark.skipif(importlib.util.find_spec("gensim") is None, reason="pip install --no-deps gensim")
def test_gensim_wiki_is_real_article_text():
    from editbench.data.corpora import gensim_wiki_articles

    arts = dict(a for _, a in zip(range(3), gensim_wiki_articles()))
    assert "Anarchism" in arts
    body = arts["Anarchism"]
    assert body.startswith("Anarchism is a political philosophy that advocates self-governed societies")
    assert len(body) > 10_000
    for junk in ("[[", "{{", "'''", "<ref", "&quot;", "</"):
        assert junk not in body


def test_auto_corpus_resolution():
    assert resolve_corpus("auto", model_id="factworld") == "factworld"
    assert resolve_corpus("auto", model_id="smollm2-135m") == "gensim-wiki"
    assert resolve_corpus("wikitext") == "wikitext"
    with pytest.raises(ValueError):
        resolve_corpus("nope")


def test_context_templates_seeded():
    model, tok = build_tiny("tiny-gpt2")
    a = context_templates(model, tok, seed=1)
    model2, _ = build_tiny("tiny-gpt2")  # same weights, different object: no cache involved
    assert context_templates(model2, tok, seed=1) == a
    assert context_templates(model2, tok, seed=2) != a
    assert a[0] == "{}" and len(a) == 21 and all(t.endswith(". {}") and t.count("{}") == 1 for t in a[1:])
    short = context_templates(model, tok, seed=1, spec=((3, 2),))
    assert len(short) == 3
