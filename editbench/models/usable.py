"""Can this model be used? Answered from its files and config alone, before any weight is loaded.

:func:`check_usable` reads a model directory's (or a hub id's cached) ``config.json`` and raises
:class:`UnusableModelError` with one line saying why the model cannot be edited: broken or unknown config,
not a causal LM, no weight or tokenizer files, or no architecture adapter (:mod:`editbench.models.adapter`, built
from a weightless instance on the meta device: mixture-of-experts MLPs and the like). The front ends turn it into
a usage error (exit code 4) before any test runs (:func:`editbench.runner.checks.check_model_usable`).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from safetensors import safe_open

from editbench.models.adapter import AdapterError, Layout, check_config
from editbench.models.errors import ModelLoadError
from editbench.models.loader import WEIGHT_PATTERNS, weight_files

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json", "spiece.model")


class UnusableModelError(ModelLoadError):
    """The model cannot be used; the message (one line) says why."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _quiet():
    """transformers' logger and Python warnings silenced (a usage error is one line)."""
    from contextlib import ExitStack

    from transformers.utils import logging as hf_logging

    stack = ExitStack()
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    stack.callback(hf_logging.set_verbosity, level)
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def _load_config(source: str, **kw):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, **kw)
    except (ValueError, KeyError, OSError, TypeError, AttributeError) as e:
        msg = _first_line(e)
        if "does not recognize this architecture" in str(e) or "Unrecognized model" in str(e):
            import transformers
            msg = f"its model_type is unknown to the installed transformers {transformers.__version__}"
        raise UnusableModelError(f"config.json cannot be read as a transformers config: {msg}") from None


def check_config_usable(config) -> Layout:
    """A decoder-only causal LM that editbench can adapt: its :class:`~editbench.models.adapter.Layout`."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    mt = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False):
        raise UnusableModelError(f"model_type {mt!r} is an encoder-decoder model, not a decoder-only causal LM")
    if mt not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise UnusableModelError(f"model_type {mt!r} is not a causal language model (transformers has no "
                                 "AutoModelForCausalLM class for it)")
    if mt in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        raise UnusableModelError(f"model_type {mt!r} is an encoder (masked LM) config, not a causal LM decoder")
    try:
        return check_config(config)
    except AdapterError as e:
        raise UnusableModelError(f"no architecture adapter: {e}") from None
    except Exception as e:  # noqa: BLE001 - a config its own model class cannot be built from
        raise UnusableModelError(f"model_type {mt!r}: a model cannot be built from this config "
                                 f"({type(e).__name__}: {_first_line(e)})") from None


def check_dir_usable(path: str | Path) -> Layout:
    """A ``save_pretrained`` directory: config.json readable, a causal LM editbench can adapt, weight and
    tokenizer files present. Nothing is loaded but the config."""
    p = Path(path).expanduser()
    cfg_file = p / "config.json"
    if not cfg_file.is_file():
        raise UnusableModelError("the directory has no config.json (not a save_pretrained model directory)")
    try:
        raw = json.loads(cfg_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UnusableModelError(f"config.json is not valid JSON ({_first_line(e)})") from None
    if not isinstance(raw, dict) or "model_type" not in raw:
        raise UnusableModelError("config.json has no model_type (not a transformers model config)")
    with _quiet():
        layout = check_config_usable(_load_config(str(p), local_files_only=True))
    files = weight_files(p)
    if not files and not (p / "model.safetensors.index.json").is_file():
        raise UnusableModelError(f"no weight files ({', '.join(WEIGHT_PATTERNS)})")
    for f in files:
        _check_safetensors_header(f)
    if not any((p / f).is_file() for f in TOKENIZER_FILES):
        raise UnusableModelError(f"no tokenizer files (one of {', '.join(TOKENIZER_FILES)})")
    return layout


def _check_safetensors_header(path: Path) -> None:
    """A ``.safetensors`` file whose header cannot be read is refused here (reading the header loads no tensor),
    not by a traceback minutes later inside ``from_pretrained``."""
    if path.suffix != ".safetensors":
        return
    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except Exception as e:  # noqa: BLE001 -- safetensors raises its own error types; any of them means unreadable
        raise UnusableModelError(f"weight file {path.name} is not a readable safetensors file ({_first_line(e)})") from None


def check_hub_usable(name: str, offline: bool) -> Layout | None:
    """A hub id: its config (from the local cache when offline; a small download otherwise) checked as above.
    None when the config cannot be fetched at all (the loader then says why, with the hub's own error)."""
    with _quiet():
        try:
            from transformers import AutoConfig
            config = AutoConfig.from_pretrained(name, local_files_only=offline)
        except (OSError, ValueError, KeyError) as e:
            if "does not recognize this architecture" in str(e) or "Unrecognized model" in str(e):
                _load_config(name, local_files_only=offline)  # raises the one-line form
            return None
        return check_config_usable(config)


__all__ = ["UnusableModelError", "check_config_usable", "check_dir_usable", "check_hub_usable"]
