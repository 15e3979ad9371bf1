"""The editor registry: built-in editors declared lazily, third-party editors found through entry points.

Built-ins are ``"module:attr"`` strings, imported only when asked for, so listing editors is instant and an editor
whose module is broken (or still being written) cannot stop the others from loading. Third-party packages declare
editors in their packaging metadata::

    [project.entry-points."editbench.editors"]
    my-editor = "my_package.editor:MyEditor"

The registered name (left of ``=``) is what ``--editor`` takes. An entry point never replaces a built-in, and two
distributions declaring the same name do not override each other silently: the later one is ignored and the clash
is reported by :func:`clashes` and :func:`load_all`.

API: :func:`available`, :func:`get`, :func:`load_all`, :func:`suggest`, :func:`create`.
"""
from __future__ import annotations

import difflib
import functools
import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # the registry itself stays import-light (no torch) so listing is cheap
    from editbench.editors.base import Editor

ENTRY_POINT_GROUP = "editbench.editors"

BUILTINS: dict[str, str] = {
    "null": "editbench.editors.null:NullEditor",
    "ft": "editbench.editors.ft:FTEditor",
    "ft-c": "editbench.editors.ft:FTCEditor",
    "rome": "editbench.editors.rome:ROMEEditor",
    "r-rome": "editbench.editors.rome:RROMEEditor",
    "memit": "editbench.editors.memit:MEMITEditor",
}


class EditorLoadError(ImportError):
    """An editor is registered but cannot be loaded (its module fails to import, or the object is no Editor)."""

    def __init__(self, name: str, spec: "EditorSpec", problem: str):
        self.editor_name, self.spec, self.problem = name, spec, problem
        super().__init__(f"cannot load editor {name!r} ({spec.where}): {problem}")


class UnknownEditorError(LookupError):
    """No editor is registered under this name; the message says what is, and what was probably meant."""

    def __init__(self, name: str, known: Sequence[str], close: Sequence[str]):
        self.editor_name, self.known, self.close = name, list(known), list(close)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown editor {name!r}.{hint} Available: {', '.join(known)}")


@dataclass(frozen=True)
class EditorSpec:
    """Where a registered editor lives: ``target`` is ``"module:attr"``, ``origin`` says who registered it."""

    name: str
    target: str
    origin: str  # "built-in" or "entry point of <distribution> <version>"

    @property
    def where(self) -> str:
        return f"{self.origin}: {self.target}"


def _entry_points() -> list[metadata.EntryPoint]:
    """The installed entry points of the group (a seam for tests)."""
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def _origin(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "entry point"
    return f"entry point of {dist.metadata['Name']} {dist.version}"


@functools.lru_cache(maxsize=1)
def _scan() -> tuple[dict[str, EditorSpec], tuple[tuple[str, str], ...]]:
    """Collect specs: built-ins first, then entry points that clash with nothing. Returns (specs, clashes)."""
    specs = {name: EditorSpec(name, target, "built-in") for name, target in BUILTINS.items()}
    clashes: list[tuple[str, str]] = []
    try:
        eps = _entry_points()
    except Exception as e:  # broken metadata on sys.path must not hide the built-ins
        return specs, ((f"<{ENTRY_POINT_GROUP} entry points>", f"could not read entry points: {e!r}"),)
    for ep in eps:
        spec = EditorSpec(ep.name, ep.value, _origin(ep))
        if ep.name in specs:
            if specs[ep.name] == spec:  # the same distribution seen twice on sys.path
                continue
            clashes.append((f"{ep.name} ({spec.where})",
                            f"editor name {ep.name!r} from {spec.where} clashes with the already registered "
                            f"{specs[ep.name].where}; the {spec.origin} is ignored"))
            continue
        specs[ep.name] = spec
    return specs, tuple(clashes)


def refresh() -> None:
    """Forget the cached scan (after installing a plugin in a running process, and in tests)."""
    _scan.cache_clear()


def specs() -> dict[str, EditorSpec]:
    """Every registered editor's spec by name (nothing is imported)."""
    return dict(_scan()[0])


def clashes() -> dict[str, str]:
    """Entry points ignored because their name was taken: ``{"<name> (<where>)": message}``."""
    return dict(_scan()[1])


def available() -> list[str]:
    """Names of all registered editors, built-ins and entry points, sorted; imports none of them."""
    return sorted(_scan()[0])


def suggest(name: str, n: int = 3) -> list[str]:
    """Registered names close to ``name`` (for "did you mean ...?")."""
    names = available()
    lowered = {k.lower(): k for k in names}
    return [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)]


def _load(spec: EditorSpec) -> type["Editor"]:
    from editbench.editors.base import Editor  # lazily: importing the base pulls in torch

    module_name, _, attr = spec.target.partition(":")
    if not module_name or not attr:
        raise EditorLoadError(spec.name, spec, f"target {spec.target!r} is not of the form 'module:attr'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as e:  # ImportError, SyntaxError, AttributeError, errors raised at import time...
        raise EditorLoadError(spec.name, spec, f"{type(e).__name__}: {e}") from e
    if not (isinstance(obj, type) and issubclass(obj, Editor)):
        raise EditorLoadError(spec.name, spec, f"{spec.target} is {obj!r}, not a subclass of editbench Editor")
    return obj


def get(name: str) -> type["Editor"]:
    """The editor class registered as ``name`` (imported now). Raises UnknownEditorError or EditorLoadError."""
    table = _scan()[0]
    if name not in table:
        raise UnknownEditorError(name, sorted(table), suggest(name))
    return _load(table[name])


def load_all() -> tuple[dict[str, type["Editor"]], dict[str, str]]:
    """Import every registered editor: ``(classes by name, error message by name)``; failures are not fatal.

    Name clashes (:func:`clashes`) are reported among the errors, keyed ``"<name> (<where>)"``.
    """
    loaded: dict[str, type[Editor]] = {}
    errors: dict[str, str] = dict(clashes())
    for name, spec in _scan()[0].items():
        try:
            loaded[name] = _load(spec)
        except EditorLoadError as e:
            errors[name] = str(e)
    return loaded, errors


def create(name: str, model_keys: Sequence[str] = (), **overrides: Any) -> "Editor":
    """Instantiate editor ``name`` with its preset for ``model_keys`` (most specific first) and ``overrides``."""
    return get(name).from_preset(list(model_keys), **overrides)
