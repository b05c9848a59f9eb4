"""Nix and `blankslate plan` refuse the same bad layouts.

Each row is one bad input, given once as a host option (evaluated through the modules) and once
as the plan JSON it would become (read by the tool). Both must refuse it, each naming the place.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from blankslate import plan, plansource
from blankslate.errors import BlankslateError

pytestmark = pytest.mark.nix

REPO = Path(__file__).resolve().parents[2]
Mutation = Callable[[dict[str, Any]], None]


def _append_mount(data: dict[str, Any]) -> None:
    data["mounts"].append({**data["mounts"][3], "options": ["subvol=nix2"]})


def _subvolume(index: int, name: str) -> Mutation:
    def apply(data: dict[str, Any]) -> None:
        data["btrfs"]["subvolumes"][index] = name

    return apply


RULES: list[tuple[str, str, Mutation, str, str]] = [
    (
        "size in words",
        'blankslate.disk.swapSize = lib.mkForce "8 gigs";',
        lambda d: d["disk"]["partitions"][1].update(size="8 gigs"),
        "`blankslate.disk.swapSize' is not of type `size",
        "disk.partitions[1].size: '8 gigs' is not a size",
    ),
    (
        "two subvolumes on /nix",
        'blankslate.btrfs.subvolumes = [ { name = "nix2"; mountpoint = "/nix"; } ];',
        _append_mount,
        'blankslate.btrfs.subvolumes: mountpoint "/nix" appears twice',
        "mounts[6]: duplicate mountPoint '/nix'",
    ),
    (
        "subvolume name with ..",
        'blankslate.btrfs.subvolumes = [ { name = "../etc"; mountpoint = "/srv"; } ];',
        _subvolume(4, "../etc"),
        "[definition 1-entry 1]\".name' is not of type `subvolume name",
        "btrfs.subvolumes[4]: '../etc' is not a subvolume name",
    ),
    (
        "persistPath with ..",
        'blankslate.persistPath = lib.mkForce "/persist/..";',
        lambda d: d.update(persistPath="/persist/.."),
        "`blankslate.persistPath' is not of type `absolute, normalised path",
        "persistPath: '/persist/..' is not an absolute, normalised path",
    ),
    (
        "persisted directory not normalised",
        'blankslate.persistence.directories = [ "/var/lib/../etc" ];',
        lambda d: d["persistence"]["directories"][0].update(directory="/var/lib/../etc"),
        ".directory' is not of type `absolute, normalised path",
        "persistence.directories[0].directory: '/var/lib/../etc' is not an absolute",
    ),
    (
        "keepDays the boot script refuses",
        "blankslate.btrfs.oldRoots.keepDays = lib.mkForce 1000000;",
        lambda d: d["btrfs"]["oldRoots"].update(keepDays=1000000),
        "`blankslate.btrfs.oldRoots.keepDays' is not of type `integer between 0 and 999999",
        "btrfs.oldRoots.keepDays: must be between 0 and 999999",
    ),
    (
        "blank snapshot is the root",
        'blankslate.btrfs.blankSnapshot = lib.mkForce "root";',
        lambda d: d["btrfs"].update(blankSnapshot="root"),
        'btrfs.blankSnapshot "root" and btrfs.rootSubvolume "root" are the same or nested',
        "btrfs.blankSnapshot: is, or nests with, one of the subvolumes",
    ),
    (
        "label with a slash",
        'blankslate.disk.label = lib.mkForce "a/b";',
        lambda d: d["disk"]["partitions"][2].update(label="a/b"),
        "`blankslate.disk.label' is not of type `filesystem label or pool name",
        "disk.partitions[2].label: 'a/b' is not a label",
    ),
]


@pytest.mark.parametrize(
    ("option", "nix_message"),
    [(row[1], row[3]) for row in RULES],
    ids=[row[0] for row in RULES],
)
def test_nix_refuses(nix_run: Any, option: str, nix_message: str) -> None:
    module = f"({{ lib, ... }}: {{ {option} }})"
    expr = (
        f'(import ./tests/nix/eval.nix {{ host = "example"; extraModules = [ {module} ]; }})'
        ".config.blankslate.plan"
    )
    result = nix_run(expr)
    assert result.returncode != 0, result.stdout
    assert nix_message in result.stderr


@pytest.mark.parametrize(
    ("mutate", "python_message"),
    [(row[2], row[4]) for row in RULES],
    ids=[row[0] for row in RULES],
)
def test_blankslate_plan_refuses(tmp_path: Path, mutate: Mutation, python_message: str) -> None:
    data = json.loads(plansource.default_text())
    mutate(data)
    with pytest.raises(BlankslateError, match=r"^plan: ") as error:
        plan.from_json(data)
    assert python_message in str(error.value)
    # and through the command, as one line
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    result = subprocess.run(
        [sys.executable, "-m", "blankslate", "plan", "--plan", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and python_message in result.stderr


# The ZFS names the boot scripts check (rules.json): Nix and `blankslate plan` refuse what the
# scripts refuse, on the zfs host.
ZFS_RULES: list[tuple[str, str, str, str, str]] = [
    (
        "pool without a letter first",
        'blankslate.zfs.pool = lib.mkForce "_tank";',
        "pool",
        "`blankslate.zfs.pool' is not of type `ZFS pool name",
        "zfs.pool: '_tank' is not a pool name",
    ),
    (
        "blank snapshot with a slash",
        'blankslate.zfs.blankSnapshot = lib.mkForce "a/b";',
        "blankSnapshot",
        "`blankslate.zfs.blankSnapshot' is not of type `ZFS snapshot name",
        "zfs.blankSnapshot: 'a/b' is not a snapshot name",
    ),
]


@pytest.mark.parametrize(
    ("option", "nix_message"),
    [(row[1], row[3]) for row in ZFS_RULES],
    ids=[row[0] for row in ZFS_RULES],
)
def test_nix_refuses_zfs_names(nix_run: Any, option: str, nix_message: str) -> None:
    module = f"({{ lib, ... }}: {{ {option} }})"
    expr = (
        f'(import ./tests/nix/eval.nix {{ host = "zfs"; extraModules = [ {module} ]; }})'
        ".config.blankslate.plan"
    )
    result = nix_run(expr)
    assert result.returncode != 0, result.stdout
    assert nix_message in result.stderr


@pytest.mark.parametrize(
    ("key", "value", "python_message"),
    [(row[2], row[4].split("'")[1], row[4]) for row in ZFS_RULES],
    ids=[row[0] for row in ZFS_RULES],
)
def test_blankslate_plan_refuses_zfs_names(
    host_plan_data: Any, key: str, value: str, python_message: str
) -> None:
    data = host_plan_data("zfs")
    data["zfs"][key] = value
    with pytest.raises(BlankslateError, match=r"^plan: ") as error:
        plan.from_json(data)
    assert python_message in str(error.value)
