"""The downstream suite's gates (thresholds.yaml, suite ``downstream``): ``f1_drop`` bounds the F1 drop in points
(100 × (F1 before − F1 after the N edits), in the task's primary answer mode) of every task the unedited model does
above chance; ``f1_drop_<task>`` overrides it for one task. A task at chance has no gate value: it cannot show a
regression."""
from __future__ import annotations


def gate_values(result: dict) -> dict[str, float]:
    """``f1_drop_<task>`` (points) of every task above chance — the values the ``f1_drop`` gate bounds."""
    return {f"f1_drop_{t}": r["f1_drop_points"] for t, r in result["tasks"].items() if r["above_chance"]}


def select_gates(gates: dict, values: dict) -> dict:
    """Bars for the measured tasks: ``f1_drop`` becomes ``f1_drop_<task>`` for every value present."""
    shared = gates.get("f1_drop")
    out = {}
    for key in values:
        spec = gates.get(key, shared)
        if spec is not None:
            out[key] = spec
    return out
