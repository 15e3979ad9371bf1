"""The single suite's gates (thresholds.yaml, suite ``single``): any per-record metric of
:mod:`editbench.metrics.counterfact` (``es``, ``ps``, ``ns``, ``*_tok``, ``*_gen``, magnitudes, ``score``), with
absolute bars, bars relative to the unedited model on the same records (``*_vs_baseline``) and bars on the
bootstrap interval over records (``lo_min`` / ``hi_max``). Two findings fail it whatever the gates say: a restore
that was not byte-identical, and edits that raised (the run measured the errors, not the editor)."""
from __future__ import annotations

from editbench.gates import check_gates, gate_values
from editbench.runner.summary import raised_line, raised_reasons
from editbench.suites.single.run import SingleEditResult


def check(result: SingleEditResult, n_records: int, gates: dict) -> tuple[dict, list[str]]:
    """(the values the gates read, failures) of one editor's run over ``n_records`` records."""
    # relative bars compare with the unedited model on the same (edited and scored) records; bound-based bars read
    # the bootstrap intervals over records (thresholds.yaml, editbench.gates)
    post_ci = result.intervals.get("post", {})
    same_baseline = {k: v["mean"] for k, v in result.intervals.get("pre", {}).items()}
    failures = check_gates(result.post, gates, baseline=same_baseline, intervals=post_ci)
    checked = gate_values(result.post, gates, baseline=same_baseline, intervals=post_ci)
    if not result.all_restored:
        failures.append("restore was not byte-identical for: "
                        + ", ".join(str(r["case_id"]) for r in result.per_record if r.get("restored") is False))
    if result.errors:  # never a pass: the summary says how many raised and why
        reasons = raised_reasons([str(e.get("error", e)) if isinstance(e, dict) else str(e) for e in result.errors])
        failures.insert(0, raised_line(len(result.errors), n_records, reasons))
    return checked, failures
