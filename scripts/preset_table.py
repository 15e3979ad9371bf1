"""Compare sequential runs of one editor under different hyperparameters over their first N edits (preset choice).

    python scripts/preset_table.py --n 50 --out reports/presets/alphaedit-smollm2-135m.json \
        "threshold 2e-2 (published)=reports/examples/runs/alphaedit-smollm2-135m-counterfact-1k-200" \
        "threshold 5e-3=/work/runs/presets/alphaedit-t5e-3"

Each LABEL=PATH names a run directory (or any directory above its ``results.jsonl``). All runs must edit the same
stream (same dataset, order and record ids for the first N edits; checked). Per run, over edits 1..N: ES / PS / NS by
probability and ES by argmax (means of the immediate scores), the history check at edit N (forgetting by argmax and
by probability, perplexity) and the edited matrices' total relative movement |W - W0| / |W0| after edit N. Prints
a markdown table; ``--out`` writes it with the numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean

from editbench.runner.jsonl import read_jsonl


def find_results(path: str) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    hits = sorted(p.rglob("results.jsonl"))
    if len(hits) != 1:
        raise SystemExit(f"{path}: expected one results.jsonl below it, found {len(hits)}")
    return hits[0]


def at_n(results: Path, n: int) -> dict:
    header, edits, checks = None, [], {}
    for d in read_jsonl(results):
        kind = d.get("type")
        if header is None and "config" in d:
            header = d
        elif kind == "edit" and d["n"] <= n:
            edits.append(d)
        elif kind == "check":
            checks[d["n"]] = d
    if len(edits) < n or n not in checks:
        raise SystemExit(f"{results}: has {len(edits)} edits and checks at {sorted(checks)}; need {n} and a check at {n}")
    imm = [e["immediate"] for e in edits]
    chk, first = checks[n], checks[0]
    return {
        "results": str(results),
        "hparams": header["provenance"]["editor"]["hparams"],
        "record_ids": [e["case_id"] for e in edits],
        "n": n,
        "es": mean(i["es"] for i in imm), "es_argmax": mean(i["es_correct"] for i in imm),
        "ps": mean(i["ps"] for i in imm), "ns": mean(i["ns"] for i in imm),
        "forget_argmax": chk["forgetting"]["forget_argmax_now"], "forget_prob": chk["forgetting"]["forget_prob_now"],
        "learned_argmax": chk["forgetting"]["learned_argmax"],
        "ppl_before": first["health"]["ppl"], "ppl": chk["health"]["ppl"],
        "movement": edits[-1]["distance"]["total"]["rel"],
        "apply_s_mean": mean(e["timing"]["apply_s"] for e in edits),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", metavar="LABEL=PATH")
    ap.add_argument("--n", type=int, default=50, help="compare over the first N edits (a history check at N)")
    ap.add_argument("--out", default=None, help="JSON path for the table and its numbers")
    ap.add_argument("--rule", default="", help="the selection rule, recorded with the table")
    args = ap.parse_args(argv)
    rows = {}
    for spec in args.runs:
        label, _, path = spec.partition("=")
        rows[label] = at_n(find_results(path), args.n)
    ids = {tuple(r["record_ids"]) for r in rows.values()}
    if len(ids) != 1:
        raise SystemExit("the runs did not edit the same records in the same order")
    head = (f"| setting | ES | ES argmax | PS | NS | forgotten @{args.n} (argmax / prob) | ppl @{args.n} | "
            f"movement | apply s/edit |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for label, r in rows.items():
        lines.append(f"| {label} | {r['es']:.2f} | {r['es_argmax']:.2f} | {r['ps']:.2f} | {r['ns']:.2f} | "
                     f"{r['forget_argmax']:.2f} of {r['learned_argmax']} / {r['forget_prob']:.2f} | "
                     f"{r['ppl_before']:.2f} → {r['ppl']:.2f} | {r['movement']:.3f} | {r['apply_s_mean']:.1f} |")
    table = "\n".join(lines)
    print(table)
    out = {"n": args.n, "rule": args.rule, "table": table, "runs": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
