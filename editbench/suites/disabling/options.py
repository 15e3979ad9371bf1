"""The disabling suite's options (pytest and ``editbench disabling``), declared once (:mod:`editbench.options`)."""
from editbench.options import Option

FROM_RUN = Option(("--from-run",), metavar="DIR", rule="from_run",
                  help="disabling suite: a sequential run directory (or its summary.json) whose CF edits are each "
                       "applied as the first edit of a fresh model and classified intrinsic or accumulated.")
OPTIONS = (FROM_RUN,)

# ``editbench disabling`` only
NO_SCAN = Option(("--no-scan",), action="store_true", help="with --from-run: only the isolation")
HEALTH_ON = Option(("--health-on",), choices=("all", "flagged"), default="all",
                   help="all: health probes after every scanned edit (default); flagged: a two-pass scan -- "
                        "distances of all records first, then health only for the flagged outliers and --controls "
                        "unflagged ones (about 4x faster on SmolLM2, where the probes cost more than the edit)")
CONTROLS = Option(("--controls",), type=int, default=5, metavar="N",
                  help="with --health-on flagged: unflagged records also health-checked (seeded; default 5)")
SCAN_RESUME = Option(("--resume",), action="store_true",
                     help="continue an interrupted scan: records already in OUT/.../scan.rows.jsonl (written as the "
                          "scan goes, same editor, model, dataset, seed and hparams) are not edited again")
CLI_OPTIONS = (NO_SCAN, HEALTH_ON, CONTROLS, SCAN_RESUME)
