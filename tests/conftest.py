"""Fixtures for every tier: the evaluated plans of the example hosts.

tests/plans/<host>.json is `config.blankslate.plan` of hosts/<host> (the example host's is the
built-in default plan); tests/nix/test_eval.py proves each file equals the evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PLANS = Path(__file__).parent / "plans"
DEFAULT_PLAN = Path(__file__).parents[1] / "scripts/blankslate/default-plan.json"


def host_plan_json(host: str) -> dict[str, Any]:
    path = DEFAULT_PLAN if host == "example" else PLANS / f"{host}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture
def host_plan_data() -> Callable[[str], dict[str, Any]]:
    """host_plan_data("zfs") -> a fresh copy of that host's plan JSON, to change at will."""
    return host_plan_json
