"""One generic registry for every pluggable kind: editors, probes and model profiles (built-ins + third-party
entry points).

Built-ins are ``"module:attr"`` strings, imported only when asked for, so listing is instant and a plugin whose
module is broken (or still being written) cannot stop the others from loading. Third-party packages declare
theirs in their packaging metadata, one entry-point group per kind::

    [project.entry-points."editbench.editors"]
    my-editor = "my_package.editor:MyEditor"

    [project.entry-points."editbench.probes"]
    my-probe = "my_package.probe:MyProbe"

    [project.entry-points."editbench.models"]
    my-model = "my_package.profile:PROFILE"     # a ModelProfile instance (editbench.models.profiles)

The registered name (left of ``=``) is what ``--editor`` / ``--probe`` / ``--model`` take. An entry point never replaces a
built-in, and two distributions declaring the same name do not override each other silently: the later one is
ignored and the clash is reported by :meth:`Registry.clashes` and :meth:`Registry.load_all`.

:data:`EDITORS`, :data:`PROBES` and :data:`PROFILES` are the registries; the module-level functions (:func:`available`,
:func:`get`, :func:`load_all`, :func:`suggest`, :func:`create`, ...) are the editor registry's, as before.
This module imports nothing of editbench at import time (no torch): listing is cheap.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Sequence

from editbench.suggest import close_matches, did_you_mean

ENTRY_POINT_GROUP = "editbench.editors"
PROBE_GROUP = "editbench.probes"
PROFILE_GROUP = "editbench.models"

BUILTINS: dict[str, str] = {
    "null": "editbench.editors.null:NullEditor",
    "ft": "editbench.editors.ft:FTEditor",
    "ft-c": "editbench.editors.ft:FTCEditor",
    "rome": "editbench.editors.rome:ROMEEditor",
    "r-rome": "editbench.editors.rome:RROMEEditor",
    "memit": "editbench.editors.memit:MEMITEditor",
    "alphaedit": "editbench.editors.alphaedit:AlphaEditEditor",
    "encore": "editbench.editors.encore:ENCOREEditor",
    "mend": "editbench.editors.mend:MENDEditor",  # needs a trained network (editbench mend train)
}

PROBE_BUILTINS: dict[str, str] = {
    "recall-unedited": "editbench.metrics.probes:UneditedRecall",
    "perplexity": "editbench.metrics.probes:WikiPerplexity",
    "factworld-recall": "editbench.factworld.probes:WorldRecall",
    "factworld-perplexity": "editbench.factworld.probes:FillerPerplexity",
    "entropy": "editbench.metrics.entropy:EntropyProbe",
    "glue": "editbench.metrics.downstream:GlueProbe",  # downstream suite: GLUE SST-2/MRPC/CoLA/RTE, paper prompts
    "factworld-tasks": "editbench.factworld.downstream:WorldTasks",  # downstream suite on the fact world
}

PROFILE_BUILTINS: dict[str, str] = {  # model profiles (editbench.models.profiles): the --model short names, in order
    "factworld": "editbench.factworld.profile:PROFILE",  # the embedded fact world: a fast fixture for code paths
    "smollm2-135m": "editbench.models.smollm2:PROFILE",  # the suites' default model (editbench.DEFAULT_MODEL)
    "gemma3-270m": "editbench.models.gemma3:PROFILE",
    "tiny-gpt2": "editbench.models.tiny:TINY_GPT2",  # tiny random models, one per architecture family
    "tiny-gptj": "editbench.models.tiny:TINY_GPTJ",
    "tiny-neox": "editbench.models.tiny:TINY_NEOX",
    "tiny-llama": "editbench.models.tiny:TINY_LLAMA",
}


class EditorLoadError(ImportError):
    """A plugin is registered but cannot be loaded (its module fails to import, or the object has the wrong kind)."""

    def __init__(self, name: str, spec: "EditorSpec", problem: str):
        self.editor_name, self.spec, self.problem = name, spec, problem
        super().__init__(f"cannot load {spec.kind} {name!r} ({spec.where}): {problem}")


class UnknownEditorError(LookupError):
    """No plugin of this kind is registered under this name; the message says what is, and what was meant."""

    def __init__(self, name: str, known: Sequence[str], close: Sequence[str], kind: str = "editor"):
        self.editor_name, self.known, self.close, self.kind = name, list(known), list(close), kind
        super().__init__(f"unknown {kind} {name!r}.{did_you_mean(close)} Available: {', '.join(known)}")


@dataclass(frozen=True)
class EditorSpec:
    """Where a registered plugin lives: ``target`` is ``"module:attr"``, ``origin`` says who registered it."""

    name: str
    target: str
    origin: str  # "built-in" or "entry point of <distribution> <version>"
    kind: str = "editor"

    @property
    def where(self) -> str:
        return f"{self.origin}: {self.target}"


def _entry_points(group: str = ENTRY_POINT_GROUP) -> list[metadata.EntryPoint]:
    """The installed entry points of ``group`` (a seam for tests)."""
    return list(metadata.entry_points(group=group))


def _origin(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "entry point"
    return f"entry point of {dist.metadata['Name']} {dist.version}"


def resolve(target: str) -> Any:
    """The object a ``"module:attr"`` string names (the module imported now)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"target {target!r} is not of the form 'module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry:
    """Plugins of one kind: lazy built-ins plus the entry points of ``group``; each must subclass ``base`` (or, with
    ``instances``, be an instance of it: model profiles are objects, not classes)."""

    def __init__(self, kind: str, group: str, builtins: dict[str, str], base: str, instances: bool = False):
        self.kind, self.group, self.builtins, self.base, self.instances = kind, group, builtins, base, instances
        self._cache: tuple[dict[str, EditorSpec], tuple[tuple[str, str], ...]] | None = None

    def _scan(self) -> tuple[dict[str, EditorSpec], tuple[tuple[str, str], ...]]:
        """Specs (built-ins first, then entry points that clash with nothing) and the clashes; cached."""
        if self._cache is not None:
            return self._cache
        specs = {n: EditorSpec(n, t, "built-in", self.kind) for n, t in self.builtins.items()}
        clashes: list[tuple[str, str]] = []
        try:
            eps = _entry_points(self.group) if self.group != ENTRY_POINT_GROUP else _entry_points()
        except Exception as e:  # broken metadata on sys.path must not hide the built-ins
            self._cache = specs, ((f"<{self.group} entry points>", f"could not read entry points: {e!r}"),)
            return self._cache
        for ep in eps:
            spec = EditorSpec(ep.name, ep.value, _origin(ep), self.kind)
            if ep.name in specs:
                if specs[ep.name] == spec:  # the same distribution seen twice on sys.path
                    continue
                clashes.append((f"{ep.name} ({spec.where})",
                                f"{self.kind} name {ep.name!r} from {spec.where} clashes with the already registered "
                                f"{specs[ep.name].where}; the {spec.origin} is ignored"))
                continue
            specs[ep.name] = spec
        self._cache = specs, tuple(clashes)
        return self._cache

    def refresh(self) -> None:
        """Forget the cached scan (after installing a plugin in a running process, and in tests)."""
        self._cache = None

    def specs(self) -> dict[str, EditorSpec]:
        return dict(self._scan()[0])

    def clashes(self) -> dict[str, str]:
        """Entry points ignored because their name was taken: ``{"<name> (<where>)": message}``."""
        return dict(self._scan()[1])

    def available(self) -> list[str]:
        """Every registered name, sorted; imports none of them."""
        return sorted(self._scan()[0])

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """Registered names close to ``name`` (for "did you mean ...?")."""
        return close_matches(name, self.available(), n=n)

    def _load(self, spec: EditorSpec) -> type:
        base = resolve(self.base)  # lazily: the base classes pull in torch
        try:
            obj = resolve(spec.target)
        except Exception as e:  # ImportError, SyntaxError, AttributeError, errors raised at import time...
            raise EditorLoadError(spec.name, spec, f"{type(e).__name__}: {e}") from e
        if self.instances:
            if not isinstance(obj, base):
                raise EditorLoadError(spec.name, spec, f"{spec.target} is {obj!r}, not an editbench {base.__name__}")
        elif not (isinstance(obj, type) and issubclass(obj, base)):
            raise EditorLoadError(spec.name, spec, f"{spec.target} is {obj!r}, not a subclass of editbench "
                                                   f"{base.__name__}")
        return obj

    def get(self, name: str) -> Any:
        """The class registered as ``name`` (imported now). Raises UnknownEditorError or EditorLoadError."""
        table = self._scan()[0]
        if name not in table:
            raise UnknownEditorError(name, sorted(table), self.suggest(name), self.kind)
        return self._load(table[name])

    def load_all(self) -> tuple[dict[str, type], dict[str, str]]:
        """Import every registered plugin: ``(classes by name, error message by name)``; failures are not fatal.
        Name clashes (:meth:`clashes`) are reported among the errors, keyed ``"<name> (<where>)"``."""
        loaded: dict[str, type] = {}
        errors: dict[str, str] = dict(self.clashes())
        for name, spec in self._scan()[0].items():
            try:
                loaded[name] = self._load(spec)
            except EditorLoadError as e:
                errors[name] = str(e)
        return loaded, errors


EDITORS = Registry("editor", ENTRY_POINT_GROUP, BUILTINS, "editbench.editors.base:Editor")
PROBES = Registry("probe", PROBE_GROUP, PROBE_BUILTINS, "editbench.metrics.probes:Probe")
PROFILES = Registry("model", PROFILE_GROUP, PROFILE_BUILTINS, "editbench.models.profiles:ModelProfile", instances=True)
REGISTRIES = {"editor": EDITORS, "probe": PROBES, "model": PROFILES}


def refresh() -> None:
    """Forget every registry's cached scan."""
    for r in REGISTRIES.values():
        r.refresh()


def specs() -> dict[str, EditorSpec]:
    return EDITORS.specs()


def clashes() -> dict[str, str]:
    return EDITORS.clashes()


def available() -> list[str]:
    """Names of all registered editors, built-ins and entry points, sorted; imports none of them."""
    return EDITORS.available()


def suggest(name: str, n: int = 3) -> list[str]:
    return EDITORS.suggest(name, n)


def get(name: str) -> type:
    return EDITORS.get(name)


def load_all() -> tuple[dict[str, type], dict[str, str]]:
    return EDITORS.load_all()


def create(name: str, model_keys: Sequence[str] = (), **overrides: Any) -> Any:
    """Instantiate editor ``name`` with its preset for ``model_keys`` (most specific first) and ``overrides``."""
    return get(name).from_preset(list(model_keys), **overrides)
