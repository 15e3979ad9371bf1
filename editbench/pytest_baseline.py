"""The pytest form of ``editbench compare --editor A --baseline B``: ``--baseline NAME`` makes a session compare every
other editor it ran against NAME, paired per record (:mod:`editbench.runner.paired`), and fail when one is worse
on a gated metric beyond noise::

    pytest --pyargs editbench.suites -m single --editor my-editor --editor rome --model factworld --baseline rome
    pytest --pyargs editbench.suites -m single --editor my-editor --model factworld \\
           --baseline rome --baseline-results editbench-baseline/     # rome's results committed earlier

Exit status: 1 when an editor is worse than the baseline beyond noise on a ``--baseline-gate`` metric (default es,
ps, ns), 4 when the results cannot be paired (different model, records or seed; no result of the baseline), else
the session's own. The comparison table is printed with the session's results.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tabulate import tabulate

from editbench.options import USAGE_ERROR


def compare(config: Any, session_file: Path | None, results: list[dict]) -> tuple[int | None, list[str]]:
    """``(exit status or None, lines to print)`` for the session's ``--baseline`` option (None: nothing to do)."""
    baseline = config.getoption("--baseline")
    if not baseline or session_file is None:
        return None, []
    # imported here, not at the top: the pytest plugin imports this module at every start (0.00 s), and these
    # import torch (2-3 s cold, measured) -- only a session with --baseline pays for them
    from editbench.runner.compare import CompareError
    from editbench.runner.paired import DEFAULT_GATE, compare_editors

    extra = config.getoption("--baseline-results")
    pool = [session_file, *([extra] if extra else [])]
    gate = tuple(config.getoption("--baseline-gate") or DEFAULT_GATE)
    editors = sorted({str(((r.get("provenance") or {}).get("editor") or {}).get("name")) for r in results}
                     - {baseline})
    lines, status = [], 0
    for editor in editors:
        try:
            findings = compare_editors(pool, editor, baseline, gate=gate)
        except CompareError as e:
            return USAGE_ERROR, [f"--baseline {baseline}: {e}"]
        bad = [f for f in findings if f.regression]
        status = 1 if bad else status
        lines.append(f"{editor} vs {baseline} (gated: {', '.join(gate)}): {len(bad)} regression(s); "
                     "mean(A - B) over the shared records, paired bootstrap 95% interval, exact sign test")
        lines.append(tabulate([[f.key, f.metric, f.base, f.new, f.status, f.note] for f in findings],
                              headers=("result", "metric", f"B ({baseline})", f"A ({editor})", "status", "A - B"),
                              tablefmt="github"))
    return status, lines
