"""The import direction is part of the design: ingest <- drift <- labeler, and inside
labeler join <- output <- runtime <- ops, with tools/ reached only from the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ingest", "drift", "labeler")
FLOORS = {"ingest": 0, "drift": 1, "labeler": 2}
# labeler's rooms, lowest first; its root modules (errors, logs) are below all, and
# config (every key, with the label aggregations it validates) sits with the join
ROOMS = {"join": 1, "config": 1, "output": 2, "runtime": 3, "tools": 3, "ops": 4}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _room(module: str) -> int:
    parts = module.split(".")
    return ROOMS.get(parts[1], 0) if len(parts) > 1 else 0


def violations() -> list[str]:
    wrong = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            me = _module(path)
            for target in _imports(path):
                mine, theirs = me.split(".")[0], target.split(".")[0]
                if FLOORS[theirs] > FLOORS[mine]:
                    wrong.append(f"{me} imports {target}: {mine} is below {theirs}")
                elif mine == theirs == "labeler":
                    if target.startswith("labeler.tools") and not (
                            me.startswith("labeler.tools") or me == "labeler.ops.cli"):
                        wrong.append(f"{me} imports {target}: only the CLI uses tools/")
                    elif (_room(target) > _room(me) and not target.startswith("labeler.tools")):
                        wrong.append(f"{me} imports {target}: an upward import in labeler")
    return wrong


def test_no_import_runs_upward() -> None:
    assert violations() == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_says_what_it_holds(package: str) -> None:
    for init in (ROOT / package).rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init.relative_to(ROOT)} needs a docstring"
