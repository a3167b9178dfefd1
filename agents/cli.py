"""The ``melody-rl`` command line: a thin layer over documented functions and config dataclasses.

Each subcommand lives in its own module, which exposes ``add_parser(subparsers)``; the parser it
adds sets ``func`` to the function that runs the command.

Errors are handled here, once for every command: an expected failure (a bad argument or file, a
missing extra, a locked run folder, ...) prints one line, ``melody-rl COMMAND: error: MESSAGE``,
and exits with status 2; a run stopped by SIGINT or SIGTERM prints how to resume and exits with
130 or 143. ``melody-rl --debug COMMAND ...`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

SUBCOMMAND_MODULES = (
    "agents.commands.pretrain",
    "agents.commands.sample",
    "agents.commands.train",
    "agents.commands.generate",
    "agents.commands.evaluate",
    "agents.commands.baseline",
    "agents.commands.benchmark",
    "agents.commands.frontier",
)
"""Modules that each add one subcommand."""


def package_version() -> str:
    """The installed distribution's version (``"unknown"`` when run from a bare checkout)."""
    from importlib import metadata

    try:
        return metadata.version("melody-rl")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="melody-rl",
        description="Tune a melody LSTM with reinforcement learning (RL Tuner, Jaques 2017).",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (before COMMAND)"
    )
    parser.add_argument("--version", action="version", version=f"melody-rl {package_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


EXPECTED_ERRORS = (ValueError, OSError, ImportError, LookupError, RuntimeError, TypeError)
"""What a command may raise for a bad input or environment: reported in one line. Anything
else (a bug) keeps its traceback."""


def error_message(error: BaseException) -> str:
    """One line for ``error``: its message (an ``OSError``'s strerror and file), a missing
    module named with the extra that provides it."""
    if isinstance(error, ModuleNotFoundError) and error.name and "pip install" not in str(error):
        extra = MISSING_EXTRAS.get(error.name.split(".")[0])
        hint = f": pip install 'melody-rl[{extra}]'" if extra else ""
        return f"the module {error.name!r} is not installed{hint}"
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    if isinstance(error, KeyError) and error.args:
        return f"missing key {error.args[0]!r}"
    text = " ".join(str(error).split()) or type(error).__name__
    return text


MISSING_EXTRAS = {
    "stable_baselines3": "sb3",
    "sb3_contrib": "sb3",
    "tensorboard": "tensorboard",
    "matplotlib": "plot",
    "music21": "data",
    "fluidsynth": "audio",
    "rl_zoo3": "zoo",
    "ray": "rllib",
}
"""Top-level module -> the extra of ``pyproject.toml`` that installs it."""


def required_modules(args: argparse.Namespace) -> list[str]:
    """Optional modules the command will need with these arguments (checked before any work)."""
    command = args.command
    needed = []
    if command in ("train", "baseline", "benchmark"):
        needed.append("tensorboard")  # the runs' TensorBoard logs
    if command in ("baseline", "benchmark"):
        needed.append("stable_baselines3")
    if command == "evaluate":
        needed.append("matplotlib")  # its report's plots
        if getattr(args, "musicxml", False):
            needed.append("music21")
    return needed


def check_extras(args: argparse.Namespace) -> None:
    """Raise ``ImportError`` naming every missing module and the extras that install them."""
    import importlib.util

    missing = []
    for module in required_modules(args):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or blocked installation
            found = False
        if not found:
            missing.append(module)
    if missing:
        extras = ",".join(dict.fromkeys(MISSING_EXTRAS[module] for module in missing))
        raise ImportError(
            f"this command needs {' and '.join(missing)}, not installed: "
            f"pip install 'melody-rl[{extras}]'"
        )


def main(argv: list[str] | None = None) -> int:
    from agents.run_control import RunLocked, Stopped

    args = build_parser().parse_args(argv)
    command = f"melody-rl {args.command}"
    try:
        check_extras(args)
        return int(args.func(args) or 0)
    except Stopped as stop:
        print(f"{command}: {stop.message}", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except RunLocked as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2
    except EXPECTED_ERRORS as error:
        if args.debug:
            raise
        print(f"{command}: error: {error_message(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
