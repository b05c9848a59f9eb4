"""Every golden plan fixture (tests/support/plans.py FIXTURES: the built-in plan and
tests/plans/*.json, which the unit and integration tiers read) is the `config.blankslate.plan`
Nix evaluates for it. When a module changes the plan: .venv/bin/python tests/plans/update.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ..support.plans import FIXTURES, PLANS, REPO, Fixture, evaluate_fixtures

pytestmark = pytest.mark.nix

UPDATE = "run .venv/bin/python tests/plans/update.py"


@pytest.fixture(scope="module")
def evaluated(nix_paths: dict[str, Path]) -> dict[Path, Any]:
    """All fixtures' evaluations in one Nix run."""
    try:
        values = evaluate_fixtures()
    except RuntimeError as error:
        raise AssertionError(str(error)) from None
    return {fixture.path: value for fixture, value in zip(FIXTURES, values, strict=True)}


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: str(f.path.relative_to(REPO)))
def test_each_plan_fixture_is_its_evaluation(fixture: Fixture, evaluated: dict[Path, Any]) -> None:
    name = fixture.path.relative_to(REPO)
    assert fixture.path.exists(), f"{name} is missing: {UPDATE}"
    on_disk = json.loads(fixture.path.read_text())
    assert on_disk == evaluated[fixture.path], f"{name} is not its evaluation: {UPDATE}"


def test_every_host_and_every_plan_file_is_in_the_table() -> None:
    hosts = {path.name for path in (REPO / "hosts").iterdir() if path.is_dir()}
    plain = {fixture.host for fixture in FIXTURES if not fixture.extra}
    assert plain == hosts  # each host's own plan is proven
    assert set(PLANS.glob("*.json")) <= {fixture.path for fixture in FIXTURES}
