"""AlphaEdit's null space on a model: the eigenvalue spectrum of each edit layer's key covariance C = E[k k^T].

AlphaEdit (Fang et al. 2025) projects every update onto the span of C's eigenvectors with eigenvalue below an
absolute ``nullspace_threshold`` (reference: 2e-2 for every model it ships). How much room that leaves depends on
the scale of C, which differs by model; this script reports, per edit layer, the null-space dimension at a range
of thresholds and the spectrum's quantiles, as JSON.

    python scripts/nullspace_spectrum.py --model smollm2-135m --out reports/presets/alphaedit-spectrum-smollm2-135m.json
"""
from __future__ import annotations

import argparse
import json
import os

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

THRESHOLDS = (1e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)


def main(argv=None) -> dict:
    from editbench import registry
    from editbench.editors.alphaedit.apply import covariance_eigh
    from editbench.models.adapter import ModelAdapter
    from editbench.models.loader import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--out", default=None, help="JSON path (default: print only)")
    args = ap.parse_args(argv)
    lm = load_model(args.model)
    editor = registry.create("alphaedit", model_keys=lm.preset_keys)
    covs = editor.covariance(lm.model, lm.tok, ModelAdapter(lm.model))
    out = {"model": args.model, "layers": {}, "thresholds": list(THRESHOLDS),
           "preset_threshold": editor.hparams.nullspace_threshold,
           "mom2_n_samples": editor.hparams.mom2_n_samples, "mom2_corpus": editor.hparams.mom2_corpus}
    for layer, cov in sorted(covs.items()):
        ev = covariance_eigh(cov)[0]
        q = torch.quantile(ev, torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0], dtype=ev.dtype))
        out["layers"][str(layer)] = {
            "dim": int(ev.numel()), "trace": float(ev.sum()),
            "quantiles": dict(zip(["min", "q10", "q25", "median", "q75", "q90", "max"], map(float, q))),
            "nullspace_dim": {f"{t:g}": int((ev < t).sum()) for t in THRESHOLDS}}
        print(f"layer {layer}: d={ev.numel()} median eig {float(q[3]):.3g}  null dim "
              + "  ".join(f"<{t:g}:{int((ev < t).sum())}" for t in THRESHOLDS))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
