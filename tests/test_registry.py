"""The editor registry: lazy built-ins, entry points, broken plugins, name clashes, did-you-mean."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from editbench import registry
from editbench.editors.base import Editor
from editbench.editors.null import NullEditor

REPO = Path(__file__).resolve().parents[1]
GROUP = registry.ENTRY_POINT_GROUP


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Install a list of entry points in place of the real ones (and forget the cached scan around the test)."""

    def install(eps):
        monkeypatch.setattr(registry, "_entry_points", lambda: list(eps))
        registry.refresh()

    yield install
    registry.refresh()


def test_listing_imports_no_editor_module():
    code = ("import sys\nfrom editbench import registry\nnames = registry.available()\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('editbench.editors') or m == 'torch')\n"
            "print(names, loaded)\nassert not loaded, loaded\n"
            "assert {'null', 'ft', 'ft-c', 'rome', 'r-rome', 'memit'} <= set(names), names\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_builtin_loads(fake_entry_points):
    fake_entry_points([])
    loaded, errors = registry.load_all()
    assert errors == {} and set(loaded) == set(registry.BUILTINS)
    for name, cls in loaded.items():
        assert issubclass(cls, Editor) and cls.name == name, (name, cls)
        assert registry.specs()[name].origin == "built-in"


def test_builtin_with_missing_module_is_listed_and_does_not_block_others(monkeypatch, fake_entry_points):
    monkeypatch.setitem(registry.BUILTINS, "half-written", "no_such_module_for_editbench_tests:HalfWritten")
    fake_entry_points([])
    assert "half-written" in registry.available()  # listing imports nothing, so it cannot notice
    loaded, errors = registry.load_all()
    assert set(loaded) == set(registry.BUILTINS) - {"half-written"}
    assert list(errors) == ["half-written"] and "ModuleNotFoundError" in errors["half-written"]
    with pytest.raises(registry.EditorLoadError, match="half-written.*built-in"):
        registry.get("half-written")


def test_get_core_builtins():
    assert registry.get("null") is NullEditor
    assert registry.get("ft").name == "ft" and registry.get("ft-c").name == "ft-c"


def test_create_uses_presets_and_overrides():
    editor = registry.create("ft-c", ["tiny-gpt2"], lr=1e-3)
    assert editor.hparams.layers == (1,) and editor.hparams.lr == 1e-3 and editor.hparams.norm_constraint == 5e-4
    with pytest.raises(TypeError, match="no_such"):
        registry.create("ft", (), no_such=1)


def test_unknown_name_says_did_you_mean():
    with pytest.raises(registry.UnknownEditorError, match="Did you mean 'ft-c'") as info:
        registry.get("ftc")
    assert "null" in str(info.value)  # lists what is available
    assert "memit" in registry.suggest("memt") and "rome" in registry.suggest("ROME")
    assert registry.suggest("zzzzzzzz") == []


def test_broken_plugin_is_reported_and_others_load(fake_entry_points):
    fake_entry_points([
        EntryPoint("good-plugin", "editbench.editors.null:NullEditor", GROUP),
        EntryPoint("broken-plugin", "no_such_module_for_editbench_tests:Editor", GROUP),
        EntryPoint("not-an-editor", "os.path:join", GROUP),
        EntryPoint("bad-target", "missing_colon", GROUP),
    ])
    names = registry.available()
    assert {"good-plugin", "broken-plugin", "not-an-editor", "bad-target", "ft", "null"} <= set(names)

    loaded, errors = registry.load_all()
    assert loaded["good-plugin"] is NullEditor and loaded["ft-c"].name == "ft-c" and loaded["null"] is NullEditor
    assert "no_such_module_for_editbench_tests" in errors["broken-plugin"]
    assert "ModuleNotFoundError" in errors["broken-plugin"] and "broken-plugin" in errors["broken-plugin"]
    assert "not a subclass" in errors["not-an-editor"]
    assert "module:attr" in errors["bad-target"]
    assert not set(loaded) & set(errors)

    with pytest.raises(registry.EditorLoadError, match="broken-plugin.*no_such_module_for_editbench_tests"):
        registry.get("broken-plugin")


def test_name_clash_is_reported_not_silent(fake_entry_points):
    fake_entry_points([
        EntryPoint("ft", "editbench.editors.null:NullEditor", GROUP),         # would shadow a built-in
        EntryPoint("twin", "editbench.editors.null:NullEditor", GROUP),
        EntryPoint("twin", "editbench.editors.ft:FTEditor", GROUP),           # second declaration of a plugin name
    ])
    assert registry.get("ft").name == "ft"  # the built-in wins
    assert registry.specs()["ft"] == registry.EditorSpec("ft", registry.BUILTINS["ft"], "built-in")
    assert any(k.startswith("ft (") and "clashes with the already registered built-in" in m
               for k, m in registry.clashes().items())
    assert registry.get("twin") is NullEditor  # first declaration wins
    clashes = registry.clashes()
    assert len(clashes) == 2
    _, errors = registry.load_all()
    clash_msgs = [m for k, m in errors.items() if k.startswith(("ft (", "twin ("))]
    assert len(clash_msgs) == 2 and all("clashes" in m and "ignored" in m for m in clash_msgs)
    assert any("editbench.editors.ft:FTEditor" in m for m in clash_msgs)


def test_unreadable_entry_points_do_not_hide_builtins(monkeypatch):
    def boom():
        raise RuntimeError("corrupt metadata")

    monkeypatch.setattr(registry, "_entry_points", boom)
    registry.refresh()
    try:
        assert "ft-c" in registry.available()
        loaded, errors = registry.load_all()
        assert "ft-c" in loaded and any("corrupt metadata" in m for m in errors.values())
    finally:
        registry.refresh()


def test_numeric_hyperparameters_given_as_strings_are_coerced():
    # YAML (the --hparam parser) reads "1e-3" as a string; the editor must get a float, or a clear error.
    from editbench import registry
    ed = registry.create("ft-c", [], norm_constraint="1e-3", num_steps="5")
    assert ed.hparams.norm_constraint == 1e-3 and isinstance(ed.hparams.norm_constraint, float)
    assert ed.hparams.num_steps == 5 and isinstance(ed.hparams.num_steps, int)
    with pytest.raises(TypeError, match="norm_constraint must be a number"):
        registry.create("ft-c", [], norm_constraint="tiny")
