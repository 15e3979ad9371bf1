"""One versioned result schema for every suite: what a session writes and what ``editbench report`` reads.

A session file is ``{"schema": SESSION_SCHEMA, "exitstatus": int, "results": [result, ...]}``; every result has
the same top-level shape whatever the suite (single, sequential, and the suites still to come):

=================  ==========================================================================================
``schema``         :data:`RESULT_SCHEMA` (bumped when a field changes meaning)
``suite``          ``"single"`` | ``"sequential"`` | ...
``test``           the pytest node id (or ``"cli"``)
``experiment``     the :class:`~editbench.runner.experiment.Experiment` that produced it (its ``to_dict``)
``provenance``     editor + hparams, model id + hash, dataset + record ids, seed, device, versions, git, created
``metrics``        ``{name: value}`` of the headline numbers (rates in [0, 1], counts, seconds)
``n``              how many records / edits the metrics are over
``baseline``       the same metrics on the unedited model, where the suite measures it (else ``None``)
``gates``          ``{metric: {min|max: bound}}`` that applied (from thresholds.yaml)
``gate_values``    the values the gates were checked against
``failures``       one readable string per failed gate or failed check
``verdict``        ``"pass"`` | ``"FAIL"`` | ``"NO GATES"``
``timings``        wall-clock seconds (``apply_s_mean`` is the tables' s/edit)
``cost``           measured cost (:mod:`editbench.runner.cost`): prepare_s, apply_s_total/mean, eval_s, peak memory
``artefacts``      paths of files the result refers to (run directory, JSON lines, summary, figure)
``record_errors``  malformed input records that were skipped, as strings naming the record and field
``details``        suite-specific payload (single: ``per_record``; sequential: the run ``summary``)
=================  ==========================================================================================
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from editbench.runner.files import write_atomic

RESULT_SCHEMA = "editbench.result/2"
SESSION_SCHEMA = "editbench.results/2"

# field -> the JSON types it may hold (None allowed where listed)
FIELDS: dict[str, tuple[type, ...]] = {
    "schema": (str,),
    "suite": (str,),
    "test": (str,),
    "experiment": (dict,),
    "provenance": (dict,),
    "metrics": (dict,),
    "n": (int,),
    "baseline": (dict, type(None)),
    "gates": (dict,),
    "gate_values": (dict,),
    "failures": (list,),
    "verdict": (str,),
    "timings": (dict,),
    "cost": (dict,),
    "artefacts": (dict,),
    "record_errors": (list,),
    "details": (dict,),
}
VERDICTS = ("pass", "FAIL", "NO GATES")
PROVENANCE_KEYS = ("editor", "model", "dataset", "seed", "device", "versions", "git", "created")


def make_result(*, suite: str, test: str, experiment: dict, provenance: dict, metrics: dict, n: int,
                gates: dict, gate_values: dict, failures: list[str], verdict: str, baseline: dict | None = None,
                timings: dict | None = None, artefacts: dict | None = None, record_errors: list | None = None,
                details: dict | None = None, cost: dict | None = None) -> dict:
    """A result in the schema (checked by :func:`validate`; a ValueError names what is wrong)."""
    result = {"schema": RESULT_SCHEMA, "suite": suite, "test": test, "experiment": experiment,
              "provenance": provenance, "metrics": metrics, "n": int(n), "baseline": baseline, "gates": gates,
              "gate_values": gate_values, "failures": list(failures), "verdict": verdict,
              "timings": timings or {}, "cost": cost or {}, "artefacts": artefacts or {},
              "record_errors": [str(e) for e in (record_errors or [])], "details": details or {}}
    problems = validate(result)
    if problems:
        raise ValueError("result does not match the schema: " + "; ".join(problems))
    return result


def validate(result: Any) -> list[str]:
    """What is wrong with ``result`` against the schema (empty list: it conforms)."""
    if not isinstance(result, dict):
        return [f"a result is a JSON object, got {type(result).__name__}"]
    problems = []
    for name, types in FIELDS.items():
        if name not in result:
            problems.append(f"missing field {name!r}")
        elif not isinstance(result[name], types) or (types == (int,) and isinstance(result[name], bool)):
            problems.append(f"field {name!r} is {type(result[name]).__name__}, expected "
                            + " or ".join(t.__name__ for t in types))
    extra = sorted(set(result) - set(FIELDS))
    if extra:
        problems.append(f"unknown field(s) {extra}")
    if not problems:
        if result["schema"] != RESULT_SCHEMA:
            problems.append(f"schema {result['schema']!r} is not {RESULT_SCHEMA!r}")
        if result["verdict"] not in VERDICTS:
            problems.append(f"verdict {result['verdict']!r} is not one of {VERDICTS}")
        missing = [k for k in PROVENANCE_KEYS if k not in result["provenance"]]
        if missing:
            problems.append(f"provenance lacks {missing}")
        for key, value in result["metrics"].items():
            if value is not None and not isinstance(value, (int, float)):
                problems.append(f"metric {key!r} is {type(value).__name__}, not a number")
    return problems


def validate_session(payload: Any) -> list[str]:
    """What is wrong with a session file's content (``{"schema", "exitstatus", "results"}``)."""
    if not isinstance(payload, dict) or payload.get("schema") != SESSION_SCHEMA:
        return [f"not an editbench session file (schema {SESSION_SCHEMA!r})"]
    out = []
    for i, r in enumerate(payload.get("results", [])):
        out += [f"results[{i}]: {p}" for p in validate(r)]
    return out


def write_session(path: str | Path, results: list[dict], exitstatus: int = 0, *, exclusive: bool = False) -> Path:
    """Write a session file ``{"schema", "exitstatus", "results"}`` atomically; the path written. The one writer of
    every front end (pytest session, ``editbench zsre|downstream|disabling``). ``exclusive``: a taken name gets
    ``_2``, ``_3`` ... (:func:`editbench.runner.files.write_atomic`, whose WriteFailed names the fallback file)."""
    payload = {"schema": SESSION_SCHEMA, "exitstatus": int(exitstatus), "results": results}
    return write_atomic(path, json.dumps(payload, indent=2, default=str), exclusive=exclusive)
