"""Usage: PYTHONPATH=. python reports/gemma/memit-post-norm/diag.py MODEL I,J,... ['{"hparam": value}'] [EDITOR]
(records I, J of the single suite's seeded CounterFact order; one JSON line per record).

Where does MEMIT's residual target go on Gemma 3 vs SmolLM2? Per record: z optimisation (NLL at z), the share
of the residual target z - h_L reached after the update, and per edit layer the change of the MLP output
(down_proj) vs the change that reaches the residual (after post_feedforward_layernorm on Gemma)."""
import json
import sys
import time

import torch

from editbench.editors.memit.compute_ks import keys_and_hidden
from editbench.metrics.scoring import score_targets
from editbench.models.loader import load_model
from editbench.models.tokens import encode_prefix, fill_template, subject_last_token_index
from editbench.runner.experiment import Experiment, load_pool, make_editor
from editbench.editors.base import restore

model_name, idxs = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
hparams = tuple(json.loads(sys.argv[3]).items()) if len(sys.argv) > 3 else ()
editor_name = sys.argv[4] if len(sys.argv) > 4 else "memit"
lm = load_model(model_name)
exp = Experiment(suite="single", editor=editor_name, model=model_name, hparams=hparams, n=max(idxs) + 1)
records, _ = load_pool(exp, n=max(idxs) + 1, seed=0)
ed = make_editor(exp, lm)
hp = ed.hparams
layers = list(getattr(hp, "layers", None) or [hp.layer])
A = lm.adapter
post = {l: getattr(A.block(l), "post_feedforward_layernorm", None) for l in layers}
print(model_name, editor_name, "layers", layers, "lambda", getattr(hp, "mom2_update_weight", None), flush=True)


def grab(req):
    """MLP output and residual contribution at the subject's last token of the bare prompt, per edit layer."""
    ids = encode_prefix(lm.tok, fill_template(req.prompt, req.subject)[0])
    pos = subject_last_token_index(lm.tok, req.prompt, req.subject)
    got, hs = {}, []
    for l in layers:
        hs.append(A.mlp_out(l).register_forward_hook(lambda m, i, o, l=l: got.__setitem__(("m", l), o[0, pos].detach().clone())))
        if post[l] is not None:
            hs.append(post[l].register_forward_hook(lambda m, i, o, l=l: got.__setitem__(("o", l), o[0, pos].detach().clone())))
    try:
        with torch.no_grad():
            lm.model(torch.tensor([ids]))
    finally:
        for h in hs:
            h.remove()
    return {l: (got[("m", l)], got.get(("o", l), got[("m", l)])) for l in layers}


def es(req):
    s = score_targets(lm.model, lm.tok, [req.prompt.format(req.subject)] * 2, [req.target_new, req.target_true])
    return bool(s.nll[0] < s.nll[1]), float(s.nll[0]), float(s.nll[1])


rows = []
for i in idxs:
    req = records[i]
    t = time.time()
    zl = layers[-1]
    _, H0 = keys_and_hidden(lm.model, lm.tok, A, [req], [["{}"]], layers[0], zl)
    g0, es0 = grab(req), es(req)
    res = ed.apply(lm.model, lm.tok, [req])
    _, H1 = keys_and_hidden(lm.model, lm.tok, A, [req], [["{}"]], layers[0], zl)
    g1, es1 = grab(req), es(req)
    restore(lm.model, res.originals)
    st = res.stats
    row = {"i": i, "case": req.case_id, "es_pre": es0[0], "es_post": es1[0], "nll_new_post": round(es1[1], 3),
           "nll_true_post": round(es1[2], 3), "s": round(time.time() - t, 1)}
    if "z" in st:
        z = st["z"][0]
        row.update({"z_nll_init": round(z["nll_init"], 3), "z_nll_final": round(z["nll_final"], 3),
                    "z_iters": z["iterations"], "delta_over_h": round(z["delta_norm"] / z["h_norm"], 3), "delta": round(z["delta_norm"], 1), "h": round(z["h_norm"], 1)})
        # how far the residual after layer L moved (bare prompt, subject's last token) against |z - h_L| = |delta|
        d_goal = z["delta_norm"]
        moved = (H1[0] - H0[0])
        row["moved_over_goal"] = round(float(moved.norm()) / d_goal, 3)
        row["z_error_per_layer"] = {str(k): round(v / d_goal, 3) for k, v in st["z_error"].items()}
    per = {}
    for l in layers:
        dm = g1[l][0] - g0[l][0]
        do = g1[l][1] - g0[l][1]
        per[l] = {"dm": round(float(dm.norm()), 2), "do": round(float(do.norm()), 2),
                  "cos": round(float(torch.nn.functional.cosine_similarity(dm, do, dim=0)), 3) if float(dm.norm()) > 0 else None,
                  "|o|": round(float(g0[l][1].norm()), 1), "|m|": round(float(g0[l][0].norm()), 2)}
    row["layers"] = per
    rows.append(row)
    print(json.dumps(row), flush=True)
print("ES post", sum(r["es_post"] for r in rows), "/", len(rows))
