"""``editbench stats``: precompute and cache MLP key second-moment statistics (ROME/MEMIT)."""
from __future__ import annotations

from editbench.options import DEVICE, MODEL, add_options


def add_parser(sub) -> None:
    st = sub.add_parser("stats", help="precompute cached second-moment statistics of MLP keys")
    add_options(st.add_argument, (MODEL,))
    st.add_argument("--layers", type=int, nargs="+", required=True)
    st.add_argument("--corpus", default="auto", help="auto | factworld | gensim-wiki | wikitext")
    st.add_argument("--n-samples", type=int, default=100_000)
    add_options(st.add_argument, (DEVICE,))
    st.set_defaults(func=run)


def run(args) -> int:
    from editbench.editors.toolkit.covariance import second_moments_of  # lazy: cli.common.LAZY
    from editbench.models.loader import load_model
    lm = load_model(args.model, device=args.device)
    mats = second_moments_of(lm.model, lm.tok, lm.adapter, list(args.layers), corpus=args.corpus,
                             n_samples=args.n_samples, model_hash=lm.model_hash)
    for layer, c in mats.items():
        print(f"layer {layer}: C {tuple(c.shape)}, trace {float(c.trace()):.4g}")
    return 0
