"""Scale-out: pytest-xdist workers and --shard I/N give the same results and the same `editbench report` as a
serial run (tiny-gpt2, the single suite, three editors: seconds)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from editbench.report.build import write_report
from tests.test_plugin import _write_dataset, run_pytest

EDITORS = ("--editor", "null", "--editor", "ft", "--editor", "ft-c")


def _run(tmp_path: Path, name: str, *extra: str) -> Path:
    data = tmp_path / "tiny.json"
    gates = tmp_path / "gates.yaml"
    if not data.exists():
        _write_dataset(data)
        gates.write_text("single:\n  default:\n    null: {es: {max: 1.0}}\n    ft: {es: {min: 0.0}}\n"
                         "    ft-c: {es: {min: 0.0}}\n")   # tiny-gpt2 passes no real gate
    reports = tmp_path / name
    r = run_pytest("suites", "-m", "single", "--model", "tiny-gpt2", "--dataset", str(data), *EDITORS,
                   "--reports-dir", str(reports), "--thresholds", str(gates), "--hparam", "ft.num_steps=3", "--hparam", "ft-c.num_steps=3",
                   *extra)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return reports


def _numbers(reports: Path) -> list[tuple]:
    """What must not depend on how the session was split: test, editor, n, metrics, verdict (not timings)."""
    out = []
    for f in sorted(reports.glob("editbench-*.json")):
        for r in json.loads(f.read_text())["results"]:
            out.append((r["test"], r["provenance"]["editor"]["name"], r["n"],
                        json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in r["metrics"].items()},
                                   sort_keys=True), r["verdict"]))
    return sorted(out)


def _board(reports: Path | list[Path], out: Path) -> list[list[str]]:
    rep = write_report(reports if isinstance(reports, list) else [reports], out, heatmaps=False)
    return [[c.split("](")[0].lstrip("[") for i, c in enumerate(row) if i != 5]  # s/edit is wall-clock
            for row in rep["leaderboard"]["rows"]]


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("serial"), "r")


def test_xdist_two_workers_equal_a_serial_run(serial, tmp_path):
    par = _run(tmp_path, "par", "-n", "2", "--dist", "loadgroup")
    assert len(list(par.glob("editbench-*.json"))) == 1          # the controller writes one merged file
    assert _numbers(par) == _numbers(serial)
    assert _board(par, tmp_path / "bp") == _board(serial, tmp_path / "bs")


def test_two_shards_merged_equal_the_whole(serial, tmp_path):
    s1 = _run(tmp_path, "s1", "--shard", "1/2")
    s2 = _run(tmp_path, "s2", "--shard", "2/2")
    a, b = _numbers(s1), _numbers(s2)
    assert a and b and not set(a) & set(b)                       # disjoint, neither empty
    assert sorted(a + b) == _numbers(serial)
    assert _board([s1, s2], tmp_path / "bm") == _board(serial, tmp_path / "bs")
    assert list(s1.glob("editbench-*-shard1of2.json"))


def test_bad_shard_is_a_usage_error(tmp_path):
    r = run_pytest("suites", "-m", "single", "--model", "tiny-gpt2", "--shard", "3/2", "--co")
    assert r.returncode == 4 and "--shard '3/2'" in (r.stdout + r.stderr)
