"""docs/results.md documents every field the code writes, so the reference cannot silently go stale.

No model is loaded: the result's top-level fields come from the schema itself (``results.FIELDS``, which
``make_result`` and ``validate`` enforce: a result has exactly these keys), the experiment's from
``Experiment.to_dict()``, provenance from ``provenance()``, the cost keys from ``runner.cost`` and ``run_cost``, and
``summary.json``'s keys from ``summarize()`` run on a small run file written here in the runner's record format
(edits, history/health checks and a downstream check, so that every optional summary key appears).
A key counts as documented when it appears in backticks in the section of docs/results.md that describes it.
"""
import importlib
import json
import re
import typing
from pathlib import Path

from editbench.runner import results
from editbench.runner.cost import memory
from editbench.runner.experiment import Experiment
from editbench.runner.provenance import machine, provenance
from editbench.runner.summary import run_cost, summarize
from editbench.suites import SUITES

DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def _sections() -> dict[str, str]:
    """``{heading: text up to the next heading of the same or a higher level}`` of docs/results.md."""
    text = DOC.read_text(encoding="utf-8")
    heads = [(m.start(), len(m.group(1)), m.group(2).strip()) for m in re.finditer(r"^(#+) (.+)$", text, re.M)]
    out = {}
    for i, (start, level, title) in enumerate(heads):
        end = next((s for s, lv, _ in heads[i + 1:] if lv <= level), len(text))
        out[title] = text[start:end]
    return out


def _documented(heading: str) -> set[str]:
    """Every backticked span, and each word (letters, digits, _ . -) in one, in the section whose heading contains ``heading``."""
    sections = [body for title, body in _sections().items() if heading in title]
    assert sections, f"docs/results.md has no section headed like {heading!r}"
    words = set()
    for body in sections:
        for code in re.findall(r"`([^`\n]+)`", body):
            words.add(code.strip('"'))
            words.update(re.findall(r"[A-Za-z0-9_.\-]+", code))
    return words


def _missing(keys, heading: str) -> list[str]:
    return sorted(set(keys) - _documented(heading))


def test_every_result_field_is_documented():
    assert results.RESULT_SCHEMA in DOC.read_text(encoding="utf-8")
    assert not _missing(results.FIELDS, "A result ("), "result fields missing from docs/results.md"
    assert not _missing(results.VERDICTS, "A result ("), "verdicts missing from docs/results.md"


def test_session_file_is_documented():
    payload = {"schema": results.SESSION_SCHEMA, "exitstatus": 0, "results": []}
    assert results.validate_session(payload) == []
    assert results.SESSION_SCHEMA in _sections()["The session file"]
    assert not _missing(payload, "The session file")


def test_experiment_provenance_and_cost_keys_are_documented():
    exp = Experiment(suite="single", editor="null", model="factworld").to_dict()
    assert not _missing(exp, "`experiment`"), "Experiment fields missing from docs/results.md"
    prov = provenance(editor="null", model_id="factworld", model_hash="0" * 64, dataset="factworld",
                      record_ids=[1, 2], seed=0, device="cpu")
    assert not _missing(prov, "`provenance`")
    assert not _missing(results.PROVENANCE_KEYS, "`provenance`")
    assert not _missing(machine(), "`provenance`"), "provenance.machine keys missing from docs/results.md"
    cost = {**memory(), **run_cost([], [{"timing": {"downstream_s": 1.0}}], {})}
    assert not _missing(cost, "`cost`"), "cost keys missing from docs/results.md"
    assert not _missing(cost["eval_breakdown_s"], "`cost`")


def _edit(n: int) -> dict:
    m = {"es": 1.0, "ps": 1.0, "ns": 1.0, "em": 0.5, "pm": 0.5, "nm": 0.1, "es_correct": 1.0, "ps_correct": 1.0,
         "ns_correct": 1.0, "es_tok": 1.0, "ps_tok": 1.0, "ns_tok": 1.0, "es_gen": 1.0, "ps_gen": 1.0, "ns_gen": 1.0}
    tot = {"dist": 1e-6 * n, "fro": 0.1 * n, "rel": 0.01 * n, "norm": 10.0, "norm_ratio": 1.0 + 0.001 * n}
    return {"type": "edit", "n": n, "batch": n - 1, "case_id": str(n), "subject": f"s{n}", "target_new": "a",
            "target_true": "b", "immediate": m, "ok": {"prob": True, "argmax": True}, "windows": {"es_w5": 1.0},
            "distance": {"w": tot, "total": tot}, "nonfinite": False, "nonfinite_params": [], "error": None,
            "editor_stats": {}, "timing": {"apply_s": 0.1, "score_s": 0.01, "editor": {}}}


def _check(n: int) -> dict:
    forget = {"forget_prob_now": 0.0, "forget_prob_ever": 0.0, "forget_argmax_now": 0.0, "forget_argmax_ever": 0.0,
              "learned_prob": n, "learned_argmax": n}
    gen = {"forget_gen_now": 0.0, "forget_gen_ever": 0.0, "learned_gen": n}
    ds = {"sst2.f1": 0.7, "sst2.above_chance": 1.0, "sst2.gen.f1": 0.7}
    return {"type": "check", "n": n, "forgetting": forget, "forgetting_gen": gen, "health": {"ppl": 20.0 + n},
            "downstream": ds, "timing": {"history_s": 0.1, "health_s": 0.1, "downstream_s": 0.1}}


def test_summary_keys_are_documented(tmp_path):
    header = {"type": "run", "config": {"sample": 0, "order": "seeded", "seed": 0, "batch_size": 1,
                                        "history_every": 2, "forget_at": [2, 4]},
              "provenance": {"editor": {"name": "null"}, "model": {"id": "factworld", "hash": "0"}},
              "stream": ["1", "2", "3", "4"], "health_directions": {"ppl": "lower"},
              "timing": {"created": "2026-12-07T00:00:00+00:00", "prepare_s": 0.0}}
    recs = [header, {**_check(0), "forgetting": None}] + [_edit(1), _edit(2), _check(2), _edit(3), _edit(4),
                                                          _check(4)]
    recs[1] = {k: v for k, v in recs[1].items() if v is not None}
    jsonl = tmp_path / "results.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    summary = summarize(jsonl)
    summary["model_hash"] = "0"  # added by run_sequential_sample (runner.experiment)
    assert json.loads((tmp_path / "summary.json").read_text())["n_edits"] == 4
    assert "downstream" in summary and summary["milestones"]
    assert not _missing(summary, "`summary.json`"), "summary.json keys missing from docs/results.md"
    for key in ("milestones", "collapse", "timing", "downstream"):
        assert not _missing(summary[key], "`summary.json`"), f"summary.json's {key} keys missing from docs/results.md"
    assert not _missing(summary["drift"][0], "`summary.json`")
    assert not _missing(summary["collapse"]["gradual"], "`summary.json`")


def test_jsonl_record_types_are_documented():
    """Every record ``type`` the sequential runner writes (read off its source: the records are built inline)."""
    import inspect

    from editbench.runner import sequential

    kinds = set(re.findall(r'"type": "(\w+)"', inspect.getsource(sequential)))
    assert {"run", "edit", "check", "stop", "final"} <= kinds
    assert not _missing(kinds, "`results.jsonl`"), "results.jsonl record types missing from docs/results.md"


def test_every_suite_result_section_is_documented():
    """Each suite's section of the schema (the TypedDicts of ``editbench/suites/<name>/result.py``): every field
    appears in that suite's subsection of docs/results.md."""
    for name in SUITES:
        module = importlib.import_module(f"editbench.suites.{name}.result")
        typed = [c for c in vars(module).values() if isinstance(c, type) and c.__module__ == module.__name__
                 and typing.is_typeddict(c)]
        assert typed, f"editbench/suites/{name}/result.py declares no TypedDict"
        for cls in typed:
            missing = _missing(cls.__annotations__, f"Suite `{name}`")
            assert not missing, f"{name}: {cls.__name__} fields missing from docs/results.md: {missing}"
