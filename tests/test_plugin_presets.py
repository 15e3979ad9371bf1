"""A plugin ships its own presets (``Editor.presets``: a mapping, or a YAML file inside its package) and may derive
them from a built-in editor's (``preset_base``); ``editbench ls`` and every result say where each came from."""
from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass

import pytest

from editbench.cli import _presets_line
from editbench.conformance import checks
from editbench.editors.base import Editor, EditResult, HParams, PresetError, editor_preset_table, load_preset


@dataclass(frozen=True)
class _HP(HParams):
    layer: int = -1
    steps: int = 10
    clamp_norm_factor: float = 1.0


class _Base(Editor):
    name, hparams_class = "preset-test", _HP

    def apply(self, model, tok, requests):
        return EditResult()


def _cls(**attrs):
    return type("PresetTest", (_Base,), {"__module__": __name__, **attrs})


def test_a_mapping_of_sections_is_the_plugins_table():
    cls = _cls(presets={"default": {"steps": 5}, "llama": {"layer": 3}})
    table, sources = editor_preset_table(cls)
    assert table == {"default": {"steps": 5}, "llama": {"layer": 3}}
    assert set(sources.values()) == {f"plugin {__name__}"}
    e = cls.from_preset(["smollm2-135m", "llama"], steps=7)
    assert (e.hparams.layer, e.hparams.steps) == (3, 7)
    assert e.describe()["preset"] == {"section": "llama", "source": f"plugin {__name__}", "overrides": ["steps"]}
    assert cls.from_preset(["gpt2"]).preset["section"] == "default"


def test_preset_base_takes_the_built_ins_sections_restricted_to_the_plugins_fields():
    cls = _cls(preset_base="rome", presets={"factworld": {"steps": 40}})
    table, sources = editor_preset_table(cls)
    rome = load_preset("rome", ["gpt2-medium"])
    assert table["gpt2-medium"] == {"layer": 8, "clamp_norm_factor": 3.0} and rome["v_lr"] == 0.5
    assert "v_lr" not in table["default"] and "mom2_n_samples" not in table["default"]
    assert table["factworld"] == {"layer": 1, "steps": 40}  # rome.yaml's layer 1, updated by the plugin's section
    assert sources["factworld"] == f"plugin {__name__} over built-in rome"
    assert sources["smollm2-135m"] == "built-in rome"
    assert cls.from_preset(["smollm2-135m", "llama"]).hparams.layer == 4
    line = _presets_line(cls, editor_preset_table)
    assert "more (built-in rome)" in line and f"factworld (plugin {__name__} over " in line


def test_a_yaml_file_in_the_plugins_package(tmp_path, monkeypatch):
    pkg = tmp_path / "presetpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from dataclasses import dataclass
        from editbench.editors.toolkit import Editor, EditResult, HParams

        @dataclass(frozen=True)
        class HP(HParams):
            layer: int = 0

        class Ed(Editor):
            name, hparams_class, presets = "yaml-test", HP, "presets.yaml"

            def apply(self, model, tok, requests):
                return EditResult()

        class Missing(Ed):
            presets = "nope.yaml"
        """))
    (pkg / "presets.yaml").write_text("default:\n  layer: 2\ntiny-llama:\n  layer: 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import presetpkg
    try:
        assert presetpkg.Ed.from_preset(["tiny-llama"]).hparams.layer == 1
        assert presetpkg.Ed.from_preset([]).preset == {"section": "default", "source": "plugin presetpkg",
                                                       "overrides": []}
        with pytest.raises(PresetError, match=r"nope.yaml.*no such file in package 'presetpkg'"):
            editor_preset_table(presetpkg.Missing)
        assert "presets unreadable" in _presets_line(presetpkg.Missing, editor_preset_table)
    finally:
        sys.modules.pop("presetpkg", None)


@pytest.mark.parametrize("presets,message", [
    ({"default": {"layer": 1}, "inherit": "rome"}, "preset_base, not 'inherit'"),
    (["not", "a", "mapping"], "expected a mapping of sections"),
])
def test_malformed_plugin_tables_are_refused_with_the_reason(presets, message):
    with pytest.raises(PresetError, match=message):
        editor_preset_table(_cls(presets=presets))


def test_an_unknown_base_or_a_section_that_does_not_build_is_reported():
    with pytest.raises(ValueError, match="preset_base 'no-such-editor' has no built-in preset file"):
        editor_preset_table(_cls(preset_base="no-such-editor"))
    bad = _cls(presets={"default": {}, "llama": {"layr": 3}})
    with pytest.raises(TypeError, match=r"unknown hyperparameter\(s\) \['layr'\]"):
        bad.from_preset(["llama"])


def test_conformance_registration_builds_every_shipped_section(monkeypatch):
    from editbench import registry
    bad = _cls(presets={"default": {}, "llama": {"layr": 3}})
    monkeypatch.setattr(registry, "get", lambda name: bad)
    with pytest.raises(AssertionError, match="preset section 'llama' does not build"):
        checks.check_registration("preset-test")


def test_built_in_editors_keep_their_files_as_source():
    from editbench import registry
    table, sources = editor_preset_table(registry.get("rome"))
    assert set(sources.values()) == {"built-in"} and "smollm2-135m" in table
    assert registry.create("rome", ["factworld"]).preset == {"section": "factworld", "source": "built-in",
                                                              "overrides": []}
