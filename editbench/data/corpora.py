"""Generic text corpora for second-moment statistics (ROME's C = E[k kᵀ], MEMIT's per-layer C).

ROME and MEMIT need the distribution of an MLP layer's keys over "generic" text, i.e. text like the model's
pretraining data. Corpus ids:

- ``"wikitext"``: wikitext-103-raw-v1 (train split) through the ``datasets`` library, streamed. This is the
  real online path for hub models (the reference uses Wikipedia). Offline it fails with a clear error.
- ``"gensim-wiki"``: real English Wikipedia, offline. ``pip install --no-deps gensim`` ships a shortened dump
  of the first ~106 articles (``enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``,
  ~590k GPT-2 tokens). We locate the file *without importing gensim* (gensim pulls scipy etc.), parse the XML
  with ``xml.etree.iterparse`` and strip the wiki markup into plain paragraphs.
- ``"factworld"``: the training documents of the embedded fact world (:mod:`editbench.factworld`), the
  fact-world models' "pretraining" distribution; epochs are chained until the caller stops reading. The fact
  world sits beside the layer stack, so it is reached by name (:data:`CORPUS_SOURCES`), never imported here.
- ``"auto"``: the model profile's corpus (:func:`resolve_corpus`): ``gensim-wiki`` unless the profile names
  its own (the fact world's: ``factworld``).

Every corpus is an iterator of plain-text strings (one article / document each).
"""
from __future__ import annotations

import bz2
import html
import importlib.metadata
import importlib.util
import itertools
import os
import re
import xml.etree.ElementTree as ET
from typing import Any, Iterator

from editbench.models.cache import local_only
from editbench.models.profiles import profile_of
from editbench.registry import resolve

CORPUS_SOURCES: dict[str, str] = {  # corpus id -> "module:attr" of a function returning its text iterator
    "wikitext": "editbench.data.corpora:wikitext_texts",
    "gensim-wiki": "editbench.data.corpora:gensim_wiki_texts",
    "factworld": "editbench.factworld.corpus:endless_corpus_texts",  # beside the stack: reached by name only
}
CORPORA = (*CORPUS_SOURCES, "auto")
GENSIM_WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


# ---------------------------------------------------------------------------------------------- gensim-wiki
def gensim_wiki_path() -> str:
    """Path of the Wikipedia dump shipped in the gensim wheel, found without importing gensim."""
    candidates = []
    spec = importlib.util.find_spec("gensim")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(os.path.join(loc, "test", "test_data", GENSIM_WIKI_FILE))
    try:
        for f in importlib.metadata.files("gensim") or []:
            if str(f).endswith(GENSIM_WIKI_FILE):
                candidates.append(str(f.locate()))
    except importlib.metadata.PackageNotFoundError:
        pass
    for c in candidates:
        if os.path.exists(c):
            return c
    raise FileNotFoundError(
        "the offline Wikipedia corpus needs the gensim wheel (data file only, gensim is never imported): "
        "run `pip install --no-deps gensim`")


_NESTED_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")                 # innermost {{...}}
_NESTED_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.S)     # innermost {| ... |}
_INNER_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")                  # innermost [[...]]
_EXT_LINK = re.compile(r"\[(?:https?:)?//[^\s\]]+(?:\s([^\]]*))?\]")
_DROP_TAGS = re.compile(r"<(ref|math|gallery|timeline|score|syntaxhighlight|source|imagemap|chem)\b[^>]*?/>"
                        r"|<(ref|math|gallery|timeline|score|syntaxhighlight|source|imagemap|chem)\b[^>]*>.*?</\2\s*>",
                        re.S | re.I)
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_NON_ARTICLE_LINK = re.compile(r"^\s*:?\s*(file|image|category|media|wikipedia|wp|help|template|portal|"
                               r"[a-z]{2,3}(-[a-z]+)?)\s*:", re.I)


def _replace_link(m: re.Match) -> str:
    body = m.group(1)
    if _NON_ARTICLE_LINK.match(body):
        return ""  # images, categories, interlanguage links
    return body.split("|")[-1]


def _fixpoint(pattern: re.Pattern, repl, text: str) -> str:
    while True:
        new = pattern.sub(repl, text)
        if new == text:
            return new
        text = new


def strip_wiki_markup(text: str, min_words: int = 5) -> list[str]:
    """Wiki markup -> plain paragraphs. Drops templates, tables, refs, comments, images/categories, headings;
    keeps link texts (``[[a|b]]`` -> ``b``) and list items' text; removes bold/italic quotes."""
    text = _COMMENT.sub("", text)
    text = _DROP_TAGS.sub("", text)
    text = _fixpoint(_NESTED_TEMPLATE, "", text)
    text = _fixpoint(_NESTED_TABLE, "", text)
    text = _fixpoint(_INNER_LINK, _replace_link, text)
    text = _EXT_LINK.sub(lambda m: m.group(1) or "", text)
    text = _TAG.sub("", text)
    text = re.sub(r"'{2,}", "", text)
    text = html.unescape(text).replace("\u00a0", " ")
    paragraphs, current = [], []
    for line in text.split("\n"):
        s = line.strip()
        if not s or re.match(r"^=+.*=+$", s) or s.startswith(("|", "!", "{", "}")):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        s = re.sub(r"^[*#:;]+\s*", "", s)  # list / indent markers
        current.append(s)
    if current:
        paragraphs.append(" ".join(current))
    out = []
    for p in paragraphs:
        p = re.sub(r"\s+", " ", p).strip()
        p = re.sub(r"\(\s*[,;]?\s*\)", "", p)  # "( )" left behind by removed templates
        p = re.sub(r"\s+([,.;:])", r"\1", p)
        if len(p.split()) >= min_words and "{{" not in p and "[[" not in p:  # drop unbalanced residue
            out.append(p)
    return out


def gensim_wiki_articles(path: str | None = None) -> Iterator[tuple[str, str]]:
    """Yield (title, plain text) of every real article (namespace 0, not a redirect) of the gensim dump."""
    path = path or gensim_wiki_path()
    with bz2.open(path, "rb") as f:
        title, ns = None, None
        for _, elem in ET.iterparse(f, events=("end",)):
            tag = elem.tag.rsplit("}", 1)[-1]
            if tag == "title":
                title = elem.text
            elif tag == "ns":
                ns = elem.text
            elif tag == "text":
                raw = elem.text or ""
                if ns == "0" and not raw.lstrip().upper().startswith("#REDIRECT"):
                    paragraphs = strip_wiki_markup(raw)
                    if paragraphs:
                        yield title, "\n\n".join(paragraphs)
            elif tag == "page":
                elem.clear()


# ---------------------------------------------------------------------------------------------- others
def wikitext_texts(config: str = "wikitext-103-raw-v1", split: str = "train") -> Iterator[str]:
    """wikitext paragraphs via the datasets library (online; streamed). Headings and blank lines skipped."""
    try:
        import datasets

        with local_only():  # EDITBENCH_OFFLINE=1: datasets is local-only too (streaming then fails at once)
            ds = datasets.load_dataset("wikitext", config, split=split, streaming=True)
            it = iter(ds)
            first = next(it)
    except Exception as e:  # offline, hub unreachable, dataset missing
        raise RuntimeError(
            f"corpus 'wikitext' needs the datasets library and the Hugging Face hub (wikitext/{config}); it "
            f"failed with {type(e).__name__}: {e}. Offline, use corpus='gensim-wiki' (pip install --no-deps "
            "gensim) or 'factworld'.") from e
    for row in itertools.chain([first], it):
        t = row["text"].strip()
        if t and not (t.startswith("=") and t.endswith("=")):
            yield t


def gensim_wiki_texts() -> Iterator[str]:
    """The gensim Wikipedia dump's article texts."""
    return (text for _, text in gensim_wiki_articles())


def resolve_corpus(corpus: str, model: Any = None, model_id: str | None = None) -> str:
    """Turn ``"auto"`` into a concrete corpus id: the corpus of the model's profile
    (:func:`editbench.models.profiles.profile_of`: by ``model_id``, the loader's id of ``model`` or its config's
    ``name_or_path``)."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; known: {CORPORA}")
    if corpus != "auto":
        return corpus
    return profile_of(model, model_id).corpus


def corpus_texts(corpus_id: str) -> Iterator[str]:
    """Iterator of plain-text documents of a concrete corpus id (not ``"auto"``: see :func:`resolve_corpus`)."""
    if corpus_id == "auto":
        raise ValueError("resolve 'auto' first with resolve_corpus(corpus, model)")
    if corpus_id not in CORPUS_SOURCES:
        raise ValueError(f"unknown corpus {corpus_id!r}; known: {CORPORA}")
    return resolve(CORPUS_SOURCES[corpus_id])()
