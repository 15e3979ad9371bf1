"""Root conftest. The editbench pytest plugin (options, markers, fixtures, summary) is not loaded here: it comes
with the installed package through its ``pytest11`` entry point, for `pytest suites`, `pytest tests` and
`pytest --pyargs editbench.suites` alike."""
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
