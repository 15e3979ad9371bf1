"""Architecture adapters: from a config's ``model_type`` to module paths and weight orientation.

Editors never hard-code module paths; they ask the adapter for the block, the MLP input/output projections, the
final norm and the LM head of a model. GPT-2 stores its MLP weights as ``Conv1D`` with shape (in, out); every
other family stores ``nn.Linear`` weights as (out, in). :meth:`ModelAdapter.weight_out_in` and
:meth:`ModelAdapter.add_delta` hide that difference: editors think in (out, in) = ``W @ k`` terms.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class _Family:
    blocks: str          # attribute path of the ModuleList of decoder blocks
    mlp_in: str          # relative to a block: the MLP input (up) projection
    mlp_out: str         # relative to a block: the MLP output (down) projection, the matrix ROME/MEMIT edit
    final_norm: str
    lm_head: str
    embed: str
    conv1d: bool = False  # weights stored (in, out)
    attn: str = "self_attn"  # relative to a block: the attention module (its output enters the residual stream)


FAMILIES: dict[str, _Family] = {
    "gpt2": _Family("transformer.h", "mlp.c_fc", "mlp.c_proj", "transformer.ln_f", "lm_head", "transformer.wte", True,
                    attn="attn"),
    "gptj": _Family("transformer.h", "mlp.fc_in", "mlp.fc_out", "transformer.ln_f", "lm_head", "transformer.wte",
                    attn="attn"),
    # GPT-NeoX's head is "lm_head" since transformers 5 ("embed_out" before); the properties below ask the model.
    "gpt_neox": _Family("gpt_neox.layers", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h", "gpt_neox.final_layer_norm",
                        "lm_head", "gpt_neox.embed_in", attn="attention"),
    "llama": _Family("model.layers", "mlp.up_proj", "mlp.down_proj", "model.norm", "lm_head", "model.embed_tokens"),
}
for _alias in ("qwen2", "mistral", "qwen3", "olmo", "gemma", "gemma3_text"):
    FAMILIES[_alias] = FAMILIES["llama"]


def _get(root: torch.nn.Module, path: str) -> torch.nn.Module:
    mod = root
    for part in path.split("."):
        mod = getattr(mod, part)
    return mod


class ModelAdapter:
    """Module paths and weight orientation of one loaded model."""

    def __init__(self, model: torch.nn.Module):
        cfg = model.config
        self.model_type: str = cfg.model_type
        if self.model_type not in FAMILIES:
            raise ValueError(f"no architecture adapter for model_type {self.model_type!r}; supported: {sorted(FAMILIES)}")
        self.family = FAMILIES[self.model_type]
        self.model = model
        self.n_layers: int = len(_get(model, self.family.blocks))
        self.hidden_size: int = cfg.hidden_size if hasattr(cfg, "hidden_size") else cfg.n_embd

    # -- module paths -------------------------------------------------------------------------------------
    def block_name(self, layer: int) -> str:
        return f"{self.family.blocks}.{layer}"

    def mlp_in_name(self, layer: int) -> str:
        return f"{self.block_name(layer)}.{self.family.mlp_in}"

    def mlp_out_name(self, layer: int) -> str:
        return f"{self.block_name(layer)}.{self.family.mlp_out}"

    def mlp_out_weight_name(self, layer: int) -> str:
        """Parameter name of the edited MLP output matrix, as in ``model.named_parameters()``."""
        return f"{self.mlp_out_name(layer)}.weight"

    def attn_name(self, layer: int) -> str:
        return f"{self.block_name(layer)}.{self.family.attn}"

    def block(self, layer: int) -> torch.nn.Module:
        return _get(self.model, self.block_name(layer))

    def attn(self, layer: int) -> torch.nn.Module:
        """The attention module of ``layer`` (causal tracing restores its output)."""
        return _get(self.model, self.attn_name(layer))

    def mlp_in(self, layer: int) -> torch.nn.Module:
        return _get(self.model, self.mlp_in_name(layer))

    def mlp_out(self, layer: int) -> torch.nn.Module:
        return _get(self.model, self.mlp_out_name(layer))

    @property
    def final_norm(self) -> torch.nn.Module:
        return _get(self.model, self.family.final_norm)

    @property
    def lm_head(self) -> torch.nn.Module:
        """The output projection (``get_output_embeddings``: right across transformers versions' renames)."""
        head = self.model.get_output_embeddings() if hasattr(self.model, "get_output_embeddings") else None
        return head if head is not None else _get(self.model, self.family.lm_head)

    @property
    def embed(self) -> torch.nn.Module:
        emb = self.model.get_input_embeddings() if hasattr(self.model, "get_input_embeddings") else None
        return emb if emb is not None else _get(self.model, self.family.embed)

    def _module_name(self, module: torch.nn.Module) -> str:
        return next(n for n, m in self.model.named_modules(remove_duplicate=False) if m is module)

    @property
    def lm_head_name(self) -> str:
        """Module path of the LM head (its weight is ``f"{lm_head_name}.weight"``; shared with the embedding
        when :attr:`tied_lm_head`)."""
        return self._module_name(self.lm_head)

    @property
    def embed_name(self) -> str:
        return self._module_name(self.embed)

    @property
    def tied_lm_head(self) -> bool:
        """True when the LM head's weight *is* the input embedding (GPT-2, SmolLM2, ...)."""
        return self.lm_head.weight.data_ptr() == self.embed.weight.data_ptr()

    @property
    def mlp_width(self) -> int:
        """Dimension of the keys (inputs of the MLP output matrix)."""
        return self.weight_out_in(0).shape[1]

    # -- orientation ---------------------------------------------------------------------------------------
    @property
    def conv1d(self) -> bool:
        return self.family.conv1d

    def weight_out_in(self, layer: int) -> torch.Tensor:
        """The MLP output matrix as (out=d_model, in=d_mlp), a view (not a copy)."""
        w = self.mlp_out(layer).weight
        return w.T if self.conv1d else w

    @torch.no_grad()
    def add_delta(self, layer: int, delta_out_in: torch.Tensor) -> None:
        """Add an (out, in)-oriented update to the MLP output matrix of ``layer`` in place."""
        w = self.mlp_out(layer).weight
        d = delta_out_in.T if self.conv1d else delta_out_in
        w.add_(d.to(w.device, w.dtype))


def adapter_for(model: torch.nn.Module) -> ModelAdapter:
    return ModelAdapter(model)
