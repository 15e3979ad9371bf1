"""`pytest benchmarks` (pytest-benchmark, benchmarks/) end to end on a trivial subset, its JSON read by `editbench
compare`: a method author's speed-regression gate works. The benchmarks themselves are not part of `pytest tests`."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

from editbench.runner.compare import compare_paths

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_json_feeds_compare(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "pytest", "benchmarks", "-q", "-p", "no:cacheprovider",
           "-k", "(factworld and null) or (z_rows and 1thread)", "--benchmark-json", str(out),
           "--benchmark-min-rounds=1", "--benchmark-max-time=0.01", "--benchmark-warmup=off"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("EDITBENCH_RUN_SLOW", None)  # the SmolLM2 benchmarks stay skipped
    for k in [k for k in env if k.startswith("PYTEST_XDIST")]:
        env.pop(k)  # under `pytest -n 2` these make pytest-benchmark think xdist is active and disable itself
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads(out.read_text())
    names = sorted(b["name"] for b in data["benchmarks"])
    assert names == ["test_apply[factworld-null]", "test_gemm[1thread-z_rows]"]
    for b in data["benchmarks"]:
        info = b["extra_info"]
        assert info["machine"]["cpu"] and info["machine"]["cores"] >= 1 and info["threads"] >= 1  # provenance
        assert b["stats"]["rounds"] >= 1 and b["stats"]["median"] > 0
    apply = next(b for b in data["benchmarks"] if "null" in b["name"])["extra_info"]
    assert apply["model"] == "factworld" and apply["n"] == 1 and apply["es_after"] == 0.0  # null edits nothing

    same = compare_paths(out, out)
    assert len(same) == 2 and not any(f.regression for f in same)
    slower = copy.deepcopy(data)
    for b in slower["benchmarks"]:
        b["stats"]["median"] *= 2  # twice as slow: above the default median:25%
    (tmp_path / "slower.json").write_text(json.dumps(slower))
    found = compare_paths(out, tmp_path / "slower.json")
    assert [f.status for f in found] == ["REGRESSION", "REGRESSION"] and all(f.kind == "benchmark" for f in found)
