"""The rows and forward passes of the value optimisations (ROME's v*, MEMIT's z): one fast, one straightforward.

:func:`build_batch` lays out one request's rows (:class:`VBatch`): each context template with the prompt and the
target (teacher forcing), then the KL prompt ``"{subject} is a"``. :func:`lookup_index` finds the fact token and
:func:`templated_prompts` splices the prompt into the templates.

The two forward passes both answer one question for a candidate δ (added to the edited MLP's output at each
row's fact token): the logits at the positions that predict the target tokens (rewriting rows) and at the fact
token of the KL rows. The optimisations (:mod:`editbench.editors.rome.compute_v`,
:mod:`editbench.editors.memit.compute_z`) only ever see those logits.

:class:`SlowForward` is the reference's way: the whole batch through the whole model, δ added by a forward hook,
the LM head applied at every position (then the needed rows picked).

:class:`FastForward` removes the waste without changing the arithmetic:

1. **Nothing before the fact token depends on δ** (causal attention), so each row is cut at its fact token
   s_i: the prefix x[:s_i] runs through the model *once*, and its keys/values are kept in a KV cache.
2. **Nothing below the edited layer depends on δ**, and δ enters the residual stream additively (the MLP output
   projection's output is added to the residual in GPT-2, GPT-J, GPT-NeoX and Llama blocks). So the suffix
   x[s_i:] also runs once up to and including block L, giving h_L; each step only adds δ at suffix position 0
   (the fact token) and replays blocks L+1..N-1 on the suffix, attending to the cached prefix.
3. The replayed blocks get *exactly the arguments the model passed them* in that one clean suffix pass
   (attention mask for the gapped prefix+suffix layout, rotary position embeddings, position ids, cache
   positions), recorded by forward pre-hooks; only the KV cache object is swapped for a fresh copy of the
   prefix cache each step. No architecture's masking or rotary code is re-implemented.
4. The final norm and LM head run only at the scored positions (a few per row instead of every position),
   with the config's logit post-processing (soft-capping, scaling) as the model's forward does
   (:meth:`~editbench.models.adapter.ModelAdapter.head`).

Where δ enters (``at``). ROME adds δ to the MLP output projection's output (``at="mlp"``), MEMIT to block L's
output, the residual stream (``at="residual"``). In the families of :data:`FAST_FAMILIES` the MLP output joins
the residual unchanged, so both are ``h_L + δ`` at the fact token. Gemma 3 (:data:`POST_NORM_FAMILIES`)
normalises the MLP output first (``residual + post_feedforward_layernorm(mlp(x))``): there ``at="mlp"``
recomputes the fact token's block output from the residual entering the MLP sub-block (the input of
``pre_feedforward_layernorm``, recorded once) and the recorded MLP output, ``r + post_norm(m + δ)``, with the
block's own norm module — the block's arithmetic, not a re-implementation of it.

Layout: prefixes right-padded to P = max s_i (pad slots masked out), suffixes right-padded to M; suffix
position ids continue each row's prefix (s_i, s_i+1, ...).
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch

from editbench.data.schema import EditRequest
from editbench.models.adapter import ModelAdapter
from editbench.models.hooks import StopForward, cache_kwarg, hidden_of, output_cache
from editbench.models.tokens import encode_prefix, encode_target, fill_template, subject_last_token_index

POST_NORM_FAMILIES = frozenset({"gemma3_text"})
"""Model types whose blocks normalise the MLP output (``post_feedforward_layernorm``) before the residual add."""

FAST_FAMILIES = frozenset({"gpt2", "gptj", "gpt_neox", "llama", "mistral", "qwen2", "qwen3"}) | POST_NORM_FAMILIES
"""Model types the fast path is validated for (tested equal to the slow path)."""


KL_PROMPT = "{} is a"
"""The essence-drift prompt: the KL term is read at its fact token."""


def fast_path_ok(model, adapter: ModelAdapter, batch: "VBatch") -> bool:
    """Whether :class:`FastForward` reproduces the full forward for this model and batch: a validated family,
    and no sliding attention window that the gapped prefix+suffix layout could reach (sliding-window masks count
    cache slots, pad slots included; Gemma 3's window is 512 tokens, far beyond any edit prompt)."""
    if adapter.model_type not in FAST_FAMILIES:
        return False
    window = getattr(model.config, "sliding_window", None)
    width = int(batch.s.max()) + int((batch.n - batch.s).max())
    return not window or width < int(window)


class VBatch:
    """Rows as id lists plus, per row, the fact-token index and the scored (row, col) positions.

    ``seqs`` (B id lists), ``lookup`` (B fact-token indices), ``tgt_pos`` (R, T): the positions predicting the
    target tokens of the R rewriting rows (the first R rows), ``kl_rows``: the rows scored at their fact token.
    """

    def __init__(self, seqs, lookup, tgt_pos, kl_rows, device):
        self.seqs, self.lookup, self.device = seqs, lookup, device
        self.n = torch.tensor([len(s) for s in seqs], device=device)
        self.s = torch.tensor(lookup, device=device)
        self.tgt_pos = tgt_pos.to(device)                 # (R, T) full-sequence positions
        self.R = tgt_pos.shape[0]
        self.kl_rows = torch.tensor(kl_rows, device=device)


def lookup_index(tok: Any, prompt_template: str, subject: str, fact_token: str) -> int:
    """Position of the fact token in ``encode_prefix(tok, filled prompt)``: the subject's last token, or the
    prompt's last token for ``fact_token="last"``."""
    if fact_token == "subject_last":
        return subject_last_token_index(tok, prompt_template, subject)
    if fact_token == "last":
        return len(encode_prefix(tok, fill_template(prompt_template, subject)[0])) - 1
    raise ValueError(f"unknown fact_token {fact_token!r}")


def templated_prompts(templates: Sequence[str], request: EditRequest) -> list[str]:
    """Each context template with the request's prompt spliced in: still a template with "{}" for the subject."""
    return [fill_template(t, request.prompt)[0] for t in templates]


def build_batch(tok: Any, request: EditRequest, templates: Sequence[str], fact_token: str,
                device: torch.device) -> tuple[VBatch, list[int]]:
    """Rewriting rows (one per template) then the KL row; returns the batch and the target ids."""
    target = encode_target(tok, request.target_new)
    seqs, lookup, pos = [], [], []
    for p in templated_prompts(templates, request):
        prefix = encode_prefix(tok, fill_template(p, request.subject)[0])
        seqs.append(prefix + target[:-1])
        lookup.append(lookup_index(tok, p, request.subject, fact_token))
        pos.append([len(prefix) - 1 + j for j in range(len(target))])
    kl = [len(seqs)]
    seqs.append(encode_prefix(tok, fill_template(KL_PROMPT, request.subject)[0]))
    lookup.append(lookup_index(tok, KL_PROMPT, request.subject, fact_token))
    return VBatch(seqs, lookup, torch.tensor(pos), kl, device), target


class SlowForward:
    """Full forward of every row, δ added by a hook on the MLP output, LM head at every position."""

    def __init__(self, model, adapter: ModelAdapter, layer: int, loss_layer: int, batch: VBatch, pad_id: int):
        self.model, self.adapter, self.layer, self.loss_layer, self.b = model, adapter, layer, loss_layer, batch
        B, T = len(batch.seqs), int(batch.n.max())
        self.ids = torch.full((B, T), pad_id, dtype=torch.long, device=batch.device)
        self.mask = torch.zeros((B, T), dtype=torch.long, device=batch.device)
        for i, s in enumerate(batch.seqs):
            self.ids[i, :len(s)] = torch.tensor(s, device=batch.device)
            self.mask[i, :len(s)] = 1
        self.point = torch.zeros((B, T, 1), device=batch.device)
        self.point[torch.arange(B), batch.s] = 1.0
        self.delta = None
        with torch.no_grad():
            self.v0 = self._run(None)[2]

    def _run(self, delta):
        got = {}

        def add(_m, _a, out):
            got["v0"] = out[0, self.b.lookup[0]].detach().clone()
            return out if delta is None else out + self.point.to(out.dtype) * delta

        def keep(_m, _a, out):
            got["h"] = hidden_of(out)

        hs = [self.adapter.mlp_out(self.layer).register_forward_hook(add),
              self.adapter.block(self.loss_layer).register_forward_hook(keep)]
        try:
            logits = self.model(input_ids=self.ids, attention_mask=self.mask, use_cache=False).logits
        finally:
            for h in hs:
                h.remove()
        return logits, got["h"], got["v0"]

    def __call__(self, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, h_loss, _ = self._run(delta)
        b = self.b
        if self.loss_layer != self.adapter.n_layers - 1:
            loss_logits = self.adapter.head(h_loss)  # final norm, LM head (and any logit scaling)
        else:
            loss_logits = logits
        rows = torch.arange(b.R, device=b.device)[:, None]
        return loss_logits[rows, b.tgt_pos], logits[b.kl_rows, b.s[b.kl_rows]]


class FastForward:
    """Same outputs as :class:`SlowForward`; see the module docstring for how."""

    def __init__(self, model, adapter: ModelAdapter, layer: int, loss_layer: int, batch: VBatch, pad_id: int,
                 at: str = "mlp"):
        if adapter.model_type not in FAST_FAMILIES:
            raise ValueError(f"fast v* path not validated for model_type {adapter.model_type!r}")
        if at not in ("mlp", "residual"):
            raise ValueError(f"at must be 'mlp' or 'residual', got {at!r}")
        self.model, self.adapter, self.layer, self.loss_layer, self.b = model, adapter, layer, loss_layer, batch
        # Gemma 3 with δ on the MLP output: the fact token's block output is rebuilt as r + post_norm(m + δ)
        self.post_norm = (adapter.block(layer).post_feedforward_layernorm
                          if at == "mlp" and adapter.model_type in POST_NORM_FAMILIES else None)
        dev, B = batch.device, len(batch.seqs)
        s, n = batch.s, batch.n
        P, M = int(s.max()), int((n - s).max())
        base = model.base_model
        ckw = cache_kwarg(base)
        prefix = torch.full((B, max(P, 1)), pad_id, dtype=torch.long, device=dev)
        suffix = torch.full((B, M), pad_id, dtype=torch.long, device=dev)
        for i, seq in enumerate(batch.seqs):
            si = batch.lookup[i]
            prefix[i, :si] = torch.tensor(seq[:si], dtype=torch.long, device=dev)
            suffix[i, :len(seq) - si] = torch.tensor(seq[si:], dtype=torch.long, device=dev)
        ar_m = torch.arange(M, device=dev)
        smask = (ar_m[None] < (n - s)[:, None]).long()
        position_ids = s[:, None] + ar_m[None]
        self.prefix_cache = None
        with torch.no_grad():
            kwargs = {"input_ids": suffix, "position_ids": position_ids}
            if P > 0:
                # Pads sit after each row's real tokens, so with causal attention no real token sees them:
                # an all-ones mask here keeps every row well-defined even when s_i = 0.
                out = base(input_ids=prefix[:, :P], attention_mask=torch.ones_like(prefix[:, :P]), use_cache=True)
                self.prefix_cache = output_cache(out)
                pmask = (torch.arange(P, device=dev)[None] < s[:, None]).long()
                kwargs.update({"attention_mask": torch.cat([pmask, smask], 1), ckw: self._fresh_cache(),
                               "use_cache": True})
                self._setup_cache = kwargs[ckw]
            else:
                kwargs.update({"attention_mask": smask, "use_cache": False})
                self._setup_cache = None
            self.calls: list[tuple[torch.nn.Module, tuple, dict]] = []
            got = {}

            def grab_h(_m, _a, out):
                got["h"] = hidden_of(out).detach()

            def grab_v0(_m, _a, out):
                got["v0"] = out[0, 0].detach().clone()
                got["m"] = out[:, 0].detach().clone()

            def grab_r(_m, args):
                got["r"] = args[0][:, 0].detach().clone()

            def record(m, args, kw):
                kw = dict(kw)
                rest = tuple(args[1:]) if args else ()
                kw.pop("hidden_states", None)  # passed as a keyword by some versions; replayed positionally
                self.calls.append((m, rest, kw))

            def stop(_m, _a, _o):
                raise StopForward

            last = adapter.n_layers - 1
            hs = [adapter.block(layer).register_forward_hook(grab_h),
                  adapter.mlp_out(layer).register_forward_hook(grab_v0)]
            if self.post_norm is not None:
                hs.append(adapter.block(layer).pre_feedforward_layernorm.register_forward_pre_hook(grab_r))
            hs += [adapter.block(i).register_forward_pre_hook(record, with_kwargs=True)
                   for i in range(layer + 1, adapter.n_layers)]
            hs.append(adapter.block(last).register_forward_hook(stop))
            try:
                base(**kwargs)
            except StopForward:
                pass
            finally:
                for h in hs:
                    h.remove()
        self.h_L, self.v0 = got["h"], got["v0"]
        self.m0, self.r0 = got["m"], got.get("r")
        self.tgt_cols = batch.tgt_pos - s[:batch.R, None]    # scored positions in suffix coordinates

    def _fresh_cache(self):
        return copy.deepcopy(self.prefix_cache)

    def _swap(self, x, old, new):
        return new if (old is not None and x is old) else x

    def __call__(self, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.b
        h = self.h_L.clone()
        if self.post_norm is None:
            h[:, 0] = h[:, 0] + delta                     # the fact token is suffix position 0 of every row
        else:
            h[:, 0] = self.r0 + self.post_norm(self.m0 + delta)
        cache = self._fresh_cache() if self._setup_cache is not None else None
        h_loss = h if self.loss_layer == self.layer else None
        for block, args, kwargs in self.calls:
            args = tuple(self._swap(a, self._setup_cache, cache) for a in args)
            kwargs = {k: self._swap(v, self._setup_cache, cache) for k, v in kwargs.items()}
            h = hidden_of(block(h, *args, **kwargs))
            if block is self.adapter.block(self.loss_layer):
                h_loss = h
        rows = torch.arange(b.R, device=b.device)[:, None]
        head = self.adapter.head  # final norm, LM head (and any logit scaling) at the scored positions only
        return head(h_loss[rows, self.tgt_cols]), head(h[b.kl_rows, 0])
