"""A host `blankslate new-host` writes evaluates: for each rollback kind and boot mode, in a copy
of the checkout, against the NixOS model, with the admin's key and the chosen disk in the plan."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from blankslate import newhost

from ..support.nixeval import REPO

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ3Yr8QJ5wxBcz0ZNrqGdM1JW6rnWOvK2ykXf6wzM1c me@laptop"
IGNORED = shutil.ignore_patterns(".git", ".venv", "*.img", "__pycache__", ".*_cache", ".hypothesis")


@pytest.mark.parametrize(
    ("rollback", "boot"),
    [("btrfs", "uefi"), ("btrfs", "hybrid"), ("zfs", "bios"), ("tmpfs", "uefi"), ("none", "uefi")],
)
def test_a_new_host_evaluates(
    rollback: newhost.Rollback, boot: newhost.Boot, tmp_path: Path, nix_paths: Any
) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=IGNORED)
    disk = None if rollback == "none" else "/dev/disk/by-id/virtio-web1"
    choices = newhost.HostChoices("web1", (KEY,), rollback, disk, boot, "Europe/Prague")
    newhost.new_host(checkout, choices)
    expr = """
      let inherit (import ./tests/nix/eval.nix { host = "web1"; }) config failedAssertions; in {
        plan = config.blankslate.plan;
        keys = config.blankslate.users.admin.authorizedKeys;
        zone = config.time.timeZone;
        inherit failedAssertions;
      }"""
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "--readonly-mode", "-E", expr],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    value = json.loads(result.stdout)
    assert value["failedAssertions"] == []
    assert value["keys"] == [KEY]
    assert value["zone"] == "Europe/Prague"
    assert value["plan"]["hostName"] == "web1"
    assert value["plan"]["rollback"] == rollback
    if disk is not None:
        assert value["plan"]["disk"]["device"] == disk
        assert value["plan"]["disk"]["boot"] == boot
