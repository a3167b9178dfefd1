"""The env package stands alone: nothing under ``melody_env`` imports ``agents``, by an import
statement or by a module name in a string (``importlib.import_module("agents...")``)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import melody_env

PACKAGE = Path(melody_env.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
AGENTS_NAME = re.compile(r"^agents(\.[A-Za-z_]\w*)*$")


def agent_references(source: str) -> list[str]:
    """Imports of ``agents`` and strings that are an ``agents`` module name, in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if AGENTS_NAME.match(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [node.module] if AGENTS_NAME.match(node.module) else []
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [repr(node.value)] if AGENTS_NAME.match(node.value.strip()) else []
    return found


def test_the_check_finds_each_form():
    source = (
        "import agents\nimport agents.rloo as r\nfrom agents.rl_tuner import x\n"
        "MODULES = ('agents.dqn', 'agents')\n"
        "import agentsmith\nHELP = 'the agents hand it a policy'\nfrom . import agents_like\n"
    )
    assert agent_references(source) == [
        "agents",
        "agents.rloo",
        "agents.rl_tuner",
        "'agents.dqn'",
        "'agents'",
    ]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_of_melody_env_refers_to_agents(path):
    assert agent_references(path.read_text(encoding="utf-8")) == []


def test_importing_the_env_and_its_evaluation_loads_no_agent():
    code = (
        "import sys, gymnasium as gym, melody_env, melody_env.evaluation, melody_env.sampling\n"
        "from melody_env.evaluation import policies, report, export\n"
        "env = gym.make('melody_env/MelodyComposition-v0')\n"
        "print(sorted(m for m in sys.modules if m == 'agents' or m.startswith('agents.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.strip() == "[]"
