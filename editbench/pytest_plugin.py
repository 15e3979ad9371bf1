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

import pytest

from editbench.options import COMMON, add_options, suite_options
from editbench.runner.results import make_result
from editbench.session import PROTOCOL_ROWS, TABLE_HEADERS, THRESHOLDS, EditbenchSession  # noqa: F401 (re-export)
from editbench.suites import SUITES
from editbench.suites import summary as suite_summary

SUITE_MARKERS = {  # one marker per registered suite package (editbench.suites.SUITES), then the others
    **{name: suite_summary(name) for name in SUITES},
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
    session.configure()


@pytest.hookimpl(trylast=True)  # after -m/-k deselection (and --shard): the checks are of the tests that will run
def pytest_collection_modifyitems(config, items):
    config.stash[SESSION_KEY].modify_items(items)


def pytest_generate_tests(metafunc):
    metafunc.config.stash[SESSION_KEY].parametrize(metafunc)


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
    return lambda **fields: eb_session.record(make_result(**{"test": request.node.nodeid, **fields}))


def pytest_sessionfinish(session, exitstatus):
    if SESSION_KEY in session.config.stash:
        session.config.stash[SESSION_KEY].finish(session, exitstatus)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist controller: collect a finished worker's results (merged into the one session file)."""
    if SESSION_KEY in node.config.stash:
        node.config.stash[SESSION_KEY].worker_done(node)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if SESSION_KEY in config.stash:
        config.stash[SESSION_KEY].terminal_summary(terminalreporter)
