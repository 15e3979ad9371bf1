"""Root conftest: loads the editbench pytest plugin (options, markers, fixtures, summary) for every run."""
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ["editbench.pytest_plugin"]
