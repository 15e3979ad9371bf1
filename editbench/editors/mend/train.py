"""MEND meta-training (Mitchell et al. 2021, sec. 3.2; eric-mitchell/mend ``trainer.py`` / ``algs/mend.py``).

Per step, for one training example (:mod:`.train_data`):

1. ``u, delta`` = the rank-1 factors of the edit loss's gradient on (prompt, target) for each edited weight
   (:func:`~editbench.editors.mend.factors.gradient_factors`, detached, as the reference's hooks);
   the normalization statistics absorb them (Welford, training only);
2. ``W~ = W - edit_lr_l * sum_t delta~_t u~_t^T`` with the network's transform, *differentiably*;
3. ``L_edit`` = NLL of the target on the equivalent prompts under ``W~``; ``L_loc`` = KL(p_W || p_W~) of the
   next-token distributions at every token of the locality text (the reference's ``kl_loc_loss``);
4. ``L = c_edit * L_edit + c_loc * L_loc`` (reference: c_edit 0.1, c_loc 1.0), back-propagated into the network
   and the step sizes; every ``accumulate`` steps: clip the gradient norm (100), one Adam step on the network
   (lr ``lr``) and one on ``edit_lrs`` (lr ``lr_lr``), as the reference's two optimizers.

The base model never changes (its weights are overridden functionally, ``torch.func.functional_call``).
Deviation from the reference, by budget: its outer lr is 1e-6 for ~10^5 GPU steps; editbench's default is 1e-4
for a few thousand CPU steps, and ``accumulate`` defaults to 4 (reference 10). Validation every ``val_every``
steps on held-out records: edit success on the rewrite (ES) and the paraphrase (PS), all target tokens argmax,
and the locality KL. Checkpoints (network, both Adam states, step, curve) are safetensors + JSON.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call

from editbench.editors.mend.factors import as_param, edit_batch, gradient_factors, out_in_shape, weight_names
from editbench.editors.mend.hparams import MENDHParams
from editbench.editors.mend.network import MENDNetwork
from editbench.editors.mend.train_data import TrainExample, example_at
from editbench.models.adapter import ModelAdapter
from editbench.models.tokens import target_argmax_correct, target_nll


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    lr: float = 1e-4
    lr_lr: float = 1e-4
    c_edit: float = 0.1
    c_loc: float = 1.0
    accumulate: int = 4
    grad_clip: float = 100.0
    val_every: int = 250
    checkpoint_every: int = 100
    stats_warmup: int = 8
    seed: int = 0


def build_network(model: torch.nn.Module, hp: MENDHParams, meta: dict | None = None) -> MENDNetwork:
    adapter = ModelAdapter(model)
    names = weight_names(adapter, hp.edited_layers(adapter.n_layers), hp.modules)
    params = dict(model.named_parameters())
    weights = [(n, *out_in_shape(adapter, params[n])) for n in names]
    return MENDNetwork(weights, rank=hp.rank, n_hidden=hp.n_hidden, edit_lr=hp.edit_lr, norm=hp.norm, meta=meta)


def _kl_loc(pre: torch.Tensor, post: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked tokens of KL(softmax(pre) || softmax(post))."""
    pre_lp, post_lp = F.log_softmax(pre.float(), -1), F.log_softmax(post.float(), -1)
    kl = (pre_lp.exp() * (pre_lp - post_lp)).sum(-1)
    m = mask.to(kl.dtype)
    return (kl * m).sum() / m.sum()


class MENDTrainer:
    """Meta-trains ``net`` for ``model`` on ``train``; validates on ``val``. State = network + optimizers + step."""

    def __init__(self, model: torch.nn.Module, tok: Any, net: MENDNetwork, train: Sequence[TrainExample],
                 val: Sequence[TrainExample], cfg: TrainConfig):
        self.model, self.tok, self.net, self.train, self.val, self.cfg = model, tok, net, list(train), list(val), cfg
        self.adapter = ModelAdapter(model)
        self.device = next(model.parameters()).device
        self.net.to(self.device)
        self.opt = torch.optim.Adam(net.net_parameters(), lr=cfg.lr)
        self.lr_opt = torch.optim.Adam([net.edit_lrs], lr=cfg.lr_lr)
        self.step = 0
        self.curve: list[dict] = []
        self.train_log: list[dict] = []
        self.seconds = 0.0
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()

    # -- one example --------------------------------------------------------------------------------------
    def _edited_forward(self, updates: dict[str, torch.Tensor], batch) -> torch.Tensor:
        params = dict(self.model.named_parameters())
        over = {n: params[n] + as_param(self.adapter, u).to(params[n].dtype) for n, u in updates.items()}
        return functional_call(self.model, over, args=(), kwargs={**batch.model_inputs(), "use_cache": False}).logits

    def losses(self, ex: TrainExample, training: bool) -> dict[str, torch.Tensor]:
        factors, loss_before = gradient_factors(self.model, self.tok, self.net.names, [ex.prompt], [ex.target])
        if training:
            self.net.update_stats(factors)
        updates = self.net.updates(factors)
        eq = edit_batch(self.tok, ex.equivalents, [ex.target] * len(ex.equivalents), self.device)
        loc = edit_batch(self.tok, [ex.loc_prompt], [ex.loc_target], self.device)
        with torch.no_grad():
            pre_loc = self.model(**loc.model_inputs(), use_cache=False).logits
        eq_logits = self._edited_forward(updates, eq)
        l_edit = target_nll(eq_logits, eq).mean()
        l_loc = _kl_loc(pre_loc, self._edited_forward(updates, loc), loc.attention_mask.bool())
        hit = target_argmax_correct(eq_logits.detach(), eq)
        return {"edit": l_edit, "loc": l_loc, "loss_before": torch.tensor(loss_before),
                "es": hit[0].float(), "ps": hit[1:].float().mean()}

    # -- training -----------------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        self.net.train()
        ex = example_at(self.train, self.step, cfg.seed)
        with torch.enable_grad():
            out = self.losses(ex, training=True)
            total = cfg.c_edit * out["edit"] + cfg.c_loc * out["loc"]
            (total / cfg.accumulate).backward()
        self.step += 1
        if self.step % cfg.accumulate == 0:
            params = self.net.net_parameters() + [self.net.edit_lrs]
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            self.opt.step()
            self.lr_opt.step()
            self.opt.zero_grad(set_to_none=True)
            self.lr_opt.zero_grad(set_to_none=True)
        return {"step": self.step, "total": float(total.detach()), **{k: float(v.detach()) for k, v in out.items()}}

    def warm_stats(self) -> None:
        """Before step 0: feed the factors of the last ``stats_warmup`` training examples (gradients of the base
        model, no parameter change) to the normalization statistics, so the untrained network can be validated."""
        for ex in self.train[-self.cfg.stats_warmup:]:
            factors, _ = gradient_factors(self.model, self.tok, self.net.names, [ex.prompt], [ex.target])
            self.net.update_stats(factors)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.net.eval()
        rows = [self.losses(ex, training=False) for ex in self.val]
        mean = {k: float(torch.stack([r[k] for r in rows]).float().mean()) for k in rows[0]}
        point = {"step": self.step, "n": len(rows), "es": mean["es"], "ps": mean["ps"], "loc_kl": mean["loc"],
                 "edit_nll": mean["edit"], "nll_before": mean["loss_before"],
                 "edit_lrs": [float(x) for x in self.net.edit_lrs]}
        self.curve.append(point)
        return point

    def run(self, steps: int | None = None, out_dir: str | Path | None = None, progress: bool = True,
            log: Callable[[str], None] = print) -> list[dict]:
        """Train until ``steps`` (default ``cfg.steps``) total steps; validate at 0, every ``val_every`` and at the
        end; checkpoint into ``out_dir/checkpoint`` every ``checkpoint_every`` steps (accumulation boundaries)."""
        from tqdm import tqdm

        cfg, target = self.cfg, int(steps if steps is not None else self.cfg.steps)
        if not self.curve:
            self.warm_stats()
            log(f"validation at step 0: {self.validate()}")
        bar = tqdm(total=target, initial=self.step, desc="mend train", disable=not progress, dynamic_ncols=True)
        while self.step < target:
            t0 = time.perf_counter()
            row = self.train_step()
            self.seconds += time.perf_counter() - t0
            self.train_log.append(row)
            bar.update(1)
            bar.set_postfix(edit=f"{row['edit']:.2f}", loc=f"{row['loc']:.3f}", es=f"{row['es']:.0f}")
            if self.step % cfg.val_every == 0 or self.step == target:
                if self.curve[-1]["step"] != self.step:
                    log(f"validation at step {self.step}: {self.validate()}")
            if out_dir is not None and self.step % cfg.accumulate == 0 and (
                    self.step % cfg.checkpoint_every == 0 or self.step == target):
                self.save_checkpoint(Path(out_dir) / "checkpoint")
        bar.close()
        return self.curve

    # -- checkpoints --------------------------------------------------------------------------------------
    def save_checkpoint(self, d: str | Path) -> Path:
        from safetensors.torch import save_file

        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        meta: dict[str, Any] = {"step": self.step, "curve": self.curve, "train_log": self.train_log,
                                "seconds": self.seconds, "config": asdict(self.cfg), "network": self.net.config()}
        for tag, opt in (("opt", self.opt), ("lr_opt", self.lr_opt)):
            sd = opt.state_dict()
            meta[tag] = {"param_groups": sd["param_groups"], "scalars": {}}
            for idx, st in sd["state"].items():
                for k, v in st.items():
                    if torch.is_tensor(v):
                        tensors[f"{tag}.{idx}.{k}"] = v.detach().cpu().contiguous()
                    else:
                        meta[tag]["scalars"][f"{idx}.{k}"] = v
        tmp = d / "state.safetensors.tmp"
        save_file(tensors, str(tmp))
        tmp.replace(d / "state.safetensors")
        (d / "state.json").write_text(json.dumps(meta, indent=1))
        return d

    def load_checkpoint(self, d: str | Path) -> None:
        from safetensors.torch import load_file

        d = Path(d)
        meta = json.loads((d / "state.json").read_text())
        if meta["network"]["weights"] != self.net.config()["weights"] or meta["network"]["rank"] != self.net.rank:
            raise ValueError(f"checkpoint {d} is for another network ({meta['network']['weights'][0]}, rank "
                             f"{meta['network']['rank']}); start a new --out or train with the same settings")
        tensors = load_file(str(d / "state.safetensors"))
        self.net.load_state_dict({k[4:]: v.to(self.device) for k, v in tensors.items() if k.startswith("net.")})
        for tag, opt in (("opt", self.opt), ("lr_opt", self.lr_opt)):
            state: dict[int, dict] = {}
            for k, v in tensors.items():
                if k.startswith(tag + "."):
                    _, idx, name = k.split(".", 2)
                    state.setdefault(int(idx), {})[name] = v.to(self.device) if name != "step" else v
            for k, v in meta[tag]["scalars"].items():
                idx, name = k.split(".", 1)
                state.setdefault(int(idx), {})[name] = v
            opt.load_state_dict({"state": state, "param_groups": meta[tag]["param_groups"]})
        self.step, self.curve, self.train_log = meta["step"], meta["curve"], meta["train_log"]
        self.seconds = meta.get("seconds", 0.0)


def with_overrides(cfg: TrainConfig, **kw: Any) -> TrainConfig:
    return replace(cfg, **{k: v for k, v in kw.items() if v is not None})
