"""Root conftest. The editbench pytest plugin (options, markers, fixtures, summary) is not loaded here: it comes
with the installed package through its ``pytest11`` entry point, for `pytest suites`, `pytest tests` and
`pytest --pyargs editbench.suites` alike.

Here: tests marked ``slow`` (minutes on 2 CPU cores: the project's own long tests, the SmolLM2 benchmarks) run
only with ``EDITBENCH_RUN_SLOW=1`` or ``-m slow``, for `pytest tests` and `pytest benchmarks` alike."""
import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("EDITBENCH_RUN_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: set EDITBENCH_RUN_SLOW=1 or select with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
