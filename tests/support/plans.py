"""Plan files for the CLI and plan data for the library: the built-in plan in each boot mode,
and a plan (data or `plan.Plan`) written where a command reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from blankslate import plan, plansource


def bios_partition() -> dict[str, str | None]:
    """The BIOS boot partition modules/plan.nix puts first on a bios or hybrid disk (a new
    dict each call: tests change their plans)."""
    return {
        "name": "bios",
        "type": "ef02",
        "size": "1MiB",
        "format": "none",
        "label": None,
        "device": "/dev/disk/by-partlabel/bios",
    }


def boot_plan_data(boot: str) -> dict[str, Any]:
    """The built-in plan in boot mode `boot` (uefi, bios or hybrid), as modules/plan.nix
    derives it: bios and hybrid start with the BIOS boot partition; bios boots from a plain
    /boot partition instead of an ESP."""
    data: dict[str, Any] = json.loads(plansource.default_text())
    data["disk"]["boot"] = boot
    parts = data["disk"]["partitions"]
    if boot != "uefi":
        parts.insert(0, bios_partition())
    if boot == "bios":
        parts[1].update(name="boot", type="8300")
    return data


def write_plan_json(
    directory: Path, data: dict[str, Any] | plan.Plan, name: str = "plan.json"
) -> Path:
    """`data` (or the plan's JSON) written to directory/name; returns that path."""
    path = directory / name
    path.write_text(json.dumps(data.to_json() if isinstance(data, plan.Plan) else data))
    return path
