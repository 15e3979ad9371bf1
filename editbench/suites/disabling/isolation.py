"""One edit on a fresh model, measured and undone; and the scan of N records edited one at a time that way.

:class:`FreshModel` keeps what a fresh (unedited) model is: a CPU copy of every parameter and buffer and the
SHA-256 of each (:func:`editbench.models.loader.state_hash`), plus its health measured once. :meth:`FreshModel.edit`
applies requests as the model's *first* edit (``editor.reset()`` first), then measures

- the normalized weight distance of every touched parameter and in total (:class:`~editbench.metrics.distance.
  DistanceTracker`, the seed paper's ``‖W − W₀‖_F / numel``) and which hold NaN/inf;
- the edit's own scores (ES/PS/NS, ``prob`` protocol: did the edit work?);
- the health probes (recall of unedited facts, perplexity, generation entropy) against the fresh model's, and
  whether they collapsed (:func:`editbench.suites.disabling.rules.health_collapse`);

and restores the model byte for byte, checked by hash on every touched parameter (and on the whole model when an
edit raised, from the full copy when anything differs). An edit that raises, or leaves non-finite weights, is
recorded as a disabling finding with its error; the run goes on.

:func:`scan` is the scan mode of the disabling suite: every record as a single edit, the distribution of the
distances, outliers flagged (:func:`~editbench.suites.disabling.rules.flag_outliers`), and each flagged edit confirmed
(or not) by its health collapse. :mod:`editbench.suites.disabling.run` isolates a sequential run's CF edits.
"""
from __future__ import annotations

import math
import random
import time
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from editbench.data.schema import EditRequest
from editbench.editors.base import restore
from editbench.metrics.counterfact import score_requests
from editbench.metrics.distance import DistanceTracker
from editbench.metrics.intervals import interval, method
from editbench.models.loader import state_hash
from editbench.runner.cost import memory
from editbench.suites.disabling.rules import (DisablingRule, distribution, flag_outliers, health_collapse,
                                              health_signals)

SCORE_KEYS = ("es", "ps", "ns")


def _plain(x: Any) -> Any:
    return x if not isinstance(x, float) or math.isfinite(x) else str(x)


def _distance(d: Any) -> float | None:
    """A row's distance as a float (``"inf"``/``"nan"`` strings back to floats; None when the edit raised)."""
    if d is None:
        return None
    try:
        return float(d)
    except (TypeError, ValueError):
        return None


class FreshModel:
    """The unedited state of ``lm.model`` and its health; :meth:`edit` measures one first edit and undoes it."""

    def __init__(self, lm, health: Callable | None = None, directions: dict[str, str] | None = None,
                 rule: DisablingRule = DisablingRule()):
        self.lm, self.model, self.tok = lm, lm.model, lm.tok
        self.health, self.directions, self.rule = health, dict(directions or {}), rule
        tensors = {**dict(self.model.named_parameters()), **dict(self.model.named_buffers())}
        self.hashes = {n: state_hash(self.model, [n]) for n in tensors}
        self.copy = {n: t.detach().to("cpu", copy=True) for n, t in tensors.items()}
        self.full_hash = state_hash(self.model)
        t = time.perf_counter()
        self.baseline = health(self.model, self.tok) if health is not None else {}
        self.health_s = time.perf_counter() - t

    def _restore_all(self) -> list[str]:
        """Put back every tensor whose hash differs from the fresh model's; the names put back."""
        tensors = {**dict(self.model.named_parameters()), **dict(self.model.named_buffers())}
        bad = [n for n in tensors if state_hash(self.model, [n]) != self.hashes[n]]
        with torch.no_grad():
            for n in bad:
                tensors[n].copy_(self.copy[n].to(tensors[n].device))
        return bad

    def edit(self, editor, requests: Sequence[EditRequest], with_health: bool = True) -> dict:
        """Apply ``requests`` as the first edit of the fresh model, measure it, restore it. A JSON-able row.
        ``with_health=False``: distance and scores only (a screening pass; ``row["health_measured"]`` False)."""
        row: dict[str, Any] = {"case_id": [r.case_id for r in requests] if len(requests) > 1 else requests[0].case_id,
                               "subject": requests[0].subject, "target_new": requests[0].target_new,
                               "target_true": requests[0].target_true, "error": None}
        editor.reset()
        t = time.perf_counter()
        try:
            res = editor.apply(self.model, self.tok, list(requests))
        except Exception as exc:  # noqa: BLE001 — a failed edit is a finding, not the end of the scan
            row.update(error=f"{type(exc).__name__}: {exc}", apply_s=time.perf_counter() - t, broken=True,
                       distance=None, nonfinite_params=[], health=None, signals={},
                       disabled={"disabled": True, "why": "the edit raised", "collapsed": []})
            row["restored_params"] = self._restore_all()  # a partial in-place edit must not survive
            row["restored"] = state_hash(self.model) == self.full_hash
            return row
        row["apply_s"] = time.perf_counter() - t
        tracker = DistanceTracker()
        tracker.track({n: self.copy[n] for n in res.originals if n in self.copy} or res.originals)
        measured = tracker.measure(self.model)
        row["distance"] = _plain(measured["total"]["dist"]) if "total" in measured else 0.0  # nothing touched: 0
        row["distance_params"] = {n: {k: _plain(v) for k, v in d.items()} for n, d in measured.items() if n != "total"}
        row["nonfinite_params"] = tracker.nonfinite(self.model, measured)
        row["broken"] = bool(row["nonfinite_params"])
        t = time.perf_counter()
        try:
            row["scores"] = {k: score_requests(self.model, self.tok, list(requests), protocols=("prob",))[0].get(k)
                             for k in SCORE_KEYS} if len(requests) == 1 else None
        except Exception as exc:  # noqa: BLE001
            row["scores"], row["error"] = None, f"scoring failed: {type(exc).__name__}: {exc}"
        row["health_measured"] = bool(with_health)
        try:
            row["health"] = self.health(self.model, self.tok) if (self.health is not None and with_health) else {}
        except Exception as exc:  # noqa: BLE001 — a broken model may break a probe: that is a collapse
            row["health"], row["error"] = None, f"health probe failed: {type(exc).__name__}: {exc}"
            row["broken"] = True
        row["eval_s"] = time.perf_counter() - t
        row["signals"] = health_signals(self.baseline, row["health"] or {}, self.directions, self.rule) \
            if row["health"] is not None else {}
        row["disabled"] = health_collapse(row["signals"], self.rule, broken=row["broken"])
        if not with_health and not row["broken"]:
            row["disabled"] = {"disabled": False, "collapsed": [],
                               "why": "health not measured (screening pass: only outliers and controls are)"}
        row["health"] = {k: _plain(v) for k, v in (row["health"] or {}).items()} or row["health"]
        restore(self.model, res.originals)
        names = sorted(res.originals)
        row["touched"] = names
        row["restored"] = all(state_hash(self.model, [n]) == self.hashes[n] for n in names if n in self.hashes)
        return row

    def check_untouched(self) -> bool:
        """Whether the whole model is byte-identical to the fresh one (one full hash)."""
        return state_hash(self.model) == self.full_hash


def scan(editor, lm, records: Sequence[EditRequest], *, health: Callable | None = None,
         directions: dict[str, str] | None = None, rule: DisablingRule = DisablingRule(),
         progress: bool = True, on_row: Callable[[dict], Any] | None = None,
         done: dict[str, dict] | None = None, health_on: str = "all", n_controls: int = 5,
         seed: int = 0) -> dict:
    """Every record as the single (first) edit of a fresh model: per-edit rows, the distance distribution, the
    flagged outliers and which of them the health probes confirm as disabling. The model ends unedited.
    ``on_row(row)`` is called after each edit (e.g. to write rows as they come, for a long scan); ``done`` maps
    case ids to rows an interrupted scan already wrote (``--resume``): those records are not edited again.

    ``health_on="flagged"`` (a two-pass scan, for long scans on slow machines): the first pass measures only the
    distance (and scores) of every record; the flagged outliers, plus ``n_controls`` unflagged records drawn with
    ``seed`` (the "normal edit" comparison of the paper's Table 2), are then edited again with the health probes.
    Records without health are not confirmed or refuted as disabling (``health_measured`` False), so
    ``disabled_unflagged`` covers only the controls. ``"all"``: health after every edit (one pass)."""
    if health_on not in ("all", "flagged"):
        raise ValueError(f"health_on {health_on!r}: expected 'all' or 'flagged'")
    t0 = time.perf_counter()
    editor.prepare(lm.model, lm.tok)
    prepare_s = time.perf_counter() - t0
    fresh = FreshModel(lm, health, directions, rule)
    rows = []
    bar = tqdm(records, desc=f"disabling-scan[{editor.name}]", unit="edit", disable=not progress, leave=False)
    done = done or {}
    for req in bar:
        if req.case_id in done:
            rows.append(dict(done[req.case_id]))
            continue
        rows.append(fresh.edit(editor, [req], with_health=health_on == "all"))
        if on_row is not None:
            on_row(rows[-1])
    flags = flag_outliers([_distance(r["distance"]) for r in rows], rule, broken=[r["broken"] for r in rows])
    if health_on == "flagged" and health is not None:
        unflagged = [i for i, f in enumerate(flags) if not f["flagged"]]
        controls = set(random.Random(seed).sample(unflagged, min(n_controls, len(unflagged))))
        second = [i for i, f in enumerate(flags) if f["flagged"] or i in controls]
        todo = [i for i in second if not rows[i].get("health_measured", True) and not rows[i]["broken"]]
        for i in tqdm(todo, desc=f"disabling-health[{editor.name}]", unit="edit", disable=not progress, leave=False):
            again = fresh.edit(editor, [records[i]], with_health=True)
            again["control"] = i in controls
            rows[i] = again
            if on_row is not None:
                on_row(again)
    for r, f in zip(rows, flags):
        r["outlier"] = f
        r["confirmed_disabling"] = bool(f["flagged"] and r["disabled"]["disabled"])
    flagged = [r for r in rows if r["outlier"]["flagged"]]
    confirmed = [r for r in flagged if r["confirmed_disabling"]]
    disabled_unflagged = [r for r in rows if r["disabled"]["disabled"] and not r["outlier"]["flagged"]]
    dists = [_distance(r["distance"]) for r in rows]
    normal = [d for d, r in zip(dists, rows) if not r["outlier"]["flagged"]]
    out = {
        "n": len(rows), "rule": rule.to_dict(), "baseline_health": fresh.baseline, "directions": fresh.directions,
        "distribution": distribution(dists), "distribution_normal": distribution(normal),
        "distribution_flagged": distribution([d for d, r in zip(dists, rows) if r["outlier"]["flagged"]]),
        "flagged": [r["case_id"] for r in flagged], "confirmed": [r["case_id"] for r in confirmed],
        "disabled_unflagged": [r["case_id"] for r in disabled_unflagged],
        "n_flagged": len(flagged), "n_intrinsic": len(confirmed), "health_on": health_on,
        "n_health_measured": sum(1 for r in rows if r.get("health_measured", True)),
        # the rate of intrinsically disabling edits among the N records, with its bootstrap 95% interval
        "intrinsic_rate": interval([float(r["confirmed_disabling"]) for r in rows]),
        "flagged_rate": interval([float(r["outlier"]["flagged"]) for r in rows]),
        "es": interval([(r.get("scores") or {}).get("es") for r in rows]),
        "interval_method": method(), "n_errors": sum(1 for r in rows if r["error"]),
        "all_restored": all(r["restored"] for r in rows) and fresh.check_untouched(),
        "per_edit": rows,
    }
    apply = [r["apply_s"] for r in rows]
    out["timings"] = {"prepare_s": prepare_s, "baseline_health_s": fresh.health_s, "total_s": time.perf_counter() - t0,
                      "apply_s_mean": sum(apply) / len(apply) if apply else None,
                      "eval_s_mean": (sum(r.get("eval_s") or 0 for r in rows) / len(rows)) if rows else None}
    out["cost"] = {"prepare_s": prepare_s, "apply_s_total": sum(apply), "apply_s_mean": out["timings"]["apply_s_mean"],
                   "eval_s": sum(r.get("eval_s") or 0 for r in rows) + fresh.health_s, **memory()}
    return out
