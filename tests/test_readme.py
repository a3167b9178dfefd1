"""The README's snippets run: every Python block is executed, every command line is checked.

Python blocks run in order in one namespace (a reader pastes them one after another), in a
temporary folder. Shell blocks: each ``melody-rl`` command is parsed by the real command-line
parser (so every subcommand and flag the README shows exists), each ``python FILE`` names a file
of the repository, and each ``python -m MODULE`` names an importable module. The README's length
is bounded: it is a user guide, the history of measurements lives in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from agents.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 350
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def shell_commands() -> list[str]:
    """Each command of the shell blocks: continuation lines joined, comments dropped, ``&&``
    chains split."""
    commands = []
    for body in blocks("bash"):
        joined = re.sub(r"\\\n\s*", " ", body)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.extend(part.strip() for part in line.split("&&"))
    return commands


def test_the_readme_is_a_user_guide_of_bounded_length():
    assert len(README.read_text().splitlines()) <= MAX_LINES


def test_every_python_snippet_runs(tmp_path, monkeypatch):
    snippets = blocks("python")
    assert snippets, "the README has Python snippets"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for index, snippet in enumerate(snippets):
        try:
            exec(compile(snippet, f"README.md python block {index}", "exec"), namespace)
        except Exception as error:  # pragma: no cover - the message is the point
            pytest.fail(f"README python block {index} failed: {error!r}\n{snippet}")


@pytest.mark.parametrize("command", [c for c in shell_commands() if c.startswith("melody-rl ")])
def test_every_melody_rl_command_parses(command):
    argv = shlex.split(command)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit_:
        pytest.fail(f"{command!r} does not parse (exit {exit_.code})")


@pytest.mark.parametrize("command", [c for c in shell_commands() if c.startswith("python ")])
def test_every_python_command_names_something_that_exists(command):
    argv = shlex.split(command)
    if argv[1] == "-m":
        module = argv[2]
        if module == "pytest":
            return
        assert importlib.util.find_spec(module) is not None, module
    else:
        assert (ROOT / argv[1]).is_file(), argv[1]


def test_the_quickstart_example_is_the_readme_quickstart():
    assert blocks("python")[0] == (ROOT / "examples" / "quickstart.py").read_text()
