"""Pass/fail gates read from a checked-in thresholds file (``suites/thresholds.yaml``).

Layout: ``suite -> model -> editor -> metric -> spec``. ``default`` may stand for a model or an editor; the lookup
is (model, editor), (model, default), (default, editor), (default, default).

A metric's spec is a mapping with one or more bars, all of which must hold, and where they came from:

========================  =================================================================================
``min: x``                the measured value >= x
``max: y``                the measured value <= y
``min_vs_baseline: d``    value - (the same metric of the unedited model on the same records) >= d; ``d`` is
                          usually negative, the drop allowed (``ns: {min_vs_baseline: -0.2}``: NS falls by at
                          most 0.2). For metrics that depend on which records were drawn (NS: how many
                          neighbours the unedited model already gets right), so that a hard draw fails the
                          editor only if the *edit* did the damage.
``max_vs_baseline: d``    value - baseline <= d
``lo_min: x``             the lower bound of the value's bootstrap interval over records
                          (:mod:`editbench.metrics.intervals`, 95%, seeded) >= x: "clearly above x"
``hi_max: y``             the interval's upper bound <= y
``from: "text"``          where the bars came from (measurement, model, records, date); printed in every
                          failure of that metric
========================  =================================================================================

The metric name says the scoring protocol a gate uses: ``es``/``ps``/``ns`` (and the magnitudes) are ``prob``,
``*_tok`` are ``token_acc`` and ``*_gen`` are ``gen`` (:mod:`editbench.metrics.counterfact`).

Example: ``ns: {min_vs_baseline: -0.2, from: "ROME on SmolLM2, 10 records, 2026-11-26: NS 0.70 vs 0.70"}``.
Comparisons allow 1e-9 of float rounding (``0.6 - 0.8`` meets ``-0.2``). A gated metric that was not measured
fails, as does a relative bar without a baseline, a bound-based bar without an interval, and an unknown key in a
spec (a typo must not pass silently). Every failure names the metric, the value checked, the bar and where the bar
came from. Every number in the file should also say, in a comment beside it, what measurement it came from.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def _keys_to_str(obj):
    # YAML reads a bare `null:` key (the null editor) as None; gates are keyed by names, so keep the name.
    if isinstance(obj, dict):
        return {("null" if k is None else str(k)): _keys_to_str(v) for k, v in obj.items()}
    return obj


def load_thresholds(path: str | Path) -> dict:
    with open(path) as fh:
        return _keys_to_str(yaml.safe_load(fh) or {})


def _model_keys(model_id: str) -> list[str]:
    return [model_id, Path(model_id).name, "default"]


def gates_for(table: dict, suite: str, model_id: str, editor: str) -> dict[str, dict]:
    by_model = table.get(suite, {}) or {}
    for mkey in _model_keys(model_id):
        if mkey in by_model:
            by_editor = by_model[mkey] or {}
            for ekey in (editor, "default"):
                if ekey in by_editor:
                    return dict(by_editor[ekey] or {})
    return {}


BAR_KEYS = ("min", "max", "min_vs_baseline", "max_vs_baseline", "lo_min", "hi_max")
SPEC_KEYS = BAR_KEYS + ("from",)
EPS = 1e-9  # float slack: 0.6 - 0.8 is -0.20000000000000007 in floats and must meet a bar of -0.2


def _num(v) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else str(v)


def _source(bound: dict) -> str:
    src = bound.get("from")
    return f" (bar from: {src})" if src else ""


def check_gates(metrics: dict[str, Any], gates: dict[str, dict], *, baseline: dict[str, Any] | None = None,
                intervals: dict[str, dict] | None = None) -> list[str]:
    """Failures as readable strings (empty list = pass); see the module docstring for the spec.

    ``baseline``: the same metrics on the unedited model over the same records (for ``*_vs_baseline``);
    ``intervals``: ``{metric: {"lo", "hi", ...}}`` (for ``lo_min`` / ``hi_max``).
    """
    failures = []
    for metric, bound in gates.items():
        bound = bound if isinstance(bound, dict) else {}
        src = _source(bound)
        unknown = sorted(set(bound) - set(SPEC_KEYS))
        if unknown:
            failures.append(f"{metric}: unknown gate key(s) {unknown} (known: {', '.join(SPEC_KEYS)}){src}")
        value = metrics.get(metric)
        if value is None:
            failures.append(f"{metric}: not measured{src}")
            continue
        if "min" in bound and value < bound["min"] - EPS:
            failures.append(f"{metric} = {value:.3f} < min {bound['min']}{src}")
        if "max" in bound and value > bound["max"] + EPS:
            failures.append(f"{metric} = {value:.3f} > max {bound['max']}{src}")
        for key, op in (("min_vs_baseline", "<"), ("max_vs_baseline", ">")):
            if key not in bound:
                continue
            base = (baseline or {}).get(metric)
            if base is None:
                failures.append(f"{metric}: {key} {bound[key]} needs the unedited baseline, which was not "
                                f"measured{src}")
                continue
            delta = value - base
            if (delta < bound[key] - EPS) if op == "<" else (delta > bound[key] + EPS):
                failures.append(f"{metric} - unedited = {value:.3f} - {base:.3f} = {delta:+.3f} {op} {key} "
                                f"{bound[key]}{src}")
        for key, end, op in (("lo_min", "lo", "<"), ("hi_max", "hi", ">")):
            if key not in bound:
                continue
            ci = (intervals or {}).get(metric) or {}
            b = ci.get(end)
            if b is None:
                failures.append(f"{metric}: {key} {bound[key]} needs the interval, which was not measured{src}")
                continue
            if (b < bound[key] - EPS) if op == "<" else (b > bound[key] + EPS):
                failures.append(f"{metric} = {value:.3f} [{_num(ci.get('lo'))}, {_num(ci.get('hi'))}] "
                                f"(n = {ci.get('n')}): interval {'lower' if end == 'lo' else 'upper'} bound "
                                f"{b:.3f} {op} {key} {bound[key]}{src}")
    return failures


def gate_values(metrics: dict[str, Any], gates: dict[str, dict], *, baseline: dict[str, Any] | None = None,
                intervals: dict[str, dict] | None = None) -> dict[str, float | None]:
    """The numbers the gates were checked against, flat: ``metric`` (the value), ``metric_vs_baseline`` (value -
    unedited) for relative bars, ``metric_lo`` / ``metric_hi`` for bound-based bars."""
    out: dict[str, float | None] = {}
    for metric, bound in gates.items():
        bound = bound if isinstance(bound, dict) else {}
        value = metrics.get(metric)
        out[metric] = value
        if "min_vs_baseline" in bound or "max_vs_baseline" in bound:
            base = (baseline or {}).get(metric)
            out[f"{metric}_baseline"] = base
            out[f"{metric}_vs_baseline"] = None if value is None or base is None else value - base
        ci = (intervals or {}).get(metric) or {}
        if "lo_min" in bound:
            out[f"{metric}_lo"] = ci.get("lo")
        if "hi_max" in bound:
            out[f"{metric}_hi"] = ci.get("hi")
    return out


def verdict(gates: dict, failures: list[str]) -> str:
    """The result's one-word verdict: ``pass``, ``FAIL``, or ``NO GATES`` (nothing to judge by: the test fails)."""
    if not gates:
        return "NO GATES"
    return "FAIL" if failures else "pass"
