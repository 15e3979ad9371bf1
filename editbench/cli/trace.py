"""``editbench trace``: causal tracing, where the model stores subject facts (suggests ROME/MEMIT layers)."""
from __future__ import annotations

from editbench.trace import cli as trace_cli


def add_parser(sub) -> None:
    tr = sub.add_parser("trace", help="causal tracing: where the model stores subject facts (ROME/MEMIT layers)")
    trace_cli.add_arguments(tr).set_defaults(func=run)


def run(args) -> int:
    return trace_cli.run(args) or 0
