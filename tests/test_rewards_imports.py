"""The rewards package's modules import one way and each imports on its own.

The modules form a chain, ``composition -> context -> rule_engine -> rules -> protocols``: the
rules are the lowest layer and know no context class (a rule's term is typed with
:class:`~melody_env.rewards.protocols.HasRuleValues`). The AST check reads every import
statement, those under ``if TYPE_CHECKING:`` and inside functions included, so a circle that
only a type checker would follow is caught as well.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import melody_env.rewards

PACKAGE = "melody_env.rewards"
PACKAGE_DIR = Path(melody_env.rewards.__file__).parent
MODULES = sorted(path.stem for path in PACKAGE_DIR.glob("*.py") if path.stem != "__init__")


def imported_siblings(module: str) -> set[str]:
    """The modules of the rewards package that ``module``'s source imports, by any statement."""
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from .x import y
                base = PACKAGE if node.level == 1 else PACKAGE.rsplit(".", node.level - 1)[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # "from melody_env.rewards import rules" imports the module rules
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith(PACKAGE + "."):
                sibling = name[len(PACKAGE) + 1 :].split(".")[0]
                if sibling in MODULES and sibling != module:
                    found.add(sibling)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of the directed graph as ``[a, b, ..., a]``, or None (depth-first search)."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for successor in sorted(graph[node]):
            cycle = visit(successor)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_find_cycle_finds_the_old_circle_and_accepts_a_chain():
    old = {"context": {"rule_engine"}, "rule_engine": {"rules"}, "rules": {"context"}}
    assert find_cycle(old) == ["context", "rule_engine", "rules", "context"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_imported_siblings_reads_every_import_form(tmp_path, monkeypatch):
    source = (
        "from typing import TYPE_CHECKING\n"
        "from melody_env.rewards import rule_engine\n"
        "if TYPE_CHECKING:\n"
        "    from melody_env.rewards.context import RewardContext\n"
        "def late():\n"
        "    import melody_env.rewards.composition\n"
        "    from . import protocols\n"
    )
    (tmp_path / "probe.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_DIR", tmp_path)
    assert imported_siblings("probe") == {"rule_engine", "context", "composition", "protocols"}


def test_the_rewards_modules_import_one_way():
    graph = {module: imported_siblings(module) for module in MODULES}
    assert find_cycle(graph) is None, f"import circle in {PACKAGE}: {find_cycle(graph)}"
    assert graph["rules"] == {"protocols"}  # the lowest layer knows no context class
    assert graph["protocols"] == set()


# Each module is imported with its parent packages stubbed out (their __init__ not run), so it
# cannot lean on the package's __init__ having imported its siblings first.
_IMPORT_ALONE = """
import importlib, json, sys, types
for name, path in (("melody_env", {root!r}), ("melody_env.rewards", {package!r})):
    stub = types.ModuleType(name)
    stub.__path__ = [path]
    sys.modules[name] = stub
importlib.import_module({module!r})
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in
                        ("torch", "gymnasium", "agents"))))
"""


@pytest.mark.parametrize("module", MODULES)
def test_each_rewards_module_imports_alone_in_a_fresh_interpreter(module):
    code = _IMPORT_ALONE.format(
        root=str(PACKAGE_DIR.parent), package=str(PACKAGE_DIR), module=f"{PACKAGE}.{module}"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The rewards are numpy and numba only: no torch, no gymnasium, nothing from the agents.
    assert json.loads(result.stdout.splitlines()[-1]) == []
