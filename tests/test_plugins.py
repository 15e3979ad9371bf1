"""Third-party editors: a throwaway package declares an editor through the ``editbench.editors`` entry point.

The package is real packaging metadata (a ``*.dist-info`` directory with ``METADATA`` and ``entry_points.txt``)
on ``PYTHONPATH`` of a fresh interpreter, exactly what ``pip install`` would leave behind, so these tests see what
a user's plugin sees. A second, broken distribution sits beside it to show one bad plugin harms nobody else.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PLUGIN_MODULE = '''
"""A third-party editor, as someone outside editbench would write it."""
from dataclasses import dataclass

from editbench.editors.base import EditResult, Editor, HParams


@dataclass(frozen=True)
class MyHParams(HParams):
    strength: float = 1.0


class MyEditor(Editor):
    name = "my-editor"
    hparams_class = MyHParams
    supports_batch = True

    def apply(self, model, tok, requests):
        return EditResult(stats={"n": len(requests)})
'''


def _dist(root: Path, dist_name: str, version: str, entry_points: str) -> None:
    info = root / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points).lstrip())


@pytest.fixture
def plugin_env(tmp_path) -> dict:
    """Environment for a subprocess that has the throwaway packages installed (via PYTHONPATH)."""
    (tmp_path / "thirdparty_pkg.py").write_text(PLUGIN_MODULE)
    _dist(tmp_path, "thirdparty-pkg", "0.1", """
        [editbench.editors]
        my-editor = thirdparty_pkg:MyEditor
    """)
    _dist(tmp_path, "broken-pkg", "0.0.1", """
        [editbench.editors]
        broken-editor = broken_pkg_that_is_not_installed:Editor
    """)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(args, env, timeout=300):
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_registry_finds_the_entry_point(plugin_env):
    code = textwrap.dedent("""
        import sys
        from editbench import registry
        names = registry.available()
        assert "my-editor" in names and "broken-editor" in names and "ft-c" in names, names
        assert "thirdparty_pkg" not in sys.modules  # listed, not imported
        cls = registry.get("my-editor")
        assert cls.__module__ == "thirdparty_pkg" and cls.name == "my-editor"
        ed = registry.create("my-editor", ["tiny-gpt2"], strength=2.0)
        assert ed.hparams.strength == 2.0
        loaded, errors = registry.load_all()
        assert "my-editor" in loaded and "ft-c" in loaded and "null" in loaded, sorted(loaded)
        assert "broken_pkg_that_is_not_installed" in errors["broken-editor"], errors
        assert "broken-pkg 0.0.1" in errors["broken-editor"], errors  # names the distribution
        print("OK")
    """)
    out = _run([sys.executable, "-c", code], plugin_env)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr


def test_plugin_is_parametrized_into_the_suites(plugin_env):
    out = _run([sys.executable, "-m", "pytest", "suites", "-m", "single", "--collect-only", "-q",
                "--editor", "my-editor", "-p", "no:cacheprovider"], plugin_env)
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    assert ids and all("my-editor" in i for i in ids), out.stdout
    assert any("test_single_edit" in i for i in ids), out.stdout
