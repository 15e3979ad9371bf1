"""Frobenius norms of the edited matrices in a sequential run's checkpoints: ‖W_n‖_F and ‖W_n‖_F / ‖W_0‖_F.

    python scripts/checkpoint_norms.py RUN_DIR [RUN_DIR ...] --out norms.json            # the checkpoints there now
    python scripts/checkpoint_norms.py RUN_DIR ... --out norms.json --watch 60           # poll until killed

A run keeps only its newest checkpoint (``ckpt/step_<n>``), so ``--watch`` polls and records each one as it
appears. ‖W_0‖_F comes from the run's own ``results.jsonl`` (every edit record's distance holds ``fro`` =
‖W − W_0‖_F and ``rel`` = fro / ‖W_0‖_F), so no model is loaded. Runs written since the runner records
``norm`` with every distance (edit records) need none of this: their summaries carry it (``drift``,
``norm_ratio``). The output is JSON, merged into ``--out``:
``{run_dir: {edit count: {param: {"norm": ‖W_n‖, "ratio": ‖W_n‖/‖W_0‖}}}}``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from editbench.runner.state import ckpt_root  # noqa: E402


def w0_norms(run_dir: Path) -> dict[str, float]:
    """‖W_0‖_F of each edited parameter, from the first edit record whose distance has a finite ``rel`` > 0."""
    out: dict[str, float] = {}
    with open(run_dir / "results.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            for name, d in (rec.get("distance") or {}).items():
                if name != "total" and name not in out and d.get("rel") and d["rel"] > 0:
                    out[name] = d["fro"] / d["rel"]
            if out and rec.get("type") == "check":
                break
    return out


def checkpoint_norms(step_dir: Path, w0: dict[str, float]) -> dict[str, dict[str, float]]:
    """{param: {"norm", "ratio"}} of the weights in one checkpoint (``total``: all edited matrices together)."""
    params = load_file(str(step_dir / "params.safetensors"))
    out, sq, sq0 = {}, 0.0, 0.0
    for name, t in sorted(params.items()):
        n = float(torch.linalg.vector_norm(t.double()))
        out[name] = {"norm": n, "ratio": n / w0[name] if name in w0 else None}
        sq += n * n
        sq0 += w0.get(name, float("nan")) ** 2
    out["total"] = {"norm": sq ** 0.5, "ratio": (sq / sq0) ** 0.5 if sq0 > 0 else None}
    return out


def scan(run_dirs: list[Path], out_path: Path) -> int:
    data = json.loads(out_path.read_text()) if out_path.exists() else {}
    added = 0
    for run in run_dirs:
        root = ckpt_root(run)
        if not root.is_dir():
            continue
        rec = data.setdefault(str(run), {})
        w0 = None
        for step in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_")
                           and not p.name.endswith(".tmp")):
            n = str(int(step.name.split("_")[1]))
            if n in rec or not (step / "params.safetensors").exists():
                continue
            w0 = w0 if w0 is not None else w0_norms(run)
            try:
                rec[n] = checkpoint_norms(step, w0)
                added += 1
            except (OSError, RuntimeError) as e:  # replaced while reading: the next poll sees the new one
                print(f"{step}: {e}", file=sys.stderr)
    out_path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return added


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories (…/sample_0)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--watch", type=float, default=None, metavar="SECONDS", help="poll every SECONDS until killed")
    args = ap.parse_args(argv)
    while True:
        added = scan(args.runs, args.out)
        if added:
            print(f"{time.strftime('%H:%M:%S')}: {added} checkpoint(s) recorded in {args.out}", flush=True)
        if args.watch is None:
            return 0
        time.sleep(args.watch)


if __name__ == "__main__":
    sys.exit(main())
