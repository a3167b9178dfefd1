"""The ``melody-rl`` command line: a thin layer over documented functions and config dataclasses.

Each subcommand lives in its own module, which exposes ``add_parser(subparsers)``; the parser it
adds sets ``func`` to the function that runs the command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = (
    "agents.commands.pretrain",
    "agents.commands.sample",
    "agents.commands.train",
    "agents.commands.generate",
    "agents.commands.evaluate",
    "agents.commands.baseline",
    "agents.commands.benchmark",
)
"""Modules that each add one subcommand."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="melody-rl",
        description="Tune a melody LSTM with reinforcement learning (RL Tuner, Jaques 2017).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
