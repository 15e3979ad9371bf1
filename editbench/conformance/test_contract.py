"""The conformance checks as tests: ``pytest --pyargs editbench.conformance --editor NAME`` (see the package)."""
from __future__ import annotations

import pytest

from editbench.conformance import checks


def _make(eb_session, editor_name: str):
    return checks.factory(editor_name, eb_session.hparams.get(editor_name), eb_session.seed)


def _run(check, *args) -> None:
    try:
        check(*args)
    except AssertionError as e:  # the check's message says it all: no traceback into the checks
        pytest.fail(str(e), pytrace=False)


def test_registered_and_described(editor_name):
    _run(checks.check_registration, editor_name)


@pytest.mark.parametrize("family", checks.FAMILIES)
def test_edits_in_place_and_restores_exact_originals(eb_session, editor_name, family):
    _run(checks.check_edit_and_restore, _make(eb_session, editor_name), family)


def test_no_state_leaks_between_independent_edits(eb_session, editor_name):
    _run(checks.check_no_state_leak, _make(eb_session, editor_name))


def test_same_seed_same_weights(eb_session, editor_name):
    _run(checks.check_seed_determinism, _make(eb_session, editor_name))


def test_declared_batch_support_is_honoured(eb_session, editor_name):
    _run(checks.check_batch_support, _make(eb_session, editor_name))


def test_bad_requests_raise_record_errors(eb_session, editor_name):
    _run(checks.check_bad_requests, _make(eb_session, editor_name))


def test_leaves_the_shared_session_as_found(eb_session, editor_name):
    _run(checks.check_session_hygiene, _make(eb_session, editor_name), checks.DEFAULT_FAMILY)


def test_no_process_wide_state_decides_an_edit(eb_session, editor_name):
    _run(checks.check_no_module_state, _make(eb_session, editor_name), checks.DEFAULT_FAMILY)


def test_generation_and_scores_unchanged_after_restored_edits(eb_session, editor_name):
    _run(checks.check_generation_after_edits, _make(eb_session, editor_name), checks.DEFAULT_FAMILY)
