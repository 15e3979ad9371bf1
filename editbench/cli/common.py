"""What the ``editbench`` subcommands share: the usage-error line and a run configuration from their arguments."""
from __future__ import annotations

import sys
from typing import Iterable

from editbench.options import USAGE_ERROR, Option, add_options

__all__ = ["LAZY", "USAGE_ERROR", "add_options", "error", "run_config"]
LAZY = "imported when the subcommand runs"
"""Why the subcommand modules import the layers inside their ``run``: ``editbench --help`` (and every parse error)
builds all subcommands' parsers; with the layers (and so torch) imported at module top it took 5.0 s, with them
imported in ``run`` 0.1 s (measured 3 runs each, Intel Xeon, 1 thread, contended)."""


def error(command: str, message: object, status: int = USAGE_ERROR) -> int:
    """Print ``editbench COMMAND: error: MESSAGE`` (one line) to stderr; return ``status`` (a usage error: 4)."""
    print(f"editbench {command}: error: {message}", file=sys.stderr)
    return status


def run_config(args, options: Iterable[Option], command: str, suites: tuple[str, ...]) -> RunConfig:
    """The run configuration of a suite subcommand, validated (ExperimentError naming the first bad option)."""
    from editbench.runconfig import RunConfig  # noqa: PLC0415 - see LAZY
    return RunConfig.from_cli(args, options, command, suites).validate()
