"""Classification metrics of a downstream task, with bootstrap intervals and the chance rule.

Predictions are label indices, or -1 for an answer that could not be parsed (answer mode ``gen``): it counts as
wrong, as in the seed paper's code, which passes it to scikit-learn as a class of its own.

- ``f1`` — the paper's F1: scikit-learn ``f1_score(labels, predictions, average="weighted")``: per class c of the
  labels and predictions, F1_c = 2·TP/(2·TP + FP + FN) (0 when the class is neither true nor predicted), averaged
  with weights = the class's support among the true labels (so the unparseable class, support 0, weighs nothing,
  but its predictions are each task class's false negatives).
- ``macro_f1`` — the unweighted mean of F1_c over the task's classes (not over -1).
- ``mcc`` — scikit-learn ``matthews_corrcoef`` (Gorodkin's multiclass form over the K×K confusion matrix of the
  labels and predictions, -1 included): (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)), 0 when a factor is 0.
- ``acc`` — the share of predictions equal to the label; ``invalid`` — the share that were -1.

Every metric comes with a 95% percentile-bootstrap interval over examples (:mod:`editbench.metrics.intervals`:
2,000 resamples, seed 0): the examples are resampled and every metric recomputed on the resample.

**Chance.** A task is *above chance* (in one answer mode) when the MCC interval excludes 0 (lo > 0) *and* the
accuracy interval excludes the chance accuracy (lo > the majority-class share: 0.5 on the class-balanced sets;
always answering one class, or answering at random, does no better). Otherwise the model cannot be shown to do
the task at all, and a later drop of its F1 is no evidence of a regression: such a task is reported as
``at chance: cannot show a regression`` and never gated.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from editbench.metrics.intervals import LEVEL, N_BOOT, SEED, _index_chunks, _quantiles

METRIC_KEYS = ("f1", "macro_f1", "mcc", "acc")
AT_CHANCE = "at chance: cannot show a regression"


def _cells(labels: Sequence[int], preds: Sequence[int], n_classes: int) -> np.ndarray:
    """Cell index label·(K+1) + (pred+1) of each example (pred -1 = column 0)."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(preds, dtype=np.int64)
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} predictions")
    if y.size and (y.min() < 0 or y.max() >= n_classes or p.min() < -1 or p.max() >= n_classes):
        raise ValueError(f"labels must be in 0..{n_classes - 1} and predictions in -1..{n_classes - 1}")
    return y * (n_classes + 1) + (p + 1)


def _from_counts(counts: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Metrics of every row of confusion counts ``[rows, K·(K+1)]`` (true class × predicted class incl. -1)."""
    k = n_classes
    cm = counts.reshape(-1, k, k + 1).astype(float)  # [rows, true, pred(-1, 0..k-1)]
    s = cm.sum(axis=(1, 2))
    t = cm.sum(axis=2)                                # true support per class [rows, k]
    p = cm.sum(axis=1)                                # predicted per column [rows, k+1]
    tp = np.stack([cm[:, c, c + 1] for c in range(k)], axis=1)
    fp = p[:, 1:] - tp
    fn = t - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = 2 * tp + fp + fn
        f1c = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
        weighted = np.where(s > 0, (f1c * t).sum(axis=1) / np.where(s > 0, s, 1), np.nan)
        correct = tp.sum(axis=1)
        t_all = np.concatenate([np.zeros((len(s), 1)), t], axis=1)  # true support of the -1 class is 0
        cov = correct * s - (p * t_all).sum(axis=1)
        vp = s ** 2 - (p ** 2).sum(axis=1)
        vt = s ** 2 - (t_all ** 2).sum(axis=1)
        den = np.sqrt(vp * vt)
        mcc = np.where(den > 0, cov / np.where(den > 0, den, 1), 0.0)
        acc = np.where(s > 0, correct / np.where(s > 0, s, 1), np.nan)
        invalid = np.where(s > 0, p[:, 0] / np.where(s > 0, s, 1), np.nan)
    return {"f1": weighted, "macro_f1": f1c.mean(axis=1), "mcc": mcc, "acc": acc, "invalid": invalid}


def point_metrics(labels: Sequence[int], preds: Sequence[int], n_classes: int = 2) -> dict[str, float]:
    """f1 (the paper's weighted F1), macro_f1, mcc, acc and invalid of one set of predictions."""
    cells = _cells(labels, preds, n_classes)
    counts = np.bincount(cells, minlength=n_classes * (n_classes + 1))[None]
    return {k: float(v[0]) for k, v in _from_counts(counts, n_classes).items()}


def metrics_with_intervals(labels: Sequence[int], preds: Sequence[int], n_classes: int = 2, *,
                           n_boot: int = N_BOOT, seed: int = SEED, level: float = LEVEL) -> dict:
    """``{metric: {"value", "lo", "hi"}}`` for each of :data:`METRIC_KEYS` (examples resampled, every metric
    recomputed per resample), plus ``invalid``, ``n``, ``chance_acc`` and the verdict ``above_chance``."""
    cells = _cells(labels, preds, n_classes)
    n = int(cells.size)
    point = point_metrics(labels, preds, n_classes)
    out: dict = {"n": n, "invalid": point["invalid"]}
    if n == 0:
        return {**out, **{k: {"value": None, "lo": None, "hi": None} for k in METRIC_KEYS},
                "chance_acc": None, "above_chance": False}
    width = n_classes * (n_classes + 1)
    rng = np.random.default_rng(seed)
    stats: dict[str, list] = {k: [] for k in METRIC_KEYS}
    for idx in _index_chunks(n, n_boot, rng):
        taken = cells[idx]
        counts = np.stack([(taken == c).sum(axis=1) for c in range(width)], axis=1)
        res = _from_counts(counts, n_classes)
        for k in METRIC_KEYS:
            stats[k].append(res[k])
    for k in METRIC_KEYS:
        lo, hi = _quantiles(np.concatenate(stats[k]), level)
        v = point[k]
        out[k] = {"value": v, "lo": min(lo, v), "hi": max(hi, v)}
    support = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
    out["chance_acc"] = float(support.max() / n)
    out["above_chance"] = bool(out["mcc"]["lo"] > 0 and out["acc"]["lo"] > out["chance_acc"])
    return out


def chance_note(res: dict) -> str | None:
    """None for a task above chance, else the :data:`AT_CHANCE` note with the numbers that put it there."""
    if res.get("above_chance"):
        return None
    mcc, acc = res.get("mcc") or {}, res.get("acc") or {}
    if mcc.get("lo") is None:
        return f"{AT_CHANCE} (no examples)"
    return (f"{AT_CHANCE} (MCC {mcc['value']:.2f} [{mcc['lo']:.2f}, {mcc['hi']:.2f}], accuracy {acc['value']:.2f} "
            f"[{acc['lo']:.2f}, {acc['hi']:.2f}] vs chance {res['chance_acc']:.2f}, n={res['n']})")
