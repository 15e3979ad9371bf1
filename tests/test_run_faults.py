"""Bad input and faults in sequential runs and their checkpoints (tiny-gpt2, a cheap deterministic editor):

- ``resume=True`` says what it resumes from (a :class:`ResumeWarning` and the summary's ``resumed_from``);
- a damaged results line is reported by line number (``damaged_lines``), not fatal;
- a damaged checkpoint (truncated/missing ``state.json``, missing or overwritten tensor files, a bad ``LATEST``,
  cut results) raises ``CheckpointError`` naming the file — never a silent restart;
- a run given by a relative ``out_dir`` resumes by its absolute path (and after a move);
- an edit that writes NaN/inf is flagged (``nonfinite``), is a CF point at any position, and stops the run
  cleanly (``on_nonfinite="stop"``) or not (``"continue"``).

The names that are new with these checks are looked up by name, so that on code without them each test fails on
its own assertion rather than at import.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import warnings

import pytest
import torch

from editbench.data import load_records
from editbench.editors.base import EditResult, Editor
from editbench.metrics.health import PerplexityProbe
from editbench.models.loader import load_model
from editbench.runner import SequentialConfig, make_stream, run_sequential, summarize
from editbench.runner.jsonl import read_jsonl

W = "transformer.h.1.mlp.c_proj.weight"
TEXTS = ["The capital of France is Paris and the capital of Germany is Berlin ."]


@pytest.fixture(scope="module")
def pool():
    return load_records("counterfact-1k", n=60)


class Nudge(Editor):
    """Adds a small constant to one weight per edit (deterministic, no RNG) and keeps a call counter as its state.
    ``bad`` = {case id: value}: after that edit, one entry of the weight is set to ``value`` (NaN, inf);
    ``interrupt_at`` raises KeyboardInterrupt at that call (a kill, in process); ``on_call`` hooks a call."""

    name = "nudge"

    def __init__(self, bad: dict | None = None, interrupt_at: int | None = None, on_call=None):
        super().__init__()
        self.bad, self.interrupt_at, self.on_call = dict(bad or {}), interrupt_at, on_call
        self.calls = 0

    def apply(self, model, tok, requests):
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        w = dict(model.named_parameters())[W]
        orig = {W: w.detach().clone()}
        with torch.no_grad():
            w.add_(1e-3)
            for r in requests:
                if r.case_id in self.bad:
                    w[0, 0] = self.bad[r.case_id]
        return EditResult(originals=orig)

    def state_dict(self):
        return {"calls": torch.tensor(self.calls)}

    def load_state_dict(self, d):
        self.calls = int(d["calls"]) if "calls" in d else 0


def cfg(out_dir, **kw) -> SequentialConfig:
    base = dict(n_edits=6, history_every=2, checkpoint_every=2, out_dir=str(out_dir), progress=False)
    return SequentialConfig(**{**base, **kw})


def run(editor, pool, c, probe=True, **kw):
    lm = load_model("tiny-gpt2")
    return run_sequential(editor, lm, pool, c, health_probe=PerplexityProbe(lm.tok, TEXTS) if probe else None, **kw)


def interrupted(editor, pool, c):
    with pytest.raises(KeyboardInterrupt):
        run(editor, pool, c)


def resume_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if type(w.message).__name__ == "ResumeWarning"]


# -- what a resume resumes from ----------------------------------------------------------------------------------
def test_resume_announces_the_checkpoint_it_continues_from(pool, tmp_path):
    c = cfg(tmp_path / "r")
    interrupted(Nudge(interrupt_at=5), pool, c)  # killed during edit 5: the last checkpoint is at edit 4
    s, msgs = resume_warnings(lambda: run(Nudge(), pool, cfg(tmp_path / "r", resume=True)))
    ck = tmp_path / "r" / "ckpt" / "step_0000004"
    assert msgs == [f"resuming at edit 4 of 6 from {ck}"]
    assert s["resumed_from"] == {"edit": 4, "of": 6, "checkpoint": str(ck), "message": msgs[0]}
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["resumed_from"]["edit"] == 4
    assert s["complete"] and s["n_edits"] == 6


def test_resume_without_a_checkpoint_says_it_starts_from_edit_0(pool, tmp_path):
    c = cfg(tmp_path / "r", checkpoint_every=50)
    interrupted(Nudge(interrupt_at=4), pool, c)  # 3 edits written, no checkpoint reached
    assert sum(r["type"] == "edit" for r in read_jsonl(tmp_path / "r" / "results.jsonl")) == 3
    s, msgs = resume_warnings(lambda: run(Nudge(), pool, cfg(tmp_path / "r", checkpoint_every=50, resume=True)))
    assert msgs == [f"no checkpoint in {tmp_path / 'r' / 'ckpt'}: starting from edit 0 of 6"]
    assert s["resumed_from"] == {"edit": 0, "of": 6, "checkpoint": None, "message": msgs[0]}
    fresh, msgs = resume_warnings(lambda: run(Nudge(), pool, cfg(tmp_path / "f")))
    assert msgs == [] and fresh["resumed_from"] is None


# -- damaged results lines ------------------------------------------------------------------------------------------
def _damage_line(path, line_no: int, garbage: bytes = b"\xff\xfe\x00garbage") -> None:
    data = path.read_bytes()
    lines = data.split(b"\n")
    start = sum(len(x) + 1 for x in lines[:line_no - 1])
    with open(path, "r+b") as f:  # overwrite in place, same length, the newline kept
        f.seek(start + 3)
        f.write(garbage[:len(lines[line_no - 1]) - 6])


def test_garbage_bytes_in_an_earlier_line_are_reported_not_fatal(pool, tmp_path):
    out = tmp_path / "r"
    jsonl = out / "results.jsonl"

    def corrupt(call):  # during edit 5, the bytes of line 3 (edit 2's record) are overwritten on disk
        if call == 5:
            _damage_line(jsonl, 3)

    s = run(Nudge(on_call=corrupt), pool, cfg(out, checkpoint_every=None), probe=False)
    assert s["damaged_lines"] == [3] and s["n_damaged_lines"] == 1
    assert json.loads((out / "summary.json").read_text())["damaged_lines"] == [3]
    assert s["n_edits"] == 6 and s["complete"]
    with pytest.raises(ValueError, match=r"line 3 is damaged"):  # a plain read still refuses, naming the line
        read_jsonl(jsonl)
    (out / "summary.json").unlink()
    again = summarize(jsonl)  # offline, too
    assert again["damaged_lines"] == [3] and (out / "summary.json").exists()


def test_records_without_their_fields_are_damaged_lines(pool, tmp_path):
    s = run(Nudge(), pool, cfg(tmp_path / "r", n_edits=3, checkpoint_every=None), probe=False)
    jsonl = tmp_path / "r" / "results.jsonl"
    with open(jsonl, "ab") as f:
        f.write(b'{"type":"edit","n":4}\n[1,2]\n{"no_type":1}\n')
    s = summarize(jsonl)
    n = len(jsonl.read_bytes().split(b"\n")) - 1
    assert s["damaged_lines"] == [n - 2, n - 1, n] and s["n_edits"] == 3


# -- damaged checkpoints ------------------------------------------------------------------------------------------
@pytest.fixture
def killed_run(pool, tmp_path):
    """A run killed during edit 5, its last checkpoint at edit 4 (editor state included). (Made in each test's
    own directory, not copied: code that compared ``out_dir`` on resume would fail every copy for that.)"""
    out = tmp_path / "r"
    interrupted(Nudge(interrupt_at=5), pool, cfg(out))
    assert (out / "ckpt" / "LATEST").read_text() == "step_0000004"
    return out


def _overwrite_tensor_bytes(f):
    data = bytearray(f.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    data[header:header + 8] = b"\x00\x00\x80\x7f" * 2  # the first 8 data bytes (float32: two infs), same size
    f.write_bytes(bytes(data))


def _symlink_outside(ck):
    elsewhere = ck.parent.parent / "elsewhere"
    shutil.copytree(ck / "step_0000004", elsewhere / "step_0000009")
    os.symlink(elsewhere / "step_0000009", ck / "step_0000009")
    (ck / "LATEST").write_text("step_0000009")


DAMAGE = {
    "truncated state.json": (lambda ck: (ck / "step_0000004" / "state.json").write_bytes(
        (ck / "step_0000004" / "state.json").read_bytes()[:200]), r"state\.json is damaged"),
    "deleted state.json": (lambda ck: (ck / "step_0000004" / "state.json").unlink(), r"state\.json is missing"),
    "deleted params": (lambda ck: (ck / "step_0000004" / "params.safetensors").unlink(),
                       r"params\.safetensors is missing"),
    "deleted editor state": (lambda ck: (ck / "step_0000004" / "editor.safetensors").unlink(),
                             r"editor\.safetensors is missing"),
    "overwritten params": (lambda ck: _overwrite_tensor_bytes(ck / "step_0000004" / "params.safetensors"),
                           r"params\.safetensors is damaged: its SHA-256"),
    "overwritten editor state": (lambda ck: _overwrite_tensor_bytes(ck / "step_0000004" / "editor.safetensors"),
                                 r"editor\.safetensors is damaged: its SHA-256"),
    "LATEST names a missing step": (lambda ck: (ck / "LATEST").write_text("step_0000008"),
                                    r"LATEST names .*step_0000008, which does not exist"),
    "LATEST points outside": (lambda ck: (ck / "LATEST").write_text("../../elsewhere"),
                              r"LATEST does not name a checkpoint"),
    "LATEST is a symlink out": (_symlink_outside, r"resolves outside"),
    "results cut": (lambda ck: (ck.parent / "results.jsonl").write_bytes(b""), r"results\.jsonl has 0 bytes"),
    "edited position in state.json": (lambda ck: _edit_state(ck, position=2),
                                      r"state\.json is damaged: its SHA-256 .* manifest\.json"),
    "deleted manifest": (lambda ck: (ck / "step_0000004" / "manifest.json").unlink(), r"manifest\.json is missing"),
    "foreign file in the checkpoint": (lambda ck: (ck / "step_0000004" / "extra.bin").write_bytes(b"x"),
                                       r"extra\.bin is not one of the files"),
}


def _edit_state(ck, **changes):
    f = ck / "step_0000004" / "state.json"
    f.write_text(json.dumps({**json.loads(f.read_text()), **changes}))


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_checkpoint_is_a_typed_error_not_a_restart(case, pool, killed_run):
    out = killed_run
    damage, message = DAMAGE[case]
    damage(out / "ckpt")
    before = (out / "results.jsonl").read_bytes()
    with pytest.raises(ValueError) as e:
        run(Nudge(), pool, cfg(out, resume=True))
    assert type(e.value).__name__ == "CheckpointError", f"{type(e.value).__name__}: {e.value}"
    assert e.value.__class__.__mro__[1] is ValueError
    msg = str(e.value)
    assert re.search(message, msg), msg
    assert "without --resume" in msg
    assert (out / "results.jsonl").read_bytes() == before, "the run was not restarted (nor its results cut)"


def test_an_undamaged_copy_of_the_killed_run_resumes(pool, killed_run, tmp_path):
    out = tmp_path / "copy"  # a copy elsewhere: out_dir is where the run lives, not part of what it computes
    shutil.copytree(killed_run, out)
    s = run(Nudge(), pool, cfg(out, resume=True))
    assert s["resumed_from"]["edit"] == 4 and s["complete"]


def test_missing_latest_after_a_kill_while_checkpointing_uses_the_newest_step(pool, killed_run):
    # a kill between renaming step_<n> into place and writing LATEST: the complete step directory is used
    out = killed_run
    (out / "ckpt" / "LATEST").unlink()
    s = run(Nudge(), pool, cfg(out, resume=True))
    assert s["resumed_from"]["checkpoint"] == str(out / "ckpt" / "step_0000004")


def test_checkpoints_record_file_hashes(killed_run):
    from editbench.runner.state import file_sha
    st = json.loads((killed_run / "ckpt" / "step_0000004" / "state.json").read_text())
    ck = killed_run / "ckpt" / "step_0000004"
    assert st["files"] == {f: file_sha(ck / f) for f in ("params.safetensors", "editor.safetensors")}


# -- relative out_dir ---------------------------------------------------------------------------------------------
def test_a_run_given_by_a_relative_out_dir_resumes_by_absolute_path_and_after_a_move(pool, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    interrupted(Nudge(interrupt_at=5), pool, cfg("rel/run"))
    s = run(Nudge(), pool, cfg(tmp_path / "rel" / "run", resume=True))
    assert s["resumed_from"]["edit"] == 4 and s["complete"]
    interrupted(Nudge(interrupt_at=3), pool, cfg("rel/other"))
    shutil.move(str(tmp_path / "rel" / "other"), str(tmp_path / "moved"))
    s = run(Nudge(), pool, cfg("moved", resume=True))
    assert s["resumed_from"]["edit"] == 2 and s["complete"]
    with pytest.raises(ValueError, match=r"config differs in \['history_every'\]"):  # the rest is still compared
        run(Nudge(), pool, cfg("moved", resume=True, history_every=3))


# -- non-finite weights ---------------------------------------------------------------------------------------------
def _stream(pool, n=6):
    return make_stream(pool, n_edits=n)


def test_nan_at_edit_1_is_flagged_and_is_the_cf_point_when_the_run_continues(pool, tmp_path):
    first = _stream(pool)[0].case_id
    s = run(Nudge(bad={first: float("nan")}), pool, cfg(tmp_path / "r", on_nonfinite="continue"))
    edits = [r for r in read_jsonl(s["paths"]["jsonl"]) if r["type"] == "edit"]
    assert edits[0]["nonfinite"] is True and edits[0]["nonfinite_params"] == [W]
    assert all(e["nonfinite"] for e in edits)  # the NaN stays: every later edit leaves a non-finite model too
    assert s["cf_edit"] == 1 and s["cf_case_id"] == first
    assert s["catastrophic"]["nonfinite"] is True and s["collapse"]["nonfinite"] is True
    assert s["n_nonfinite"] == 6 and s["first_nonfinite_edit"] == 1
    assert s["complete"] and s["stopped"] is None and s["n_edits"] == 6


def test_nan_stops_the_run_cleanly_by_default(pool, tmp_path):
    first = _stream(pool)[0].case_id
    c = cfg(tmp_path / "r", schedules=("immediate", "history", "final"))
    assert c.on_nonfinite == "stop"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = run(Nudge(bad={first: float("nan")}), pool, c)
    assert any("non-finite weights after edit 1" in str(w.message) for w in caught)
    assert s["stopped"] == f"non-finite weights after edit 1 (case {first})"
    assert s["complete"] is False and s["n_edits"] == 1 and s["n_planned"] == 6
    assert s["cf_edit"] == 1 and s["cf_case_id"] == first
    recs = read_jsonl(s["paths"]["jsonl"])
    assert [r["type"] for r in recs] == ["run", "check", "edit", "check", "stop"]  # no "final" on a broken model
    assert recs[3]["n"] == 1 and "health" in recs[3] and "forgetting" in recs[3]
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["stopped"] == s["stopped"]
    # resuming a stopped run continues nothing: the same records, the same reason
    again = run(Nudge(bad={first: float("nan")}), pool, cfg(tmp_path / "r", resume=True,
                                                            schedules=("immediate", "history", "final")))
    assert read_jsonl(s["paths"]["jsonl"]) == recs and again["stopped"] == s["stopped"]
    assert again["resumed_from"]["edit"] == 1


def test_inf_later_in_the_run_stops_there(pool, tmp_path):
    third = _stream(pool)[2].case_id
    s = run(Nudge(bad={third: float("inf")}), pool, cfg(tmp_path / "r", checkpoint_every=None))
    edits = [r for r in read_jsonl(s["paths"]["jsonl"]) if r["type"] == "edit"]
    assert [e["nonfinite"] for e in edits] == [False, False, True]
    assert s["stopped"] == f"non-finite weights after edit 3 (case {third})" and s["cf_edit"] == 3


def test_on_nonfinite_is_checked():
    with pytest.raises(ValueError, match="on_nonfinite"):
        SequentialConfig(on_nonfinite="ignore")


def test_a_checkpoint_from_before_file_hashes_still_resumes_and_says_so(pool, killed_run):
    f = killed_run / "ckpt" / "step_0000004" / "state.json"
    st = json.loads(f.read_text())
    del st["files"]  # as written before hashes were recorded (format version 1, no manifest)
    st["version"] = 1
    f.write_text(json.dumps(st))
    (f.parent / "manifest.json").unlink()
    s, msgs = resume_warnings(lambda: run(Nudge(), pool, cfg(killed_run, resume=True)))
    assert len(msgs) == 1 and "without file hashes" in msgs[0] and s["resumed_from"]["edit"] == 4 and s["complete"]
