"""An absolute path of a system under its root is `paths.inside(root, path)`, written once in
paths.py: no module joins `root / path.lstrip("/")` itself (issue #26)."""

from __future__ import annotations

import ast
from pathlib import Path

import blankslate

PACKAGE = Path(blankslate.__file__).parent


def inline_containment(source: str) -> list[str]:
    """Every `a / b.lstrip("/")` (a path joined with a slash-stripped one) in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
            continue
        right = node.right
        if (
            isinstance(right, ast.Call)
            and isinstance(right.func, ast.Attribute)
            and right.func.attr == "lstrip"
            and [ast.unparse(arg) for arg in right.args] == ["'/'"]
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scan_finds_the_inline_form() -> None:
    source = 'a = root / path.lstrip("/")\nb = (base / str(p).lstrip("/")).parent\nc = x / y\n'
    assert inline_containment(source) == [
        "line 1: root / path.lstrip('/')",
        "line 2: base / str(p).lstrip('/')",
    ]


def test_no_module_but_paths_joins_a_root_by_hand() -> None:
    offenders = {
        path.name: found
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name != "paths.py" and (found := inline_containment(path.read_text()))
    }
    assert offenders == {}, "use paths.inside(root, path) instead"
