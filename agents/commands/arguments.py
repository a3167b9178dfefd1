"""Argument types and flags shared by the ``melody-rl`` subcommands (one parser of each).

>>> comma_names("q, psi,,g"), comma_seeds("0,1,2")
(('q', 'psi', 'g'), (0, 1, 2))
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_progress_argument(parser)
>>> parser.parse_args([]).progress, parser.parse_args(["--no-progress"]).progress
(True, False)
"""

from __future__ import annotations

import argparse

PROGRESS_HELP = "progress bar with ETA (--no-progress for plain logs)"


def comma_names(text: str) -> tuple[str, ...]:
    """``--algos q,psi,g``: the comma-separated names, blanks dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def comma_seeds(text: str) -> tuple[int, ...]:
    """``--seeds 0,1,2``: the comma-separated integers; else an argparse error naming the text."""
    try:
        return tuple(int(seed) for seed in comma_names(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--seeds expects integers, got {text!r}") from error


def add_progress_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--progress`` / ``--no-progress`` (default on), the same on every command (``parser`` may
    be an argument group)."""
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help=PROGRESS_HELP
    )
