"""Where the time of a sequential run goes (issue 14): the README main job by default.

    python benchmarks/profile_sequential.py                                   # 100 MEMIT edits, SmolLM2, history /10
    python benchmarks/profile_sequential.py --n-edits 300 --threads 1
    python benchmarks/profile_sequential.py --editor rome --n-edits 20 --protocol prob
    python benchmarks/profile_sequential.py --n-edits 10 --hparam memit.fast_solve=false   # the reference solve

Runs the same runner as ``pytest suites -m sequential`` / ``editbench sequential`` (in a scratch directory), then
splits the wall time into the parts the run's ``results.jsonl`` records (``timing`` keys: the editor's own split
-- value/z optimization, key forward passes, the least-squares solve -- immediate scoring, history re-scoring
(teacher-forced and generation), health probes, downstream) plus what this script times around the runner
(checkpoint writes, the weight-distance measurement, preparation). ``other`` is what no timer covers
(bookkeeping, JSON lines, progress bar). Writes ``--out`` (JSON: the split, per-edit means, the CPU model,
threads, torch version) and prints a markdown table. Time it with nothing else running and say so: the figures
are only comparable on the same CPU and thread count.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from editbench.runner.provenance import cpu_model, machine  # noqa: E402


class Timers:
    """Wall seconds of wrapped callables, by label."""

    def __init__(self):
        self.s: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, owner, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.s[label] += time.perf_counter() - t
                self.calls[label] += 1
        setattr(owner, attr, timed)


def split_from_jsonl(path: Path) -> tuple[dict[str, float], int, int]:
    """Summed seconds per part from the run's timing keys, the number of edits and of check records."""
    parts: dict[str, float] = defaultdict(float)
    n_edits = n_checks = 0
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        t = rec.get("timing") or {}
        if rec.get("type") == "edit":
            n_edits += 1
            ed = t.get("editor") or {}
            apply_s = t.get("apply_s", 0.0)
            known = 0.0
            for key, label in (("z_s", "editor: value/z optimization"), ("keys_s", "editor: key forward passes"),
                               ("solve_s", "editor: least-squares solve"), ("v_s", "editor: value/z optimization"),
                               ("k_s", "editor: key forward passes"), ("templates_s", "editor: templates"),
                               ("v_time_s", "editor: value/z optimization"), ("k_time_s", "editor: key forward passes"),
                               ("templates_time_s", "editor: templates"),
                               ("cov_s", "editor: covariance lookup")):
                if key in ed:
                    parts[label] += ed[key]
                    known += ed[key]
            parts["editor: rest"] += max(apply_s - known, 0.0)
            parts["scoring: immediate (+ distance)"] += t.get("score_s", 0.0)
        elif rec.get("type") == "check":
            n_checks += 1
            gen = t.get("history_gen_s", 0.0)
            parts["history re-scoring: teacher-forced"] += t.get("history_s", 0.0) - gen
            parts["history re-scoring: generation"] += gen
            parts["health probes"] += t.get("health_s", 0.0)
            parts["downstream"] += t.get("downstream_s", 0.0)
        elif rec.get("type") == "final_done":
            parts["final scoring"] += t.get("final_s", 0.0)
    return dict(parts), n_edits, n_checks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--editor", default="memit")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n-edits", type=int, default=100)
    ap.add_argument("--history-every", type=int, default=10)
    ap.add_argument("--protocol", action="append", default=None, help="scoring protocols (default all three)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--hparam", action="append", default=[], metavar="EDITOR.KEY=VALUE")
    ap.add_argument("--downstream-every", type=int, default=None)
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/profile-<editor>-<n>.json)")
    ap.add_argument("--note", default="", help="free text recorded with the figures (e.g. 'nothing else running')")
    args = ap.parse_args(argv)

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from editbench.runner import sequential as seq
    from editbench.runner.experiment import Experiment, ModelCache, make_editor, parse_hparams, run_sequential_sample
    from editbench.metrics.distance import DistanceTracker

    timers = Timers()
    timers.wrap(seq._Run, "save", "checkpoint writes")
    timers.wrap(DistanceTracker, "measure", "weight distance")
    overrides = parse_hparams(args.hparam)
    scratch = tempfile.mkdtemp(prefix="eb-profile-")
    exp = Experiment(suite="sequential", editor=args.editor, model=args.model, n=args.n_edits,
                     history_every=args.history_every, out_dir=scratch,
                     hparams=tuple(overrides.get(args.editor, {}).items()),
                     downstream_every=args.downstream_every,
                     **({"protocols": tuple(args.protocol)} if args.protocol else {}))
    t = time.perf_counter()
    lm = ModelCache().get(exp.model, exp.device)
    load_s = time.perf_counter() - t
    editor = make_editor(exp, lm)
    t = time.perf_counter()
    editor.prepare(lm.model, lm.tok)          # covariances etc. (cached on disk): outside the run's wall time
    prepare_s = time.perf_counter() - t
    t = time.perf_counter()
    summary, _ = run_sequential_sample(exp, editor, lm, sample=0)
    wall = time.perf_counter() - t
    parts, n_edits, n_checks = split_from_jsonl(Path(summary["paths"]["jsonl"]))
    # the distance measurement runs inside the immediate-scoring interval of each edit record
    parts["scoring: immediate (+ distance)"] -= timers.s.get("weight distance", 0.0)
    parts["weight distance"] = timers.s.get("weight distance", 0.0)
    parts["checkpoint writes"] = timers.s.get("checkpoint writes", 0.0)
    parts = {k: v for k, v in parts.items() if v > 0}
    parts["other"] = max(wall - sum(parts.values()), 0.0)
    out = {
        "what": f"{args.n_edits} sequential {args.editor} edits on {args.model}, history every {args.history_every}",
        "cpu": cpu_model(), "machine": machine(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "note": args.note,
        "experiment": exp.to_dict(), "model_load_s": load_s, "prepare_s": prepare_s, "wall_s": wall,
        "n_edits": n_edits, "n_checks": n_checks, "s_per_edit": wall / max(n_edits, 1),
        "parts_s": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
        "share": {k: v / wall for k, v in sorted(parts.items(), key=lambda kv: -kv[1])},
        "summary": {k: summary.get(k) for k in ("cf_edit", "forgetting_final", "immediate_mean")},
    }
    path = Path(args.out or Path(__file__).parent / "results" / f"profile-{args.editor}-{args.n_edits}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"{out['what']}: {wall:.1f} s wall ({out['s_per_edit']:.2f} s/edit), {out['cpu']}, "
          f"{out['threads']} thread(s), torch {out['torch']}")
    print("| part | s | s/edit | share |\n|---|---:|---:|---:|")
    for k, v in out["parts_s"].items():
        print(f"| {k} | {v:.1f} | {v / max(n_edits, 1):.3f} | {100 * v / wall:.1f}% |")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
