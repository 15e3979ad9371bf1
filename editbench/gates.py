"""Pass/fail gates read from a checked-in thresholds file (``suites/thresholds.yaml``).

Layout: ``suite -> model -> editor -> metric -> {min: x} | {max: y}``. ``default`` may stand for a model or an
editor; the lookup is (model, editor), (model, default), (default, editor), (default, default). Every number in
the file should say, in a comment beside it, what measurement it came from.
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


def check_gates(metrics: dict[str, Any], gates: dict[str, dict]) -> list[str]:
    """Failures as readable strings (empty list = pass). A gated metric that is missing is a failure."""
    failures = []
    for metric, bound in gates.items():
        value = metrics.get(metric)
        if value is None:
            failures.append(f"{metric}: not measured")
            continue
        if "min" in bound and value < bound["min"]:
            failures.append(f"{metric} = {value:.3f} < min {bound['min']}")
        if "max" in bound and value > bound["max"]:
            failures.append(f"{metric} = {value:.3f} > max {bound['max']}")
    return failures


def verdict(gates: dict, failures: list[str]) -> str:
    """The result's one-word verdict: ``pass``, ``FAIL``, or ``NO GATES`` (nothing to judge by: the test fails)."""
    if not gates:
        return "NO GATES"
    return "FAIL" if failures else "pass"
