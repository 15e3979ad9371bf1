"""Where an editor's per-model presets come from: editbench's own files, a plugin's package, or a built-in base.

A preset table is ``{"default": {...}, "<model key>": {...}, ...}`` (the format of
``editbench/editors/hparams/*.yaml``; a model key is a short name, hub id or ``model_type``, matched most specific
first by :func:`editbench.editors.base.load_preset`). An editor class finds its table like this:

1. **Built-in** (no ``presets`` attribute): ``editbench/editors/hparams/<name>.yaml``
   (:func:`editbench.editors.base.preset_table`, ``inherit:`` resolved).
2. **Plugin** (``presets`` set on the class): either a mapping in that format, or the name of a YAML file shipped
   *inside the package of the module that defines the class* (read with :mod:`importlib.resources`, so it works
   from a wheel, an editable install or a zip), e.g.::

       class MyEditor(Editor):
           name = "my-editor"
           presets = "presets.yaml"       # my_package/presets.yaml, beside my_package/__init__.py
           preset_base = "rome"           # optional: start from editbench's rome.yaml

3. **Derived from a built-in** (``preset_base = "<built-in editor>"``): the base's table is the starting point and
   each section of the plugin's own table updates the base's section of the same name key by key (as a built-in
   file's ``inherit:``). Only the base's keys that are fields of the plugin's ``hparams_class`` are kept (ROME's
   ``mom2_*`` mean nothing to an editor without covariances); the plugin's own keys must all be fields.

:func:`editor_preset_table` returns the merged table and, per section, where it came from (``editbench ls`` and
``Editor.describe()`` show it): ``built-in``, ``plugin <package>``, ``built-in <base>`` (a section taken from the
base unchanged) or ``plugin <package> over built-in <base>``.
"""
from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any, Mapping

import yaml


class PresetError(ValueError):
    """A plugin's presets cannot be read (missing file, bad YAML, not a mapping of sections)."""


def _package_of(cls: type) -> str:
    import sys
    module = sys.modules.get(cls.__module__)
    if module is not None and getattr(module, "__path__", None) is not None:  # the class is in a package __init__
        return cls.__module__
    return cls.__module__.rpartition(".")[0] or cls.__module__


def _own_table(cls: type) -> dict[str, dict]:
    spec = cls.__dict__.get("presets", getattr(cls, "presets", None))
    if spec is None:
        return {}
    where = f"{cls.__module__}.{cls.__name__}.presets"
    if isinstance(spec, str):
        package = _package_of(cls)
        try:
            text = resources.files(package).joinpath(spec).read_text(encoding="utf-8")
        except (FileNotFoundError, ModuleNotFoundError, TypeError) as e:
            raise PresetError(f"{where} = {spec!r}: no such file in package {package!r} ({type(e).__name__}); ship "
                              "it as package data (see docs/authors/presets.md)") from None
        try:
            spec = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise PresetError(f"{where}: {spec!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(spec, Mapping) or not all(isinstance(v, (Mapping, type(None))) for v in spec.values()):
        raise PresetError(f"{where}: expected a mapping of sections ({{'default': {{...}}, '<model key>': {{...}}}})")
    if "inherit" in spec:
        raise PresetError(f"{where}: a plugin names its base with the class attribute preset_base, not 'inherit'")
    return {str(k): dict(v or {}) for k, v in spec.items()}


def editor_preset_table(cls: type) -> tuple[dict[str, dict], dict[str, str]]:
    """``(table, sources)`` for an Editor subclass: the sections (see the module docstring) and where each came
    from. Raises :class:`PresetError` for an unreadable plugin table, ValueError for an unknown base."""
    from editbench.editors.base import preset_table

    name = getattr(cls, "name", "")
    base = getattr(cls, "preset_base", None)
    own_spec = getattr(cls, "presets", None)
    if own_spec is None and base is None:
        table = preset_table(name)
        return table, {k: "built-in" for k in table}
    package = _package_of(cls).split(".")[0]
    own = _own_table(cls)
    if base is None:
        return own, {k: f"plugin {package}" for k in own}
    base_table = preset_table(base)
    if not base_table:
        raise ValueError(f"{name}: preset_base {base!r} has no built-in preset file (editbench/editors/hparams/)")
    fields = {f.name for f in dataclasses.fields(cls.hparams_class)}
    merged = {k: kept for k, sec in base_table.items()
              if (kept := {f: v for f, v in (sec or {}).items() if f in fields}) or k == "default"}
    sources = {k: f"built-in {base}" for k in merged}
    for key, section in own.items():
        merged[key] = {**merged.get(key, {}), **section}
        sources[key] = f"plugin {package} over built-in {base}" if key in base_table else f"plugin {package}"
    return merged, sources


def matched_section(table: Mapping[str, Any], model_keys: Any) -> str:
    """The section :func:`~editbench.editors.base.load_preset` uses for ``model_keys``: the first key present,
    else ``"default"``."""
    return next((k for k in model_keys if k in table), "default")
