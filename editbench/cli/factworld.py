"""``editbench factworld build ...``: build the embedded fact-world model (the build module parses its options)."""
from __future__ import annotations


def add_parser(sub) -> None:
    fw = sub.add_parser("factworld", help="the embedded fact-world model")
    fws = fw.add_subparsers(dest="fw_cmd", required=True)
    b = fws.add_parser("build", add_help=False,
                       help="generate the world, train the model, evaluate it, write a HF directory "
                            "(all options: editbench factworld build --help)")
    b.set_defaults(func=run, takes_rest=True)


def run(args) -> int:  # every option of editbench.factworld.build (args.rest)
    from editbench.factworld.build import main as build_main  # lazy: cli.common.LAZY
    return build_main(args.rest) or 0
