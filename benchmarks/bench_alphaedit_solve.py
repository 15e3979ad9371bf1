"""AlphaEdit's per-edit solve: the reference's d x d solve against the kept r x r Woodbury form (fast_solve).

    python benchmarks/bench_alphaedit_solve.py                       # SmolLM2's covariances, 30 edits, 1 thread
    python benchmarks/bench_alphaedit_solve.py --edits 100 --threads 2

Uses the real key covariances C_l of SmolLM2's edit layers (editbench stats cache; computed on first use) and
the preset's projectors, and a stream of synthetic edits: each edit's key is drawn from N(0, C_l) (the
distribution C describes), its residual at random. Per edit and layer it times what ``update_rule`` and the
post-edit state update do on each path -- reference: P (K K^T + K_p K_p^T) + alpha I solved afresh and K K^T added;
fast: dW from the kept M^-1 and the Woodbury downdate of M^-1 -- and checks the two dW agree. What it does not
time (z optimization, the key forward passes) is the same on both paths; see profile_sequential.py for the
whole edit. Writes JSON (``--out``) with the CPU model and thread count.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from editbench.editors.alphaedit import (AlphaEditEditor, alphaedit_delta, alphaedit_delta_reduced,  # noqa: E402
                                         reduced_inverse, woodbury_downdate)
from editbench.runner.provenance import cpu_model, machine  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--edits", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from editbench.models.loader import load_model
    lm = load_model(args.model)
    editor = AlphaEditEditor.from_preset([args.model])
    editor.prepare(lm.model, lm.tok)
    from editbench.models.adapter import ModelAdapter
    covs = editor.covariance(lm.model, lm.tok, ModelAdapter(lm.model))
    hp = editor.hparams
    g = torch.Generator().manual_seed(0)
    ref_s = fast_s = 0.0
    worst = 0.0
    dims = {}
    for layer in hp.layers:
        C = covs[layer].double()
        P, U = editor.projector(layer, covs[layer]), editor.basis(layer, covs[layer])
        dims[layer] = int(U.shape[1])
        L = torch.linalg.cholesky(C + 1e-9 * torch.eye(C.shape[0], dtype=torch.float64))
        d_out = ModelAdapter(lm.model).weight_out_in(layer).shape[0]
        prev, m_inv = None, reduced_inverse(U, None, hp.L2)
        for _ in range(args.edits):
            K = L @ torch.randn(C.shape[0], 1, generator=g, dtype=torch.float64)
            R = torch.randn(d_out, 1, generator=g, dtype=torch.float64)
            t = time.perf_counter()
            ref = alphaedit_delta(K, R, P, prev, hp.L2)
            prev_new = K @ K.T if prev is None else prev + K @ K.T
            ref_s += time.perf_counter() - t
            t = time.perf_counter()
            fast = alphaedit_delta_reduced(K, R, U, m_inv)
            m_inv = woodbury_downdate(m_inv, U, K)
            fast_s += time.perf_counter() - t
            prev = prev_new
            worst = max(worst, float((fast - ref).norm() / ref.norm().clamp_min(1e-300)))
    n = args.edits
    out = {"what": f"AlphaEdit solve + state update per edit, {len(hp.layers)} layers of {args.model}, {n} edits",
           "cpu": cpu_model(), "machine": machine(), "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
           "python": platform.python_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "note": args.note,
           "nullspace_dims": dims, "reference_s_per_edit": ref_s / n, "fast_s_per_edit": fast_s / n,
           "ratio": fast_s / ref_s if ref_s else None, "max_rel_diff_dW": worst}
    path = Path(args.out or Path(__file__).parent / "results" / f"alphaedit-solve-{args.model}-{args.threads}thread.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{out['what']} ({out['cpu']}, {out['threads']} thread(s)): reference {out['reference_s_per_edit']:.3f} s, "
          f"fast {out['fast_s_per_edit']:.4f} s ({out['ratio']:.3f}x); max relative dW difference {worst:.1e}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
