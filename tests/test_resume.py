"""A sequential run killed with SIGKILL at a random edit and resumed gives the records of an uninterrupted run.

The run edits with :class:`NoisyFT`, an FT editor that also makes resuming hard on purpose: it draws from
torch's and Python's global RNGs after every edit, carries state across edits (``state_dict``/``load_state_dict``),
caches a value computed from the model at its first edit (as ROME caches its context templates and C), and
sleeps a little so the parent can kill it mid-run. The child is this file run as a script.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from editbench.data import load_records
from editbench.editors.ft import FTEditor
from editbench.editors.ft.hparams import FTHyperParams
from editbench.metrics.health import PerplexityProbe
from editbench.models.loader import load_model
from editbench.runner.jsonl import read_jsonl, strip_timing
from editbench.runner import SequentialConfig, run_sequential
from editbench.runner.state import latest_checkpoint

N_EDITS = 10
TEXTS = ["The capital of France is Paris and the capital of Germany is Berlin ."]
EDITED = "transformer.h.1.mlp.c_proj.weight"


class NoisyFT(FTEditor):
    """FT on layer 1 plus global-RNG noise on the edited weight and a state that changes with every edit."""

    name = "noisy-ft"

    def __init__(self, sleep_s: float = 0.0):
        super().__init__(FTHyperParams(layers=(1,), lr=0.05, num_steps=4))
        self.sleep_s = sleep_s
        self.n_applied = 0
        self.acc = torch.zeros(4)
        self._first_norm: dict[int, float] = {}  # per model object, from the weights seen at the first edit

    def apply(self, model, tok, requests):
        w = dict(model.named_parameters())[EDITED]
        scale = self._first_norm.setdefault(id(model), float(w.detach().norm()))
        res = super().apply(model, tok, requests)
        with torch.no_grad():
            w.add_(torch.randn_like(w) * 1e-4 * scale * (1 + int(self.acc.sum()) % 3))
        self.acc += torch.rand(4)
        self.n_applied += 1 + random.randrange(3)
        time.sleep(self.sleep_s)
        return res

    def state_dict(self):
        return {"n_applied": torch.tensor(self.n_applied), "acc": self.acc.clone()}

    def load_state_dict(self, d):
        self.n_applied, self.acc = int(d["n_applied"]), d["acc"].clone()


def config(out_dir, resume=False) -> SequentialConfig:
    return SequentialConfig(n_edits=N_EDITS, history_every=2, checkpoint_every=3, out_dir=str(out_dir),
                            resume=resume, schedules=("immediate", "history", "final"), progress=False)


def run(out_dir, resume=False, sleep_s=0.0) -> dict:
    torch.set_num_threads(1)
    lm = load_model("tiny-gpt2")
    pool = load_records("counterfact-1k", n=100)
    return run_sequential(NoisyFT(sleep_s), lm, pool, config(out_dir, resume),
                          health_probe=PerplexityProbe(lm.tok, TEXTS))


def comparable(jsonl) -> list[dict]:
    recs = [strip_timing(r) for r in read_jsonl(jsonl)]
    recs[0]["config"].pop("out_dir")
    return recs


def _n_edits_written(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().split(b"\n")[:-1] if b'"type":"edit"' in line)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    kill_at = random.Random(seed).randint(1, N_EDITS - 1)
    killed = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, __file__, str(killed)], env={**os.environ, "HF_HUB_OFFLINE": "1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    jsonl = killed / "results.jsonl"
    deadline = time.time() + 300
    while _n_edits_written(jsonl) < kill_at and child.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, f"the child ended on its own: {child.stderr.read().decode()[-2000:]}"
    done = _n_edits_written(jsonl)
    assert kill_at <= done < N_EDITS, f"kill_at={kill_at} (seed {seed}), {done} edits written"

    ck = latest_checkpoint(killed)
    header = read_jsonl(jsonl)[0]
    if ck is not None:  # only the edited parameters are checkpointed, and the editor's state next to them
        assert set(load_file(str(ck / "params.safetensors"))) == {EDITED}
        assert set(load_file(str(ck / "editor.safetensors"))) == {"n_applied", "acc"}

    resumed = run(killed, resume=True)
    if ck is not None:  # continued from the checkpoint (same header, timestamps included), not started over
        assert read_jsonl(jsonl)[0] == header
    reference = run(tmp_path / "reference")
    assert resumed["n_edits"] == N_EDITS and resumed["complete"]
    assert comparable(jsonl) == comparable(reference["paths"]["jsonl"]), f"kill_at={kill_at} (seed {seed})"
    # the resumed run says what it continued from (an invocation detail: the results are the same)
    at = int(ck.name.split("_")[1]) if ck is not None else 0
    assert resumed["resumed_from"]["edit"] == at and reference["resumed_from"] is None
    assert resumed["resumed_from"]["checkpoint"] == (str(ck) if ck is not None else None)
    drop = ("timing", "paths", "resumed_from", "cost")  # cost: measured seconds and memory
    assert {k: v for k, v in resumed.items() if k not in drop} == {k: v for k, v in reference.items() if k not in drop}


def test_resume_of_a_finished_run_rewrites_nothing_new(tmp_path):
    first = run(tmp_path / "r")
    before = comparable(first["paths"]["jsonl"])
    again = run(tmp_path / "r", resume=True)
    assert comparable(again["paths"]["jsonl"]) == before


if __name__ == "__main__":  # the child process of the kill test
    run(Path(sys.argv[1]), sleep_s=0.05)
