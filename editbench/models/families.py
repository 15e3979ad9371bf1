"""The decoder families editbench is tested on, at tiny size, and the support table generated from them.

:data:`TESTED` lists the ``model_type``\\ s whose tiny random models (built here from transformers' own config
classes: 2 layers, hidden size 32, MLP width 64, the tiny tokenizer's vocabulary; no downloads) are edited by
``null``, ROME and MEMIT in ``tests/test_families.py``; :data:`REFUSED` those the adapter must refuse, and why.
:func:`support_table` renders both as the Markdown table in ``docs/models.md`` (a test keeps the two equal;
``python -m editbench.models.families`` prints it).
"""
from __future__ import annotations

import torch

from editbench.models.adapter import AdapterError, check_config
from editbench.models.tiny import build_tokenizer

N_LAYERS, HIDDEN, WIDTH, HEADS = 2, 32, 64, 4

TESTED: dict[str, dict] = {
    # model_type -> config settings beyond the shared tiny size (only what the family needs to build)
    "gpt2": {}, "gptj": {"rotary_dim": 4}, "gpt_neox": {"rotary_pct": 0.25}, "llama": {}, "mistral": {},
    "qwen2": {}, "qwen3": {"head_dim": 8}, "gemma": {"head_dim": 8}, "gemma2": {"head_dim": 8},
    "gemma3_text": {"head_dim": 8}, "phi": {}, "phi3": {},
    "falcon": {}, "olmo": {}, "olmo2": {}, "stablelm": {}, "starcoder2": {}, "granite": {}, "cohere": {},
    "gpt_bigcode": {}, "bloom": {}, "smollm3": {},  # cohere keeps its logit_scale 1/16: its edits move NLL least (~0.1)
}
REFUSED: dict[str, str] = {
    "mixtral": "mixture-of-experts MLP", "qwen2_moe": "mixture-of-experts MLP", "olmoe": "mixture-of-experts MLP",
    "qwen3_moe": "mixture-of-experts MLP",
    "opt": "MLP input flattened to (batch x time) (editbench.models.adapter.REFUSE)",
}
TOKENIZER_STYLE = {"gpt2": "gpt", "gptj": "gpt", "gpt_bigcode": "gpt", "gpt_neox": "neox"}


def installed(model_type: str) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def tiny_config(model_type: str, tok, **overrides):
    """The family's own config class at tiny size, its token ids those of ``tok``, untied LM head."""
    from transformers import AutoConfig

    kw = dict(num_hidden_layers=N_LAYERS, hidden_size=HIDDEN, intermediate_size=WIDTH, num_attention_heads=HEADS,
              num_key_value_heads=2, max_position_embeddings=128, vocab_size=len(tok), tie_word_embeddings=False,
              bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
              pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    kw.update(TESTED.get(model_type, {}))
    kw.update(overrides)
    return AutoConfig.for_model(model_type, **kw)


def build_tiny_family(model_type: str, seed: int = 0, weight_std: float | None = 0.15, **overrides):
    """``(model, tokenizer)`` of ``model_type`` at tiny size, float32, eval mode; the global RNG untouched.

    ``weight_std``: every 2-D weight re-drawn at this std (seeded). At the families' own 0.02 init the residual
    stream is so small that no edit moves a probability (see ``tests/test_memit.py``); None keeps the init."""
    from transformers import AutoModelForCausalLM

    tok = build_tokenizer(TOKENIZER_STYLE.get(model_type, "llama"))
    cfg = tiny_config(model_type, tok, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    if weight_std is not None:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 2:
                    p.normal_(0.0, weight_std, generator=g)
    return model.eval().requires_grad_(False), tok


def support_table() -> str:
    """Markdown: one row per family of :data:`TESTED` and :data:`REFUSED` that the installed transformers has,
    with what the adapter found (on the meta device: no weights)."""
    toks = {s: build_tokenizer(s) for s in ("gpt", "neox", "llama")}
    rows = ["| model_type | status | blocks | MLP output (edited) | MLP input | final norm | weights |",
            "|---|---|---|---|---|---|---|"]
    for mt in sorted(TESTED) + sorted(REFUSED):
        if not installed(mt):
            continue
        try:
            lay = check_config(tiny_config(mt, toks[TOKENIZER_STYLE.get(mt, "llama")]))
        except AdapterError as e:
            why = REFUSED.get(mt, type(e).__name__)
            rows.append(f"| `{mt}` | refused: {why} | | | | | |")
            continue
        status = "tested: null, ROME, MEMIT" if mt in TESTED else "NOT REFUSED (table out of date)"
        rows.append(f"| `{mt}` | {status} | `{lay.blocks}` | `{lay.mlp_out}` | `{lay.mlp_in}` | `{lay.final_norm}` "
                    f"| {'Conv1D (in, out)' if lay.conv1d else 'Linear (out, in)'} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(support_table(), end="")
