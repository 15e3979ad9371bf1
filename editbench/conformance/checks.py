"""The editor contract as plain check functions: each builds fresh tiny models, drives one editor and raises an
``AssertionError`` that says what broke (which parameter, which request, what was expected).

``make`` is a factory ``make(lm) -> Editor`` (a fresh editor for a loaded model, its preset and overrides applied;
:func:`factory` builds one from a registered name). The checks:

=================================  =================================================================================
:func:`check_registration`         the registered name loads an Editor of that ``name``, frozen hyperparameters,
                                   ``supports_batch`` a bool, ``describe()`` JSON
:func:`check_edit_and_restore`     ``prepare`` leaves the weights alone; ``apply`` edits the model's own parameters in
                                   place (same tensors), returns an :class:`EditResult` whose ``originals`` cover every
                                   changed parameter with its exact pre-edit bytes; :func:`restore` puts the model back
                                   byte for byte (buffers included). Run on every tiny architecture family.
:func:`check_no_state_leak`        edit A, restore, ``reset()``, edit B gives the same bytes as edit B by a fresh
                                   editor on a fresh model (and ``state_dict()`` after ``reset()`` is a fresh one's)
:func:`check_seed_determinism`     same hyperparameters (seed included) give the same weights, whatever the state of
                                   the global torch / numpy / ``random`` generators
:func:`check_batch_support`        ``supports_batch = True``: a 2-request batch edits, restores exactly, and its second
                                   request is not ignored. ``False``: a batch is refused with a ``ValueError`` that
                                   leaves the model untouched, or gives exactly the two edits applied one after the other
:func:`check_bad_requests`         a malformed :class:`EditRequest` raises :class:`RecordError` naming the field, before
                                   any weight changes (in a batch too: no partial edit)
=================================  =================================================================================

and, in :mod:`editbench.conformance.session`, what breaks a session shared by many editors and edits:
:func:`~editbench.conformance.session.check_session_hygiene` (tokenizer, requires_grad/.grad, train/eval mode,
hooks, config, torch switches and global RNG states left as found), :func:`~editbench.conformance.session.check_no_module_state`
(no process-wide state, e.g. a cache keyed by model path, decides an edit) and
:func:`~editbench.conformance.session.check_generation_after_edits` (greedy generation, seeded template sampling and
scores unchanged after 3 restored edits).

Editors in :data:`NO_OP` (the null baseline) change nothing by design; the checks that need a change skip it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from editbench.conformance.common import (REQ_A, REQ_B, _apply, _describe, _fresh, ambient_rng,  # noqa: F401
                                          differing, same_bytes, snapshot)
from editbench.data.schema import RecordError
from editbench.editors.base import restore
from editbench.models.loader import LoadedModel, load_model, state_hash
from editbench.models.tiny import TINY

FAMILIES: tuple[str, ...] = tuple(TINY)  # tiny-gpt2, tiny-gptj, tiny-neox, tiny-llama
DEFAULT_FAMILY = "tiny-llama"  # the default model's (SmolLM2's) family, for the checks not run on every family
NO_OP = frozenset({"null"})
# label -> (malformed request, the field its RecordError must name)
BAD_REQUESTS: dict[str, tuple[EditRequest, str]] = {
    "empty target_new": (replace(REQ_A, target_new=""), "target_new"),
    "prompt without a {} placeholder": (replace(REQ_A, prompt="The mother tongue of Danielle Darrieux is"), "prompt"),
    "target_new equal to target_true": (replace(REQ_A, target_new="French"), "target_new"),
    "control character in the subject": (replace(REQ_A, subject="Danielle\x00Darrieux"), "subject"),
    "blank subject": (replace(REQ_A, subject="  "), "subject"),
}
Make = Callable[[LoadedModel], Any]


def factory(name: str, hparams: dict | None = None, seed: int = 0) -> Make:
    """``make(lm)``: the registered editor ``name`` with its preset for ``lm``, ``hparams`` overrides, and ``seed``
    for an editor with a ``seed`` hyperparameter (as the runner's ``make_editor`` does)."""
    from editbench import registry

    def make(lm: LoadedModel):
        overrides = dict(hparams or {})
        editor = registry.create(name, model_keys=lm.preset_keys, **overrides)
        if hasattr(editor.hparams, "seed") and "seed" not in overrides:
            editor.hparams = editor.hparams.replace(seed=seed)
        return editor
    return make


# -- the checks ------------------------------------------------------------------------------------------------
def check_registration(name: str) -> None:
    """The registered name loads, is an Editor whose ``name`` is the registered one (presets and gates are looked
    up by it), with a frozen HParams dataclass that builds from its defaults, and describes itself as JSON."""
    import dataclasses
    import json

    from editbench import registry
    from editbench.editors.base import Editor, HParams

    cls = registry.get(name)  # UnknownEditorError / EditorLoadError say what is wrong
    assert issubclass(cls, Editor), f"{name}: {cls!r} is not an editbench Editor"
    assert cls.name == name, (f"{name}: the class says name = {cls.name!r}; it must be the registered name (presets, "
                              "gates and results are keyed by it)")
    hp = cls.hparams_class
    assert isinstance(hp, type) and issubclass(hp, HParams) and dataclasses.is_dataclass(hp), \
        f"{name}: hparams_class {hp!r} is not an HParams dataclass"
    assert hp.__dataclass_params__.frozen, f"{name}: hparams_class {hp.__name__} must be frozen (dataclass(frozen=True))"
    assert isinstance(cls.supports_batch, bool), f"{name}: supports_batch must be a bool, got {cls.supports_batch!r}"
    from editbench.editors.base import editor_preset_table
    table, _ = editor_preset_table(cls)  # a plugin's presets file unreadable: PresetError saying why
    for key in table:  # every shipped section builds (unknown keys or wrong types fail here, naming the key)
        try:
            cls.from_preset([key])
        except (TypeError, ValueError) as e:
            raise AssertionError(f"{name}: preset section {key!r} does not build: {e}") from e
    desc = cls.from_preset([]).describe()
    json.dumps(desc)  # raises TypeError naming the value that is not JSON
    assert desc.get("name") == name, f"{name}: describe() names {desc.get('name')!r}"


def check_edit_and_restore(make: Make, family: str = DEFAULT_FAMILY) -> None:
    lm = load_model(family)
    before, h0 = snapshot(lm.model), state_hash(lm.model)
    ids = {n: id(p) for n, p in lm.model.named_parameters()}
    editor = make(lm)
    editor.prepare(lm.model, lm.tok)
    name = editor.name
    changed = differing(snapshot(lm.model), before)
    assert not changed, f"{name} on {family}: prepare() changed the model: {_describe(changed, snapshot(lm.model), before)}"
    res = _apply(editor, lm, [REQ_A])
    assert {n: id(p) for n, p in lm.model.named_parameters()} == ids, \
        f"{name} on {family}: apply replaced parameter tensors instead of editing them in place"
    after = snapshot(lm.model)
    changed = differing(after, before)
    if name in NO_OP:
        assert not changed, f"{name} on {family}: a no-op editor changed {_describe(changed, after, before)}"
    else:
        assert changed, f"{name} on {family}: apply changed no weight (an editor must edit the model in place)"
    buffers = [n for n in changed if n.startswith("buffer:")]
    assert not buffers, f"{name} on {family}: apply changed buffers, which restore() cannot put back: {buffers}"
    uncovered = sorted(set(changed) - set(res.originals))
    assert not uncovered, (f"{name} on {family}: parameter(s) changed but missing from EditResult.originals "
                           f"(restore cannot put them back): {_describe(uncovered, after, before)}")
    unknown = sorted(set(res.originals) - set(before))
    assert not unknown, f"{name} on {family}: originals name parameter(s) the model does not have: {unknown}"
    wrong = [n for n, t in res.originals.items() if not same_bytes(t, before[n])]
    assert not wrong, (f"{name} on {family}: originals are not the exact pre-edit values of "
                       f"{_describe(wrong, {n: res.originals[n] for n in wrong}, before)}")
    restore(lm.model, res.originals)
    back = snapshot(lm.model)
    left = differing(back, before)
    assert not left, f"{name} on {family}: restore(originals) is not byte-identical for {_describe(left, back, before)}"
    assert state_hash(lm.model) == h0, f"{name} on {family}: the model hash differs after restore"


def check_no_state_leak(make: Make, family: str = DEFAULT_FAMILY) -> None:
    lm, editor = _fresh(family, make)
    with ambient_rng(0):
        restore(lm.model, _apply(editor, lm, [REQ_A]).originals)
    editor.reset()
    state_after_reset = editor.state_dict()
    with ambient_rng(0):
        res = _apply(editor, lm, [REQ_B])
    leaked = snapshot(lm.model)
    restore(lm.model, res.originals)
    lm2, fresh = _fresh(family, make)
    fresh_state = fresh.state_dict()
    with ambient_rng(0):
        _apply(fresh, lm2, [REQ_B])
    clean = snapshot(lm2.model)
    diff = differing(leaked, clean)
    assert not diff, (f"{editor.name} on {family}: edit A, restore, reset(), edit B differs from edit B on a fresh "
                      f"model with a fresh editor: {_describe(diff, leaked, clean)} (state kept across independent "
                      "edits; reset() must forget it)")
    sdiff = differing(state_after_reset, fresh_state)
    assert not sdiff, (f"{editor.name} on {family}: state_dict() after reset() differs from a fresh editor's: "
                       f"{_describe(sdiff, state_after_reset, fresh_state)}")


def check_seed_determinism(make: Make, family: str = DEFAULT_FAMILY) -> None:
    snaps = []
    for ambient in (1, 2):  # different global RNG states: the editor's own seed must decide
        lm, editor = _fresh(family, make)
        with ambient_rng(ambient):
            _apply(editor, lm, [REQ_A])
        snaps.append(snapshot(lm.model))
    diff = differing(*snaps)
    assert not diff, (f"{editor.name} on {family}: the same hyperparameters and seed gave different weights under "
                      f"different global RNG states: {_describe(diff, *snaps)} (seed a generator from the "
                      "editor's seed instead of using the global one)")


def check_batch_support(make: Make, family: str = DEFAULT_FAMILY) -> None:
    lm, editor = _fresh(family, make)
    name, before = editor.name, snapshot(lm.model)
    if editor.supports_batch:
        res = _apply(editor, lm, [REQ_A, REQ_B])
        batch = snapshot(lm.model)
        restore(lm.model, res.originals)
        left = differing(snapshot(lm.model), before)
        assert not left, f"{name} on {family}: restore after a batch edit is not byte-identical for {left[:4]}"
        if name in NO_OP:
            return
        assert differing(batch, before), f"{name} on {family}: a batch edit (supports_batch = True) changed nothing"
        lm2, single = _fresh(family, make)
        _apply(single, lm2, [REQ_A])
        assert differing(batch, snapshot(lm2.model)), \
            f"{name} on {family}: the batch [A, B] gives the same weights as [A] alone: request B was ignored"
        return
    try:
        res = _apply(editor, lm, [REQ_A, REQ_B])
    except ValueError:
        left = differing(snapshot(lm.model), before)
        assert not left, f"{name} on {family}: refusing a batch (supports_batch = False) left edits in {left[:4]}"
        return
    batch = snapshot(lm.model)
    restore(lm.model, res.originals)
    left = differing(snapshot(lm.model), before)
    assert not left, f"{name} on {family}: restore after an accepted batch is not byte-identical for {left[:4]}"
    lm2, seq = _fresh(family, make)
    _apply(seq, lm2, [REQ_A])
    _apply(seq, lm2, [REQ_B])
    one_by_one = snapshot(lm2.model)
    diff = differing(batch, one_by_one)
    assert not diff, (f"{name} on {family}: supports_batch = False, yet a 2-request batch was accepted and differs "
                      f"from the two edits applied one after the other: {_describe(diff, batch, one_by_one)} "
                      "(refuse batches with Editor.check_batch, or declare supports_batch = True)")


def check_bad_requests(make: Make, family: str = DEFAULT_FAMILY) -> None:
    lm, editor = _fresh(family, make)
    name, before = editor.name, snapshot(lm.model)
    batches = [("alone", lambda bad: [bad])]
    if editor.supports_batch:
        batches.append(("after a good request in a batch", lambda bad: [REQ_A, bad]))
    for label, (bad, fld) in BAD_REQUESTS.items():
        for where, build in batches:
            try:
                editor.apply(lm.model, lm.tok, build(bad))
            except RecordError as e:
                assert e.field == fld, (f"{name} on {family}: {label} ({where}): RecordError names field "
                                        f"{e.field!r}, expected {fld!r}: {e}")
            except Exception as e:  # noqa: BLE001 - any other type is the failure being checked
                raise AssertionError(f"{name} on {family}: {label} ({where}) raised {type(e).__name__}: {e} -- "
                                     "expected editbench.data.schema.RecordError (call request.validate() first)"
                                     ) from e
            else:
                raise AssertionError(f"{name} on {family}: {label} ({where}) was accepted; expected RecordError "
                                     f"naming {fld!r} (call request.validate() on every request before editing)")
            left = differing(snapshot(lm.model), before)
            assert not left, (f"{name} on {family}: {label} ({where}) raised, but weights had already changed: "
                              f"{left[:4]} (validate every request before the first write)")
            editor.reset()


from editbench.conformance.session import (check_generation_after_edits, check_no_module_state,  # noqa: E402
                                           check_session_hygiene)

CHECKS: dict[str, Callable[..., None]] = {  # the checks that take (make, family)
    "edit_and_restore": check_edit_and_restore,
    "no_state_leak": check_no_state_leak,
    "seed_determinism": check_seed_determinism,
    "batch_support": check_batch_support,
    "bad_requests": check_bad_requests,
    # what breaks a shared session (editbench.conformance.session)
    "session_hygiene": check_session_hygiene,
    "no_module_state": check_no_module_state,
    "generation_after_edits": check_generation_after_edits,
}
