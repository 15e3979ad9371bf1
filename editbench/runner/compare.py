"""Compare two result sets (BASE, NEW): score regressions judged by their intervals, latency regressions by a
relative tolerance. What ``editbench compare`` prints and exits on (:mod:`editbench.cli.compare`).

A result set is a session file (``editbench-*.json``, :mod:`editbench.runner.results`), a directory searched
recursively for session files (merged), or a pytest-benchmark JSON (``pytest --benchmark-json``). Results are
matched on (suite, editor, model, dataset, sample); when a set holds the same key twice the latest (provenance
``created``) is kept.

Rules (each finding is one :class:`Finding`; ``regression=True`` ones make the exit status non-zero):

* **score**: every metric with a recorded interval (``details.intervals.post``, or ``details.intervals`` keyed by
  metric: the bootstrap 95% intervals over records that the suites record) in both results. Higher is better
  except for :data:`LOWER_IS_BETTER` names. A **regression** is NEW's interval lying entirely on the worse side of
  BASE's, by more than ``score_tol``: ``NEW.hi + score_tol < BASE.lo`` (for lower-is-better metrics ``NEW.lo -
  score_tol > BASE.hi``). Overlapping intervals are "within noise", whatever the raw delta: two disjoint 95%
  intervals mean the difference is significant well beyond the 5% level (conservative: no alarm for a change the
  record counts cannot resolve). A metric without an interval is not compared ("no interval"); a rate
  computed over different records (``n``) is still compared, by its own interval.
* **verdict**: a result that passed its gates in BASE and fails them in NEW is a regression (the gate failures
  are listed).
* **latency**: s/edit (``timings.apply_s_mean``) regresses when ``NEW > BASE * (1 + latency_tol)`` and by more than
  ``latency_floor`` seconds (timings below the floor are noise on a shared machine).
* **pytest-benchmark** (both sets are pytest-benchmark JSON): benchmarks matched by ``fullname``; each
  ``benchmark_fail`` expression has pytest-benchmark's ``--benchmark-compare-fail`` syntax, ``STAT:N%`` (NEW's
  STAT more than N% above BASE's) or ``STAT:SECONDS`` (more than that many seconds above); default ``median:25%``.
* A result (or benchmark) in BASE with no counterpart in NEW is reported as ``missing``; with
  ``require_all`` it counts as a regression.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from editbench.runner.results import SESSION_SCHEMA, validate_session

LOWER_IS_BETTER = ("forget", "drop", "n_intrinsic", "ppl", "perplexity", "distance", "_s_", "seconds")
DEFAULT_BENCHMARK_FAIL = ("median:25%",)


class CompareError(ValueError):
    """An input that is not a result set (the message names the path and what is wrong)."""


@dataclass(frozen=True)
class Finding:
    key: str          # "suite editor model dataset [sample]" or a benchmark's fullname
    kind: str         # score | verdict | latency | benchmark | missing | new-only
    metric: str
    base: str
    new: str
    status: str       # "REGRESSION", "improved", "within noise", "no interval", "missing", ...
    regression: bool
    note: str = ""


# -- loading -----------------------------------------------------------------------------------------------------
def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CompareError(f"{path}: not readable JSON ({e})") from None


def load_set(path: str | Path) -> tuple[str, dict[str, Any]]:
    """``("results", {key: result})`` or ``("benchmark", {fullname: benchmark})`` for a file or directory."""
    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.json") if f.is_file())
        payloads = [(f, _read(f)) for f in files]
        sessions = [(f, d) for f, d in payloads if isinstance(d, dict) and d.get("schema") == SESSION_SCHEMA]
        if sessions:
            return "results", _merge(sessions)
        benches = [(f, d) for f, d in payloads if _is_benchmark(d)]
        if benches:
            return "benchmark", {b["fullname"]: b for _, d in benches for b in d["benchmarks"]}
        raise CompareError(f"{p}: no editbench session file ({SESSION_SCHEMA}) or pytest-benchmark JSON under it")
    if not p.is_file():
        raise CompareError(f"{p}: no such file or directory")
    data = _read(p)
    if _is_benchmark(data):
        return "benchmark", {b["fullname"]: b for b in data["benchmarks"]}
    if not (isinstance(data, dict) and data.get("schema") == SESSION_SCHEMA):
        raise CompareError(f"{p}: neither an editbench session file (schema {SESSION_SCHEMA!r}) nor pytest-benchmark "
                           "JSON")
    return "results", _merge([(p, data)])


def _is_benchmark(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("benchmarks"), list) and "machine_info" in data


def _merge(sessions: Iterable[tuple[Path, dict]]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for f, payload in sessions:
        problems = validate_session(payload)
        if problems:
            raise CompareError(f"{f}: " + "; ".join(problems[:3]))
        for r in payload["results"]:
            k = result_key(r)
            if k not in out or _created(r) >= _created(out[k]):
                out[k] = r
    return out


def _created(r: dict) -> str:
    return str((r.get("provenance") or {}).get("created") or "")


def result_key(r: dict) -> str:
    exp, prov = r.get("experiment") or {}, r.get("provenance") or {}
    editor = (prov.get("editor") or {}).get("name") or exp.get("editor")
    model = (prov.get("model") or {}).get("id") or exp.get("model")
    dataset = exp.get("dataset") or prov.get("dataset")
    if isinstance(dataset, dict):
        dataset = dataset.get("name") or dataset.get("id")
    parts = [r["suite"], str(editor), str(model), str(dataset or "default")]
    if exp.get("sample") is not None:
        parts.append(f"sample{exp['sample']}")
    return " ".join(parts)


def intervals_of(r: dict) -> dict[str, dict]:
    """``{metric: {"lo", "hi", ...}}`` recorded in the result's details (see the module docstring)."""
    iv = (r.get("details") or {}).get("intervals") or {}
    if isinstance(iv.get("post"), dict):
        iv = iv["post"]
    metrics = r.get("metrics") or {}
    return {k: v for k, v in iv.items() if isinstance(v, dict) and k in metrics
            and isinstance(v.get("lo"), (int, float)) and isinstance(v.get("hi"), (int, float))}


def lower_is_better(metric: str) -> bool:
    return any(s in metric for s in LOWER_IS_BETTER)


# -- comparing ---------------------------------------------------------------------------------------------------
def _fmt(v: Any, ci: dict | None = None) -> str:
    if v is None:
        return "-"
    s = f"{v:.3f}" if isinstance(v, float) else str(v)
    return f"{s} [{ci['lo']:.2f}, {ci['hi']:.2f}] n={ci.get('n', '?')}" if ci else s


def compare_scores(key: str, base: dict, new: dict, score_tol: float = 0.0) -> list[Finding]:
    out = []
    bi, ni = intervals_of(base), intervals_of(new)
    for m in sorted(set(base.get("metrics") or {}) & set(new.get("metrics") or {})):
        if m.startswith("baseline_") or m == "n":
            continue  # the unedited model's numbers, not the editor's
        bv, nv = base["metrics"][m], new["metrics"][m]
        if not isinstance(bv, (int, float)) or not isinstance(nv, (int, float)):
            continue
        if m not in bi or m not in ni:
            if m in bi or m in ni:
                out.append(Finding(key, "score", m, _fmt(bv, bi.get(m)), _fmt(nv, ni.get(m)), "no interval", False,
                                   "an interval is recorded on one side only"))
            continue
        b, n = bi[m], ni[m]
        if lower_is_better(m):
            worse, better = n["lo"] - score_tol > b["hi"], n["hi"] + score_tol < b["lo"]
        else:
            worse, better = n["hi"] + score_tol < b["lo"], n["lo"] - score_tol > b["hi"]
        status = "REGRESSION" if worse else "improved" if better else "within noise"
        out.append(Finding(key, "score", m, _fmt(bv, b), _fmt(nv, n), status, worse,
                           "intervals disjoint" if worse or better else ""))
    return out


def compare_results(base: dict[str, dict], new: dict[str, dict], *, score_tol: float = 0.0, latency_tol: float = 0.25,
                    latency_floor: float = 0.01, require_all: bool = False) -> list[Finding]:
    out: list[Finding] = []
    for key in sorted(base):
        if key not in new:
            out.append(Finding(key, "missing", "-", "present", "absent", "missing", require_all,
                               "in BASE, not in NEW"))
            continue
        b, n = base[key], new[key]
        out += compare_scores(key, b, n, score_tol)
        if b.get("verdict") == "pass" and n.get("verdict") == "FAIL":
            out.append(Finding(key, "verdict", "gates", "pass", "FAIL", "REGRESSION", True,
                               "; ".join(n.get("failures") or [])))
        bs, ns = (b.get("timings") or {}).get("apply_s_mean"), (n.get("timings") or {}).get("apply_s_mean")
        if isinstance(bs, (int, float)) and isinstance(ns, (int, float)):
            slow = ns > bs * (1 + latency_tol) and ns - bs > latency_floor
            fast = bs > ns * (1 + latency_tol) and bs - ns > latency_floor
            ratio = f"x{ns / bs:.2f}" if bs > 0 else ""
            out.append(Finding(key, "latency", "s/edit", f"{bs:.4f}", f"{ns:.4f}",
                               "REGRESSION" if slow else "improved" if fast else "within tolerance", slow,
                               f"{ratio} (tolerance +{latency_tol:.0%}, floor {latency_floor:g} s)"))
    out += [Finding(key, "new-only", "-", "absent", "present", "new", False, "in NEW only")
            for key in sorted(set(new) - set(base))]
    return out


def parse_benchmark_fail(expr: str) -> tuple[str, float, bool]:
    """``"mean:5%"`` -> ("mean", 0.05, True); ``"min:0.001"`` -> ("min", 0.001, False) (pytest-benchmark's syntax)."""
    stat, sep, amount = expr.partition(":")
    if not sep or not stat or not amount:
        raise CompareError(f"benchmark fail expression {expr!r}: expected STAT:N% or STAT:SECONDS (e.g. median:25%)")
    pct = amount.endswith("%")
    try:
        value = float(amount.rstrip("%"))
    except ValueError:
        raise CompareError(f"benchmark fail expression {expr!r}: {amount!r} is not a number") from None
    return stat.strip(), value / 100 if pct else value, pct


def compare_benchmarks(base: dict[str, dict], new: dict[str, dict], fail: Iterable[str] = DEFAULT_BENCHMARK_FAIL,
                       require_all: bool = False) -> list[Finding]:
    rules = [parse_benchmark_fail(e) for e in fail]
    out: list[Finding] = []
    for name in sorted(base):
        if name not in new:
            out.append(Finding(name, "missing", "-", "present", "absent", "missing", require_all, "in BASE, not in NEW"))
            continue
        bs, ns = base[name].get("stats") or {}, new[name].get("stats") or {}
        for stat, amount, pct in rules:
            if not isinstance(bs.get(stat), (int, float)) or not isinstance(ns.get(stat), (int, float)):
                raise CompareError(f"benchmark {name!r}: no stat {stat!r} in both files (have {sorted(bs)})")
            limit = bs[stat] * (1 + amount) if pct else bs[stat] + amount
            bad = ns[stat] > limit
            out.append(Finding(name, "benchmark", stat, f"{bs[stat]:.6g}", f"{ns[stat]:.6g}",
                               "REGRESSION" if bad else "ok", bad,
                               f"fail above {limit:.6g} ({stat}:{amount:.0%})" if pct else
                               f"fail above {limit:.6g} ({stat}:+{amount:g} s)"))
    return out


def compare_paths(base: str | Path, new: str | Path, **kw: Any) -> list[Finding]:
    """Load both sets and compare them (both editbench results, or both pytest-benchmark JSON)."""
    (bkind, b), (nkind, n) = load_set(base), load_set(new)
    if bkind != nkind:
        raise CompareError(f"BASE {base} holds {bkind} but NEW {new} holds {nkind}: compare like with like")
    if bkind == "benchmark":
        return compare_benchmarks(b, n, kw.get("benchmark_fail") or DEFAULT_BENCHMARK_FAIL,
                                  kw.get("require_all", False))
    kw.pop("benchmark_fail", None)
    return compare_results(b, n, **kw)
