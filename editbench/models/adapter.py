"""Architecture adapters: what editors need of a model, found from its module tree and config.

Editors never hard-code module paths; they ask the adapter for the block, the MLP input/output projections,
the attention, the final norm and the LM head of a model. Nothing is keyed by ``model_type``: the layout is
read off the model itself (:func:`find_layout`):

- **blocks**: the ``nn.ModuleList`` whose length is the config's layer count (``num_hidden_layers`` /
  ``n_layer``), the one holding the most parameters if several do;
- **MLP output projection** (the matrix ROME/MEMIT edit): the one ``nn.Linear`` / ``Conv1D`` in a block,
  outside its attention, that maps a width other than the hidden size back to the hidden size;
- **MLP input projection**: in the same module, the projection from the hidden size to that width (for gated
  MLPs the *up* projection, not the gate; a fused gate+up matrix of twice the width where there is one);
- **attention**: the block's child whose class is an attention module;
- **final norm**: the one norm module of the decoder (the blocks' parent) outside the blocks and the
  embeddings; **LM head** and **embeddings**: ``get_output_embeddings`` / ``get_input_embeddings``;
- **orientation**: GPT-2's ``Conv1D`` stores weights (in, out), ``nn.Linear`` (out, in), told by class.

:data:`OVERRIDES` holds paths structure cannot decide (empty for every family tested) and :data:`REFUSE` the
families whose blocks cannot be edited for reasons only a forward pass shows (OPT). A model that cannot be adapted
raises :class:`AdapterError` naming why: mixture-of-experts MLPs (:class:`MixtureOfExpertsError`), no single
dense MLP output projection, blocks that differ from each other, no final norm, a projection between the final
norm and the LM head. :meth:`ModelAdapter.weight_out_in` and :meth:`ModelAdapter.add_delta` hide the
orientation: editors think in (out, in) = ``W @ k`` terms.
"""
from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import torch

from editbench.models.head import postprocess_logits


class AdapterError(ValueError):
    """No architecture adapter can be built for this model; the message says why."""


class MixtureOfExpertsError(AdapterError):
    """The model's MLPs are mixtures of experts: no single dense output projection for ROME/MEMIT to edit."""


@dataclass(frozen=True)
class Layout:
    """Where things are in one model. Paths are ``named_modules`` names; the per-block ones are relative to a
    block (``""`` would be the block itself)."""

    model_type: str
    blocks: str          # the ModuleList of decoder blocks
    mlp_in: str          # relative to a block: the MLP input (up) projection
    mlp_out: str         # relative to a block: the MLP output (down) projection, the matrix ROME/MEMIT edit
    attn: str            # relative to a block: the attention module (its output enters the residual stream)
    final_norm: str      # the norm applied after the last block, before the LM head
    conv1d: bool         # MLP weights stored (in, out) (transformers' Conv1D)
    n_layers: int
    hidden_size: int
    mlp_width: int


OVERRIDES: dict[str, dict[str, str]] = {}
"""``model_type`` -> :class:`Layout` fields (``mlp_in``, ``mlp_out``, ``attn``, ``final_norm``) for what the
module tree cannot decide; each entry must say why in a comment. Overridden paths are still checked to exist."""

REFUSE: dict[str, str] = {
    # OPTDecoderLayer reshapes the hidden states to (batch * time, hidden) before fc1/fc2, so the MLP output
    # projection's input has no (batch, time) axes for the editors' per-position keys and insertions.
    "opt": "its decoder layer flattens (batch, time) into one axis before the MLP, so the MLP output projection "
           "sees no per-position inputs for the editors' keys and insertions",
}
"""``model_type`` -> why it is refused, for what the module tree cannot show (it appears only when running)."""

_MOE = re.compile(r"(experts?|router|moe(block|layer|mlp)?)$", re.I)  # class names: MixtralExperts, ...SparseMoeBlock
_ATTN_NAMES = ("self_attn", "attn", "attention", "self_attention")


def _get(root: torch.nn.Module, path: str) -> torch.nn.Module:
    mod = root
    for part in filter(None, path.split(".")):
        mod = getattr(mod, part)
    return mod


def _is_conv1d(m: torch.nn.Module) -> bool:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers is a dependency
        return False
    return isinstance(m, Conv1D)


def _in_out(m: torch.nn.Module) -> tuple[int, int] | None:
    """(in, out) features of a Linear / Conv1D, None for anything else."""
    if isinstance(m, torch.nn.Linear):
        return m.in_features, m.out_features
    if _is_conv1d(m):
        return tuple(m.weight.shape)  # (in, out)
    return None


def _is_norm(m: torch.nn.Module) -> bool:
    name = type(m).__name__.lower()
    return isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)) or ("norm" in name and "rotary" not in name)


def _config_int(cfg, *names) -> int | None:
    for n in names:
        v = getattr(cfg, n, None)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _under(name: str, prefix: str) -> bool:
    return bool(prefix) and (name == prefix or name.startswith(prefix + "."))


def _find_blocks(model: torch.nn.Module, n_layers: int | None, what: str) -> str:
    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    if n_layers is not None:
        lists = [(n, m) for n, m in lists if len(m) == n_layers]
    if not lists:
        raise AdapterError(f"{what}: no ModuleList of {n_layers} decoder blocks (the config's layer count) in the "
                           "module tree")
    return max(lists, key=lambda nm: (_n_params(nm[1]), -nm[0].count(".")))[0]


def _find_attn(block: torch.nn.Module, what: str) -> str:
    children = list(block.named_children())
    for n, m in children:
        cls = type(m).__name__.lower()
        if "attention" in cls or "attn" in cls:
            return n
    for n, _m in children:
        if n in _ATTN_NAMES:
            return n
    raise AdapterError(f"{what}: no attention module among the block's children ({', '.join(n for n, _ in children)})")


def _check_not_moe(cfg, block: torch.nn.Module, what: str) -> None:
    n_exp = _config_int(cfg, "num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
    hits = [n for n, m in block.named_modules()
            if n and (_MOE.search(type(m).__name__) or n.rpartition(".")[2] in ("experts", "router"))]
    if hits or (n_exp or 0) > 1:
        where = f"modules {', '.join(hits[:3])}" if hits else f"{n_exp} experts in the config"
        raise MixtureOfExpertsError(
            f"{what}: mixture-of-experts MLP ({where}): ROME/MEMIT-style editors write one dense MLP output "
            "projection per layer, and here each token is routed to some of several experts, so there is no single "
            "matrix whose update applies to every prompt")


def _find_mlp(block: torch.nn.Module, attn: str, hidden: int, what: str) -> tuple[str, str, int]:
    """(mlp_in, mlp_out, width) relative to the block."""
    lin = [(n, _in_out(m)) for n, m in block.named_modules() if _in_out(m) is not None and not _under(n, attn)]
    outs = [(n, io) for n, io in lin if io[1] == hidden and io[0] != hidden]
    if len(outs) != 1:
        found = f"{len(outs)} ({', '.join(n for n, _ in outs)})" if outs else "none"
        raise AdapterError(f"{what}: no single dense MLP output projection (a Linear/Conv1D outside the attention "
                           f"mapping a width != hidden size {hidden} back to {hidden}); found {found}")
    out_name, (width, _) = outs[0]
    mlp = out_name.rpartition(".")[0]
    ins = [(n, io) for n, io in lin if (not mlp or _under(n, mlp)) and io[0] == hidden and io[1] in (width, 2 * width)]
    if not ins:
        raise AdapterError(f"{what}: the MLP output projection {out_name} ({width} -> {hidden}) has no input "
                           f"projection ({hidden} -> {width}) beside it")
    # a gated MLP has gate and up projections of the same shape: the up projection is the one ROME-style editors
    # and MEND call the MLP input (its output multiplies the activated gate); a fused gate+up (2 x width) otherwise
    ins.sort(key=lambda nio: ("gate" in nio[0].rpartition(".")[2], nio[1][1] != width, nio[0]))
    return ins[0][0], out_name, width


def _find_final_norm(model: torch.nn.Module, blocks: str, what: str) -> str:
    decoder = blocks.rpartition(".")[0]
    root = _get(model, decoder)
    prefix = f"{decoder}." if decoder else ""
    cands = [prefix + n for n, m in root.named_modules() if n and _is_norm(m)
             and not _under(prefix + n, blocks) and "emb" not in n.lower()]
    if len(cands) != 1:
        found = ", ".join(cands) if cands else "none"
        raise AdapterError(f"{what}: no single final norm after the blocks (norm modules of {decoder or 'the model'} "
                           f"outside the blocks and embeddings: {found})")
    return cands[0]


def find_layout(model: torch.nn.Module) -> Layout:
    """The :class:`Layout` of ``model`` (works on the meta device: shapes only, no weights read)."""
    cfg = model.config
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    model_type = str(getattr(cfg, "model_type", type(model).__name__))
    what = f"model_type {model_type!r} ({type(model).__name__})"
    if model_type in REFUSE:
        raise AdapterError(f"{what}: not supported: {REFUSE[model_type]}")
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if head is None or embed is None or getattr(head, "weight", None) is None:
        raise AdapterError(f"{what}: no LM head (get_output_embeddings) or no input embeddings: not a causal LM "
                           "with an output projection")
    hidden = _config_int(text, "hidden_size", "n_embd", "d_model") or int(embed.weight.shape[-1])
    if head.weight.dim() != 2 or head.weight.shape[1] != hidden:
        raise AdapterError(f"{what}: the LM head reads {tuple(head.weight.shape)[1:]} features, not the hidden size "
                           f"{hidden}: a projection sits between the last block and the head")
    blocks = _find_blocks(model, _config_int(text, "num_hidden_layers", "n_layer", "num_layers"), what)
    block_list = _get(model, blocks)
    over = OVERRIDES.get(model_type, {})
    _check_not_moe(text, block_list[0], what)
    attn = over.get("attn") or _find_attn(block_list[0], what)
    mlp_in, mlp_out, width = _find_mlp(block_list[0], attn, hidden, what)
    mlp_in, mlp_out = over.get("mlp_in", mlp_in), over.get("mlp_out", mlp_out)
    conv1d = _is_conv1d(_get(block_list[0], mlp_out))
    for i, block in enumerate(block_list):
        try:
            io = _in_out(_get(block, mlp_out))
            _get(block, mlp_in), _get(block, attn)
        except AttributeError:
            io = None
        if io is None or io != _in_out(_get(block_list[0], mlp_out)):
            raise AdapterError(f"{what}: block {i} differs from block 0 (no {mlp_out} of the same shape): layers of "
                               "different structure are not supported")
    final_norm = over.get("final_norm") or _find_final_norm(model, blocks, what)
    return Layout(model_type, blocks, mlp_in, mlp_out, attn, final_norm, conv1d, len(block_list), hidden, width)


_LAYOUTS: "weakref.WeakKeyDictionary[torch.nn.Module, Layout]" = weakref.WeakKeyDictionary()


def layout_of(model: torch.nn.Module) -> Layout:
    """:func:`find_layout`, once per model object (editors build an adapter per edit; the tree does not change)."""
    got = _LAYOUTS.get(model)
    if got is None:
        got = _LAYOUTS[model] = find_layout(model)
    return got


def check_config(config) -> Layout:
    """The layout a causal LM of ``config`` would have, from a weightless instance on the meta device (no weights
    allocated or read): :class:`AdapterError` if no adapter is possible. ValueError for a config that is not a
    causal LM's."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return find_layout(model)


class ModelAdapter:
    """Module paths and weight orientation of one loaded model (its :class:`Layout`)."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.layout: Layout = layout_of(model)
        self.model_type: str = self.layout.model_type
        self.n_layers: int = self.layout.n_layers
        self.hidden_size: int = self.layout.hidden_size

    # -- module paths -------------------------------------------------------------------------------------
    def block_name(self, layer: int) -> str:
        return f"{self.layout.blocks}.{layer}"

    def mlp_in_name(self, layer: int) -> str:
        return f"{self.block_name(layer)}.{self.layout.mlp_in}"

    def mlp_out_name(self, layer: int) -> str:
        return f"{self.block_name(layer)}.{self.layout.mlp_out}"

    def mlp_out_weight_name(self, layer: int) -> str:
        """Parameter name of the edited MLP output matrix, as in ``model.named_parameters()``."""
        return f"{self.mlp_out_name(layer)}.weight"

    def attn_name(self, layer: int) -> str:
        return f"{self.block_name(layer)}.{self.layout.attn}"

    @property
    def final_norm_name(self) -> str:
        return self.layout.final_norm

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
        return _get(self.model, self.layout.final_norm)

    @property
    def lm_head(self) -> torch.nn.Module:
        """The output projection (``get_output_embeddings``: right across transformers versions' renames)."""
        return self.model.get_output_embeddings()

    @property
    def embed(self) -> torch.nn.Module:
        return self.model.get_input_embeddings()

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits from a last-block hidden state: final norm, LM head, then the config's logit post-processing
        that no module holds (Granite's ``logits_scaling``, Cohere's ``logit_scale``, Gemma-2's
        ``final_logit_softcapping``); nothing more for GPT-2, GPT-J, GPT-NeoX and the Llama family."""
        return postprocess_logits(self.model.config, self.lm_head(self.final_norm(hidden)))

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
        return self.layout.mlp_width

    # -- orientation ---------------------------------------------------------------------------------------
    @property
    def conv1d(self) -> bool:
        return self.layout.conv1d

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


__all__ = ["AdapterError", "Layout", "MixtureOfExpertsError", "ModelAdapter", "OVERRIDES", "REFUSE", "adapter_for",
           "check_config", "find_layout", "layout_of"]
