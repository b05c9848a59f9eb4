"""modules/snapshots/persist.nix: the options, the service and timer, the plan's
persistSnapshots, and the store directory that carries the scripts with their library."""

from __future__ import annotations

import shlex
from typing import Any

SERVICE = "config.systemd.services.blankslate-persist-snapshot"
TIMER = "config.systemd.timers.blankslate-persist-snapshot"
ON = '{ blankslate.persistSnapshots = { interval = "hourly"; keep = 5; }; }'


def test_off_by_default(host_eval: Any) -> None:
    assert host_eval("example", "config.blankslate.plan.persistSnapshots") is None
    names = "builtins.attrNames config.systemd.{}"
    assert "blankslate-persist-snapshot" not in host_eval("example", names.format("services"))
    assert "blankslate-persist-snapshot" not in host_eval("example", names.format("timers"))


def test_btrfs_service_timer_and_plan(host_eval: Any) -> None:
    plan = host_eval("example", "config.blankslate.plan.persistSnapshots", ON)
    assert plan == {
        "interval": "hourly",
        "keep": 5,
        "persist": "persist",
        "subvolume": "persist_snapshots",
    }
    unit = host_eval("example", SERVICE, ON)
    command = shlex.split(unit["serviceConfig"]["ExecStart"])
    assert command[0].endswith("-bash/bin/bash")
    assert command[1].startswith("/nix/store/")
    assert command[1].endswith("-blankslate-scripts/snapshots/btrfs-persist-snapshot.bash")
    assert command[2:] == ["/dev/disk/by-label/nixos", "persist", "persist_snapshots", "5"]
    assert unit["serviceConfig"]["Type"] == "oneshot"
    assert unit["serviceConfig"]["PrivateMounts"] is True
    assert unit["wantedBy"] == []  # the timer starts it
    assert "local-fs.target" in unit["after"]
    tools = {path.split("-", 1)[1] for path in unit["path"]}
    assert {"coreutils", "util-linux", "btrfs-progs", "findutils"} <= tools
    timer = host_eval("example", TIMER, ON)
    assert timer["wantedBy"] == ["timers.target"]
    assert timer["timerConfig"] == {"OnCalendar": "hourly", "Persistent": True}


def test_zfs_service(host_eval: Any) -> None:
    plan = host_eval("zfs", "config.blankslate.plan.persistSnapshots", ON)
    assert plan["persist"] == "rpool/safe/persist" and plan["subvolume"] is None
    unit = host_eval("zfs", SERVICE, ON)
    command = shlex.split(unit["serviceConfig"]["ExecStart"])
    assert command[1].endswith("/snapshots/zfs-persist-snapshot.bash")
    assert command[2:] == ["rpool/safe/persist", "5"]
    assert any(path.endswith("-zfs") for path in unit["path"])


def test_the_script_directory_holds_the_library(nix_eval: Any) -> None:
    """scriptDir keeps the named files at their places (and the directories above them)."""
    expr = (
        "let blib = import ./modules/lib.nix { lib = import <nixpkgs/lib>; }; "
        'keep = blib.inScriptDir ./modules [ "rollback/kept.bash" '
        '"snapshots/btrfs-persist-snapshot.bash" ]; in map (p: keep (toString p)) '
        "[ ./modules/rollback ./modules/rollback/kept.bash ./modules/snapshots "
        "./modules/snapshots/btrfs-persist-snapshot.bash ./modules/rollback/btrfs.nix "
        "./modules/snapshots/persist.nix ./modules/guard ]"
    )
    assert nix_eval(expr) == [True, True, True, True, False, False, False]


def test_no_subvolume_of_its_own_fails_the_plan(nix_run: Any) -> None:
    extra = (
        '{ lib, ... }: { blankslate.persistSnapshots.interval = "daily"; '
        'blankslate.persistPath = lib.mkForce "/srv/persist"; }'
    )
    expr = (
        'let e = import ./tests/nix/eval.nix { host = "example"; '
        f"extraModules = [ ({extra}) ]; }}; in e.config.blankslate.plan"
    )
    result = nix_run(expr)
    assert result.returncode != 0
    assert "persistSnapshots needs persistPath /srv/persist on a btrfs subvolume" in result.stderr


def test_snapshot_subvolume_must_not_nest(host_eval: Any) -> None:
    extra = (
        '{ blankslate.persistSnapshots = { interval = "daily"; subvolume = "persist/snaps"; }; }'
    )
    errors = host_eval("example", "config.blankslate._layoutErrors", extra)
    assert any("persistSnapshots.subvolume" in error for error in errors)
