"""What a run will use, checked against each other before the first edit (the second half of the front-end checks).

:mod:`editbench.runner.checks` checks each option on its own; this module checks them together, still before any
model loads where the facts are on disk:

- :func:`model_layers`: the model's layer count from its ``config.json`` (built-ins, directories, the hub cache),
  so that ``--hparam rome.layer=99`` is refused before loading (:func:`editbench.editors.ranges.range_errors`);
- :func:`check_representable`: the dataset's subjects and targets against the model's tokenizer -- records with
  words the tokenizer maps to its unknown token cannot be measured on that model (CounterFact through the fact
  world's word-level tokenizer is all ``<unk>``), so such a dataset is refused, not scored;
- :func:`check_counts`: more records or edits asked for than the dataset has (unique subjects, for edits);
- :func:`check_thresholds`: the gates file parses;
- :func:`check_resume`: a ``--resume`` whose options differ from the checkpoint's (one line naming them);
- :func:`check_run_dirs_free`: no other live run is writing a run directory this one would write.

Each raises :class:`~editbench.runner.experiment.ExperimentError` with one line (exit code 4 in every front end).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from editbench.data import load_records
from editbench.gates import load_thresholds
from editbench.models.profiles import GENERIC, profile
from editbench.registry import resolve
from editbench.runner import state as ckpt
from editbench.runner.experiment import Experiment, ExperimentError, default_order
from editbench.runner.files import lock_holder
from editbench.runner.jsonl import jsonable
from editbench.runner.schedule import make_stream

LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


def _config_path(model: str) -> Path | None:
    """The model's ``config.json`` before loading: its profile's directory (None when the profile knows none
    before loading), else a local directory's, else the hub cache's."""
    p = profile(model)
    if p.registered:
        return resolve(p.config_dir)() / "config.json" if p.config_dir else None
    path = Path(model).expanduser()
    if path.is_dir():
        return path / "config.json"
    try:
        from huggingface_hub import try_to_load_from_cache  # (as the loader: hub library only for hub ids)
        found = try_to_load_from_cache(model, "config.json")
    except Exception:  # noqa: BLE001 - an id the hub library rejects has no cached config
        return None
    return Path(found) if isinstance(found, str) else None


@lru_cache(maxsize=16)
def model_layers(model: str) -> int | None:
    """The number of transformer blocks of ``model`` read from its config (no weights loaded); None when it is
    not on disk or does not say (the layer indices are then checked once the model is loaded)."""
    if profile(model).n_layers is not None:
        return profile(model).n_layers
    path = _config_path(model)
    if path is None or not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a broken config.json is the model check's to report
    for section in (config, config.get("text_config") if isinstance(config, dict) else None):
        if isinstance(section, dict):
            for key in LAYER_KEYS:
                n = section.get(key)
                if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                    return n
    return None


# -- the tokenizer -------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _tokenizer(model: str):
    """The model's tokenizer without its weights, when it has an unknown token it can emit; None otherwise
    (byte-level tokenizers -- GPT-2's, the tiny models', SmolLM2's -- represent every string)."""
    if profile(model).byte_level:
        return None
    path = _config_path(model)
    if path is None or not path.is_file():
        return None
    try:
        if (path.parent / "tokenizer.json").is_file():  # the fast tokenizer's file alone (no transformers import)
            from tokenizers import Tokenizer
            fast = Tokenizer.from_file(str(path.parent / "tokenizer.json"))
            name = getattr(fast.model, "unk_token", None)
            unk = fast.token_to_id(name) if name else None
            return None if unk is None else _Fast(fast, unk, name)
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(path.parent), local_files_only=True)
    except Exception:  # noqa: BLE001 - an unreadable tokenizer is the model check's (or the loader's) to report
        return None
    if getattr(tok, "unk_token_id", None) is None:
        return None
    return _Fast(None, tok.unk_token_id, tok.unk_token, lambda texts: tok(texts, add_special_tokens=False)["input_ids"])


class _Fast:
    """A tokenizer reduced to what the check needs: ``encode(texts)`` -> id lists, ``unk_token(_id)``."""

    def __init__(self, fast, unk_id: int, unk: str, encode=None):
        self.unk_token_id, self.unk_token = unk_id, unk
        self.encode = encode or (lambda texts: [e.ids for e in fast.encode_batch(texts, add_special_tokens=False)])


def unrepresentable(tok, records: Sequence) -> list[tuple[Any, str, str]]:
    """``[(case_id, field, text)]`` for each record whose subject or targets the tokenizer (``encode``,
    ``unk_token_id``) maps to its unknown token (the first such field of each record)."""
    unk = tok.unk_token_id
    fields = ("subject", "target_new", "target_true")
    texts = [(r, f, getattr(r, f, None)) for r in records for f in fields]
    texts = [(r, f, s) for r, f, s in texts if isinstance(s, str) and s]
    ids = tok.encode([(" " + s if f != "subject" else s) for _, f, s in texts])
    bad, seen = [], set()
    for (r, f, s), row in zip(texts, ids):
        if unk in row and r.case_id not in seen:
            seen.add(r.case_id)
            bad.append((r.case_id, f, s))
    return bad


def check_representable(model: str, dataset: str, records: Sequence | None = None) -> None:
    """Refuse a dataset whose records the model's tokenizer cannot represent (see the module docstring)."""
    tok = _tokenizer(model)
    if tok is None:
        return
    if records is None:
        records = pool(dataset)
    bad = unrepresentable(tok, records)
    if bad:
        case, field, text = bad[0]
        raise ExperimentError(
            f"--dataset {dataset!r} on --model {model!r}: {len(bad)} of {len(records)} records have words the model's "
            f"tokenizer does not know (e.g. case {case} {field} {text[:40]!r} -> {tok.unk_token}); they cannot be "
            f"measured on this model -- use a dataset in its vocabulary" + _own_dataset_hint(model))


def _own_dataset_hint(model: str) -> str:
    """`` (--dataset NAME)`` when the model's profile has records of its own (not the generic default)."""
    own = profile(model).dataset
    return f" (--dataset {own})" if own != GENERIC.dataset else ""


# -- counts against the dataset --------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _pool(dataset: str) -> tuple:
    good, _ = load_records(dataset, on_error="collect")
    return tuple(good)


def pool(dataset: str) -> list:
    """The dataset's valid records (read once per process)."""
    return list(_pool(dataset))


def check_counts(exp: Experiment, n_given: bool, samples: Sequence[int] | None = None) -> None:
    """Single: ``--n-records`` given but more than the dataset has. Sequential: every sample's stream can be
    built with ``--n-edits`` unique subjects (and the published orders have that sample)."""
    records = pool(exp.dataset_name)
    if exp.suite == "single":
        if n_given and exp.n_resolved > len(records):
            raise ExperimentError(f"--n-records {exp.n_resolved}: {exp.dataset_name!r} has only {len(records)} valid "
                                  f"records; ask for at most {len(records)}")
        return
    for sample in (samples if samples is not None else range(exp.samples)):
        try:
            make_stream(records, default_order(exp.dataset_name), exp.seed, sample, exp.n_resolved)
        except (ValueError, IndexError, KeyError) as e:
            option = "--n-edits" if "edits" in str(e) else "--samples"
            value = exp.n_resolved if option == "--n-edits" else exp.samples
            raise ExperimentError(f"{option} {value} on {exp.dataset_name!r} (sample {sample}): "
                                  f"{str(e).splitlines()[0]}") from None


# -- thresholds, resume, run directories ----------------------------------------------------------------------------
def check_thresholds(path: str | Path, option: str = "--thresholds") -> dict:
    """The gates file parses (YAML) into a mapping; returned."""
    p = Path(path)
    if not p.is_file():
        raise ExperimentError(f"{option} {str(path)!r}: no such file")
    try:
        table = load_thresholds(p)
    except Exception as e:  # noqa: BLE001 - yaml's errors, unreadable bytes, a directory...
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ExperimentError(f"{option} {str(path)!r}: not a readable gates file ({type(e).__name__}: {first})") \
            from None
    if not isinstance(table, dict) or not all(isinstance(v, (dict, type(None))) for v in table.values()):
        raise ExperimentError(f"{option} {str(path)!r}: expected a mapping of suite -> model -> editor -> gates")
    return table


def run_dirs(exp: Experiment, samples: Sequence[int]) -> list[Path]:
    """The run directories a sequential experiment writes (named by the model's last path part, as the loaded
    model's id names them)."""
    return [exp.run_dir(s, exp.model) for s in samples]


def check_run_dirs_free(exp: Experiment, samples: Sequence[int]) -> None:
    for d in run_dirs(exp, samples):
        holder = lock_holder(d)
        if holder:
            raise ExperimentError(f"{d} is being written by another run ({holder}); wait for it to finish or give "
                                  f"this run its own {'--out' if exp.suite == 'sequential' else '--reports-dir'}")


def check_resume(exp: Experiment, samples: Sequence[int]) -> None:
    """With ``--resume``: each run directory's newest checkpoint was written with the same seed, count, dataset,
    editor and ``--hparam`` overrides as this run asks for (what the options decide; the resolved hyperparameters
    and the model hash are compared again when the run resumes)."""
    if not exp.resume:
        return
    for d, sample in zip(run_dirs(exp, samples), samples):
        try:
            path = ckpt.latest_checkpoint(d)
            if path is None:
                continue
            st = ckpt.read_state(path)
        except ckpt.CheckpointError:
            continue  # reported when the run resumes (it names the file); not an option problem
        cfg, ident = st.get("config") or {}, st.get("identity") or {}
        saved = {"seed": cfg.get("seed"), "n_edits": cfg.get("n_edits"), "sample": cfg.get("sample"),
                 "batch_size": cfg.get("batch_size"), "history_every": cfg.get("history_every"),
                 "checkpoint_every": cfg.get("checkpoint_every")}
        now = {"seed": exp.seed, "n_edits": exp.n_resolved, "sample": sample, "batch_size": exp.batch_size,
               "history_every": exp.history_every, "checkpoint_every": exp.checkpoint_every}
        if "dataset" in ident:
            saved["dataset"], now["dataset"] = ident["dataset"], exp.dataset_name
        if "editor" in ident:
            saved["editor"], now["editor"] = ident["editor"], exp.editor
        if "overrides" in ident:
            saved["hparams"], now["hparams"] = ident["overrides"], jsonable(dict(exp.hparams))
        diff = ckpt.differences(saved, now)
        if diff:
            raise ExperimentError(f"--resume {d}: the checkpoint was written with other options (checkpoint -> now: "
                                  f"{'; '.join(diff)}); resume with the run's options, or rerun without --resume")


__all__ = ["check_counts", "check_representable", "check_resume", "check_run_dirs_free",
           "check_thresholds", "model_layers", "pool", "run_dirs", "unrepresentable"]
