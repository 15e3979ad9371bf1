"""One experiment config that every front end fills in, and the functions that run it.

:class:`Experiment` is a frozen dataclass naming everything a suite run depends on (editor + hyperparameter
overrides, model, dataset, how many records/edits, samples, seed, schedule, probes, device, output). The pytest
plugin builds one from its options, ``editbench sequential`` from its arguments; both then call
the suite's run function (``editbench.suites.<name>.run.run``; the sequential engine is
:func:`run_sequential_sample` here), with the model taken from one :class:`ModelCache` so a session loads each
model once (a sequential run restores the weights it edited when it ends).

    records -> EditRequest -> Editor.apply -> scorer/probes -> runner -> results
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from editbench import DEFAULT_MODEL, PROTOCOLS, registry
from editbench.data import load_records
from editbench.editors.presets import resolve
from editbench.editors.ranges import SEED_MAX, range_errors
from editbench.metrics.probes import ProbeContext, build_probes
from editbench.models import loader  # loader.load_model looked up at call time (tests replace it)
from editbench.models.profiles import profile
from editbench.runner.downstream_probe import make_downstream_probe
from editbench.runner.schedule import make_stream
from editbench.runner.sequential import SequentialConfig, run_sequential

SUITE_NAME = re.compile(r"[a-z][a-z0-9_]*")
"""A suite is named by its package, ``editbench.suites.<name>``; the front ends take the names from the registry
``editbench.suites.SUITES`` (a layer above this one)."""
DEFAULT_N = {"single": 20, "sequential": 100, "downstream": 20, "disabling": 20, "zsre": 20}
"""CPU-sized defaults: 20 single edits (about a minute per editor on the fact world); 100 sequential edits, the
README main job (MEMIT on SmolLM2: 13 min 43 s on one 2-core machine, 19 min 10 s on a 2-core AMD EPYC with all three
scoring protocols; README). Downstream: 20 sequential edits with the GLUE tasks every 10 (three evaluations of
4 tasks x 200 examples: minutes on SmolLM2 on 2 CPU cores; --n-edits for the paper's hundreds). A suite with no
entry here gets the single suite's 20."""


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ExperimentError(ValueError):
    """A bad experiment setting (the message names the setting and what is allowed)."""


def default_probes(model: str) -> tuple[str, ...]:
    """Health probes of a sequential run: the model profile's (recall of the pool's unedited facts plus wiki
    perplexity, unless the profile names its own: the fact world's world facts + filler text)."""
    return profile(model).probes


def default_order(dataset: str) -> str:
    """Real CounterFact uses the published edit orders; everything else a seeded order over unique subjects."""
    return "published" if dataset.startswith("counterfact") else "seeded"


def parse_hparams(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["rome.layer=3", "memit.mom2_update_weight=15000"]`` -> ``{"rome": {"layer": 3}, "memit": {...}}``;
    values are parsed as YAML. The one ``--hparam`` syntax of every front end: ``EDITOR.KEY=VALUE``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        editor, dot, name = key.partition(".")
        if not sep or not dot or not editor or not name:
            raise ExperimentError(f"--hparam {item!r}: expected EDITOR.KEY=VALUE, e.g. rome.layer=3")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ExperimentError(f"--hparam {item!r}: the value is not valid YAML ({e})") from None
        if isinstance(parsed, str) and _FLOAT.fullmatch(parsed.strip()):
            parsed = float(parsed)  # YAML 1.1 reads 5e-1 (no dot) as a string
        out.setdefault(editor, {})[name] = parsed
    return out


def parse_record_range(text: str | None) -> tuple[int, int] | None:
    """``--record-range START:STOP`` -> (START, STOP): records START..STOP-1 (0-based) of the seeded record order,
    the slice of ``--n-records STOP`` that starts at START (slices of one order merge into one rate in the report)."""
    if text is None:
        return None
    try:
        start, stop = (int(x) for x in str(text).split(":"))
        if not 0 <= start < stop:
            raise ValueError
    except ValueError:
        raise ExperimentError(f"--record-range {text!r}: expected START:STOP with 0 <= START < STOP, e.g. "
                              "--record-range 50:100") from None
    return start, stop


@dataclass(frozen=True)
class Experiment:
    """Everything one suite run of one editor depends on.

    ``n``: records (single) or edits (sequential); None = :data:`DEFAULT_N`. ``dataset`` None = the model's
    default (the model profile's ``dataset``). ``hparams``: overrides of this editor's preset, as sorted
    (key, value) pairs. ``probes`` None = :func:`default_probes`. ``batch_size``/``history_every`` are the
    sequential schedule (requests per ``apply``; history re-scored every k edits; ``checkpoint_every`` edits
    between checkpoints for ``resume``; ``on_nonfinite`` "stop" | "continue" after an edit leaves NaN/inf weights).
    ``protocols``: how edits are scored (prob: P(new) > P(true); token_acc: teacher-forced token accuracy; gen:
    free greedy generation; :mod:`editbench.metrics.counterfact`). ``out_dir`` is the reports
    directory; sequential runs go to ``<out_dir>/runs/sequential/<editor>/<model>/sample_<s>/``.
    """

    suite: str
    editor: str
    model: str = DEFAULT_MODEL
    dataset: str | None = None
    hparams: tuple[tuple[str, Any], ...] = ()
    n: int | None = None
    samples: int = 1
    seed: int = 0
    batch_size: int = 1
    history_every: int = 10
    checkpoint_every: int = 50
    on_nonfinite: str = "stop"
    protocols: tuple[str, ...] = PROTOCOLS
    probes: tuple[str, ...] | None = None
    device: str = "cpu"
    out_dir: str = "reports"
    resume: bool = False
    # downstream regression (suites/downstream/): tasks evaluated every k edits of a sequential run (None =
    # never); tasks (None = all), examples per task, shots and primary answer mode (None = the model's preset)
    downstream_every: int | None = None
    downstream_tasks: tuple[str, ...] | None = None
    downstream_n: int | None = None
    downstream_shots: int | None = None
    downstream_mode: str | None = None
    record_range: str | None = None  # single suite: "START:STOP" of the seeded record order (replaces n)

    def __post_init__(self):
        if not isinstance(self.suite, str) or not SUITE_NAME.fullmatch(self.suite):
            raise ExperimentError(f"suite {self.suite!r}: expected a suite package name (editbench.suites.SUITES)")
        for name in ("n", "samples", "batch_size", "history_every", "checkpoint_every", "downstream_every",
                     "downstream_n"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ExperimentError(f"{name} must be a whole number >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= SEED_MAX:
            raise ExperimentError(f"--seed {self.seed!r}: must be a whole number from 0 to {SEED_MAX} (2**32 - 1), "
                                  "the range every random number generator of a run accepts")
        object.__setattr__(self, "hparams", tuple(sorted(dict(self.hparams).items())))
        if self.probes is not None:
            object.__setattr__(self, "probes", tuple(self.probes))
        object.__setattr__(self, "protocols", tuple(self.protocols))
        if self.downstream_tasks is not None:
            object.__setattr__(self, "downstream_tasks", tuple(self.downstream_tasks))
        if self.downstream_mode not in (None, "gen", "loglik"):
            raise ExperimentError(f"downstream mode {self.downstream_mode!r}: expected 'gen' or 'loglik'")
        if self.downstream_shots is not None and (isinstance(self.downstream_shots, bool)
                                                  or not isinstance(self.downstream_shots, int)
                                                  or self.downstream_shots < 0):
            raise ExperimentError(f"downstream_shots must be a whole number >= 0, got {self.downstream_shots!r}")
        bad = sorted(set(self.protocols) - set(PROTOCOLS))
        if bad or not self.protocols:
            raise ExperimentError(f"--protocol {', '.join(bad) or '(none)'}: expected prob, token_acc or gen")
        if self.on_nonfinite not in ("stop", "continue"):
            raise ExperimentError(f"on_nonfinite {self.on_nonfinite!r}: expected 'stop' or 'continue'")
        if self.record_range is not None:
            self.record_slice  # noqa: B018 -- parsed now: a bad range is an ExperimentError naming it

    @property
    def dataset_name(self) -> str:
        return self.dataset or profile(self.model).dataset

    @property
    def n_resolved(self) -> int:
        if self.record_range is not None:
            start, stop = self.record_slice
            return stop - start
        return self.n if self.n is not None else DEFAULT_N.get(self.suite, DEFAULT_N["single"])

    @property
    def record_slice(self) -> tuple[int, int]:
        """(start, stop) of the records taken from the seeded order: ``record_range`` or (0, n)."""
        if self.record_range is None:
            return 0, self.n_resolved
        return parse_record_range(self.record_range)

    @property
    def probe_names(self) -> tuple[str, ...]:
        return self.probes if self.probes is not None else default_probes(self.model)

    def run_dir(self, sample: int, model_id: str) -> Path:
        kind = "downstream" if self.suite == "downstream" else "sequential"  # the downstream suite's runs apart
        return Path(self.out_dir) / "runs" / kind / self.editor / Path(model_id).name / f"sample_{sample}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hparams"] = dict(self.hparams)
        d.update(dataset=self.dataset_name, n=self.n_resolved, probes=list(self.probe_names))
        return d


class ModelCache:
    """Models loaded once per session, by (name, device). Runs hand the model back unedited."""

    def __init__(self):
        self._models: dict[tuple[str, str], Any] = {}

    def get(self, name: str, device: str = "cpu"):
        key = (name, device)
        if key not in self._models:
            self._models[key] = loader.load_model(name, device=device)
        return self._models[key]


def make_editor(exp: Experiment, lm) -> Any:
    """The editor of ``exp`` with its preset for ``lm`` and the overrides; the experiment's seed goes to an
    editor with a ``seed`` hyperparameter unless it is overridden. A model without a preset section of its own
    gets derived layers (:func:`editbench.editors.presets.resolve`); what the preset is (``kind``: published,
    derived, shipped, family, default; ``origin``; the rule and trace summary when derived) joins the editor's
    ``preset`` record, which every result holds."""
    overrides = dict(exp.hparams)
    builtin = registry.get(exp.editor).__module__.split(".")[0] == "editbench"  # plugins: their own tables
    derived, prov = resolve(exp.editor, lm) if builtin else ({}, {})
    editor = registry.create(exp.editor, model_keys=lm.preset_keys, **{**derived, **overrides})
    if prov:  # what the section is (published / derived / ...), beside from_preset's section/source/overrides
        extra = {("origin" if k == "source" else k): v for k, v in prov.items() if k != "section"}
        # derived values reach from_preset as overrides; only the user's are overrides
        editor.preset = {**(editor.preset or {}), **extra, "overrides": sorted(overrides)}
    if hasattr(editor.hparams, "seed") and "seed" not in overrides:
        editor.hparams = editor.hparams.replace(seed=exp.seed)
    n_layers = getattr(getattr(lm, "adapter", None), "n_layers", None)
    if hasattr(editor.hparams, "to_dict"):  # preset + overrides, against the loaded model (a preset for another
        values = editor.hparams.to_dict()  # model may name layers this one does not have)
        check_hparam_ranges(type(editor), {k: v for k, v in values.items() if k in overrides}, n_layers)
        check_hparam_ranges(type(editor), values, n_layers, what=f"the preset for {lm.model_id}")
    return editor


def check_hparam_ranges(editor_cls: type, values: dict[str, Any], n_layers: int | None,
                        what: str = "--hparam") -> None:
    """Every value within its declared range (:mod:`editbench.editors.ranges`), layers within the model."""
    errors = range_errors(editor_cls.hparams_class, values, n_layers)
    if errors:
        key, why = errors[0]
        more = f" (and {len(errors) - 1} more: {', '.join(k for k, _ in errors[1:])})" if len(errors) > 1 else ""
        source = f"--hparam {editor_cls.name}.{key}={values[key]!r}" if what == "--hparam" else \
            f"{editor_cls.name}.{key}={values[key]!r} ({what})"
        raise ExperimentError(f"{source}: {why}{more}")


def load_pool(exp: Experiment, n: int | None = None, seed: int | None = None):
    """(records, malformed-record errors) of the experiment's dataset; errors are collected, not raised."""
    return load_records(exp.dataset_name, n=n, seed=seed, on_error="collect")


def run_sequential_sample(exp: Experiment, editor, lm, sample: int = 0, *, progress: bool = True,
                          downstream_probe: Any = None, **config: Any) -> tuple[dict, list]:
    """One sample (edit order) of a sequential experiment on ``lm``: (summary, malformed-record errors).
    ``config`` passes further :class:`~editbench.runner.sequential.SequentialConfig` fields. With
    ``exp.downstream_every`` the downstream probe (``downstream_probe``, else the experiment's,
    :func:`editbench.runner.downstream_probe.make_downstream_probe`) runs every k edits."""
    pool, errors = load_pool(exp)
    if not pool:
        raise ExperimentError(f"no valid records in {exp.dataset_name!r} ({len(errors)} malformed)")
    cfg = SequentialConfig(n_edits=exp.n_resolved, seed=exp.seed, sample=sample, resume=exp.resume,
                           out_dir=str(exp.run_dir(sample, lm.model_id)), batch_size=exp.batch_size,
                           history_every=exp.history_every, checkpoint_every=exp.checkpoint_every,
                           on_nonfinite=exp.on_nonfinite, protocols=tuple(dict.fromkeys(("prob", *exp.protocols))),
                           progress=progress,
                           order=config.pop("order", default_order(exp.dataset_name)), **config)
    try:
        stream = make_stream(pool, cfg.order, cfg.seed, cfg.sample, cfg.n_edits)
    except ValueError as e:  # e.g. more edits than the pool has unique subjects: say so, no traceback
        raise ExperimentError(f"--n-edits {cfg.n_edits} on {exp.dataset_name!r}: {e}") from None
    if exp.downstream_every and "downstream_every" not in config:
        cfg = dataclasses.replace(cfg, downstream_every=exp.downstream_every)
        downstream_probe = downstream_probe or make_downstream_probe(exp, lm)
    probe, directions = build_probes(exp.probe_names,
                                     ProbeContext(tok=lm.tok, model_id=lm.model_id, pool=pool, stream=stream,
                                                  seed=exp.seed, dataset=exp.dataset_name))
    summary = run_sequential(editor, lm, pool, cfg, health_probe=probe, health_directions=directions,
                             dataset=exp.dataset_name, stream=stream, downstream_probe=downstream_probe,
                             overrides=dict(exp.hparams))
    summary["model_hash"] = lm.model_hash
    return summary, errors
