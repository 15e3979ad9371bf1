"""A word-level fast tokenizer for the fact world, loadable with ``AutoTokenizer.from_pretrained(dir)``.

Pre-tokenization splits on whitespace and punctuation (``\\w+|[^\\w\\s]+``) and drops the spaces, so
``" Paris"`` and ``"Paris"`` are the same single token. That makes the ROME scoring convention -- tokenize
``" " + target`` separately from the prompt and concatenate ids -- give exactly the ids of the sentence.
The vocabulary is every word the world, corpus and task generators can write (closed word lists), in a
deterministic order.
"""
from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from editbench.factworld import corpus as C
from editbench.factworld import tasks as T
from editbench.factworld.world import FIRST_NAMES, LAST_NAMES, MIDDLE_NAMES, RELATIONS, World

EOS, PAD, UNK = "<|endoftext|>", "<pad>", "<unk>"


def world_words(world: World) -> list[str]:
    """All raw text pieces the generators draw from (pre-tokenized later)."""
    words: list[str] = []
    words += list(FIRST_NAMES) + list(MIDDLE_NAMES) + list(LAST_NAMES)
    for r in RELATIONS:  # the task sentences use every relation, the world its first n_relations
        words += list(r.templates) + [r.question] + list(r.objects)
    words += C.filler_words() + T.task_words()
    return words


def build_tokenizer(world: World) -> PreTrainedTokenizerFast:
    pre = pre_tokenizers.Whitespace()
    vocab: dict[str, int] = {EOS: 0, PAD: 1, UNK: 2}
    for piece in world_words(world):
        for w, _ in pre.pre_tokenize_str(piece.replace("{}", " ")):
            if w not in vocab:
                vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, unk_token=UNK,
                                   bos_token=EOS, model_max_length=512)
    return fast
