"""Measure the unedited model on the GLUE downstream tasks for every number of shots and both answer modes,
to choose the per-task presets of editbench/metrics/downstream_presets.yaml by measurement.

    heavy python scripts/downstream_presets.py --model smollm2-135m --n 200 --out reports/examples/downstream/presets_smollm2.json
"""
import argparse
import json
import platform
import time

import torch

from editbench.metrics.downstream import GlueProbe
from editbench.metrics.glue_prompts import PROMPTS
from editbench.models.loader import load_model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--tasks", nargs="*", default=list(PROMPTS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--shots", nargs="*", type=int, default=None, help="shots to try (default: all; 'max' first)")
    a = ap.parse_args()
    lm = load_model(a.model)
    rows = []
    for task in a.tasks:
        top = PROMPTS[task].max_shots
        tried = [top] + list(range(top)) if a.shots is None else [min(k, top) for k in a.shots]
        for shots in dict.fromkeys(tried):  # the paper's setting first
            t = time.perf_counter()
            probe = GlueProbe.create(lm.tok, lm.model_id, tasks=(task,), n=a.n, shots=shots)
            ev = probe.evaluate(lm.model)[task]
            row = {"task": task, "shots": shots, "n": ev["n"], "seconds": time.perf_counter() - t,
                   **{m: {k: ev[m][k] for k in ("f1", "macro_f1", "mcc", "acc", "invalid", "above_chance")}
                      for m in ("gen", "loglik")}}
            rows.append(row)
            print(json.dumps({"task": task, "shots": shots, "s": round(row["seconds"], 1),
                              **{m: [round(row[m]["f1"]["value"], 3), round(row[m]["mcc"]["value"], 3),
                                     round(row[m]["mcc"]["lo"], 3), row[m]["above_chance"]] for m in ("gen", "loglik")}}),
                  flush=True)
            with open(a.out, "w") as f:
                json.dump({"model": lm.model_id, "model_hash": lm.model_hash, "n": a.n, "threads": torch.get_num_threads(),
                           "cpu": platform.processor() or platform.machine(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
