"""rank1: a rank-one key-value edit of one MLP output matrix, written from scratch against editbench's editor API.

For a request (subject, prompt, target_new): k = the input of layer L's MLP output matrix W at the subject's last
token; a vector d is optimised (Adam) so that adding d to that matrix's output at that position makes the model
say target_new; then W <- W + d k^T / (k^T k), so that W k = W k + d exactly and keys orthogonal to k are left
alone. That is ROME's update with the key covariance C = I (no corpus statistics) and no context templates: a
small, real editor, not a reproduction of ROME. Batches are refused (one request at a time).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from editbench.editors.base import EditResult, Editor, HParams, save_originals
from editbench.models.adapter import ModelAdapter
from editbench.models.tokens import subject_last_token_index, target_nll, tokenize_prompt_target

__version__ = "0.1.0"


@dataclass(frozen=True)
class Rank1HParams(HParams):
    layer: int = -1              # the edited MLP; -1 = a quarter of the way up (n_layers // 4)
    steps: int = 25              # Adam steps on d
    lr: float = 0.5
    weight_decay: float = 0.01   # x |d|^2 / |W k|^2 in the loss
    clamp: float = 4.0           # |d| <= clamp x |W k|
    stop_nll: float = 0.05       # stop early once the target's mean NLL is below this


class Rank1Editor(Editor):
    name = "rank1"               # must equal the entry point's name
    hparams_class = Rank1HParams
    supports_batch = False
    presets = "presets.yaml"     # per-model presets shipped in this package (package data)
    preset_base = "rome"         # ... derived from editbench's rome.yaml (its `layer` per model)

    def apply(self, model, tok, requests):
        self.check_batch(requests)                      # ValueError for a batch, before anything changes
        requests = [r.validate() for r in requests]     # RecordError for a malformed request, likewise
        ad = ModelAdapter(model)
        layer = self.hparams.layer if self.hparams.layer >= 0 else ad.n_layers // 4
        originals = save_originals(model, [ad.mlp_out_weight_name(layer)])
        stats = []
        for r in requests:
            stats.append(self._edit_one(model, tok, ad, layer, r))
        return EditResult(originals=originals, stats={"layer": layer, "edits": stats})

    def _edit_one(self, model, tok, ad, layer, r) -> dict:
        hp, device = self.hparams, next(model.parameters()).device
        batch = tokenize_prompt_target(tok, [r.rewrite_prompt], [r.target_new]).to(device)
        pos = subject_last_token_index(tok, r.prompt, r.subject)
        mlp_out, seen = ad.mlp_out(layer), {}

        def capture(module, args, out):
            seen["k"], seen["v"] = args[0][0, pos].detach(), out[0, pos].detach()
        handle = mlp_out.register_forward_hook(capture)
        with torch.no_grad():
            model(**batch.model_inputs())
        handle.remove()
        k, v_norm = seen["k"].float(), seen["v"].float().norm().clamp_min(1e-6)
        d = torch.zeros_like(seen["v"], dtype=torch.float32, requires_grad=True)
        opt = torch.optim.Adam([d], lr=hp.lr * float(v_norm) / d.numel() ** 0.5)

        def add_d(module, args, out):
            out = out.clone()
            out[:, pos] = out[:, pos] + d.to(out.dtype)
            return out
        handle = mlp_out.register_forward_hook(add_d)
        try:
            for step in range(hp.steps):
                nll = target_nll(model(**batch.model_inputs()).logits, batch).mean()
                if nll.item() < hp.stop_nll:
                    break
                loss = nll + hp.weight_decay * d.pow(2).sum() / v_norm ** 2
                (grad,) = torch.autograd.grad(loss, [d])    # no .grad left on the model's parameters
                d.grad = grad
                opt.step()
                with torch.no_grad():                       # keep the change bounded
                    d.mul_(torch.clamp(hp.clamp * v_norm / d.norm().clamp_min(1e-12), max=1.0))
        finally:
            handle.remove()
        with torch.no_grad():
            ad.add_delta(layer, torch.outer(d.detach(), k) / k.dot(k))
        return {"case_id": r.case_id, "steps": step + 1, "nll": round(nll.item(), 4),
                "delta_norm": round(d.norm().item(), 4)}
