"""docs/add-a-suite.md is exercised: its code blocks are the whole "repeat" suite. They are written into a copy of
the package (every file a link to this checkout's, except the new ``suites/repeat/`` folder and the registry
``suites/__init__.py`` with its one added line), and the suite runs end to end on the fact world through pytest
with ``--strict-markers`` (the marker must come from the registration), ROME, 5 records (about 25 s on 2 cores)."""
import difflib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "editbench"
GUIDE = ROOT / "docs" / "add-a-suite.md"
REGISTRY = 'SUITES = ("single", "sequential", "disabling", "downstream", "zsre", "repeat")'


def guide_files() -> dict[str, str]:
    """``{path: text}`` of the guide's code blocks that begin with a ``# editbench/suites/repeat/...`` line."""
    blocks = re.findall(r"```python\n(# (editbench/suites/repeat/\S+)\n.*?)```", GUIDE.read_text(), re.S)
    return {path: text for text, path in blocks}


def registered(text: str) -> str:
    """``suites/__init__.py`` with the guide's registration line in place of the current one."""
    lines = [REGISTRY if line.startswith("SUITES = (") else line for line in text.splitlines()]
    return "\n".join(lines) + "\n"


def copy_with_suite(dest: Path) -> Path:
    """A package tree under ``dest`` that differs from this checkout's by the guide's folder and line only."""
    pkg = dest / "editbench"
    (pkg / "suites").mkdir(parents=True)
    for p in PKG.iterdir():
        if p.name not in ("suites", "__pycache__"):
            (pkg / p.name).symlink_to(p)
    for p in (PKG / "suites").iterdir():
        if p.name not in ("__init__.py", "__pycache__"):
            (pkg / "suites" / p.name).symlink_to(p)
    (pkg / "suites" / "__init__.py").write_text(registered((PKG / "suites" / "__init__.py").read_text()))
    for path, text in guide_files().items():
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_text(text)
    return pkg


def test_the_guide_holds_the_whole_suite_and_one_registration_line():
    files = guide_files()
    assert sorted(Path(p).name for p in files) == ["__init__.py", "figure.py", "gates.py", "options.py", "result.py",
                                                   "run.py", "test_repeat.py"]
    assert REGISTRY in GUIDE.read_text()
    before = (PKG / "suites" / "__init__.py").read_text().splitlines()
    changed = [d for d in difflib.unified_diff(before, registered("\n".join(before)).splitlines(), lineterm="", n=0)
               if d[:1] in "+-" and not d.startswith(("+++", "---"))]
    assert len(changed) == 2, changed  # one line out, one line in


def test_the_guide_suite_runs_end_to_end(tmp_path):
    pkg = copy_with_suite(tmp_path / "tree")
    out = tmp_path / "reports"
    env = dict(os.environ, PYTHONPATH=str(pkg.parent), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(pkg / "suites"), "-m", "repeat",
                        "--strict-markers", "--model", "factworld", "--editor", "rome", "--n-records", "5",
                        "--reports-dir", str(out), "-q"], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode in (0, 1), r.stdout[-3000:] + r.stderr[-3000:]  # 1: a gate failed (a result, not an error)
    assert "1 passed" in r.stdout or "1 failed" in r.stdout, r.stdout[-3000:]
    [session] = out.glob("editbench-*.json")
    [res] = json.loads(session.read_text())["results"]
    assert res["suite"] == "repeat" and res["experiment"]["suite"] == "repeat" and res["n"] == 5
    rows = res["details"]["per_record"]
    assert len(rows) == 5 and res["details"]["all_restored"] and all(r["restored"] for r in rows)
    assert all(r["moved_once"] > 0 and r["moved_twice"] > 0 for r in rows)  # ROME moved the weights both times
    assert all(0.0 <= r[k] <= 1.0 for r in rows for k in ("es_once", "es_twice", "ns_twice"))
    assert 0.0 <= res["metrics"]["es_once"] <= 1.0 and res["metrics"]["second_move_ratio"] > 0
    assert res["details"]["intervals"]["es_once"]["n"] == 5
    assert set(res["gates"]) == {"es_held", "second_move_ratio"}  # the suite's own default bars
    assert res["verdict"] == ("pass" if r.returncode == 0 else "FAIL") and (res["failures"] == []) == (r.returncode == 0)
    assert Path(res["artefacts"]["figure"]).is_file()
