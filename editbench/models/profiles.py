"""Model profiles: what the stack needs to know about a model, in one object, instead of branches on its name.

A :class:`ModelProfile` says how a model is loaded, its default edit records, its editor-preset keys, its health
probes, corpus, downstream and transfer defaults, and its limits (what it cannot do, and why). Profiles are
registered by short name in :data:`editbench.registry.PROFILES` (built-ins plus the ``editbench.models`` entry
points of third-party packages); the fact world's lives in :mod:`editbench.factworld.profile` and is reached only
through its registry string. Any other name -- a local ``save_pretrained`` directory or a hub id -- gets
:data:`GENERIC`: the architecture adapter finds its modules structurally and the editors' presets are derived
(:mod:`editbench.editors.presets`).

    profile("smollm2-135m").dataset      -> "counterfact"
    profile("/path/to/model").probes     -> ("recall-unedited", "perplexity")   (the generic profile)

This module imports neither torch nor any profile's module: a profile is imported when it is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from editbench.registry import PROFILES, resolve


@dataclass(frozen=True)
class ModelProfile:
    """One kind of model the suites can run on (see the module docstring). Registry strings are ``"module:attr"``.

    ``loader``: a function ``(name, device, dtype) -> LoadedModel``. ``preset_keys``: the editor preset lookup keys,
    most specific first (the loader appends the model family). ``config_dir``: a function ``() -> Path`` of the
    directory holding ``config.json`` and the tokenizer, readable before the weights load (None: not known before
    loading). ``byte_level``: its tokenizer represents every string (the unknown-word check is skipped).
    ``real``: a pretrained real-language model (False for fixtures: sorted last in reports). ``fixture``: a
    code-path fixture: reports show its tables, never a verdict. ``id_markers``: a loaded model whose id or
    ``name_or_path`` contains one of these (lower-cased) is this profile's model (a rebuilt checkpoint elsewhere).
    ``limits``: option or feature -> why this model cannot do it (:meth:`cannot`).
    """

    name: str
    description: str
    loader: str
    label: str = ""
    dataset: str = "counterfact"
    preset_keys: tuple[str, ...] = ()
    probes: tuple[str, ...] = ("recall-unedited", "perplexity")
    corpus: str = "gensim-wiki"
    downstream_probe: str = "glue"
    downstream_tasks: tuple[str, ...] | None = None  # None: every task the downstream probe knows (GLUE's four)
    pair_source: str = "zsre"
    trace_dataset: str = "known_1000"
    config_dir: str | None = None
    n_layers: int | None = None
    byte_level: bool = False
    real: bool = True
    fixture: bool = False
    id_markers: tuple[str, ...] = ()
    limits: Mapping[str, str] = field(default_factory=dict)

    def load(self, name: str | None = None, device: Any = "cpu", dtype: Any = None):
        """Load this profile's model (``name``: the directory or hub id of the generic profile)."""
        kw = {} if dtype is None else {"dtype": dtype}
        return resolve(self.loader)(name or self.name, device=device, **kw)

    def cannot(self, what: str) -> str | None:
        """Why this model cannot do ``what`` (an option or feature, e.g. ``"downstream-shots"``), or None."""
        return self.limits.get(what)

    @property
    def registered(self) -> bool:
        """A built-in or entry-point profile (not the generic one)."""
        return bool(self.name)


GENERIC = ModelProfile(
    "", "any local save_pretrained directory or Hugging Face hub id: modules found by the structural adapter, "
        "editor presets published for it or derived by causal trace", loader="editbench.models.loader:load_path_or_hub",
    label="this model")
"""The profile of every model without a registered one."""


def registered_models() -> list[str]:
    """The registered short names, built-ins first in their table's order; imports no profile."""
    return list(PROFILES.specs())


def profile(name: str) -> ModelProfile:
    """The profile registered as ``name``, else :data:`GENERIC` (a directory or hub id)."""
    return PROFILES.get(name) if name in PROFILES.specs() else GENERIC


def all_profiles() -> dict[str, ModelProfile]:
    """Every registered profile that loads (imports each profile's module)."""
    return PROFILES.load_all()[0]


def profile_of(model: Any = None, model_id: str | None = None) -> ModelProfile:
    """The profile of a loaded model: by ``model_id``, the loader's id of ``model``
    (:func:`editbench.models.identity.model_identity`) or its config's ``name_or_path`` -- a registered name, else
    a profile whose ``id_markers`` one of them contains -- else :data:`GENERIC`."""
    # imported here, not at the top: editbench.models.identity imports torch (about 2 s cold); this module takes
    # 0.09 s to import without it (measured), and `editbench --help` and the report reach it
    from editbench.models.identity import model_identity

    names = [model_id or ""]
    if model is not None:
        ident = model_identity(model)
        names += [ident[0] if ident else "", str(getattr(getattr(model, "config", None), "name_or_path", ""))]
    for n in names:
        if n and n in PROFILES.specs():
            return profile(n)
    lowered = [n.lower() for n in names]
    for p in all_profiles().values():
        if any(m in n for m in p.id_markers for n in lowered):
            return p
    return GENERIC


__all__ = ["GENERIC", "ModelProfile", "all_profiles", "profile", "profile_of",
           "registered_models"]
