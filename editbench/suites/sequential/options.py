"""The sequential suite's options (pytest and ``editbench sequential``), declared once (:mod:`editbench.options`)."""
from editbench.options import Option

N_EDITS = Option(("--n-edits",), type=int, metavar="N", rule="count",
                 help="sequential suite: edits per run (default 100, the README main job; downstream suite 20).")
SAMPLES = Option(("--samples",), type=int, default=1, metavar="S", rule="count",
                 help="sequential suite: number of edit orders ('samples') per editor (default 1; paper: 4).")
CHECKPOINT_EVERY = Option(("--checkpoint-every",), type=int, default=50, metavar="K", rule="count",
                          help="sequential suite: checkpoint the edited weights and run state every K edits "
                               "(default 50).")
ON_NONFINITE = Option(("--on-nonfinite",), choices=("stop", "continue"), default="stop",
                      help="sequential suite: after an edit that leaves NaN/inf weights (a disabling edit, the CF "
                           "point), stop the run (default) or go on editing the broken model.")
OPTIONS = (N_EDITS, SAMPLES, CHECKPOINT_EVERY, ON_NONFINITE)

# ``editbench sequential`` only (the pytest suite runs every sample, one edit per apply, history every 10)
SAMPLE = Option(("--sample",), type=int, metavar="S",
                help="run only edit order S (0-9), e.g. a second published order beside a finished sample 0")
BATCH_SIZE = Option(("--batch-size",), type=int, default=1, rule="count",
                    help="requests per editor.apply (batch editors)")
HISTORY_EVERY = Option(("--history-every",), type=int, default=10, rule="count",
                       help="re-score all earlier edits every k edits")
CLI_OPTIONS = (SAMPLE, BATCH_SIZE, HISTORY_EVERY)
