"""The fact world's model profile: the stack reaches it only through the registry string
``"editbench.factworld.profile:PROFILE"`` (:data:`editbench.registry.PROFILE_BUILTINS`), like any other model's.

It says what is special about the embedded fact-world GPT-2 -- its own records, probes, corpus, in-world downstream
tasks and transfer pairs, its shipped checkpoint, and what it cannot do -- so that no module of the stack has to
test for its name.
"""
from __future__ import annotations

import json
import warnings

from editbench.models.errors import ModelLoadError
from editbench.models.loader import load_dir
from editbench.models.paths import EMBEDDED_DIR
from editbench.models.profiles import ModelProfile

NAME = "factworld"
CHECKPOINT_DIR = EMBEDDED_DIR / NAME
"""The shipped fact-world checkpoint (model, tokenizer and its ``factworld.json``)."""

TASKS = ("sst2", "mrpc", "cola", "nli")  # the four in-world tasks (editbench.factworld.downstream), by GLUE's names


def checkpoint_dir():
    """The shipped checkpoint's directory (read at call time: tests point it elsewhere)."""
    return CHECKPOINT_DIR


def load(name: str = NAME, device="cpu", **kw):
    """The profile's loader: the shipped checkpoint; a warning when its build does not meet its recall bars."""
    path = CHECKPOINT_DIR
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"the embedded fact-world checkpoint is missing ({path} has no config.json). It ships with editbench; "
            "in a source checkout build it with `editbench factworld build` (see README).")
    meta_path = path / "factworld.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        m = meta.get("metrics") or {}
        bars = meta.get("bars") or {}  # written by the build (editbench.factworld.build.BARS); absent: `complete` only
        if (not meta.get("complete") or m.get("recall_trained", 0) < bars.get("trained", 0)
                or m.get("recall_heldout", 0) < bars.get("heldout", 0)):
            last = (meta.get("history") or [{}])[-1]
            warnings.warn(
                f"the shipped fact-world checkpoint is a partial build that does not meet its recall bars "
                f"(epoch {last.get('epoch')}: recall trained {last.get('trained')}, held-out {last.get('heldout')}); "
                "edit metrics on it say nothing about the editors. Rebuild with `editbench factworld build`.",
                UserWarning, stacklevel=4)  # load_model's caller (load_model -> ModelProfile.load -> here)
    return load_dir(path, model_id=NAME, preset_keys=[NAME], device=device, **kw)


PROFILE = ModelProfile(
    NAME, "the embedded fact-world GPT-2: knows its facts, but not editable like a real LM "
          "(a fast fixture for code paths; docs/factworld.md)",
    loader="editbench.factworld.profile:load", label="the fact world",
    dataset="factworld",                                        # editbench.factworld.counterfact records
    preset_keys=(NAME,),
    probes=("factworld-recall", "factworld-perplexity"),        # editbench.factworld.probes
    corpus="factworld",                                         # its training documents (editbench.data.corpora)
    downstream_probe="factworld-tasks", downstream_tasks=TASKS,  # editbench.factworld.downstream
    pair_source="factworld",                                    # editbench.factworld.zsre_pairs
    trace_dataset="factworld",
    config_dir="editbench.factworld.profile:checkpoint_dir",
    real=False, fixture=True, id_markers=(NAME,),
    limits={"downstream-shots": "the fact world's prompts have fixed demonstrations",
            "glue": "the fact world has no real-language tasks (its four in-world tasks run instead)"},
)
