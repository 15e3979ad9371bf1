"""Equal-budget sweep: the same N edits (same records, order, editor hyperparameters and seed) applied one at a time
and in batches of b, side by side — which degrades the model more? (``editbench sweep`` makes the runs; any
sequential runs that match are grouped here, whoever made them.)

Per batch size: forgetting (argmax, now and ever) after all N edits, the health signal first -> last, the total
relative movement of the edited weights (sum over layers of ||W - W0||_F / ||W0||_F), immediate ES / PS / NS and
s/edit; and a figure of forgetting and health against the number of edits, one line per batch size.

An edit's immediate score is taken after its whole batch, so forgetting counts only what *later* batches undo: a
single batch of all N edits shows none by construction. Health, NS and the weights' movement compare directly.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from editbench.report.collect import Collection, Entry, digest
from editbench.report.figure import save_figure
from editbench.runner.jsonl import read_jsonl
from editbench.runner.summary import run_cost

HEADERS = ("batch size", "edits", "editor steps", "forgetting now / ever ↓", "health first → last",
           "Σ ‖ΔW‖/‖W₀‖ ↓", "ES ↑", "PS ↑", "NS ↑", "s/edit ↓")


def _budget_key(e: Entry) -> str:
    d = e.details
    prov = d.get("provenance") or {}
    ids = (prov.get("dataset") or {}).get("record_ids")
    hp = (prov.get("editor") or {}).get("hparams")
    return digest([e.editor, e.model, e.dataset, d.get("n_planned"), e.seed, e.sample, d.get("order"), ids, hp])


def sweeps(col: Collection) -> list[list[Entry]]:
    """Groups of complete sequential runs on the same edit budget with at least two batch sizes."""
    groups: dict[str, dict[int, Entry]] = {}
    for e in col.by_suite("sequential"):
        if not e.details.get("complete", True):
            continue
        groups.setdefault(_budget_key(e), {})[e.batch_size] = e
    return [[g[b] for b in sorted(g)] for g in groups.values() if len(g) >= 2]


def total_rel(e: Entry) -> float | None:
    dist = e.details.get("distance_final") or {}
    vals = [v.get("rel") for k, v in dist.items() if k != "total" and isinstance(v, dict) and v.get("rel") is not None]
    return sum(vals) if vals else None


def per_edit(e: Entry) -> float | None:
    """Editor time per edit (a batch's apply time shared by its edits): the summary's cost
    (:func:`editbench.runner.summary.run_cost`). A summary written before run_cost counted a batch's apply once
    (no ``apply_s_per_step``) is recomputed from the run's records when they are at hand."""
    cost = e.details.get("cost") or {}
    if "apply_s_per_step" not in cost and e.batch_size > 1 and e.jsonl is not None and Path(e.jsonl).is_file():
        edits = [r for r in read_jsonl(e.jsonl, damaged=[]) if r.get("type") == "edit"]
        cost = run_cost(edits, [], {})
    return cost.get("apply_s_mean") or e.s_per_edit


def sweep_rows(group: list[Entry]) -> list[list[str]]:
    rows = []
    for e in group:
        f = e.details.get("forgetting_final") or {}
        now, ever = f.get("forget_argmax_now"), f.get("forget_argmax_ever")
        h0, h1 = e.details.get("health_first"), e.details.get("health_last")
        rel = total_rel(e)
        imm = e.details.get("immediate_mean") or {}
        steps = -(-e.n // max(1, e.batch_size))
        rows.append([str(e.batch_size), str(e.n), str(steps),
                     "–" if now is None else f"{now:.2f} / {ever:.2f}",
                     "–" if h0 is None else f"{e.details.get('health_key', '')} {h0:.2f} → {h1:.2f}",
                     "–" if rel is None else f"{rel:.3f}",
                     *("–" if imm.get(k) is None else f"{imm[k]:.2f}" for k in ("es", "ps", "ns")),
                     "–" if per_edit(e) is None else f"{per_edit(e):.2f}"])
    return rows


def plot_sweep(group: list[Entry], png: str | Path) -> Path | None:
    """Forgetting (argmax now) and health against edits, one line per batch size; None without run records."""
    series = []
    for e in group:
        if e.jsonl is None or not Path(e.jsonl).is_file():
            continue
        checks = [r for r in read_jsonl(e.jsonl, damaged=[]) if r.get("type") == "check"]
        hk = e.details.get("health_key") or "ppl"
        fg = [(c["n"], (c.get("forgetting") or {}).get("forget_argmax_now")) for c in checks if "forgetting" in c]
        hl = [(c["n"], (c.get("health") or {}).get(hk)) for c in checks if "health" in c]
        series.append((e.batch_size, fg, hl, hk))
    if not series:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for b, fg, hl, hk in series:
        a1.plot([n for n, v in fg if v is not None], [v for n, v in fg if v is not None], marker=".", label=f"b={b}")
        a2.plot([n for n, v in hl if v is not None], [v for n, v in hl if v is not None], marker=".", label=f"b={b}")
        a2.set_ylabel(hk)
    a1.set_xlabel("edits")
    a1.set_ylabel("forgetting (argmax, now)")
    a2.set_xlabel("edits")
    for a in (a1, a2):
        a.legend()
        a.grid(alpha=0.3)
    e0 = group[0]
    fig.suptitle(f"equal budget: {e0.editor} on {e0.model}, {e0.dataset}, {e0.n} edits, one at a time vs batches")
    return save_figure(fig, png, dpi=110)
