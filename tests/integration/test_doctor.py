"""`blankslate doctor --root` on a real install: a sparse image, a loop device, the kernel's
btrfs. A healthy install passes; each fault fails with its own line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from blankslate import plansource

from ..support.loops import attached_loops, take_down
from ..support.plans import btrfs_storage
from ..support.runner import quiet_blankslate as blankslate

PLAN = plansource.default()
OWN_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ3Yr8QJ5wxBcz0ZNrqGdM1JW6rnWOvK2ykXf6wzM1c me@laptop"
)


@pytest.fixture
def installed(tmp_path: Path, helpers: ModuleType) -> Iterator[tuple[Path, Path]]:
    """The built-in plan installed on a sparse image with the admin's password; yields
    (mountpoint, plan file). Always unmounted and detached."""
    image = tmp_path / "disk.img"
    mountpoint = tmp_path / "target"
    plan_file = tmp_path / "plan.json"
    data = PLAN.to_json()
    data["users"][0]["authorizedKeys"] = [OWN_KEY]  # not the example's placeholder
    plan_file.write_text(json.dumps(data))
    try:
        result = blankslate(
            "install", "--plan", str(plan_file), "--image", str(image),
            "--root", str(mountpoint), "--yes", "--no-passwords", "--no-nixos-install",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        result = blankslate(
            "passwd", "admin", "--plan", str(plan_file), "--root", str(mountpoint), "--stdin",
            stdin="s3cret pw\n",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        yield mountpoint, plan_file
    finally:
        take_down(image, mountpoint, helpers)
        assert attached_loops(image) == []


def doctor(mountpoint: Path, plan_file: Path) -> tuple[int, dict[str, list[str]]]:
    """Exit status, and each check's statuses from the text output (one line per result)."""
    result = blankslate("doctor", "--plan", str(plan_file), "--root", str(mountpoint))
    lines: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        status, check, _ = line.split(maxsplit=2)
        lines.setdefault(check, []).append(status)
    assert "Traceback" not in result.stderr
    return result.returncode, lines


HEALTHY = {
    "persist": ["ok"],
    "passwords": ["ok"],
    "host-keys": ["ok"],
    "blank": ["ok"],
    "root-age": ["skipped"],  # not booted
    "old-roots": ["skipped"],  # made by the first boot's rollback
    "free-space": ["ok"],
    "etc": ["skipped"],
    "persist-nested": ["ok"],
    "admin-keys": ["ok"],
    "boot": ["skipped"],  # the boot record is the running system's
    "private-state": ["ok"],
}


def main_partition(mountpoint: Path) -> str:
    found = subprocess.run(
        ["findmnt", "--noheadings", "--output", "SOURCE", "--mountpoint", str(mountpoint)],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip().split("[", 1)[0]


def test_healthy_install_passes_then_each_fault_fails_alone(
    installed: tuple[Path, Path], helpers: ModuleType
) -> None:
    mountpoint, plan_file = installed
    assert doctor(mountpoint, plan_file) == (0, HEALTHY)

    json_run = blankslate(
        "doctor", "--plan", str(plan_file), "--root", str(mountpoint), "--format", "json"
    )
    report = json.loads(json_run.stdout)
    assert json_run.returncode == 0 and report["ok"] is True
    assert [c["check"] for c in report["checks"]] == list(HEALTHY)

    # A missing password file: only its line fails.
    password = mountpoint / "persist/passwords/admin"
    saved = password.read_bytes()
    password.unlink()
    assert doctor(mountpoint, plan_file) == (1, {**HEALTHY, "passwords": ["fail"]})
    password.write_bytes(saved)
    password.chmod(0o600)
    assert doctor(mountpoint, plan_file)[0] == 0

    # A writable blank: only its line fails.
    with helpers.mounted(main_partition(mountpoint), ("subvolid=5",)) as top:
        blank = top / btrfs_storage(PLAN).blank_snapshot
        helpers.run(["btrfs", "property", "set", "-ts", blank, "ro", "false"])
        try:
            assert doctor(mountpoint, plan_file) == (1, {**HEALTHY, "blank": ["fail"]})
        finally:
            helpers.run(["btrfs", "property", "set", "-ts", blank, "ro", "true"])
    assert doctor(mountpoint, plan_file)[0] == 0


def test_the_placeholder_key_fails_admin_keys(installed: tuple[Path, Path]) -> None:
    mountpoint, plan_file = installed
    data = json.loads(plan_file.read_text())
    data["users"][0]["authorizedKeys"] = [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderReplaceMeWithYourOwnPublicKey0 admin@x"
    ]
    plan_file.write_text(json.dumps(data))
    code, lines = doctor(mountpoint, plan_file)
    assert (code, lines["admin-keys"]) == (1, ["fail"])


def test_a_subvolume_nested_in_persist_is_named(
    installed: tuple[Path, Path], helpers: ModuleType
) -> None:
    """machined or docker's btrfs driver make subvolumes in persistPath, which a snapshot of it
    does not hold: doctor names them, and warns when persist snapshots are on."""
    mountpoint, plan_file = installed
    helpers.run(["mkdir", "-p", mountpoint / "persist/var/lib"])
    helpers.run(["btrfs", "subvolume", "create", mountpoint / "persist/var/lib/machines"])
    result = blankslate(
        "doctor", "--plan", str(plan_file), "--root", str(mountpoint), "--only", "persist-nested"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=2)[:2] == ["info", "persist-nested"]
    assert "persist/var/lib/machines" in result.stdout
    data = json.loads(plan_file.read_text())
    data["persistSnapshots"] = {
        "interval": "hourly", "keep": 24, "persist": "persist", "subvolume": "persist_snapshots"
    }  # fmt: skip
    plan_file.write_text(json.dumps(data))
    result = blankslate(
        "doctor", "--plan", str(plan_file), "--root", str(mountpoint), "--only", "persist-nested"
    )
    assert result.stdout.split(maxsplit=2)[:2] == ["warn", "persist-nested"]
    assert "missing from its snapshots" in result.stdout


def test_unmounted_persist_fails_its_line(
    installed: tuple[Path, Path], helpers: ModuleType
) -> None:
    mountpoint, plan_file = installed
    helpers.run(["umount", mountpoint / "persist"])
    code, lines = doctor(mountpoint, plan_file)
    assert code == 1
    assert lines["persist"] == ["fail"]
    # What lived in persistPath is not there either: the root's own empty directory is.
    assert lines["passwords"] == ["fail"] and lines["host-keys"] == ["fail"]
    assert lines["blank"] == ["ok"]
    result = blankslate("doctor", "--plan", str(plan_file), "--root", str(mountpoint))
    (persist,) = [line for line in result.stdout.splitlines() if line.split()[1] == "persist"]
    assert f"persistPath {mountpoint}/persist is not mounted" in persist
