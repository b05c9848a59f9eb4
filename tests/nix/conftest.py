"""Helpers for the nix tier: evaluate Nix expressions from the repository root.

Every test here needs `nix-instantiate`; the evaluation tests also need
`<nixpkgs/lib>` and `<impermanence>` on the Nix search path (see README, Development).
They skip with the reason when those are missing, and fail instead under CI=true.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..conftest import skip_nix_tier
from ..support.nixeval import REPO, host_expr, nix_instantiate_eval


def _find_file(name: str) -> str | None:
    result = subprocess.run(
        ["nix-instantiate", "--find-file", name], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else None


@pytest.fixture(scope="session")
def nix_paths(nix_instantiate: str) -> dict[str, Path]:
    found = {name: _find_file(name) for name in ("nixpkgs/lib", "impermanence")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        skip_nix_tier(
            f"<{'>, <'.join(missing)}> not found on NIX_PATH (nix-instantiate --find-file)"
        )
    return {name: Path(path) for name, path in found.items() if path is not None}


def lookup_path(name: str) -> Path:
    """Where <NAME> resolves; a test that needs an optional source skips (fails in CI) without."""
    found = _find_file(name)
    if found is None:
        skip_nix_tier(f"<{name}> not found on NIX_PATH (.ci/setup makes it resolvable)")
    return Path(found)


Eval = Callable[[str], Any]


@pytest.fixture(scope="session")
def nix_run(nix_paths: dict[str, Path]) -> Callable[[str], subprocess.CompletedProcess[str]]:
    """The evaluation of EXPR as it ends, failure included (for what must fail)."""
    return nix_instantiate_eval


@pytest.fixture(scope="session")
def nix_eval(nix_paths: dict[str, Path]) -> Eval:
    """Evaluate EXPR (strictly, to JSON); a failed evaluation fails the test."""

    def evaluate(expr: str) -> Any:
        result = nix_instantiate_eval(expr)
        if result.returncode != 0:
            raise AssertionError(f"nix evaluation failed:\n{expr}\n{result.stderr}")
        return json.loads(result.stdout)

    return evaluate


@pytest.fixture(scope="session")
def host_eval(nix_eval: Eval) -> Callable[..., Any]:
    """host_eval("example", "config.fileSystems", extra="{ ... }") -> the value as JSON."""

    def evaluate(host: str | None, attr: str, extra: str = "") -> Any:
        return nix_eval(host_expr(host, attr, extra))

    return evaluate


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


PLACEHOLDER_WARNING = (
    "blankslate: blankslate.users.admin.authorizedKeys holds only the example's placeholder key: "
    "put your own public key there before installing, or admin cannot log in"
)


def besides_placeholder(warnings: list[str]) -> list[str]:
    """The warnings of an example host other than the one about its placeholder admin key,
    which every example host (a template) has exactly once."""
    assert warnings.count(PLACEHOLDER_WARNING) == 1, warnings
    return [warning for warning in warnings if warning != PLACEHOLDER_WARNING]
