"""Every front-end input checked before any model is loaded: one set of rules for pytest and the CLI.

:func:`check_experiment` (and the pieces it is made of) raise :class:`~editbench.runner.experiment.ExperimentError`
with one line naming the input and what would be valid; the pytest plugin turns it into a usage error and the CLI
into ``error: ...``, both with exit code 4 (pytest's usage-error code). Nothing here loads a model: editors are
imported (their hyperparameter dataclasses), dataset files are read and parsed, directories are probed.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

from editbench.models.cache import offline_flag
from editbench.runner.experiment import Experiment, ExperimentError, parse_record_range  # noqa: F401 (re-export)
from editbench.suggest import close_matches, did_you_mean

DEVICES = "cpu, cuda, cuda:N or mps"


def check_editor(name: str) -> type:
    """The editor class registered as ``name`` (imported, no model needed)."""
    from editbench import registry

    try:
        return registry.get(name)
    except registry.UnknownEditorError as e:
        raise ExperimentError(f"--editor {name!r}: no such editor.{did_you_mean(e.close)} "
                              f"Known: {', '.join(e.known)}") from None
    except registry.EditorLoadError as e:
        raise ExperimentError(f"--editor {name!r}: {e}") from None


def check_model(name: str) -> None:
    """A built-in short name, a model directory (with config.json), or a hub id ("org/name" or a plain name that
    is no near-miss of a built-in)."""
    from editbench.models.loader import builtin_models

    if name in builtin_models():
        return
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ExperimentError(f"--model {name!r}: the directory has no config.json (not a save_pretrained "
                                  "model directory)")
        return check_model_usable(name)
    if path.exists():
        raise ExperimentError(f"--model {name!r}: a file, not a model directory, built-in name or hub id")
    if name.startswith((".", "/", "~")) or path.suffix in {".safetensors", ".bin", ".gguf", ".json"}:
        raise ExperimentError(f"--model {name!r}: no such model directory")
    close = close_matches(name, builtin_models())
    if "/" not in name and close:
        raise ExperimentError(f"--model {name!r}: not a built-in model, a directory or a hub id (org/name)."
                              f"{did_you_mean(close)} Built-ins: {', '.join(builtin_models())}")
    if offline_flag() and not in_hub_cache(name):
        raise ExperimentError(f"--model {name!r}: not a built-in model ({', '.join(builtin_models())}) or a "
                              "directory, and as a hub id it is not in the local Hugging Face cache "
                              f"({offline_flag()} is set, so nothing can be downloaded)")
    return check_model_usable(name)


def check_model_usable(name: str) -> None:
    """A model directory or hub id that exists is also one editbench can use, told from its config alone (no
    weights loaded; :mod:`editbench.models.usable`): a readable config of a decoder-only causal LM with an
    architecture adapter (no mixture-of-experts MLPs, ...), weight and tokenizer files. Built-ins are known good."""
    from editbench.models.loader import builtin_models
    from editbench.models.usable import UnusableModelError, check_dir_usable, check_hub_usable

    if name in builtin_models():
        return
    try:
        if Path(name).expanduser().is_dir():
            check_dir_usable(name)
        else:
            check_hub_usable(name, bool(offline_flag()))
    except UnusableModelError as e:
        raise ExperimentError(f"--model {name!r}: cannot be used: {e}") from None


def in_hub_cache(name: str) -> bool:
    """Whether the hub id's config.json is in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 — an id the hub library rejects is not in the cache
        return False
    return isinstance(found, str)


def check_dataset(name: str, model: str) -> int:
    """Read and parse the dataset now (names and files alike); the number of good records. A named file in no
    local copy (shared data mirror, download cache) is fetched from its original source unless offline
    (``EDITBENCH_OFFLINE`` / ``HF_HUB_OFFLINE``); offline, or when that download fails, it is one line naming
    what to fetch or set. A directory, an unreadable file or a file with no valid record is an error too."""
    from editbench.data import DATASETS, UnknownDatasetError, list_datasets, load_records
    from editbench.data.download import DownloadError
    from editbench.data.sources import DataNotAvailable, locate, obtain

    d = DATASETS.get(name)
    if d is not None and (d.file or d.download):
        also = "" if d.download else "(--dataset also takes a JSON file of records; counterfact-full is fetched alike)"
        try:
            locate(d.file) if d.file else obtain(d.name)
        except DataNotAvailable as e:
            raise ExperimentError(f"--dataset {name!r}: {e} {also}".rstrip()) from None
        except FileNotFoundError as e:  # EDITBENCH_DATA_DIR that is not a directory
            raise ExperimentError(f"--dataset {name!r}: the shared data mirror is not usable ({e})") from None
        except DownloadError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            where = "copy it into the download cache" if d.download else \
                "set EDITBENCH_DATA_DIR to a directory holding it"
            raise ExperimentError(f"--dataset {name!r}: not in the shared data mirror or the download cache, and the "
                                  f"download failed ({first}): run `editbench data fetch {name}` on a machine with "
                                  f"network and {where} {also}".rstrip()) from None
    elif d is None:
        path = Path(name).expanduser()
        if path.is_dir():
            raise ExperimentError(f"--dataset {name!r} is a directory; give a .json/.jsonl file of records or a "
                                  f"dataset name ({', '.join(list_datasets())})")
        if not path.is_file():
            close = UnknownDatasetError(name).suggestions
            raise ExperimentError(f"--dataset {name!r}: not a dataset name or an existing file.{did_you_mean(close)} "
                                  f"Names: {', '.join(list_datasets())}")
    try:
        good, errors = load_records(name, on_error="collect")
    except (ValueError, OSError, ImportError, RecursionError) as e:
        raise ExperimentError(f"--dataset {name!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None
    if not good:
        first = f" (first: {errors[0]})" if errors else ""
        raise ExperimentError(f"--dataset {name!r}: no valid record ({len(errors)} malformed){first}")
    return len(good)


def _expected(annotation: Any) -> tuple[tuple[type, ...], bool]:
    """(accepted types, None allowed) of a hyperparameter field from its annotation (a string under
    ``from __future__ import annotations``)."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = [p.strip() for p in text.replace("Optional[", "").replace("]", "|").split("|") if p.strip()]
    kinds: list[type] = []
    for p in parts:
        head = p.split("[")[0]
        kinds += {"float": [int, float], "int": [int], "bool": [bool], "str": [str], "tuple": [list, tuple],
                  "list": [list, tuple], "Sequence": [list, tuple]}.get(head, [])
    return tuple(kinds), "None" in parts


def check_hparams(editor_cls: type, overrides: dict[str, Any], n_layers: int | None = None) -> None:
    """Each override names a field of the editor's hyperparameters, has a value of its type (YAML strings
    such as "1e-3" for numbers are accepted, as the editors coerce them) and lies in the field's declared range
    (:mod:`editbench.editors.ranges`: finite, > 0, >= 1, a layer of the model when ``n_layers`` is known)."""
    _check_hparam_types(editor_cls, overrides)
    from editbench.runner.experiment import check_hparam_ranges
    check_hparam_ranges(editor_cls, overrides, n_layers)
    from editbench.editors.base import _coerce
    types = {f.name: f.type for f in dataclasses.fields(editor_cls.hparams_class)}
    try:  # the dataclass's own checks (e.g. MEMIT's ascending layers), on its defaults plus the overrides
        editor_cls.hparams_class(**{k: _coerce(editor_cls.name, k, v, types[k]) for k, v in overrides.items()})
    except (ValueError, TypeError) as e:
        shown = " ".join(f"{editor_cls.name}.{k}={v!r}" for k, v in overrides.items())
        raise ExperimentError(f"--hparam {shown}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None


def _check_hparam_types(editor_cls: type, overrides: dict[str, Any]) -> None:
    fields = {f.name: f for f in dataclasses.fields(editor_cls.hparams_class)}
    for key, value in overrides.items():
        if key not in fields:
            raise ExperimentError(f"--hparam {editor_cls.name}.{key}: {editor_cls.name} has no hyperparameter "
                                  f"{key!r}.{did_you_mean(close_matches(key, fields))} Known: {', '.join(fields)}")
        kinds, none_ok = _expected(fields[key].type)
        if value is None and none_ok or not kinds:
            continue
        if isinstance(value, str) and (int in kinds or float in kinds) and str not in kinds:
            try:
                float(value)
                continue
            except ValueError:
                pass
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            want = " or ".join(sorted({k.__name__ for k in kinds}))
            raise ExperimentError(f"--hparam {editor_cls.name}.{key}={value!r}: expected {want}")


def check_hparam_editors(overrides: dict[str, dict], selected: Sequence[str] | None = None,
                         model: str | None = None) -> None:
    """Every ``--hparam EDITOR.KEY`` names a registered editor (a misspelt one is not silently ignored) and is
    valid for it (:func:`check_hparams`; layer indices against ``model``'s layer count when it is on disk)."""
    from editbench.runner.preflight import model_layers
    n_layers = model_layers(model) if model is not None else None
    from editbench import registry

    known = registry.available()
    for name in overrides:
        if name not in known:
            raise ExperimentError(f"--hparam {name}.{next(iter(overrides[name]))}: no editor {name!r}."
                                  f"{did_you_mean(registry.suggest(name))} Known: {', '.join(known)}")
        if selected is not None and name not in selected:
            raise ExperimentError(f"--hparam {name}.{next(iter(overrides[name]))}: editor {name!r} is not selected "
                                  f"(--editor {' '.join(selected)})")
        check_hparams(check_editor(name), overrides[name], n_layers)


def check_device(device: str) -> None:
    if device == "cpu" or device == "mps" or device.startswith("mps:"):
        return
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        import torch
        if not torch.cuda.is_available():
            raise ExperimentError(f"--device {device!r}: CUDA is not available on this machine")
        return
    raise ExperimentError(f"--device {device!r}: expected {DEVICES}")


def check_out_dir(path: str, option: str = "--reports-dir") -> None:
    """The output directory exists or can be made, and files can be written there (found now, not at the end).
    Nothing is left behind: a file is created and removed in the deepest existing ancestor (permission bits
    alone do not say it: root ignores them, a read-only mount does not show in them)."""
    import tempfile

    p = Path(path).expanduser().absolute()
    probe = p
    while not probe.exists() and not probe.is_symlink():
        probe = probe.parent
    if not probe.is_dir():
        what = "a broken link" if probe.is_symlink() and not probe.exists() else "a file, not a directory"
        raise ExperimentError(f"{option} {path!r}: cannot write there ({probe} is {what})")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ExperimentError(f"{option} {path!r}: cannot write there ({probe} is not writable)")
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".editbench-probe-"):
            pass
    except OSError as e:
        raise ExperimentError(f"{option} {path!r}: cannot write there ({probe}: {e.strerror or e})") from None


def check_seed(value: Any, option: str = "--seed") -> None:
    """A seed every RNG of a run accepts: a whole number in [0, 2**32 - 1] (NumPy's range)."""
    from editbench.editors.ranges import SEED_MAX
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise ExperimentError(f"{option} {value!r}: must be a whole number from 0 to {SEED_MAX} (2**32 - 1), the "
                              "range every random number generator of a run accepts")


def check_count(option: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ExperimentError(f"{option} {value!r}: must be a whole number >= 1")


def check_experiment(exp: Experiment, *, dataset_checked: bool = False, n_given: bool = True,
                     samples: Sequence[int] | None = None) -> type:
    """All of the above for one experiment, then the checks of the inputs together
    (:mod:`editbench.runner.preflight`: the dataset against the tokenizer and the counts, a resume against its
    checkpoint, the run directories free); returns the editor class. ``n_given``: the count was given (not the
    default); ``samples``: the sequential samples that will run (default all)."""
    from editbench.runner import preflight

    editor_cls = check_editor(exp.editor)
    check_model(exp.model)
    check_device(exp.device)
    check_seed(exp.seed)
    check_hparams(editor_cls, dict(exp.hparams), preflight.model_layers(exp.model))
    if exp.batch_size > 1 and not editor_cls.supports_batch:
        raise ExperimentError(f"--batch-size {exp.batch_size}: editor {exp.editor!r} edits one request at a time "
                              "(supports_batch is False); use --batch-size 1")
    if exp.probes:
        from editbench import registry
        for p in exp.probes:
            if p not in registry.PROBES.available():
                raise ExperimentError(f"probe {p!r}: no such probe.{did_you_mean(registry.PROBES.suggest(p))} "
                                      f"Known: {', '.join(registry.PROBES.available())}")
    if not dataset_checked:
        check_dataset(exp.dataset_name, exp.model)
    check_out_dir(exp.out_dir, "--out" if exp.suite == "sequential" else "--reports-dir")
    preflight.check_representable(exp.model, exp.dataset_name)
    if exp.suite in ("single", "sequential"):
        preflight.check_counts(exp, n_given, samples)
    if exp.suite == "sequential":
        runs = list(samples if samples is not None else range(exp.samples))
        preflight.check_resume(exp, runs)
        preflight.check_run_dirs_free(exp, runs)
    return editor_cls


__all__ = ["check_count", "check_dataset", "check_device", "check_editor", "check_experiment", "check_hparam_editors",
           "check_hparams", "check_model", "check_model_usable", "check_out_dir", "check_seed", "parse_record_range"]
