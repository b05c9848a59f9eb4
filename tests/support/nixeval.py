"""Evaluating the repository's Nix from its root: an expression over a host of hosts/ as
tests/nix/eval.nix evaluates it, and `nix-instantiate --eval` of an expression. The Nix tier
(tests/nix/conftest.py) and tests/plans/update.py both evaluate through these."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def host_expr(host: str | None, attr: str, extra: str = "") -> str:
    """Expression ATTR (e.g. "config.blankslate.plan"; config, options, lib and
    failedAssertions in scope) over HOST evaluated with tests/nix/eval.nix, plus
    EXTRA, a module written in Nix (lib and config in scope)."""
    host_arg = "null" if host is None else json.dumps(host)
    modules = f"[ ({{ lib, config, ... }}: {extra}) ]" if extra else "[ ]"
    evaluated = f"import ./tests/nix/eval.nix {{ host = {host_arg}; extraModules = {modules}; }}"
    return f"let inherit ({evaluated}) config options lib failedAssertions; in {attr}"


def nix_instantiate_eval(expr: str) -> subprocess.CompletedProcess[str]:
    """nix-instantiate --eval of EXPR (strictly, to JSON) from the repository root.

    --readonly-mode: store paths of ./x.bash are computed, nothing is written.
    """
    return subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "--readonly-mode", "-E", expr],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
