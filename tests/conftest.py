"""Fixtures for every tier: the evaluated plans of the example hosts.

tests/plans/<host>.json is `config.blankslate.plan` of hosts/<host> (the example host's is the
built-in default plan); tests/nix/test_eval.py proves each file equals the evaluation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from blankslate import rules

from .support import loops

PLANS = Path(__file__).parent / "plans"
DEFAULT_PLAN = Path(__file__).parents[1] / "scripts/blankslate/default-plan.json"


# Inputs each parser's property test generates (plan, ignore file, password file, argument
# vectors): a full corpus in CI, a quick one elsewhere (#28: 10,000 in CI, 0 tracebacks).
PARSER_CORPUS = 10_000 if os.environ.get("CI") == "true" else 200


# Looking beneath the mounts (diff's walk, seed --hidden) makes its mount namespace private
# with `mount --make-rprivate /`, which a chroot (not a mount point at /) refuses; a real
# machine, CI's included, always has / mounted.
def can_make_root_private() -> bool:
    """Whether a new mount namespace here can make / private, as diff's look beneath the mounts
    does (not in a chroot, where / is no mount point; not without root)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = ["unshare", "--mount", "--propagation", "unchanged", "mount", "--make-rprivate", "/"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


needs_mounted_root = pytest.mark.skipif(
    not can_make_root_private(), reason="/ cannot be made private here (a chroot, or not root)"
)


def zfs_rule_environment() -> dict[str, str]:
    """The environment the units give the ZFS boot scripts: their name rules, from rules.json
    (modules/lib.nix's zfsRuleEnvironment; tests/nix/test_rules.py checks the units carry it)."""
    return {
        "BLANKSLATE_ZFS_DATASET_RULE": rules.PATTERNS["zfsPoolDataset"],
        "BLANKSLATE_ZFS_SNAPSHOT_RULE": rules.PATTERNS["zfsSnapshot"],
    }


def host_plan_json(host: str) -> dict[str, Any]:
    path = DEFAULT_PLAN if host == "example" else PLANS / f"{host}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture
def host_plan_data() -> Callable[[str], dict[str, Any]]:
    """host_plan_data("zfs") -> a fresh copy of that host's plan JSON, to change at will."""
    return host_plan_json


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `root` (they chown to root, or make files only root may) skip, saying so,
    for any other user."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (it makes root-owned files); run pytest as root")
    for item in items:
        if item.get_closest_marker("root") is not None:
            item.add_marker(skip)


def nix_unusable() -> str | None:
    """Why nix-instantiate cannot run here, or None. A user who may not reach the Nix daemon
    (or write the store) gets an error for any expression, even a parse."""
    if shutil.which("nix-instantiate") is None:
        return "nix-instantiate is not installed"
    result = subprocess.run(
        ["nix-instantiate", "--parse", "-E", "1"], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return None
    said = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
    return f"nix-instantiate cannot run as this user (needs the Nix daemon or store): {said}"


def skip_nix_tier(reason: str) -> NoReturn:
    """A Nix-tier test that cannot run here skips with REASON; under CI=true it fails instead,
    since CI must run the whole tier (.ci/run makes its sources resolvable)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the Nix tier must run, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def nix_instantiate() -> str:
    reason = nix_unusable()
    if reason is not None:
        skip_nix_tier(reason)
    path = shutil.which("nix-instantiate")
    assert path is not None
    return path


def pytest_configure(config: pytest.Config) -> None:
    loops.run_id()  # set before pytest-xdist starts its workers, which inherit it


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when an integration fixture left a loop device (and so any mount of it)
    behind. Under pytest-xdist only the controller looks, after every worker has ended."""
    if hasattr(session.config, "workerinput") or os.geteuid() != 0:
        return
    if shutil.which("losetup") is None:
        return
    leftovers = loops.leftover_loops()
    if leftovers:
        message = "integration fixtures left loop devices behind:\n  " + "\n  ".join(leftovers)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"ERROR: {message}", red=True, bold=True)
        else:
            print(f"\nERROR: {message}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
