"""The zsre suite's options (pytest and ``editbench zsre``), declared once (:mod:`editbench.options`)."""
from editbench.options import Option

ZSRE_TARGET = Option(("--zsre-target",), choices=("answers", "alt"), default="answers",
                     help="zsre suite: the zsRE edit target, answers[0] (ROME and the seed paper; default) or alt "
                          "(EasyEdit, with answers[0] as target_true). --dataset picks the pairs: zsre (the paper's "
                          "280; default), counterfact (counterfact_qna), factworld, or a JSON file of pairs.")
DIRECTION = Option(("--direction",), action="append", choices=("q2c", "c2q"),
                   help="zsre suite: q2c (edit in question form, probe in completion form) and/or c2q (repeatable; "
                        "default both).")
OPTIONS = (ZSRE_TARGET, DIRECTION)
"""``editbench zsre`` takes them without argparse choices: :func:`editbench.suites.zsre.run.check_transfer_inputs`
names a bad value (exit 4, one line)."""
