"""Which preset an editor runs with on a model, where it comes from, and a derived one where none exists.

:func:`editbench.editors.base.load_preset` merges a preset file's ``default`` with the first section matching the
model's preset keys. This module says what that section *is* (``editbench/editors/hparams/sources.yaml``):

* ``published`` — a paper's or reference repository's values for this model (the source is named);
* ``derived`` — chosen for this model by causal tracing (a committed section marked so, or derived at run time);
* ``shipped`` — a section editbench keeps for its own fixtures (the fact world, the tiny random models);
* ``family`` — only the model family's section matched (e.g. ``llama``: Llama-2-7B's values) and nothing could
  be derived, or the editor derives nothing (FT, MEND): recorded with the reason;
* ``default`` — no section for the model and nothing could be derived: the file's ``default`` values, which
  belong to no particular model (ROME's ``layer: 17`` is GPT-2-XL's): recorded with the reason.

:func:`resolve` is the fallback step run before an editor is built for a loaded model: when no section names the
model (none matches, or only the model family's does — another model's values), the editors that edit located
layers (:data:`DERIVED_FIELDS`) get their layers derived by the rule of :mod:`editbench.trace.derive` (reached
through :data:`DERIVE_HOOK`: the trace package sits beside the stack), cached per model hash.
"""
from __future__ import annotations

import importlib
import warnings
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Sequence

import yaml

from editbench.editors.base import preset_table

DERIVE_HOOK = "editbench.trace.derive:derive_layers"
DERIVED_FIELDS: dict[str, tuple[str, ...]] = {
    "rome": ("layer",), "r-rome": ("layer",),
    "memit": ("layers", "mom2_update_weight"), "alphaedit": ("layers", "mom2_update_weight"),
    "encore": ("layers", "mom2_update_weight"),
}
"""Editors whose preset is derived for a model without one, and the fields the derivation sets."""


@lru_cache(maxsize=None)
def _sources() -> dict:
    text = resources.files("editbench.editors").joinpath("hparams", "sources.yaml").read_text()
    return yaml.safe_load(text) or {}


def _parent(editor: str) -> str | None:
    try:
        text = resources.files("editbench.editors").joinpath("hparams", f"{editor}.yaml").read_text()
    except FileNotFoundError:
        return None
    return (yaml.safe_load(text) or {}).get("inherit")


def source_of(editor: str, key: str) -> tuple[str | None, str | None]:
    """(sources.yaml entry of ``editor``'s section ``key``, the editor it was found under — ``editor`` itself or
    one it inherits from), or (None, None)."""
    seen = set()
    name = editor
    while name and name not in seen:
        seen.add(name)
        hit = (_sources().get(name) or {}).get(key)
        if hit:
            return str(hit), name
        name = _parent(name)
    return None, None


def matched_section(editor: str, model_keys: Sequence[str]) -> str | None:
    """The section ``load_preset`` uses for these keys (the first key the preset file has), or None."""
    table = preset_table(editor)
    return next((k for k in model_keys if k in table and k not in ("default", "inherit")), None)


def section_provenance(editor: str, key: str) -> dict:
    src, owner = source_of(editor, key)
    kind, _, text = (src or "").partition(":")
    if kind == "published" and owner != editor:  # e.g. ENCORE on GPT-J: MEMIT's published values + ENCORE's defaults
        return {"kind": "shipped", "section": key,
                "source": f"{owner}'s published section ({text.strip()}) with {editor}'s defaults; "
                          f"no {editor} preset was published for {key!r}"}
    if kind in ("published", "derived"):
        return {"kind": kind, "section": key, "source": text.strip()}
    return {"kind": "shipped", "section": key,
            "source": src or f"editbench/editors/hparams/{editor}.yaml section {key!r} (see the comment there)"}


def resolve(editor: str, lm: Any, derive: Callable[..., dict] | None = None) -> tuple[dict, dict]:
    """(values to apply over the preset, provenance) for ``editor`` on the LoadedModel ``lm``.

    A section naming the model itself: no values, its provenance. Otherwise, for :data:`DERIVED_FIELDS` editors,
    the derived layers (``derive(lm)``, default the :data:`DERIVE_HOOK` function) with ``kind="derived"``, the rule
    and the trace summary; when derivation fails, or for other editors, the preset as it stands with
    ``kind="default"`` (or the family section's) and the reason — and a warning, since those values were chosen
    for another model."""
    keys = list(lm.preset_keys)
    family = getattr(getattr(lm.model, "config", None), "model_type", None)
    sec = matched_section(editor, keys)
    if sec is not None and sec != family:
        prov = section_provenance(editor, sec)
        twin = getattr(lm, "twin_of", None)
        if twin and twin.get("name") == sec:  # a local copy of a built-in: its section, found by the weights
            prov["matched_by"] = (f"{lm.model_id} holds the weights of the built-in {sec!r} (same "
                                  f"{twin.get('matched_by', 'model hash')}), so it gets {sec!r}'s preset")
        return {}, prov
    if sec is not None:
        fallback = {"kind": "family", "section": sec, "source": f"the {family!r} family section of {editor}.yaml: "
                    "values chosen for another model of that family"}
    elif preset_table(editor):
        fallback = {"kind": "default", "section": None, "source": f"the `default` of {editor}.yaml: values chosen "
                    "for no particular model"}
    else:
        fallback = {"kind": "default", "section": None, "source": f"{editor}'s own defaults (it has no preset file)"}
    if editor not in DERIVED_FIELDS:
        return {}, fallback
    if derive is None:
        module, func = DERIVE_HOOK.split(":")
        derive = getattr(importlib.import_module(module), func)
    try:
        doc = derive(lm)
    except (ValueError, OSError) as e:  # DerivationError is a ValueError; a missing fact file an OSError
        warnings.warn(f"{editor} on {lm.model_id}: no preset for this model and none could be derived ({e}); "
                      f"running with {fallback['source']}", UserWarning, stacklevel=2)
        return {}, {**fallback, "why_not_derived": str(e)}
    values = {"layer": doc["rome_layer"]} if DERIVED_FIELDS[editor] == ("layer",) else \
        {"layers": list(doc["memit_layers"]), "mom2_update_weight": doc["mom2_update_weight"]}
    prov = {"kind": "derived", "section": sec, "values": values, "rule": doc["rule"],
            "trace": {k: doc["trace"][k] for k in ("n_facts", "n_known", "n_used", "p_clean", "p_corrupted")}
            | {"dataset": doc.get("dataset"), "aie_subject_last": [round(x, 5) for x in
                                                                   doc["trace"]["aie_subject_last"]]},
            "cache": doc.get("cache")}
    if sec is not None:
        prov["other_fields_from"] = fallback["source"]
    return values, prov


def describe_presets(editor: str) -> list[tuple[str, str]]:
    """(section, kind) of every per-model section of ``editor``'s preset file (for ``editbench ls``)."""
    return [(k, section_provenance(editor, k)["kind"]) for k in preset_table(editor) if k not in ("default", "inherit")]
