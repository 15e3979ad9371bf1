"""Tiny random-weight models, one per architecture family, for testing every editor's code path on CPU.

Each model is built from its family's real ``transformers`` config class (so module names, weight orientation,
biases, rotary embeddings, grouped-query attention and parallel residuals are the real ones), with 4 layers,
d_model 32 and a few-hundred-token vocabulary. Weights are the family's own initialisation under a fixed seed,
so the same seed gives the same bytes (see :func:`editbench.models.loader.state_hash`).

The tokenizer is built in code with the ``tokenizers`` library — no files, no downloads. It is byte-level like
GPT-2's (every string is encodable: unknown words fall back to single byte-characters, a leading space is part of
the following word, ``"Ġ"`` in token strings) with a fixed whole-word vocabulary, segmented by a
:class:`tokenizers.models.Unigram` model whose scores make a known whole word always win over its pieces. The
family's tokenizer conventions are kept on purpose so that padding/BOS bugs in scoring code surface in tests:

==============  ==================  =====================  ============  ===========
model           special tokens      pad token              padding side  adds BOS
==============  ==================  =====================  ============  ===========
tiny-gpt2       <|endoftext|>       none (like GPT-2)      right         no
tiny-gptj       <|endoftext|>       none (like GPT-J)      right         no
tiny-neox       <|endoftext|>,      <|padding|>            right         no
                <|padding|>
tiny-llama      <unk>, <s>, </s>    </s>                   **left**      yes (<s>)
==============  ==================  =====================  ============  ===========
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

from editbench.models.profiles import ModelProfile

# A fixed vocabulary of whole words: function words, fact-sentence words (CounterFact-style relations, places,
# languages, professions, companies), fact-world-style words and a few names. Anything else is spelled in bytes.
WORDS = """
the a an of in on at to for from by with and or but not no is was are were be been being has have had do does
did will would can could should may might must it its he she they them his her their this that these those who
whom whose which what where when why how there here than then so as if about into over under after before
between during through up down out off again also only very more most other some any each every all both one
two three four five six seven eight nine ten first second third last new old same own such many much few
I you we me my your our us him
The A An In On At To For From By With And But It He She They This That These Those What Where When Who Which
How There His Her Their Its One
mother tongue native language languages speak speaks spoke spoken official
born died lives lived live living works worked work working employed employer
located location headquarters headquartered based founded founder owned owner owns created creator developed
developer produced producer manufactured manufacturer released
capital city cities country countries citizen citizenship nationality continent region state town
plays played play player position instrument genre music musician song album band
profession occupation job field known famous named name called
religion religious affiliated affiliation member part belongs
original originally aired network channel broadcast television radio show series
university college school studied educated
president minister king queen leader head chief
France French Paris English England London Germany German Berlin Italy Italian Rome Spain Spanish Madrid
Japan Japanese Tokyo China Chinese Beijing Russia Russian Moscow India Hindi Canada Toronto America American
Sweden Swedish Norway Norwegian Finland Finnish Dutch Netherlands Amsterdam Poland Polish Greece Greek Latin
Europe Asia Africa Antarctica Australia Brazil Portuguese Mexico Egypt Arabic Turkey Turkish Korea Korean
Microsoft Apple Google IBM Toyota Nokia Sony BBC CBS NBC ABC Fox
Christianity Islam Buddhism Judaism Catholic
piano guitar violin drums jazz opera rock pop
actor actress singer writer poet painter politician scientist physicist chemist footballer goalkeeper
midfielder forward defender quarterback pitcher composer journalist architect lawyer doctor teacher
Danielle Darrieux Toko Yasuda Autonomous University Madrid Thomas Joseph Edward John Paul Peter Mary Anna
review movie film book story plot acting great good bad terrible awful wonderful boring fun loved hated
positive negative sentiment question answer true false yes no maybe follows claim fact sentence
paraphrase same different means grammatical acceptable unacceptable correct wrong
""".split()

SPECIALS = {
    "gpt": ["<|endoftext|>"],
    "neox": ["<|endoftext|>", "<|padding|>"],
    "llama": ["<unk>", "<s>", "</s>"],
}


def _vocab(specials: list[str]) -> list[tuple[str, float]]:
    """Specials, then the 256 byte-level characters, then every word with and without its leading space.

    Unigram picks the segmentation with the highest total score: a whole word (score -1) always beats two or more
    byte-characters (score -10 each), so known words are single tokens and the rest is spelled out.
    """
    vocab = [(s, 0.0) for s in specials]
    vocab += [(c, -10.0) for c in sorted(pre_tokenizers.ByteLevel.alphabet())]
    seen = {v for v, _ in vocab}
    for w in WORDS:
        for piece in (w, "\u0120" + w):  # "Ġ" is the byte-level spelling of a leading space
            if piece not in seen:
                seen.add(piece)
                vocab.append((piece, -1.0))
    return vocab


def build_tokenizer(style: str):
    """A deterministic byte-level fast tokenizer in the conventions of ``style`` ("gpt", "neox" or "llama")."""
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS[style]
    vocab = _vocab(specials)
    tk = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=False))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens(specials)
    if style == "llama":  # Llama prepends BOS to every encoded sequence
        tk.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
        return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                       pad_token="</s>", padding_side="left", model_max_length=256)
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    eot = "<|endoftext|>"
    kw = dict(unk_token=eot, bos_token=eot, eos_token=eot, padding_side="right", model_max_length=256)
    if style == "neox":
        kw["pad_token"] = "<|padding|>"
    return PreTrainedTokenizerFast(tokenizer_object=tk, **kw)


@dataclass(frozen=True)
class TinySpec:
    """How one tiny model is built: family config overrides (on top of the shared size) and tokenizer style."""

    model_type: str
    tokenizer_style: str
    description: str


TINY: dict[str, TinySpec] = {
    "tiny-gpt2": TinySpec("gpt2", "gpt", "random GPT-2 (Conv1D weights, tied LM head), 4 layers, d=32"),
    "tiny-gptj": TinySpec("gptj", "gpt", "random GPT-J (parallel attn+MLP, partial rotary), 4 layers, d=32"),
    "tiny-neox": TinySpec("gpt_neox", "neox", "random GPT-NeoX (parallel residual, untied head), 4 layers, d=32"),
    "tiny-llama": TinySpec("llama", "llama", "random Llama (SwiGLU, GQA, RMSNorm, untied), 4 layers, d=32"),
}

N_LAYERS, D_MODEL, N_HEADS, N_POS = 4, 32, 4, 256


def _config(model_type: str, tok):
    """The family's config at tiny size, with token ids matching ``tok``."""
    from transformers import GPT2Config, GPTJConfig, GPTNeoXConfig, LlamaConfig

    ids = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
               pad_token_id=tok.pad_token_id)
    if model_type == "gpt2":  # MLP width 4d = 128, Conv1D (in, out) weights, biases, tied head
        return GPT2Config(n_layer=N_LAYERS, n_embd=D_MODEL, n_head=N_HEADS, n_positions=N_POS, **ids)
    if model_type == "gptj":  # attention and MLP in parallel from one LayerNorm; rotary on 4 of 8 head dims
        return GPTJConfig(n_layer=N_LAYERS, n_embd=D_MODEL, n_head=N_HEADS, n_positions=N_POS, rotary_dim=4,
                          tie_word_embeddings=False, **ids)
    if model_type == "gpt_neox":  # MLP width 4d = 128, parallel residual, untied head
        return GPTNeoXConfig(num_hidden_layers=N_LAYERS, hidden_size=D_MODEL, num_attention_heads=N_HEADS,
                             intermediate_size=4 * D_MODEL, max_position_embeddings=N_POS, rotary_pct=0.25,
                             tie_word_embeddings=False, **ids)
    if model_type == "llama":  # SwiGLU width 96 (≈ 8/3·d, ≠ 4d on purpose), 2 KV heads for 4 query heads
        return LlamaConfig(num_hidden_layers=N_LAYERS, hidden_size=D_MODEL, intermediate_size=96,
                           num_attention_heads=N_HEADS, num_key_value_heads=2, max_position_embeddings=N_POS,
                           tie_word_embeddings=False, **ids)
    if model_type in ("qwen2", "mistral"):  # Llama-family relatives (same module paths; Qwen2 has qkv biases)
        from transformers import AutoConfig

        return AutoConfig.for_model(model_type, num_hidden_layers=N_LAYERS, hidden_size=D_MODEL,
                                    intermediate_size=96, num_attention_heads=N_HEADS, num_key_value_heads=2,
                                    max_position_embeddings=N_POS, tie_word_embeddings=False, **ids)
    raise ValueError(f"no tiny config for model_type {model_type!r}")


def build_family(model_type: str, seed: int = 0, tokenizer_style: str = "llama", **config_overrides):
    """``(model, tokenizer)`` of any supported family at tiny size, e.g. ``build_family("qwen2")`` — for tests of
    architectures that are not built-ins. ``config_overrides`` are set on the config (e.g. tie_word_embeddings)."""
    from transformers import AutoModelForCausalLM

    tok = build_tokenizer(tokenizer_style)
    cfg = _config(model_type, tok)
    for k, v in config_overrides.items():
        setattr(cfg, k, v)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    return model.eval(), tok


def build_tiny(name: str, seed: int = 0):
    """Build ``(model, tokenizer)`` for a tiny model by name (see :data:`TINY`), float32, eval mode, on CPU.

    The global torch RNG is left untouched (the seeded initialisation runs inside ``fork_rng``).
    """
    if name not in TINY:
        raise KeyError(f"unknown tiny model {name!r}; known: {sorted(TINY)}")
    spec = TINY[name]
    return build_family(spec.model_type, seed=seed, tokenizer_style=spec.tokenizer_style)


def _profile(name: str) -> ModelProfile:
    """A tiny model's profile: random weights (a fixture, not a real LM), byte-level tokenizer, N_LAYERS layers."""
    return ModelProfile(name, TINY[name].description, loader="editbench.models.loader:load_tiny", label=name,
                        preset_keys=(name,), n_layers=N_LAYERS, byte_level=True, real=False)


TINY_GPT2, TINY_GPTJ, TINY_NEOX, TINY_LLAMA = (_profile(n) for n in TINY)  # registered in editbench.registry
