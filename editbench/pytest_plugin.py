"""The editbench pytest plugin (registered through the ``pytest11`` entry point ``editbench``).

Hooks only: each hands off to the session object, :class:`editbench.session.EditbenchSession`, which owns the
options (declared once in :mod:`editbench.options` and the suite packages), the model cache (each model loaded once
per session), the gates file and the results; it writes them at session finish to
``<reports dir>/editbench-<UTC time>.json`` and prints them as a table. The suites ship in the package::

    pytest --pyargs editbench.suites -m single --editor my-editor     # anywhere editbench is installed
    pytest suites -m sequential --editor memit                         # in a checkout

Data path: records -> EditRequest -> Editor.apply -> scorer/probes -> runner -> results -> report.
"""
from __future__ import annotations

import json

import pytest
import torch
from tabulate import tabulate

from editbench.options import COMMON, add_options, suite_options
from editbench.pytest_shard import ShardPlugin
from editbench.runner.results import make_result
from editbench.session import PROTOCOL_ROWS, TABLE_HEADERS, THRESHOLDS, EditbenchSession  # noqa: F401 (re-export)

SUITE_MARKERS = {
    "single": "single-edit reliability suite",
    "sequential": "sequential editing at scale",
    "downstream": "downstream regression: GLUE few-shot ability before and during sequential editing",
    "disabling": "disabling-edit isolation: is a CF edit intrinsic (disables a fresh model) or accumulated?",
    "zsre": "zsRE question form vs completion form: do edits transfer between the two?",
    "gpu": "needs CUDA; skipped (with the reason) when no GPU is visible",
    "slow": "long runs that CI does not select",
}
SESSION_KEY = pytest.StashKey[EditbenchSession]()


def pytest_addoption(parser):
    group = parser.getgroup("editbench", "editbench: model-editing conformance suites")
    add_options(group.addoption, COMMON + suite_options())  # editbench/options.py, editbench/suites/*/options.py


def pytest_configure(config):
    for name, doc in SUITE_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    session = config.stash[SESSION_KEY] = EditbenchSession(config)
    if getattr(config.option, "help", False):
        return
    session.validate()
    if session.shard:
        config.pluginmanager.register(ShardPlugin(session.shard), "editbench-shard")


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: the checks are of the suites that will run
def pytest_collection_modifyitems(config, items):
    session = config.stash[SESSION_KEY]
    session.validate_selected({m for item in items for m in ("single", "sequential") if m in item.keywords})
    for item in items:  # pytest-xdist --dist loadgroup: one editor's tests (its samples) stay on one worker
        editor = getattr(getattr(item, "callspec", None), "params", {}).get("editor_name")
        if editor is not None:
            item.add_marker(pytest.mark.xdist_group(f"editor-{editor}"))
    if not any("gpu" in item.keywords for item in items) or torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_generate_tests(metafunc):
    session = metafunc.config.stash[SESSION_KEY]
    if "editor_name" in metafunc.fixturenames:
        names = session.editor_names()
        metafunc.parametrize("editor_name", names, ids=names, scope="session")
    if "eb_sample" in metafunc.fixturenames:
        samples = list(range(session.samples))
        metafunc.parametrize("eb_sample", samples, ids=[f"sample{s}" for s in samples])


@pytest.fixture(scope="session")
def eb_session(request) -> EditbenchSession:
    """The editbench session: options, model cache, gates, results."""
    return request.config.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def thresholds(eb_session) -> dict:
    """The gates (the thresholds.yaml shipped beside the suites, or --thresholds)."""
    return eb_session.thresholds()


@pytest.fixture
def eb_record(request, eb_session):
    """``eb_record(**fields)``: make a result in the schema (:func:`editbench.runner.results.make_result`) for
    this test and keep it on the session (written at session finish)."""
    def record(**fields):
        fields.setdefault("test", request.node.nodeid)
        return eb_session.record(make_result(**fields))
    return record


def pytest_sessionfinish(session, exitstatus):
    eb = session.config.stash.get(SESSION_KEY, None)
    if eb is not None:
        eb.finish(session, exitstatus)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist controller: collect a finished worker's results (merged into the one session file)."""
    eb = node.config.stash.get(SESSION_KEY, None)
    payload = (getattr(node, "workeroutput", None) or {}).get("editbench_results")
    if eb is not None and payload:
        eb.results.extend(json.loads(payload))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    eb = config.stash.get(SESSION_KEY, None)
    if eb is not None and eb.write_error:
        terminalreporter.write_line(f"editbench: error: {eb.write_error}", red=True)
    if eb is None or not eb.results:
        return
    terminalreporter.write_sep("=", "editbench results")
    terminalreporter.write_line(tabulate(eb.table_rows(), headers=TABLE_HEADERS, tablefmt="github"))
    for line in eb.summary_lines():
        terminalreporter.write_line(line)
    board = eb.leaderboard()
    if board:
        terminalreporter.write_sep("-", "editbench leaderboard (this session; `editbench report DIR` for the full one)")
        terminalreporter.write_line(board)
    for line in eb.baseline_lines:
        terminalreporter.write_line(line)
    if eb.report_path and not eb.write_error:
        terminalreporter.write_line(f"results written to {eb.report_path}; leaderboard, Table 3 and gallery: "
                                    f"editbench report {eb.reports_dir}")
