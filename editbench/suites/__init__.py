"""The editbench suites, one package each, shipped in the package: `pytest --pyargs editbench.suites -m single --editor
NAME` from any directory once editbench is installed (the pytest plugin comes with it through its `pytest11` entry
point), or `pytest suites ...` in a checkout (repo-root `suites` links here). Gates: `thresholds.yaml` beside them.

A suite is registered by one line: its package name in :data:`SUITES` (docs/add-a-suite.md)."""
import importlib

SUITES = ("single", "sequential", "disabling", "downstream", "zsre")
"""The suite packages, in the order the README and reports list them (``editbench.suites.<name>``)."""


def summary(name: str) -> str:
    """The first line of suite ``name``'s package docstring: its pytest marker's help."""
    doc = importlib.import_module(f"{__name__}.{name}").__doc__ or name
    return doc.strip().splitlines()[0]
