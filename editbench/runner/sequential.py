"""Sequential editing at scale: one model, a stream of edits that accumulate, and what happens to it.

The protocol of the seed paper (Gupta, Rao, Anumanchipalli 2024, sections 3–4): edit one fact at a time (or a
batch of ``batch_size`` at a time, batches applied in sequence) without ever restoring the model; after each
edit score the new edit (schedule ``"immediate"``), every ``history_every`` edits re-score all earlier successful
edits (``"history"`` → fact forgetting), optionally score every edit after the last one (``"final"``); after
every edit measure the distance of each edited weight from its original; at every check run the model-health
probe. See :mod:`editbench.runner.schedule` for the schedules and streams.

Everything is written as JSON lines to ``<out_dir>/results.jsonl`` as it happens (flushed and fsync'd), with
records of type ``run`` (header), ``edit`` (one per request), ``check`` (history/health checkpoints), ``final``
(schedule "final") — wall-clock numbers only under ``timing`` keys. Every ``checkpoint_every`` edits the edited
parameters, editor state and runner state are saved (:mod:`editbench.runner.state`); ``resume=True`` continues
a killed run from there and produces the same records. At the end :func:`editbench.runner.summary.summarize`
reads the file back, detects the catastrophic-forgetting point and draws the figure.

**Resuming** says what it does, once, as a :class:`ResumeWarning` ("resuming at edit 40 of 100 from <ckpt>" or
"no checkpoint in <dir>: starting from edit 0 of 100"), also recorded as the summary's ``resumed_from``. A
damaged checkpoint (see :mod:`editbench.runner.state`) raises :class:`~editbench.runner.state.CheckpointError`
and never restarts the run silently. ``out_dir`` is not compared on resume: it is where the run lives (the
checkpoint was found in it), not what the run computes — a relative path, a symlink or a moved run directory
resume alike.

**Non-finite weights.** After every edit the edited parameters are checked for NaN/inf (free where their
distance is finite). An edit that leaves any is recorded with ``"nonfinite": true`` and the parameter names
(``nonfinite_params``); it is a CF point at any position. ``on_nonfinite="stop"`` (the default) then ends the
run cleanly: a last history/health check, a ``stop`` record, the summary's ``stopped`` reason and ``complete``
false — no exception; ``"continue"`` goes on editing the broken model.
"""
from __future__ import annotations

import dataclasses
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from editbench.data.schema import EditRequest
from editbench.editors.base import restore
from editbench.metrics.collapse import CollapseRule
from editbench.metrics.counterfact import METRICS, PROTOCOLS, RewriteScorer, check_protocols, score_requests
from editbench.metrics.distance import DistanceTracker
from editbench.metrics.forgetting import ForgettingTracker, Windows
from editbench.metrics.generation import GenForgetting
from editbench.runner.files import RunLock
from editbench.runner.jsonl import JsonlWriter, jsonable
from editbench.runner.provenance import provenance
from editbench.runner import state as ckpt
from editbench.runner.schedule import SCHEDULES, batches, crossed, make_stream


@dataclass(frozen=True)
class SequentialConfig:
    """One sequential run. ``n_edits`` None = the whole (subject-unique) stream; ``batch_size`` b requests per
    ``editor.apply`` (b > 1: batches applied in sequence, for batch editors like MEMIT); ``order`` "seeded" |
    "published" | "given" with ``seed``/``sample`` (see :func:`editbench.runner.schedule.make_stream`);
    ``schedules`` any of "immediate", "history", "final"; ``history_every`` k (paper 10); ``health_every``
    (None = same as k); ``windows`` for the moving averages (paper 5 and 50); ``checkpoint_every`` (None/0 =
    never); ``health_key`` the health value collapse detection watches (None = "recall" if the probe gives it,
    else "ppl", else its first key); ``forget_at`` the edit counts the summary reports forgetting at;
    ``score_batch_size`` the scorer's batch size; ``collapse`` the CF-point rule
    (:class:`~editbench.metrics.collapse.CollapseRule`); ``progress`` the tqdm bar; ``on_nonfinite`` what to do
    after an edit that leaves NaN/inf in the edited weights: "stop" the run cleanly or "continue";
    ``protocols`` the scoring protocols of the immediate and final scores
    (:data:`editbench.metrics.counterfact.PROTOCOLS`; ``prob`` is always scored, forgetting and the CF point
    need it) — with ``gen`` the history checks also re-generate from the rewrite prompts of the edits that
    generated their target right away (the check record's ``forgetting_gen``, its time ``timing.history_gen_s``,
    part of ``history_s``). ``downstream_every`` k: with a ``downstream_probe`` passed to :func:`run_sequential`,
    the downstream tasks are evaluated before the first edit and every k edits (and after the last), stored as the
    check record's ``downstream`` (flat ``<task>.<mode>.<metric>`` floats, its time ``timing.downstream_s``);
    None = never (the default: runs without it write exactly what they wrote before)."""

    n_edits: int | None = None
    batch_size: int = 1
    schedules: tuple[str, ...] = ("immediate", "history")
    history_every: int = 10
    health_every: int | None = None
    windows: tuple[int, ...] = (5, 50)
    order: str = "seeded"
    seed: int = 0
    sample: int = 0
    checkpoint_every: int | None = 50
    out_dir: str = "reports/runs/sequential"
    resume: bool = False
    score_batch_size: int = 64
    health_key: str | None = None
    forget_at: tuple[int, ...] = (10, 50, 100, 500, 1000)
    collapse: CollapseRule = field(default_factory=CollapseRule)
    progress: bool = True
    on_nonfinite: str = "stop"
    protocols: tuple[str, ...] = PROTOCOLS
    downstream_every: int | None = None

    def __post_init__(self):
        check_protocols(self.protocols)
        if self.downstream_every is not None and (isinstance(self.downstream_every, bool)
                                                  or not isinstance(self.downstream_every, int)
                                                  or self.downstream_every < 1):
            raise ValueError(f"downstream_every must be None or a whole number >= 1, not {self.downstream_every!r}")
        bad = set(self.schedules) - set(SCHEDULES)
        if bad:
            raise ValueError(f"unknown schedule(s) {sorted(bad)}; known: {SCHEDULES}")
        if self.on_nonfinite not in ON_NONFINITE:
            raise ValueError(f"on_nonfinite must be one of {ON_NONFINITE}, not {self.on_nonfinite!r}")
        if self.batch_size < 1 or self.history_every < 1:
            raise ValueError("batch_size and history_every must be >= 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def experiment(self) -> dict:
        """The config without the invocation flags (``RESUME_FREE``): what a run's results depend on; written to
        the results header and compared on resume."""
        return {k: v for k, v in jsonable(self.to_dict()).items() if k not in RESUME_FREE}


# Invocation flags: they may differ between a run and its resumption and do not change its results ("plot" is
# kept for checkpoints written before figures moved to the report layer).
RESUME_FREE = ("resume", "progress", "plot")
# Not compared on resume either, though written to the header: where the run lives. The checkpoint was found in
# that directory, so it is the same run whatever path (relative, absolute, via a symlink, after a move) names it.
LOCATION_KEYS = ("out_dir",)
ON_NONFINITE = ("stop", "continue")


class ResumeWarning(UserWarning):
    """What a ``resume=True`` run continues from: a checkpoint (at which edit) or nothing (edit 0)."""


def _seed_all(seed: int, sample: int) -> None:
    s = (seed * 1_000_003 + sample) % (2 ** 32)
    torch.manual_seed(s)
    random.seed(s)
    np.random.seed(s)


def _split_stats(stats: dict) -> tuple[dict, dict]:
    """Scalar editor stats, with anything that looks like a time moved out (kept apart from the results)."""
    keep, times = {}, {}
    for k, v in (stats or {}).items():
        if k == "timing" and isinstance(v, dict):   # an editor's own split (MEMIT: z_s, keys_s, solve_s, ...)
            times.update({t: float(x) for t, x in v.items() if isinstance(x, (int, float))})
        elif isinstance(v, (bool, int, float, str)):
            (times if ("time" in k or k.endswith("_s")) else keep)[k] = v
    return keep, times


class _Run:
    """The mutable state of one run (kept in one place so checkpoints capture all of it)."""

    def __init__(self, editor, lm, stream: list[EditRequest], cfg: SequentialConfig, health_probe, dataset,
                 health_directions: dict[str, str] | None = None):
        self.editor, self.model, self.tok = editor, lm.model, lm.tok
        self.model_id = getattr(lm, "model_id", None)
        self.model_hash = getattr(lm, "model_hash", None)
        self.stream, self.cfg, self.health_probe, self.dataset = stream, cfg, health_probe, dataset
        self.health_directions = dict(health_directions or {})
        self.out = Path(cfg.out_dir)
        self.jsonl_path = self.out / "results.jsonl"
        self.rewrites = RewriteScorer(self.tok, cfg.score_batch_size)  # keyed by stream index
        self.distance = DistanceTracker()
        self.orig_sha: dict[str, str] = {}      # parameter -> SHA-256 of its original value (resume check)
        self.forget = ForgettingTracker()
        self.protocols = tuple(dict.fromkeys(("prob",) + check_protocols(cfg.protocols)))
        self.gen_forget = GenForgetting()       # forgetting under the gen protocol (when selected)
        self.windows = Windows(cfg.windows)
        self.position = 0
        self.batch_index = 0
        self.last_check: dict = {}
        self.last_check_n = -1
        self.prepare_s: float | None = None
        self.stopped: str | None = None         # why the run stopped early (on_nonfinite="stop"), else None
        self.resumed_from: dict | None = None   # what resume=True continued from (summary's resumed_from)
        self.downstream_probe = None            # set by run_sequential (with cfg.downstream_every)
        hp = getattr(editor, "hparams", None)
        self.identity = {"editor": getattr(editor, "name", type(editor).__name__),
                         "hparams": jsonable(hp.to_dict()) if hasattr(hp, "to_dict") else None,
                         "model_hash": self.model_hash, "dataset": dataset}  # compared on resume

    # -- start / resume ------------------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.cfg
        path = ckpt.latest_checkpoint(self.out) if cfg.resume else None  # CheckpointError if damaged
        if path is None:
            if cfg.resume:
                self._announce(0, None, f"no checkpoint in {ckpt.ckpt_root(self.out).absolute()}: starting from "
                                        f"edit 0 of {len(self.stream)}", depth=3)
            self.editor.reset()  # a fresh run: no state from an earlier run of this editor object
            ckpt.clear_run(self.out)
            self.writer = JsonlWriter(self.jsonl_path, truncate_to=0)
            _seed_all(cfg.seed, cfg.sample)
            prov = provenance(editor=self.editor, model_id=self.model_id, model_hash=self.model_hash,
                              dataset=self.dataset, record_ids=[r.case_id for r in self.stream], seed=cfg.seed,
                              device=str(next(self.model.parameters()).device))
            created = prov.pop("created", None)
            header = {"type": "run", "config": cfg.experiment(), "provenance": prov,
                      "stream": [r.case_id for r in self.stream], "health_directions": self.health_directions,
                      "timing": {"created": created, "prepare_s": self.prepare_s}}
            if self.downstream_on:
                p = self.downstream_probe
                header["downstream"] = {"probe": getattr(p, "name", None), "primary": getattr(p, "primary", {}),
                                        "settings": getattr(p, "settings", {})}
            self.writer.write(header)
            if self.health_probe is not None or self.downstream_on:
                self.check(0, history=False, health=self.health_probe is not None, downstream=self.downstream_on)
            return
        self._resume(path)

    @property
    def downstream_on(self) -> bool:
        return self.downstream_probe is not None and bool(self.cfg.downstream_every)

    def _announce(self, position: int, path: Path | None, message: str, depth: int) -> None:
        """Say once what a resume continues from (``depth``: calls between here and the user's, for the warning's
        location) and keep it for the summary's ``resumed_from``."""
        self.resumed_from = {"edit": position, "of": len(self.stream),
                             "checkpoint": str(path) if path is not None else None, "message": message}
        warnings.warn(message, ResumeWarning, stacklevel=depth + 1)

    def _resume(self, path: Path) -> None:
        st, saved_params, saved_editor = ckpt.read_checkpoint(path)  # every file verified: CheckpointError
        skip = set(RESUME_FREE) | set(LOCATION_KEYS)
        defaults = SequentialConfig().experiment()  # options added since the checkpoint was written: defaults
        ours = {k: v for k, v in self.cfg.experiment().items() if k not in skip}
        theirs = {k: v for k, v in st["config"].items() if k not in skip}
        theirs = {**{k: defaults[k] for k in ours if k not in theirs and k in defaults}, **theirs}
        saved_id = {k: v for k, v in (st.get("identity") or {}).items() if k in self.identity}
        now_id = {k: v for k, v in self.identity.items() if k in saved_id}  # checkpoints before identity: config
        if ours != theirs or saved_id != now_id:
            diff = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
            diff += sorted(k for k in saved_id if saved_id[k] != now_id.get(k))
            details = ckpt.differences(theirs, ours) + ckpt.differences(saved_id, now_id)
            raise ckpt.ResumeMismatch(f"cannot resume {self.out}: the config differs in {diff} (checkpoint -> now: "
                                      f"{'; '.join(details)}); resume with the run's options, or {ckpt.RERUN}")
        if st["stream"] != [r.case_id for r in self.stream]:
            raise ckpt.ResumeMismatch(f"cannot resume {self.out}: the edit stream differs from the checkpoint's "
                                      f"(another dataset, order or sample); {ckpt.RERUN}")
        size = self.jsonl_path.stat().st_size if self.jsonl_path.exists() else None
        if size is None or size < st["jsonl_offset"]:
            raise ckpt.CheckpointError(
                f"{self.jsonl_path} " + ("is missing" if size is None else f"has {size} bytes") + f", but checkpoint "
                f"{path} was taken at byte {st['jsonl_offset']} of it: the results were cut or replaced; {ckpt.RERUN}")
        params = dict(self.model.named_parameters())
        for name, sha in st["originals_sha"].items():
            if name not in params:
                raise ckpt.ResumeMismatch(f"cannot resume {self.out}: the model passed in has no parameter {name}")
            if ckpt.tensor_sha(params[name]) != sha:
                raise ckpt.ResumeMismatch(f"cannot resume {self.out}: parameter {name} of the model passed in is not "
                                          "the unedited original the run started from (pass a freshly loaded model)")
        self.distance.track_from_model(self.model, st["params"])
        self.orig_sha = dict(st["originals_sha"])
        if st["position"] > 0:
            self._warm_up()
        ckpt.apply_checkpoint(saved_params, saved_editor, self.model, self.editor, path)
        self.position, self.batch_index = st["position"], st["batch_index"]
        self.stopped = st.get("stopped")
        self.forget = ForgettingTracker.from_state(st["forgetting"])
        self.gen_forget = GenForgetting.from_state(st.get("forgetting_gen"), n=st["position"])
        self.windows = Windows.from_state(st["windows"])
        self.last_check, self.last_check_n = st["last_check"], st["last_check_n"]
        self.writer = JsonlWriter(self.jsonl_path, truncate_to=st["jsonl_offset"])
        path = path.absolute()
        msg = f"resuming at edit {self.position} of {len(self.stream)} from {path}"
        if self.stopped:
            msg += f" (the run had stopped: {self.stopped})"
        if "files" not in st:
            msg += " (a checkpoint without file hashes: its tensors are not verified)"
        elif st["version"] < 2:
            msg += " (a checkpoint without a manifest: its state.json is not verified)"
        self._announce(self.position, path, msg, depth=4)
        ckpt.set_rng_state(st["rng"])  # last: nothing above may draw random numbers after it

    def _warm_up(self) -> None:
        """Replay the run's first edit on the unedited model, then undo it exactly.

        Editors cache things computed from the model at their first edit (ROME/MEMIT: context templates sampled
        from the model, the key second moment C; caches keyed by the model object). In the uninterrupted run
        that first edit saw the unedited model; after a resume the first edit would see the checkpoint's edited
        weights and compute different caches. Replaying edit 1 — with the RNG seeded as at the start of a run —
        and restoring the originals it returns rebuilds the same caches; the editor state and RNG states are
        then overwritten from the checkpoint."""
        _seed_all(self.cfg.seed, self.cfg.sample)
        try:
            result = self.editor.apply(self.model, self.tok, self.stream[:self.cfg.batch_size])
        except Exception:  # the first edit failed in the original run too; nothing was cached by it
            return
        restore(self.model, result.originals)

    def save(self) -> None:
        names = self.distance.names
        state = {"batch_index": self.batch_index, "jsonl_offset": self.writer.tell(),
                 "config": self.cfg.experiment(), "stream": [r.case_id for r in self.stream],
                 "originals_sha": {n: self.orig_sha[n] for n in names},
                 "forgetting": self.forget.state(), "forgetting_gen": self.gen_forget.state(), "windows": self.windows.state(),
                 "last_check": self.last_check, "last_check_n": self.last_check_n, "stopped": self.stopped,
                 "identity": self.identity}
        ckpt.save_checkpoint(self.out, self.position, self.model, names, self.editor, state)

    # -- one step ------------------------------------------------------------------------------------------
    def step(self, pos: int, batch: list[EditRequest]) -> None:
        t0 = time.perf_counter()
        error = None
        try:
            result = self.editor.apply(self.model, self.tok, batch)
            for name in self.distance.track(result.originals):  # first touch: fingerprint the original
                self.orig_sha[name] = ckpt.tensor_sha(result.originals[name])
            stats, stat_times = _split_stats(result.stats)
        except Exception as e:  # a failing edit is a result, not the end of the run
            error, stats, stat_times = f"{type(e).__name__}: {e}", {}, {}
        t1 = time.perf_counter()
        dist = self.distance.measure(self.model)
        bad = self.distance.nonfinite(self.model, dist)  # NaN/inf in an edited weight: a disabled model
        if bad and self.cfg.on_nonfinite == "stop":
            n_after = pos + len(batch)
            which = f"case {batch[0].case_id}" if len(batch) == 1 else f"cases {[r.case_id for r in batch]}"
            self.stopped = f"non-finite weights after edit {n_after} ({which})"
        idx = list(range(pos, pos + len(batch)))
        if "immediate" in self.cfg.schedules:
            metrics = score_requests(self.model, self.tok, batch, batch_size=self.cfg.score_batch_size,
                                     protocols=self.protocols)
            oks = [(m.get("es") == 1.0, m.get("es_correct") == 1.0) for m in metrics]
            gen_oks = [m.get("es_gen") == 1.0 for m in metrics]
        else:
            oks, _ = self.rewrites.score(self.model, [(i, self.stream[i]) for i in idx])
            metrics = [{"es": float(okp) if self.stream[i].target_true is not None else None,
                        "es_correct": float(oka)} for i, (okp, oka) in zip(idx, oks)]
            gen_oks = [False] * len(idx)
            if "gen" in self.protocols:
                gen_oks = self.rewrites.generates(self.model, [(i, self.stream[i]) for i in idx])
                for m, ok in zip(metrics, gen_oks):
                    m["es_gen"] = float(ok)
        t2 = time.perf_counter()
        for j, (i, req, m, (okp, oka)) in enumerate(zip(idx, batch, metrics, oks)):
            if error is not None:
                okp = oka = False
            self.forget.add(i + 1, req.case_id, okp, oka)
            self.gen_forget.add(error is None and gen_oks[j])
            self.windows.push({k: m.get(k) for k in METRICS})  # moving windows <metric>_w<size>
            rec = {"type": "edit", "n": i + 1, "batch": self.batch_index, "case_id": req.case_id,
                   "subject": req.subject, "target_new": req.target_new, "target_true": req.target_true,
                   "immediate": m, "ok": {"prob": bool(okp), "argmax": bool(oka)}, "windows": self.windows.means(),
                   "distance": dist, "nonfinite": bool(bad), "nonfinite_params": bad, "error": error,
                   "editor_stats": stats,
                   "timing": {"apply_s": t1 - t0, "score_s": t2 - t1, "editor": stat_times}}
            self.writer.write(rec)
        self.position = pos + len(batch)
        self.batch_index += 1

    def check(self, n: int, history: bool, health: bool, downstream: bool = False) -> None:
        """A checkpoint record at edit count ``n``: forgetting (one batched re-score), health and/or downstream."""
        rec: dict[str, Any] = {"type": "check", "n": n, "timing": {}}
        if history:
            t = time.perf_counter()
            positions = self.forget.to_recheck()
            oks, n_pairs = self.rewrites.score(self.model, [(p, self.stream[p]) for p in positions])
            self.forget.update(positions, [a for a, _ in oks], [b for _, b in oks])
            rec["forgetting"] = self.forget.fractions()
            rec["held"] = {d: self.forget.held(d) for d in ("argmax", "prob")}  # per edit: the retention heatmap
            rec["n_rechecked"] = len(positions)
            rec["n_pairs"] = n_pairs
            if "gen" in self.protocols:
                tg = time.perf_counter()
                gpos = self.gen_forget.to_recheck()
                self.gen_forget.update(gpos, self.rewrites.generates(self.model, [(p, self.stream[p]) for p in gpos]))
                rec["forgetting_gen"] = self.gen_forget.fractions()
                rec["n_regenerated"] = len(gpos)
                rec["held"]["gen"] = self.gen_forget.held()
                rec["timing"]["history_gen_s"] = time.perf_counter() - tg
            rec["timing"]["history_s"] = time.perf_counter() - t
        if health and self.health_probe is not None:
            t = time.perf_counter()
            rec["health"] = {k: float(v) for k, v in self.health_probe(self.model, self.tok).items()}
            rec["timing"]["health_s"] = time.perf_counter() - t
        if downstream and self.downstream_probe is not None:
            t = time.perf_counter()
            rec["downstream"] = {k: (None if v is None else float(v))
                                 for k, v in self.downstream_probe(self.model, self.tok).items()}
            rec["timing"]["downstream_s"] = time.perf_counter() - t
        self.writer.write(rec)
        self.last_check = {**rec.get("forgetting", {}), **rec.get("health", {})} or self.last_check
        self.last_check_n = n

    def final(self) -> None:
        """Schedule "final": full metrics of every edit of the run, scored after the last one."""
        t = time.perf_counter()
        metrics = score_requests(self.model, self.tok, self.stream, batch_size=self.cfg.score_batch_size,
                                 protocols=self.protocols)
        for i, (req, m) in enumerate(zip(self.stream, metrics)):
            self.writer.write({"type": "final", "n": i + 1, "case_id": req.case_id, "metrics": m})
        self.writer.write({"type": "final_done", "n": len(self.stream), "timing": {"final_s": time.perf_counter() - t}})


def run_sequential(editor, lm, requests: Sequence[EditRequest], config: SequentialConfig = SequentialConfig(), *,
                   health_probe: Callable[[torch.nn.Module, Any], dict] | None = None,
                   health_directions: dict[str, str] | None = None, dataset: str | None = None,
                   stream: Sequence[EditRequest] | None = None, restore_model: bool = True,
                   downstream_probe: Callable[[torch.nn.Module, Any], dict] | None = None,
                   overrides: dict | None = None) -> dict:
    """Run (or resume) one sequential run of ``editor`` on ``lm`` (anything with ``.model`` and ``.tok``, e.g. a
    :class:`~editbench.models.loader.LoadedModel` — unedited, also when resuming) over the stream built from
    ``requests`` (or the ``stream`` given); return the summary dict of :func:`editbench.runner.summary.summarize`.
    ``health_directions`` says for each health metric whether "higher" or "lower" is better (the probes declare
    it). The model is handed back unedited: every parameter the run touched is restored when it ends, so one
    loaded model serves a whole session (``restore_model=False`` leaves the edited weights, to inspect them).
    ``downstream_probe`` (e.g. :class:`editbench.metrics.downstream.GlueProbe`) runs every
    ``config.downstream_every`` edits. ``overrides``: the front end's hyperparameter overrides, kept in
    checkpoints beside the resolved hyperparameters (a resume compares both). The run directory is locked while
    the run writes it (:class:`~editbench.runner.files.RunLock`; a second run into it raises ``RunLocked``)."""
    cfg = config
    if cfg.batch_size > 1 and not getattr(editor, "supports_batch", False):
        raise ValueError(f"batch_size={cfg.batch_size} but editor {getattr(editor, 'name', editor)!r} does not "
                         "support batch edits")
    if stream is None:
        stream = make_stream(requests, cfg.order, cfg.seed, cfg.sample, cfg.n_edits)
    run = _Run(editor, lm, list(stream), cfg, health_probe, dataset, health_directions)
    run.downstream_probe = downstream_probe
    if overrides is not None:
        run.identity["overrides"] = jsonable(dict(overrides))
    lock = RunLock(run.out).acquire()  # one writer per run directory: RunLocked names the other one
    try:
        t = time.perf_counter()
        editor.prepare(run.model, run.tok)  # one-off work on the unedited model (covariances ...)
        run.prepare_s = time.perf_counter() - t
        run.start()
        return _loop(run, editor, cfg)
    finally:
        lock.release()
        if restore_model:
            restore(run.model, run.distance.originals)  # hand the model back as it came


def _loop(run: "_Run", editor, cfg: SequentialConfig) -> dict:
    from editbench.runner.summary import summarize

    stream = run.stream
    k, h_every = cfg.history_every, cfg.health_every or cfg.history_every
    t_start = time.perf_counter()
    bar = tqdm(total=len(stream), initial=run.position, unit="edit", disable=not cfg.progress,
               desc=f"seq[{getattr(editor, 'name', 'editor')} s{cfg.sample}]", dynamic_ncols=True)
    try:
        todo = batches(stream, cfg.batch_size, start=run.position) if run.stopped is None else []
        for pos, batch in todo:
            run.step(pos, batch)
            # a run stopped by non-finite weights ends here as a run ends at its last edit: a last check and a
            # checkpoint (so resuming it continues nothing), with a "stop" record between them
            n, last = run.position, run.position == len(stream) or run.stopped is not None
            do_hist = "history" in cfg.schedules and (crossed(pos, n, k) or last)
            do_health = run.health_probe is not None and (crossed(pos, n, h_every) or last)
            do_ds = run.downstream_on and (crossed(pos, n, cfg.downstream_every) or last)
            if do_hist or do_health or do_ds:
                run.check(n, history=do_hist, health=do_health, downstream=do_ds)
            if run.stopped is not None:
                run.writer.write({"type": "stop", "n": n, "reason": run.stopped, "on_nonfinite": cfg.on_nonfinite})
                warnings.warn(f"{run.out}: {run.stopped}: the run stops (on_nonfinite='stop')", RuntimeWarning,
                              stacklevel=3)
            if crossed(pos, n, cfg.checkpoint_every) or (last and cfg.checkpoint_every):
                run.save()
            bar.update(len(batch))
            w = run.windows.means()
            post = {"ES50": w.get(f"es_w{max(cfg.windows)}")}
            if "forget_argmax_now" in run.last_check:
                post["forget"] = run.last_check["forget_argmax_now"]
            bar.set_postfix({key: f"{v:.2f}" for key, v in post.items() if v is not None}, refresh=False)
            if run.stopped is not None:
                break
        if "final" in cfg.schedules and run.stopped is None:
            run.final()
    finally:
        bar.close()
        run.writer.close()
    return summarize(run.jsonl_path, cfg, wall_s=time.perf_counter() - t_start, resumed_from=run.resumed_from)
