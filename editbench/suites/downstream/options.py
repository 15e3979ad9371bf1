"""The downstream suite's options (pytest, ``editbench downstream`` and the downstream tasks inside
``editbench sequential``), declared once (:mod:`editbench.options`)."""
from editbench.options import Option

DOWNSTREAM_EVERY = Option(("--downstream-every",), type=int, metavar="K",
                          help="evaluate the downstream tasks (GLUE few-shot; the fact world's in-world tasks on "
                               "--model factworld) before editing and every K edits of a sequential run (downstream "
                               "suite default 10, the paper's; sequential suite default off).")
DOWNSTREAM_TASK = Option(("--downstream-task",), action="append", metavar="TASK",
                         help="downstream task (repeatable; default all): sst2, mrpc, cola, rte (fact world: sst2, "
                              "mrpc, cola, nli).")
DOWNSTREAM_N = Option(("--downstream-n",), type=int, metavar="N",
                      help="downstream examples per task, class-balanced (default: the model's preset, 200 as the "
                           "paper; fact world 100).")
DOWNSTREAM_SHOTS = Option(("--downstream-shots",), type=int, metavar="K",
                          help="downstream demonstrations per prompt (the first K of the paper's table; default: the "
                               "preset).")
DOWNSTREAM_MODE = Option(("--downstream-mode",), choices=("gen", "loglik"),
                         help="downstream primary answer mode (both are always reported): gen = greedy decode + parse "
                              "the label word (the paper's), loglik = label-word log-likelihood (default: the "
                              "preset).")
OPTIONS = (DOWNSTREAM_EVERY, DOWNSTREAM_TASK, DOWNSTREAM_N, DOWNSTREAM_SHOTS, DOWNSTREAM_MODE)
"""Checked together against the model by :func:`editbench.suites.downstream.run.check_downstream_inputs`."""
