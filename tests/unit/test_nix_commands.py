"""Every Nix command is built in nix.py, and plan.py (the contract) runs nothing (issue 26)."""

from __future__ import annotations

import ast
from pathlib import Path

import blankslate

PACKAGE = Path(blankslate.__file__).parent


def _is_nix_program(node: ast.expr) -> bool:
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
        return False
    return node.value == "nix" or node.value.startswith(("nix-", "nixos-"))


def nix_argv_builders(source: str) -> list[int]:
    """Lines of the list literals whose first item names a Nix program."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.List) and node.elts and _is_nix_program(node.elts[0])
    ]


def test_the_scan_finds_a_nix_argv() -> None:
    assert nix_argv_builders('x = ["nix", "eval"]\ny = ["nixos-install", "--root", r]') == [1, 2]
    assert nix_argv_builders('x = ["git", "nix"]\ny = "nix"') == []


def test_nix_commands_are_built_in_nix_py_only() -> None:
    found = {
        module.name: lines
        for module in sorted(PACKAGE.glob("*.py"))
        if module.name != "nix.py" and (lines := nix_argv_builders(module.read_text()))
    }
    assert found == {}
    assert nix_argv_builders((PACKAGE / "nix.py").read_text())


def test_the_plan_contract_runs_no_command() -> None:
    tree = ast.parse((PACKAGE / "plan.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "blankslate"
        for alias in node.names
    }
    assert not imported & {"process", "nix", "plansource"}
