"""What the ``editbench`` subcommands share: the usage-error line and a run configuration from their arguments."""
from __future__ import annotations

import sys
from typing import Iterable

from editbench.options import USAGE_ERROR, Option, add_options
from editbench.runconfig import RunConfig

__all__ = ["USAGE_ERROR", "add_options", "error", "run_config"]


def error(command: str, message: object, status: int = USAGE_ERROR) -> int:
    """Print ``editbench COMMAND: error: MESSAGE`` (one line) to stderr; return ``status`` (a usage error: 4)."""
    print(f"editbench {command}: error: {message}", file=sys.stderr)
    return status


def run_config(args, options: Iterable[Option], command: str, suites: tuple[str, ...]) -> RunConfig:
    """The run configuration of a suite subcommand, validated (ExperimentError naming the first bad option)."""
    return RunConfig.from_cli(args, options, command, suites).validate()
