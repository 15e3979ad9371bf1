"""One run configuration, built from pytest's options or from an ``editbench`` subcommand's arguments, validated in one
place before any model loads.

:class:`RunConfig` holds the value of every declared option (:mod:`editbench.options`) under its name;
:meth:`RunConfig.from_pytest` and :meth:`RunConfig.from_cli` fill it in, :meth:`RunConfig.validate` runs the rule of
each option (:data:`RULES`, in that order) and the checks of the options together (dataset, downstream tasks, zsRE
pairs), raising :class:`~editbench.runner.experiment.ExperimentError` with one line naming the option; the front
ends turn it into a usage error (exit 4). :meth:`RunConfig.experiment` builds the typed
:class:`~editbench.runner.experiment.Experiment` of one suite and editor.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from editbench import DEFAULT_MODEL
from editbench.data.registry import DATASETS, read_json_records
from editbench.suites.zsre.pairs import detect_pair_format, pair_source_of
from editbench.options import COMMON, PROTOCOLS, Option, suite_options
from editbench.pytest_shard import parse_shard
from editbench.runner import checks
from editbench.suites.disabling.run import read_summary
from editbench.suites.downstream.run import check_downstream_inputs
from editbench.runner.experiment import Experiment, parse_hparams
from editbench.runner.preflight import check_thresholds
from editbench.suites.zsre.run import check_transfer_inputs

THRESHOLDS = Path(__file__).parent / "suites" / "thresholds.yaml"
"""The gates shipped beside the suites (``--thresholds`` default)."""


def _each(check: Callable[[str], Any]) -> Callable[[str, Any, "RunConfig"], None]:
    def rule(flag: str, value: Any, cfg: "RunConfig") -> None:
        for v in ([value] if isinstance(value, str) else value or ()):
            check(v)
    return rule


def _model(flag: str, value: str, cfg: "RunConfig") -> None:
    if value != DEFAULT_MODEL:  # the built-in default is known good
        checks.check_model(value)


def _hparams(flag: str, value: list, cfg: "RunConfig") -> None:
    cfg.hparams = parse_hparams(value or [])
    checks.check_hparam_editors(cfg.hparams, cfg.editors or None, model=cfg.model)


def _from_run(flag: str, value: str | None, cfg: "RunConfig") -> None:
    cfg.from_run_summary = read_summary(value) if value else None  # a readable sequential run summary


def _thresholds(flag: str, value: str | None, cfg: "RunConfig") -> None:
    cfg.gates = check_thresholds(value or THRESHOLDS)  # parsed now, not after the tests


RULES: dict[str, Callable[[str, Any, "RunConfig"], None]] = {
    "count": lambda flag, value, cfg: [checks.check_count(flag, v) for v in
                                       (value if isinstance(value, list) else [value])],  # append: each
    "seed": lambda flag, value, cfg: checks.check_seed(value, flag),
    "editors": _each(checks.check_editor),
    "hparams": _hparams,
    "model": _model,
    "device": lambda flag, value, cfg: checks.check_device(value),
    "shard": lambda flag, value, cfg: value is None or parse_shard(value),
    "record_range": lambda flag, value, cfg: checks.parse_record_range(value),
    "dataset": lambda flag, value, cfg: cfg.check_dataset(),
    "thresholds": _thresholds,
    "out_dir": lambda flag, value, cfg: checks.check_out_dir(value, flag),
    "downstream": lambda flag, value, cfg: check_downstream_inputs(cfg.model, **cfg.downstream),
    "from_run": _from_run,
}
"""The rule of each option, by the name in :attr:`Option.rule`; :meth:`RunConfig.validate` runs them in this order
(the downstream options are checked together, after the dataset)."""


class RunConfig:
    """The value of every option of one run, by option name (``cfg.n_edits``), and the flags it was given under."""

    def __init__(self, options: Iterable[Option], values: dict[str, Any], front: str = "pytest",
                 suites: tuple[str, ...] = ()):
        self.options = tuple(options)
        self.values = values
        self.front, self.suites = front, suites
        self.hparams: dict[str, dict] = {}
        self.gates: dict | None = None  # the parsed --thresholds file (validate)
        self.from_run_summary: dict | None = None  # the --from-run summary (validate)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values") or {}
        if name in values:
            return values[name]
        raise AttributeError(name)

    # -- building ------------------------------------------------------------------------------------------
    @classmethod
    def from_pytest(cls, config) -> "RunConfig":
        """Every option the plugin declares (:data:`~editbench.options.COMMON` and each suite's ``OPTIONS``)."""
        options = COMMON + suite_options()
        values = {o.name: config.getoption(o.flag) for o in options}
        for o in options:  # a config object that does not know an option (tests' stand-ins): its default
            if values[o.name] is None and o.default is not None:
                values[o.name] = o.default
        return cls(options, values)

    @classmethod
    def from_cli(cls, args, options: Iterable[Option], command: str, suites: tuple[str, ...]) -> "RunConfig":
        """The options of one ``editbench`` subcommand (``command``, e.g. "sequential") from its parsed arguments."""
        options = tuple(options)
        return cls(options, {o.name: getattr(args, o.name, o.default) for o in options}, f"editbench {command}",
                   suites)

    # -- what the options mean -----------------------------------------------------------------------------
    @property
    def editors(self) -> list[str]:
        given = self.values.get("editor")
        return [given] if isinstance(given, str) else list(given or [])

    @property
    def protocols(self) -> tuple[str, ...]:
        return tuple(self.values.get("protocol") or PROTOCOLS)

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(self.values.get("direction") or ("q2c", "c2q"))

    @property
    def thresholds_path(self) -> Path:
        return Path(self.values["thresholds"]) if self.values.get("thresholds") else THRESHOLDS

    @property
    def downstream(self) -> dict[str, Any]:
        """The ``--downstream-*`` values as :class:`Experiment` fields (None where not declared)."""
        v = self.values
        return {"downstream_every": v.get("downstream_every"), "downstream_n": v.get("downstream_n"),
                "downstream_tasks": tuple(v["downstream_task"]) if v.get("downstream_task") else None,
                "downstream_shots": v.get("downstream_shots"), "downstream_mode": v.get("downstream_mode")}

    def flag(self, name: str) -> str:
        return next(o.flag for o in self.options if o.name == name)

    # -- validation ------------------------------------------------------------------------------------------
    def validate(self) -> "RunConfig":
        """Every option checked before any model loads, in :data:`RULES` order: ExperimentError naming the first bad
        one. The dataset: a file of question/completion pairs (or any source of ``editbench zsre``) against the
        zsRE options, else the edit records against the model's tokenizer."""
        by_rule: dict[str, list[Option]] = {}
        for o in self.options:
            if o.rule:
                by_rule.setdefault(o.rule, []).append(o)
        if "dataset" in self.values:
            by_rule["dataset"] = [next(o for o in self.options if o.name == "dataset")]
        if "downstream_every" in self.values:
            by_rule["downstream"] = [next(o for o in self.options if o.name == "downstream_every")]
        for rule, check in RULES.items():
            for o in by_rule.get(rule, ()):
                check(o.flag, self.values.get(o.name), self)
        return self

    def check_dataset(self) -> None:
        if self.suites == ("zsre",):  # `editbench zsre`: every source is one of pairs
            check_transfer_inputs(self.pair_source, self.values["zsre_target"], self.directions)
        elif self.dataset is None:
            return  # the model's default, checked once the selected suites are known
        elif is_pairs_file(self.dataset):  # the zsre suite's
            check_transfer_inputs(self.dataset, self.values.get("zsre_target", "answers"), self.directions)
        else:
            checks.check_dataset(self.dataset, self.model)

    @property
    def pair_source(self) -> str:
        return pair_source_of(self.dataset, self.model)

    # -- the typed experiment ------------------------------------------------------------------------------
    def experiment(self, suite: str, editor: str, **changes: Any) -> Experiment:
        """The :class:`Experiment` of ``suite`` and ``editor`` from the options (``n``: --n-records for the
        single suite, else --n-edits); ``changes`` replace fields (a subcommand's defaults)."""
        v = self.values
        fields: dict[str, Any] = {k: v[k] for k in ("model", "dataset", "samples", "seed", "device", "resume",
                                                     "checkpoint_every", "on_nonfinite", "batch_size",
                                                     "history_every") if v.get(k) is not None}
        fields.update(hparams=tuple(self.hparams.get(editor, {}).items()), protocols=self.protocols,
                      out_dir=v["reports_dir"], n=v.get("n_records") if suite == "single" else v.get("n_edits"),
                      record_range=v.get("record_range") if suite == "single" else None, **self.downstream)
        fields.update(changes)
        return Experiment(suite=suite, editor=editor, **fields)


def is_pairs_file(dataset: str) -> bool:
    """A --dataset that is a file of question/completion pairs (zsre suite), not of edit records."""
    if dataset in DATASETS or not Path(dataset).expanduser().is_file():
        return False
    try:
        detect_pair_format(read_json_records(Path(dataset).expanduser(), bad_lines="keep"), dataset)
    except (ValueError, OSError):
        return False
    return True
