"""The import graph of scripts/blankslate: no circle, and every arrow points down the code map.

The code map is the "## Code map" section of docs/design.md: `### ` headings are the layers,
listed from the bottom up, and each line `` - `name.py`: job `` places a module in the layer
above it. Every import counts: at module level, under `if TYPE_CHECKING:` and inside a function.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "scripts" / "blankslate"
DESIGN = REPO / "docs" / "design.md"
PACKAGE_NAME = "blankslate"

# Imports that point up the code map and are tolerated for now, each as (importer, imported)
# with the reason. Empty: every import points down. An entry that no longer occurs fails
# `test_known_exceptions_still_occur`, so this list stays true.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}

Graph = dict[str, set[str]]


def imports_of(source: str, modules: set[str]) -> set[str]:
    """The package's modules that `source` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE_NAME and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            absolute = node.level == 0 and node.module is not None
            parts = node.module.split(".") if node.module else []
            if absolute and parts[0] != PACKAGE_NAME:
                continue
            if node.level > 1:
                continue  # above the package: not one of its modules
            if absolute:
                parts = parts[1:]
            if parts:
                found.add(parts[0])  # from blankslate.x import y / from .x import y
            else:  # from blankslate import x / from . import x
                found |= {alias.name for alias in node.names if alias.name in modules}
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            parts = node.args[0].value.split(".")
            if parts[0] == PACKAGE_NAME and len(parts) > 1:
                found.add(parts[1])
    return found


def package_modules() -> set[str]:
    return {path.stem for path in PACKAGE.glob("*.py")}


def import_graph() -> Graph:
    modules = package_modules()
    return {
        path.stem: imports_of(path.read_text(encoding="utf-8"), modules) - {path.stem}
        for path in sorted(PACKAGE.glob("*.py"))
    }


def find_circle(graph: Graph) -> list[str] | None:
    """One circle of `graph` as [a, b, ..., a], or None when it has none."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        stack = [iter(sorted(graph.get(start, ())))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if child in on_path:
                return [*path[path.index(child) :], child]
            if child in done:
                continue
            path.append(child)
            on_path.add(child)
            stack.append(iter(sorted(graph.get(child, ()))))
    return None


def code_map(text: str) -> list[tuple[str, list[str]]]:
    """The layers of design.md's code map, bottom first: (heading, module names)."""
    match = re.search(r"^## Code map\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "docs/design.md has no '## Code map' section"
    layers: list[tuple[str, list[str]]] = []
    for line in match.group(1).splitlines():
        if line.startswith("### "):
            layers.append((line[4:].split(":")[0].strip(), []))
            continue
        entry = re.match(r"- `([A-Za-z_][A-Za-z0-9_]*)\.py`", line)
        if entry:
            assert layers, f"the code map places {entry.group(1)}.py before its first layer"
            layers[-1][1].append(entry.group(1))
    return layers


def layer_of() -> dict[str, tuple[int, str]]:
    """Each mapped module's layer, as (index from the bottom, heading)."""
    placed: dict[str, tuple[int, str]] = {}
    for index, (heading, modules) in enumerate(code_map(DESIGN.read_text(encoding="utf-8"))):
        for module in modules:
            assert module not in placed, f"the code map places {module}.py twice"
            placed[module] = (index, heading)
    return placed


# --- the helpers themselves --------------------------------------------------------------------


def test_every_form_of_import_counts() -> None:
    source = """
from __future__ import annotations
import os
import blankslate.a
from blankslate import b, not_a_module
from blankslate.c import thing
from . import d
from .e import other
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from blankslate.f import F
def late():
    from blankslate import g
    importlib.import_module("blankslate.h")
"""
    modules = {"a", "b", "c", "d", "e", "f", "g", "h"}
    assert imports_of(source, modules) == modules


def test_find_circle_names_the_circle() -> None:
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"a"}}) == ["a", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None


def test_code_map_reads_layers_bottom_first() -> None:
    text = (
        "## Code map\n\nintro, `- x.py` in prose\n\n### Low: x\n\n- `a.py`: job\n\n"
        "### High\n\n- `b.py`: job\n\n## Next\n\n- `c.py`: not in the map\n"
    )
    assert code_map(text) == [("Low", ["a"]), ("High", ["b"])]


# --- the package ------------------------------------------------------------------------------


def test_the_imports_draw_no_circle() -> None:
    circle = find_circle(import_graph())
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_every_module_is_in_the_code_map() -> None:
    placed = layer_of()
    modules = package_modules()
    missing = [
        f"module {module} is not in the code map (docs/design.md, '## Code map'): add the line"
        f" '- `{module}.py`: its job.' under its layer, at or above every module it imports"
        for module in sorted(modules - placed.keys())
    ]
    gone = [
        f"the code map names {module}.py, which is not in scripts/blankslate"
        for module in sorted(placed.keys() - modules)
    ]
    assert not missing + gone, "\n".join(missing + gone)


def test_every_import_points_down_the_code_map() -> None:
    placed = layer_of()
    upward = []
    for module, imported in sorted(import_graph().items()):
        if module not in placed:
            continue  # test_every_module_is_in_the_code_map names it
        for target in sorted(imported):
            if (
                target in placed
                and placed[target][0] > placed[module][0]
                and (module, target) not in KNOWN_UPWARD
            ):
                upward.append(
                    f"{module} ({placed[module][1]}) imports {target}, of a higher layer"
                    f" ({placed[target][1]})"
                )
    assert not upward, "\n".join(upward)


def test_known_exceptions_still_occur() -> None:
    graph = import_graph()
    stale = [
        f"{module} no longer imports {target}: drop it from KNOWN_UPWARD"
        for module, target in sorted(KNOWN_UPWARD)
        if target not in graph.get(module, set())
    ]
    assert not stale, "\n".join(stale)
