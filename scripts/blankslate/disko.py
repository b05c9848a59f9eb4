"""The plan's layout as disko's `disko.devices`, written as a Nix expression (`blankslate disko`).

Pure: plan in, text out. Nix renders the tree once (modules/disko/devices.nix, carried in the
plan's `disko` key, the value blankslate.disko.enable sets); this module only puts `--disk` in
place of the plan's device and prints the tree as Nix text (nixtext.py), keys in disko's usual
order (`type` first) and partitions in disk order.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from blankslate import nixtext
from blankslate.errors import BlankslateError
from blankslate.plan import Plan

# Keys printed first, in this order (the rest follow, sorted): each object reads as disko's
# examples do, and as `blankslate disko` printed it when the tool rendered the tree itself.
_FIRST = (
    "disk",
    "zpool",
    "nodev",
    "priority",
    "label",
    "type",
    "device",
    "size",
    "format",
    "pool",
    "extraArgs",
    "fsType",
    "options",
    "rootFsOptions",
    "subvolumes",
    "datasets",
    "mountpoint",
    "mountOptions",
    "content",
    "postCreateHook",
)
_RANK = {key: rank for rank, key in enumerate(_FIRST)}


def key_order(path: tuple[str, ...], value: dict[str, nixtext.NixValue]) -> Sequence[str]:
    """disko's partitions by `priority` (disk order); elsewhere `_FIRST`, then sorted. Under
    `options` and the like (data, not disko's own keys) simply sorted."""
    if path[-1:] == ("partitions",):
        return sorted(value, key=lambda k: (_priority(value[k]), k))
    if path[-1:] in {("options",), ("rootFsOptions",), ("subvolumes",), ("datasets",)}:
        return sorted(value)
    return sorted(value, key=lambda k: (_RANK.get(k, len(_RANK)), k))


def _priority(partition: nixtext.NixValue) -> int:
    if isinstance(partition, dict):
        priority = partition.get("priority")
        if isinstance(priority, int) and not isinstance(priority, bool):
            return priority
    return 2**63


def devices(plan: Plan, disk_device: str | None = None) -> dict[str, Any]:
    """The value of `disko.devices`; `disk_device` replaces the plan's disk.device."""
    if plan.disk is None:
        raise BlankslateError(
            f"host {plan.host_name!r} has no disk (rollback {plan.rollback!r}: the platform "
            "owns it), nothing for disko"
        )
    if plan.disko is None:
        raise BlankslateError(
            f"the plan of host {plan.host_name!r} carries no disko tree (it was made by an "
            "older blankslate): make it again, `blankslate plan --host NAME > FILE`, or give "
            "--host NAME"
        )
    device = disk_device or plan.disk.device
    if device is None:
        raise BlankslateError("the plan names no disk (disk.device is null): give --disk DEV")
    tree = copy.deepcopy(plan.disko)
    tree["disk"]["main"]["device"] = device  # there: plan.py checked it
    return tree


def expression(plan: Plan, disk_device: str | None = None) -> str:
    """A disko configuration file: `{ disko.devices = ...; }` (also a NixOS module)."""
    value = {"disko": {"devices": devices(plan, disk_device)}}
    header = (
        f"# disko layout of host {plan.host_name}, written by `blankslate disko` from its plan.\n"
        "# A disko configuration: `disko --mode destroy,format,mount FILE`, or import it next\n"
        "# to disko's nixosModules.disko. With the blankslate modules, set\n"
        "# blankslate.disko.enable instead: it sets the same disko.devices.\n"
    )
    return header + nixtext.render(value, key_order) + "\n"
