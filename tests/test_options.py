"""Options are declared once (editbench/options.py and each suite's options.py): the pytest plugin and the
``editbench`` subcommands add them from the same declarations, so their help is the same text."""
from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from editbench.cli import build_parser
from editbench.options import COMMON, Option, add_options, suite_options
from editbench.runconfig import RULES, RunConfig
from editbench.suites import SUITES


def _words(text: str) -> str:
    return " ".join(text.split())


def _subcommand_help(name: str) -> str:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return _words(sub.choices[name].format_help())


@functools.lru_cache(maxsize=1)
def _pytest_help() -> str:
    """What `pytest --help` prints (the plugin comes through its pytest11 entry point)."""
    r = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"], capture_output=True,
                       text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr[-2000:]
    text = _words(r.stdout)
    assert "editbench: model-editing conformance suites" in text
    return text


@pytest.mark.parametrize("suite", ["sequential", "downstream", "disabling", "zsre"])
def test_pytest_and_the_subcommand_show_the_same_help_from_one_declaration(suite):
    pytest_help, cli_help = _pytest_help(), _subcommand_help(suite)
    own = suite_options([suite])
    if suite == "sequential":
        own += suite_options(["downstream"])  # the downstream tasks inside a sequential run
    assert own
    for option in own:
        assert option.flag in pytest_help and option.flag in cli_help
        assert _words(option.help) in pytest_help, option.flag
        assert _words(option.help) in cli_help, option.flag


def test_every_declared_option_is_a_pytest_option_once_and_has_a_known_rule():
    flags = [o.flag for o in COMMON + suite_options()]
    assert len(flags) == len(set(flags)), "an option declared twice"
    assert {o.rule for o in COMMON + suite_options(SUITES) + suite_options(SUITES, "CLI_OPTIONS")} - {None} \
        <= set(RULES)
    help_text = _pytest_help()
    assert all(re.search(re.escape(f) + r"\b", help_text) for f in flags)


def test_add_options_serves_argparse_and_pytest_alike():
    opts = (Option(("--n",), type=int, default=3, help="n"), Option(("--tag",), action="append", help="t"),
            Option(("--on",), action="store_true", help="o"))
    p = argparse.ArgumentParser()
    add_options(p.add_argument, opts)
    args = p.parse_args(["--n", "5", "--tag", "a", "--tag", "b", "--on"])
    assert (args.n, args.tag, args.on) == (5, ["a", "b"], True)
    cfg = RunConfig.from_cli(args, opts, "x", ())
    assert (cfg.n, cfg.tag, cfg.on) == (5, ["a", "b"], True)


def test_the_run_config_validates_in_rule_order_with_one_line():
    from editbench.runner.experiment import ExperimentError
    from editbench.suites.sequential.options import OPTIONS

    class Config:
        def __init__(self, **given):
            self.given = given

        def getoption(self, flag):
            return self.given.get(flag)

    cfg = RunConfig.from_pytest(Config(**{"--n-edits": 0, "--seed": -1}))
    assert cfg.samples == 1 and cfg.reports_dir == "reports" and len(OPTIONS) == 4
    with pytest.raises(ExperimentError, match=r"^--n-edits 0: must be a whole number >= 1$"):
        cfg.validate()  # counts before the seed, as the plugin always checked them
