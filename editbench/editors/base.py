"""The editor contract.

An editor has a ``name``, a frozen hyperparameter dataclass (``hparams_class``) loaded from per-model presets
(:func:`load_preset`) and overridable, ``supports_batch``, and ``apply(model, tok, requests)`` which edits the
model *in place* and returns an :class:`EditResult` holding the original values of every parameter it touched,
so that :func:`restore` puts the model back byte for byte. Around ``apply``:

- ``prepare(model, tok, cache_dir)``: optional one-off work on the unedited model (ROME/MEMIT: key covariances);
  ``apply`` does it lazily when it was not called.
- ``reset()``: called between independent edits (default: nothing to forget).
- ``state_dict()`` / ``load_state_dict(d)``: the state an editor carries across edits of a sequential run
  (tensors only; default: none), saved in checkpoints.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar, Mapping, Sequence

import torch
import yaml

from editbench.data.schema import EditRequest


@dataclass(frozen=True)
class HParams:
    """Base class of every editor's hyperparameters (frozen; make variants with :meth:`replace`)."""

    def replace(self, **overrides: Any) -> "HParams":
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"{type(self).__name__} has no hyperparameter(s) {sorted(unknown)}; known: {sorted(known)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class EditResult:
    """What ``apply`` returns: originals of touched parameters (name -> tensor copy) and free-form stats."""

    originals: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


def save_originals(model: torch.nn.Module, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Copy the named parameters (detached, cloned) before editing them."""
    params = dict(model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise KeyError(f"model has no parameter(s) {missing}")
    return {n: params[n].detach().clone() for n in names}


@torch.no_grad()
def restore(model: torch.nn.Module, originals: dict[str, torch.Tensor]) -> None:
    """Write the saved originals back into the model in place."""
    params = dict(model.named_parameters())
    for name, value in originals.items():
        params[name].copy_(value.to(params[name].device, params[name].dtype))


def preset_table(editor_name: str, _seen: tuple[str, ...] = ()) -> dict:
    """The sections of ``editbench/editors/hparams/<editor>.yaml`` ({} if there is none), inheritance resolved.

    A file may say ``inherit: <other editor>``: its sections then start from the other file's, and each section it
    holds (``default`` or a model key) updates the inherited section of the same name key by key.
    """
    try:
        text = resources.files("editbench.editors").joinpath("hparams", f"{editor_name}.yaml").read_text()
    except FileNotFoundError:
        if _seen:
            raise ValueError(f"preset {_seen[-1]!r} inherits {editor_name!r}, which has no preset file") from None
        return {}
    table = yaml.safe_load(text) or {}
    parent = table.pop("inherit", None)
    if parent is None:
        return table
    if parent in _seen or parent == editor_name:
        raise ValueError(f"preset inheritance cycle: {' -> '.join([*_seen, editor_name, parent])}")
    merged = {k: dict(v or {}) for k, v in preset_table(parent, (*_seen, editor_name)).items()}
    for key, section in table.items():
        merged[key] = {**merged.get(key, {}), **(section or {})}
    return merged


def load_preset(editor_name: str, model_keys: Sequence[str], table: dict | None = None) -> dict:
    """Read ``editbench/editors/hparams/<editor>.yaml`` (:func:`preset_table`: ``inherit`` resolved) and merge
    ``default`` with the first matching model key.

    ``model_keys`` is most-specific first, e.g. ``["factworld", "gpt2"]`` (short name, then model family).
    ``table``: an already resolved table to merge instead of the built-in file (a plugin's presets,
    :func:`editor_preset_table`).
    """
    if table is None:
        table = preset_table(editor_name)
    merged = dict(table.get("default", {}) or {})
    for key in model_keys:
        if key in table:
            merged.update(table[key] or {})
            break
    return merged


# -- a plugin's presets ---------------------------------------------------------------------------------------
# Where an editor's per-model presets come from: editbench's own files, a plugin's package, or a built-in base.
#
# A preset table is ``{"default": {...}, "<model key>": {...}, ...}`` (the format of
# ``editbench/editors/hparams/*.yaml``; a model key is a short name, hub id or ``model_type``, matched most specific
# first by :func:`editbench.editors.base.load_preset`). An editor class finds its table like this:
#
# 1. **Built-in** (no ``presets`` attribute): ``editbench/editors/hparams/<name>.yaml``
#    (:func:`editbench.editors.base.preset_table`, ``inherit:`` resolved).
# 2. **Plugin** (``presets`` set on the class): either a mapping in that format, or the name of a YAML file shipped
#    *inside the package of the module that defines the class* (read with :mod:`importlib.resources`, so it works
#    from a wheel, an editable install or a zip), e.g.::
#
#        class MyEditor(Editor):
#            name = "my-editor"
#            presets = "presets.yaml"       # my_package/presets.yaml, beside my_package/__init__.py
#            preset_base = "rome"           # optional: start from editbench's rome.yaml
#
# 3. **Derived from a built-in** (``preset_base = "<built-in editor>"``): the base's table is the starting point and
#    each section of the plugin's own table updates the base's section of the same name key by key (as a built-in
#    file's ``inherit:``). Only the base's keys that are fields of the plugin's ``hparams_class`` are kept (ROME's
#    ``mom2_*`` mean nothing to an editor without covariances); the plugin's own keys must all be fields.
#
# :func:`editor_preset_table` returns the merged table and, per section, where it came from (``editbench ls`` and
# ``Editor.describe()`` show it): ``built-in``, ``plugin <package>``, ``built-in <base>`` (a section taken from the
# base unchanged) or ``plugin <package> over built-in <base>``.


class PresetError(ValueError):
    """A plugin's presets cannot be read (missing file, bad YAML, not a mapping of sections)."""


def _package_of(cls: type) -> str:
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
    if isinstance(spec, Mapping) and "inherit" in spec:
        raise PresetError(f"{where}: a plugin names its base with the class attribute preset_base, not 'inherit'")
    if not isinstance(spec, Mapping) or not all(isinstance(v, (Mapping, type(None))) for v in spec.values()):
        raise PresetError(f"{where}: expected a mapping of sections ({{'default': {{...}}, '<model key>': {{...}}}})")
    return {str(k): dict(v or {}) for k, v in spec.items()}


def editor_preset_table(cls: type) -> tuple[dict[str, dict], dict[str, str]]:
    """``(table, sources)`` for an Editor subclass: the sections (see the comment above) and where each came
    from. Raises :class:`PresetError` for an unreadable plugin table, ValueError for an unknown base."""
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


def _coerce(editor: str, key: str, value: Any, annotation: Any) -> Any:
    """YAML reads ``1e-3`` (no dot) as a string: turn strings into the field's number type, with a clear error."""
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if isinstance(value, str) and kind.split("|")[0].strip() in ("float", "int"):
        try:
            return float(value) if kind.startswith("float") else int(value)
        except ValueError:
            raise TypeError(f"{editor}: hyperparameter {key} must be a number, got {value!r}") from None
    return value


class Editor(ABC):
    """Base class of all editors. Subclasses set ``name`` (also the preset file's stem), ``hparams_class`` and
    implement :meth:`apply`; :meth:`prepare`, :meth:`reset`, :meth:`state_dict` and :meth:`load_state_dict` have
    defaults for editors without one-off work or state."""

    name: ClassVar[str] = "editor"
    hparams_class: ClassVar[type[HParams]] = HParams
    supports_batch: ClassVar[bool] = False
    # a plugin's own presets: a {"default"/model key: {field: value}} mapping, or a YAML file in the class's package;
    # preset_base: the built-in editor whose presets these derive from (editor_preset_table, docs/authors/presets.md)
    presets: ClassVar[str | dict | None] = None
    preset_base: ClassVar[str | None] = None

    def __init__(self, hparams: HParams | None = None):
        self.hparams = hparams if hparams is not None else self.hparams_class()
        self.preset: dict | None = None  # set by from_preset: the section used and where it came from

    @classmethod
    def from_preset(cls, model_keys: Sequence[str] = (), **overrides: Any) -> "Editor":
        """Build the editor with the preset for the model (most specific key first), then ``overrides``.
        The preset table is the built-in file, or the plugin's own (``presets`` / ``preset_base``)."""
        table, sources = editor_preset_table(cls)
        values = load_preset(cls.name, list(model_keys), table=table)
        values.update(overrides)
        types = {f.name: f.type for f in dataclasses.fields(cls.hparams_class)}
        unknown = set(values) - set(types)
        if unknown:
            raise TypeError(f"{cls.name}: unknown hyperparameter(s) {sorted(unknown)}; known: {sorted(types)}")
        editor = cls(cls.hparams_class(**{k: _coerce(cls.name, k, v, types[k]) for k, v in values.items()}))
        section = matched_section(table, list(model_keys))
        editor.preset = {"section": section, "source": sources.get(section, "class defaults"),
                         "overrides": sorted(overrides)}
        return editor

    @classmethod
    def unavailable(cls, model_id: str, overrides: Mapping[str, Any] | None = None) -> str | None:
        """Why this editor cannot run on the model ``model_id`` at all, in one line (e.g. MEND with no network
        trained for it), or None. Asked before any model loads; default: nothing is missing."""
        return None

    @abstractmethod
    def apply(self, model: torch.nn.Module, tok: Any, requests: Sequence[EditRequest]) -> EditResult:
        """Edit ``model`` in place so that it answers each request's ``target_new``; return the originals."""

    def prepare(self, model: torch.nn.Module, tok: Any, cache_dir: str | os.PathLike | None = None) -> None:
        """One-off work before the first edit of ``model`` (unedited), e.g. statistics; default: none.

        ``cache_dir`` is the artefact cache root (default :func:`editbench.models.cache.cache_root`); an editor
        keeps its files in a subdirectory of it. Optional: ``apply`` must do the work lazily when it was not called.
        """

    def reset(self) -> None:
        """Forget per-edit state; called between independent edits (default: nothing to forget)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The state carried across the edits of a sequential run, as tensors (default: none)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned. The default accepts only the empty state."""
        if state:
            raise TypeError(f"editor {self.name!r} ({type(self).__name__}) keeps no state, but was given state with "
                            f"key(s) {sorted(state)}")

    def check_batch(self, requests: Sequence[EditRequest]) -> None:
        if len(requests) > 1 and not self.supports_batch:
            raise ValueError(f"editor {self.name!r} does not support batch edits (got {len(requests)} requests)")

    def describe(self) -> dict:
        out = {"name": self.name, "hparams": self.hparams.to_dict(), "supports_batch": self.supports_batch}
        if getattr(self, "preset", None):
            out["preset"] = self.preset
        return out
