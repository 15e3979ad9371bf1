"""Downstream few-shot classification, batched: the model's answers in two modes, and probes that report them.

**Two answer modes**, from one pass over each prompt:

- ``gen`` (the seed paper's): greedy-decode ``gen_len`` tokens after the prompt and parse the label word
  (:meth:`~editbench.metrics.glue_prompts.GluePrompt.parse`); an unparseable answer is -1 (wrong).
- ``loglik``: the label whose word has the highest mean per-token log-likelihood after the prompt (the authors'
  ``f1_new``; with one-token label words the comparison of two next-token logits). Never unparseable, so
  stable for small models.

**Batched, prompts tokenized once.** A task's prompts all start with the same demonstrations: the longest common
prefix of their token ids is run through the model once and its KV cache reused for every batch of queries (each
query left-padded by hand after the prefix — :func:`editbench.models.tokens.pad_left` — with explicit position
ids, so every real token has the position and context it has in the whole prompt alone). The greedy steps then go
through the cache as :func:`editbench.metrics.generation.greedy_generate` does (which the tests compare with).

Metrics, intervals and the chance rule: :mod:`editbench.metrics.classification`. :class:`TaskProbe` turns a list
of :class:`DownstreamTask` into a probe (flat ``{"<task>.<mode>.<metric>": value}`` at every check, and
:meth:`TaskProbe.evaluate` with intervals); :class:`GlueProbe` (``glue``) is GLUE SST-2/MRPC/CoLA/RTE with the
paper's prompts and the per-model presets of ``downstream_presets.yaml`` (shots and primary mode, measured).
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import torch
import yaml

from editbench.metrics.classification import METRIC_KEYS, chance_note, metrics_with_intervals
from editbench.metrics.generation import _eos_ids, decode
from editbench.metrics.glue_prompts import PROMPTS
from editbench.metrics.probes import Probe, ProbeContext
from editbench.models.hooks import cache_kwarg, output_cache
from editbench.models.tokens import encode_prefix, encode_target, pad_left, pad_token_id

MODES = ("gen", "loglik")
PRESETS_FILE = Path(__file__).with_name("downstream_presets.yaml")


@dataclass(frozen=True)
class DownstreamTask:
    """One task ready to evaluate: prompts (ending at the answer cue), gold label indices, label words."""

    name: str
    prompts: tuple[str, ...]
    labels: tuple[int, ...]
    label_words: tuple[str, ...]
    parse: Callable[[str], int]
    gen_len: int = 3


def _keep_last(model) -> dict:
    try:
        return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    except (TypeError, ValueError):  # pragma: no cover
        return {}


def _expand(cache: Any, b: int) -> Any:
    c = copy.deepcopy(cache)
    if hasattr(c, "batch_repeat_interleave"):
        c.batch_repeat_interleave(b)
        return c
    return tuple(tuple(t.repeat_interleave(b, dim=0) for t in layer) for layer in c)  # legacy tuple caches


@torch.no_grad()
def answer_batch(model, prefix: Sequence[int], queries: Sequence[Sequence[int]], gen_len: int, *, pad_id: int,
                 eos_ids: set[int], batch_size: int = 32, full_logits: bool = False):
    """For each query (token ids after the shared ``prefix``): the next-token log-probabilities after it
    (``[n, vocab]``, or every query position's with ``full_logits``) and the greedy continuation of at most
    ``gen_len`` tokens (cut before EOS). The prefix is run once; its KV cache serves every batch."""
    dev = next(model.parameters()).device
    ckw, keep = cache_kwarg(model), ({} if full_logits else _keep_last(model))
    cache, p = None, len(prefix)
    if p:
        cache = output_cache(model(input_ids=torch.tensor([list(prefix)], device=dev), use_cache=True))
    n = len(queries)
    logp: list = [None] * n
    gens: list[list[int]] = [[] for _ in range(n)]
    order = sorted(range(n), key=lambda i: len(queries[i]))
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        b = len(idx)
        ids, qmask = pad_left([queries[i] for i in idx], pad_id)
        ids, qmask = ids.to(dev), qmask.to(dev)
        pos = p + (qmask.cumsum(-1) - 1).clamp(min=0)
        mask = torch.cat([qmask.new_ones((b, p)), qmask], 1)
        kw = {ckw: _expand(cache, b)} if cache is not None else {}
        res = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **kw, **keep)
        lp = torch.log_softmax(res.logits.float(), -1)
        for r, i in enumerate(idx):
            logp[i] = (lp[r, ids.shape[1] - len(queries[i]):] if full_logits else lp[r, -1]).cpu()
        nxt = res.logits[:, -1].argmax(-1)
        steps, done = [nxt], torch.tensor([int(t) in eos_ids for t in nxt.tolist()], device=dev)
        for _ in range(gen_len - 1):
            if bool(done.all()):
                break
            mask = torch.cat([mask, mask.new_ones((b, 1))], 1)
            pos = pos[:, -1:] + 1
            res = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos, use_cache=True,
                        **{ckw: output_cache(res)}, **_keep_last(model))
            nxt = res.logits[:, -1].argmax(-1)
            steps.append(nxt)
            done |= torch.tensor([int(t) in eos_ids for t in nxt.tolist()], device=dev)
        rows = torch.stack(steps, 1).tolist()
        for r, i in enumerate(idx):
            out = rows[r][:gen_len]
            cut = next((j for j, t in enumerate(out) if t in eos_ids), len(out))
            gens[i] = out[:cut]
    return (torch.stack(logp) if not full_logits else logp), gens


class PreparedTask:
    """A task tokenized once for one tokenizer: shared prefix ids, per-prompt query ids, label-word ids."""

    def __init__(self, tok, task: DownstreamTask):
        self.task, self.tok = task, tok
        full = [encode_prefix(tok, p) for p in task.prompts]
        lcp = min(len(f) for f in full) - 1  # every query keeps at least one token
        for f in full[1:]:
            lcp = min(lcp, next((j for j, (a, b) in enumerate(zip(full[0], f)) if a != b), lcp))
        self.prefix = full[0][:max(lcp, 0)]
        self.queries = [f[len(self.prefix):] for f in full]
        self.label_ids = [encode_target(tok, w) for w in task.label_words]
        self.pad_id, self.eos = pad_token_id(tok), _eos_ids(tok)

    def answers(self, model, batch_size: int = 32) -> dict:
        """``{"gen": preds, "loglik": preds, "texts": continuations, "loglik_scores": [[per label]]}``."""
        t = self.task
        lp, gens = answer_batch(model, self.prefix, self.queries, t.gen_len, pad_id=self.pad_id, eos_ids=self.eos,
                                batch_size=batch_size)
        if all(len(ids) == 1 for ids in self.label_ids):
            scores = lp[:, [ids[0] for ids in self.label_ids]].tolist()
        else:  # several tokens: mean log-likelihood of each label continuation (the authors' per-token mean)
            scores = [[0.0] * len(self.label_ids) for _ in self.queries]
            for c, ids in enumerate(self.label_ids):
                rows = [q + ids[:-1] for q in self.queries]
                full, _ = answer_batch(model, self.prefix, rows, 1, pad_id=self.pad_id, eos_ids=self.eos,
                                       batch_size=batch_size, full_logits=True)
                for i, f in enumerate(full):
                    tail = f[len(self.queries[i]) - 1:]
                    scores[i][c] = float(sum(tail[j, tid] for j, tid in enumerate(ids)) / len(ids))
        texts = [decode(self.tok, g) for g in gens]
        return {"gen": [t.parse(x) for x in texts], "loglik": [max(range(len(s)), key=s.__getitem__) for s in scores],
                "texts": texts, "loglik_scores": scores}


class TaskProbe(Probe):
    """A probe over downstream tasks: per task both answer modes, each metric with its interval; ``primary``
    names the mode a task's headline F1 (``<task>.f1``), its chance verdict and the collapse signal use."""

    name = "tasks"
    metrics: ClassVar[dict[str, str]] = {}

    def __init__(self, tok, tasks: Sequence[DownstreamTask], primary: dict[str, str], settings: dict | None = None,
                 batch_size: int = 32):
        bad = {k: m for k, m in primary.items() if m not in MODES}
        if bad:
            raise ValueError(f"answer mode(s) {bad}: expected one of {MODES}")
        self.tasks = list(tasks)
        self.prepared = [PreparedTask(tok, t) for t in self.tasks]
        self.primary = {t.name: primary.get(t.name, "loglik") for t in self.tasks}
        self.settings, self.batch_size = dict(settings or {}), batch_size

    @classmethod
    def build(cls, ctx: ProbeContext):  # pragma: no cover - subclasses build themselves
        raise NotImplementedError

    def evaluate(self, model, tok=None, keep_answers: bool = False) -> dict:
        """``{task: {"n", "primary", "settings", "gen": metrics, "loglik": metrics, "note"}}`` (metrics with
        intervals, :func:`~editbench.metrics.classification.metrics_with_intervals`)."""
        was = model.training
        model.eval()
        out = {}
        try:
            for t, prep in zip(self.tasks, self.prepared):
                ans = prep.answers(model, self.batch_size)
                k = len(t.label_words)
                res = {m: metrics_with_intervals(t.labels, ans[m], k) for m in MODES}
                entry = {"n": len(t.labels), "primary": self.primary[t.name],
                         "settings": self.settings.get(t.name, {}), **res,
                         "note": chance_note(res[self.primary[t.name]])}
                if keep_answers:
                    entry["answers"] = {"gen": ans["gen"], "loglik": ans["loglik"], "texts": ans["texts"]}
                out[t.name] = entry
        finally:
            model.train(was)
        return out

    def run(self, model, tok=None) -> dict[str, float]:
        return flatten(self.evaluate(model, tok))


def flatten(evaluation: dict) -> dict[str, float]:
    """An :meth:`TaskProbe.evaluate` result as flat floats (what a check record stores)."""
    flat: dict[str, float] = {}
    for task, e in evaluation.items():
        for m in MODES:
            r = e[m]
            for key in METRIC_KEYS:
                flat[f"{task}.{m}.{key}"] = r[key]["value"]
                flat[f"{task}.{m}.{key}_lo"], flat[f"{task}.{m}.{key}_hi"] = r[key]["lo"], r[key]["hi"]
            flat[f"{task}.{m}.invalid"] = r["invalid"]
            flat[f"{task}.{m}.above_chance"] = float(r["above_chance"])
        p = e[e["primary"]]
        flat[f"{task}.f1"] = p["f1"]["value"]
        flat[f"{task}.above_chance"] = float(p["above_chance"])
    return flat


def unflatten(flat: dict) -> dict:
    """Flat check values back to ``{task: {"primary_f1", "above_chance", mode: {metric: {"value", "lo", "hi"},
    "invalid", "above_chance"}}}``."""
    out: dict = {}
    for key, v in flat.items():
        parts = key.split(".")
        if len(parts) == 2:
            out.setdefault(parts[0], {})["primary_f1" if parts[1] == "f1" else parts[1]] = v
            continue
        task, mode, metric = parts
        e = out.setdefault(task, {}).setdefault(mode, {})
        if metric in ("invalid", "above_chance"):
            e[metric] = bool(v) if metric == "above_chance" else v
            continue
        base, _, end = metric.rpartition("_")
        if end in ("lo", "hi") and base in METRIC_KEYS:
            e.setdefault(base, {})[end] = v
        else:
            e.setdefault(metric, {})["value"] = v
    return out


def load_presets(model_id: str, path: Path = PRESETS_FILE) -> dict:
    """The preset of ``model_id`` (matched by its last path part, then ``default``): ``{"n", "tasks": {task:
    {"shots", "mode"}}}``."""
    table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    name = Path(str(model_id)).name.lower()
    base = table.get("default", {})
    spec = next((v for k, v in table.items() if k != "default" and str(k).lower() == name), {})
    tasks = {t: {**base.get("tasks", {}).get(t, {}), **spec.get("tasks", {}).get(t, {})}
             for t in {**base.get("tasks", {}), **spec.get("tasks", {})}}
    return {"n": spec.get("n", base.get("n", 200)), "tasks": tasks}


class GlueProbe(TaskProbe):
    """GLUE SST-2, MRPC, CoLA, RTE with the paper's prompts (:mod:`editbench.metrics.glue_prompts`) on the
    class-balanced sets of :func:`editbench.data.tasks.load_balanced`; shots and primary mode per task from the
    model's preset, overridable: ``GlueProbe.create(tok, model_id, tasks=("sst2",), n=16, shots={"sst2": 2},
    mode="loglik")``."""

    name = "glue"
    metrics = {f"{t}.{m}.{k}": "higher" for t in PROMPTS for m in MODES for k in METRIC_KEYS}
    metrics.update({f"{t}.f1": "higher" for t in PROMPTS})

    @classmethod
    def build(cls, ctx: ProbeContext) -> "GlueProbe":
        return cls.create(ctx.tok, ctx.model_id, seed=ctx.seed)

    @classmethod
    def create(cls, tok, model_id: str, tasks: Sequence[str] | None = None, n: int | None = None,
               shots: int | dict | None = None, mode: str | dict | None = None, seed: int = 0,
               batch_size: int = 32) -> "GlueProbe":
        from editbench.data.tasks import load_balanced

        preset = load_presets(model_id)
        names = list(tasks) if tasks else list(PROMPTS)
        unknown = [t for t in names if t not in PROMPTS]
        if unknown:
            raise ValueError(f"unknown downstream task(s) {unknown}; known: {', '.join(PROMPTS)}")
        n = n or preset["n"]
        built, primary, settings = [], {}, {}
        for t in names:
            p, pre = PROMPTS[t], preset["tasks"].get(t, {})
            k = shots.get(t, pre.get("shots")) if isinstance(shots, dict) else shots
            k = pre.get("shots") if k is None else k           # no override: the model's measured preset
            k = p.max_shots if k is None else int(k)
            m = mode.get(t, pre.get("mode")) if isinstance(mode, dict) else mode
            primary[t] = m or pre.get("mode") or "gen"
            exs = load_balanced(t, n=n, seed=seed)
            built.append(DownstreamTask(t, tuple(p.prompt(tuple(e.inputs.values()), k) for e in exs),
                                        tuple(e.label for e in exs), p.label_words, p.parse, p.gen_len))
            settings[t] = {"shots": k, "mode": primary[t], "n": len(exs), "gen_len": p.gen_len}
        return cls(tok, built, primary, settings, batch_size)
