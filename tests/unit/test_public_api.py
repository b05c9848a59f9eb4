"""The program uses only the public API of typer (and of the click typer is built on).

typer's underscore modules (`typer._click`, `typer._completion_classes`, ...) change with its
releases: typer 0.12 has no `typer._click`, and importing the app failed there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import blankslate

PACKAGE = Path(blankslate.__file__).parent
LIBRARIES = ("typer", "click")


def private_uses(source: str) -> list[str]:
    """Every import or attribute reaching a name that starts with `_` in typer or click."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute):
            modules = [ast.unparse(node)]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] in LIBRARIES and any(part.startswith("_") for part in parts[1:]):
                found.append(f"line {node.lineno}: {module}")
    return found


def test_no_private_typer_or_click_name_is_used() -> None:
    offenders = {
        path.name: uses
        for path in sorted(PACKAGE.glob("*.py"))
        if (uses := private_uses(path.read_text()))
    }
    assert offenders == {}


def test_the_check_sees_each_way_of_reaching_a_private_name() -> None:
    source = """
import typer._click
from typer._completion_shared import get_completion_script
from typer import _click
from click._compat import term_len
typer._click.Context
from typer.core import TyperCommand
import typer.completion
typer.completion.show_callback
"""
    assert private_uses(source) == [
        "line 2: typer._click",
        "line 3: typer._completion_shared",
        "line 3: typer._completion_shared.get_completion_script",
        "line 4: typer._click",
        "line 5: click._compat",
        "line 5: click._compat.term_len",
        "line 6: typer._click.Context",
        "line 6: typer._click",
    ]
