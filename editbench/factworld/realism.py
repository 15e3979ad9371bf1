"""Does a fact-world model behave like a real LM under ROME? (issue 3, item 6)

    python -m editbench.factworld.realism [--model DIR] [--layers 0,1,2] [--n 20] [--editor rome]

For ``n`` fact-world CounterFact records and each layer, apply one edit with the editor's *published*
hyperparameters (only the layer is chosen), score ES/PS/NS (ROME's probability comparisons, unedited baseline
alongside), measure how many of the edited subject's *other* facts the model still recalls (top-1, every
template: ``subject_facts`` of the record) and how many facts of other subjects (a fixed sample), then restore
the model. A model that stores facts the way real LMs do reaches ES >= 0.95, PS >= 0.7, NS >= 0.9 at its traced
layer and keeps the subject's other facts; one that looks facts up late needs far larger updates and wrecks them.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from editbench import registry
from editbench.data.registry import parse_raw
from editbench.editors.base import restore
from editbench.factworld.counterfact import factworld_records
from editbench.metrics.counterfact import aggregate, score_requests
from editbench.metrics.health import RecallProbe
from editbench.models.loader import load_dir, load_model

BAR = {"es": 0.95, "ps": 0.70, "ns": 0.90}


def _probe(tok, pairs):
    return RecallProbe(tok, [p for p, _ in pairs], [a for _, a in pairs])


def rome_check(lm, layers, n: int = 20, seed: int = 0, editor: str = "rome", n_unrelated: int = 200,
               progress: bool = True, **overrides) -> dict:
    """Per layer: post-edit ES/PS/NS, the subject's other-fact recall and unrelated-fact recall (before/after)."""
    from tqdm.auto import tqdm

    raw = factworld_records(n=n, seed=seed)
    reqs = parse_raw(raw, "factworld")
    by_id = {str(r["case_id"]): r for r in raw}
    model, tok = lm.model, lm.tok
    pre = aggregate(score_requests(model, tok, reqs))
    edited = {r.subject for r in reqs}
    pool = [r for r in factworld_records(seed=seed + 1) if r["requested_rewrite"]["subject"] not in edited]
    pick = random.Random(f"unrelated-{seed}").sample(pool, min(n_unrelated, len(pool)))
    unrelated = _probe(tok, [(r["requested_rewrite"]["prompt"].format(r["requested_rewrite"]["subject"]),
                              r["requested_rewrite"]["target_true"]["str"]) for r in pick])
    out = {"n": len(reqs), "editor": editor, "pre": pre, "unrelated_before": unrelated(model)["recall"],
           "layers": {}}
    # each subject's other facts: tokenized and measured on the unedited model once, for every layer
    owns = [_probe(tok, [(x["prompt"], x["target"]) for x in by_id[str(r.case_id)]["subject_facts"]]) for r in reqs]
    own_before = [own(model)["recall"] for own in owns]
    for layer in layers:
        ed = registry.create(editor, lm.preset_keys, layer=layer, **overrides)
        posts, own_after, unrel_after, secs = [], [], [], []
        for req, own in tqdm(list(zip(reqs, owns)), desc=f"{editor}@{layer}", disable=not progress, leave=False):
            t = time.perf_counter()
            res = ed.apply(model, tok, [req])
            secs.append(time.perf_counter() - t)
            posts.append(score_requests(model, tok, [req])[0])
            own_after.append(own(model)["recall"])
            unrel_after.append(unrelated(model)["recall"])
            restore(model, res.originals)
        agg = aggregate(posts)
        agg.update(subject_other_facts_before=sum(own_before) / len(own_before),
                   subject_other_facts_after=sum(own_after) / len(own_after),
                   unrelated_after=sum(unrel_after) / len(unrel_after), apply_s_mean=sum(secs) / len(secs),
                   meets_bar=all((agg.get(k) or 0) >= v for k, v in BAR.items()))
        out["layers"][str(layer)] = agg
    return out


def format_table(res: dict) -> str:
    from tabulate import tabulate

    rows = [["unedited", res["pre"]["es"], res["pre"]["ps"], res["pre"]["ns"], None, None,
             res["unrelated_before"], None]]
    for layer, a in res["layers"].items():
        rows.append([f"layer {layer}", a["es"], a["ps"], a["ns"], a["subject_other_facts_before"],
                     a["subject_other_facts_after"], a["unrelated_after"], a["meets_bar"]])
    return tabulate(rows, headers=["", "ES", "PS", "NS", "own facts before", "own facts after",
                                   "unrelated facts", f"bar {BAR}"], floatfmt=".3f")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m editbench.factworld.realism",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="factworld", help="factworld (shipped) or a build directory")
    ap.add_argument("--layers", default="0,1,2", help="comma-separated layers to edit")
    ap.add_argument("--n", type=int, default=20, help="edits per layer (fact-world CounterFact records)")
    ap.add_argument("--editor", default="rome")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the result JSON here")
    a = ap.parse_args(argv)
    lm = (load_model("factworld") if a.model == "factworld"
          else load_dir(Path(a.model), model_id="factworld-candidate", preset_keys=["factworld"]))
    res = rome_check(lm, [int(x) for x in a.layers.split(",")], n=a.n, seed=a.seed, editor=a.editor)
    res["model"] = a.model
    print(format_table(res))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
