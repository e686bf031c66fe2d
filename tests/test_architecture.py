"""The layering ARCHITECTURE.md describes: which part of tfrec_tools may import which."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tfrec_tools"
PARTS = ("builder", "validate", "read", "train", "loader", "cli")
# part -> the parts it may import besides itself ("core": the top-level modules)
ALLOWED = {
    "core": set(),
    "builder": {"core"},
    "validate": {"core"},
    "read": {"core"},
    "train": {"core", "read"},
    "loader": {"core"},
    "cli": {"core", "builder", "validate", "read", "train", "loader"},
}
MAX_LINES = 450  # "about 400": no module may hold several subjects


def part_of(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 and pieces[1] in PARTS else "core"


def imports(path: Path) -> set[str]:
    """The tfrec_tools modules a file imports (``from tfrec_tools import x`` counts as x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfrec_tools"):
            if node.module == "tfrec_tools":
                found.update(f"tfrec_tools.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tfrec_tools"))
    return found


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found.append((name.removesuffix(".__init__"), path))
    return found


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_each_part_imports_only_the_parts_below_it(module, path):
    part = part_of(module)
    if module == "tfrec_tools":  # the public API names every part, lazily
        return
    wrong = sorted(t for t in imports(path) if part_of(t) not in ALLOWED[part] | {part})
    assert not wrong, f"{module} ({part}) may import {sorted(ALLOWED[part])}, not {wrong}"


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_no_module_holds_several_subjects(module, path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines; split it by subject"
