"""The plan's layout as disko's `disko.devices`, written as a Nix expression (`blankslate disko`).

Pure: plan in, text out. The same value as modules/disko/devices.nix computes for
`blankslate.disko.enable` (tests/nix/test_disko.py evaluates both for every host). Partitions
keep the plan's order (`priority`), GPT names (`label`) and filesystem labels (mkfs arguments),
so disko makes the layout `blankslate install` makes; the btrfs filesystem's postCreateHook makes
the read-only blank snapshot of the empty root, and a ZFS root dataset's takes its snapshot.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from blankslate import zfs
from blankslate.errors import BlankslateError
from blankslate.plan import Partition, Plan, parse_size

NixValue = str | int | bool | None | list["NixValue"] | dict[str, "NixValue"]

_SIZE = re.compile(r"^([0-9]+)([KMGT])?(i?B)?\Z")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*\Z")
_KEYWORDS = {"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"}
_SHELL_SAFE = re.compile(r"^[A-Za-z0-9,._+:@%/-]+\Z")
BLANK_HOOK = "disko-blank-snapshot.bash"


# --- Nix text -------------------------------------------------------------------------------


def nix_string(text: str) -> str:
    """A double-quoted Nix string that evaluates to `text`: every `$` is escaped, so no `${`
    can start an interpolation; backslash and quote are escaped, newlines written as \\n."""
    if "\0" in text:
        raise BlankslateError("a Nix string cannot hold a NUL byte")
    escapes = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(escapes.get(char, char) for char in text) + '"'


def nix_name(name: str) -> str:
    """An attribute name: bare when it is an identifier, else quoted."""
    if _IDENTIFIER.match(name) and name not in _KEYWORDS:
        return name
    return nix_string(name)


def render(value: NixValue, indent: int = 0) -> str:
    """Nix text for a JSON-like value, two spaces per level."""
    pad = "  " * (indent + 1)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return nix_string(value)
    if isinstance(value, list):
        if not value:
            return "[ ]"
        items = "".join(f"{pad}{render(item, indent + 1)}\n" for item in value)
        return f"[\n{items}{'  ' * indent}]"
    if not value:
        return "{ }"
    body = "".join(f"{pad}{nix_name(k)} = {render(v, indent + 1)};\n" for k, v in value.items())
    return f"{{\n{body}{'  ' * indent}}}"


def escape_shell_arg(arg: str) -> str:
    """nixpkgs' lib.escapeShellArg, so both renderers write the same hook text."""
    if _SHELL_SAFE.match(arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


# --- the layout -----------------------------------------------------------------------------


def sgdisk_size(size: str) -> str:
    """A plan size as disko's `size` (sgdisk units, binary): "1GiB" -> "1G"; plain bytes become
    whole KiB, as install rounds them: "1536" -> "1K"."""
    match = _SIZE.match(size)
    if match is None:
        parse_size(size)  # raises with the plan's own wording
        raise ValueError(f"bad size {size!r}")
    if match.group(2):
        return match.group(1) + match.group(2)
    return f"{int(match.group(1)) // 1024}K"


def blank_hook(root: str, blank: str) -> str:
    script = resources.files("blankslate").joinpath(BLANK_HOOK).read_text()
    return (
        f"blankslate_root={escape_shell_arg(root)}\n"
        f"blankslate_blank={escape_shell_arg(blank)}\n" + script
    )


def _mount_of(plan: Plan, device: str) -> dict[str, NixValue]:
    mount = next((m for m in plan.mounts if m.device == device), None)
    if mount is None:
        return {}
    return {"mountpoint": mount.mount_point, "mountOptions": list(mount.options)}


def _btrfs(plan: Plan, part: Partition) -> dict[str, NixValue]:
    assert plan.btrfs is not None and part.label is not None
    subvolumes: dict[str, NixValue] = {}
    for name in sorted(plan.btrfs.subvolumes):  # Nix's listToAttrs: sorted by name
        subvol = f"subvol={name}"
        mount = next(
            (
                m
                for m in plan.mounts
                if m.device == part.device and m.fs_type == "btrfs" and subvol in m.options
            ),
            None,
        )
        entry: dict[str, NixValue] = {}
        if mount is not None:
            options: list[NixValue] = [o for o in mount.options if o != subvol]
            entry = {"mountpoint": mount.mount_point, "mountOptions": options}
        subvolumes[name] = entry
    content: dict[str, NixValue] = {
        "type": "btrfs",
        "extraArgs": ["--label", part.label],
        "subvolumes": subvolumes,
    }
    root, blank = plan.btrfs.root_subvolume, plan.btrfs.blank_snapshot
    if blank is not None and root is not None:
        content["postCreateHook"] = blank_hook(root, blank)
    return content


def _content(plan: Plan, part: Partition) -> dict[str, NixValue] | None:
    if part.label is None:
        return None
    if part.format == "vfat":
        return {
            "type": "filesystem",
            "format": "vfat",
            "extraArgs": ["-F", "32", "-n", part.label],
            **_mount_of(plan, part.device),
        }
    if part.format == "swap":
        return {"type": "swap", "extraArgs": ["--label", part.label]}
    if part.format == "btrfs":
        return _btrfs(plan, part)
    return {"type": "zfs", "pool": part.label}


def _properties(options: list[str]) -> list[tuple[str, str]]:
    """["ashift=12"] -> [("ashift", "12")], as install passes them to zpool create."""
    return [(name, value) for name, _, value in (o.partition("=") for o in options)]


def _zpool(plan: Plan) -> dict[str, NixValue]:
    assert plan.zfs is not None
    datasets: dict[str, NixValue] = {}
    for name in sorted(plan.zfs.datasets):
        dataset = f"{plan.zfs.pool}/{name}"
        entry: dict[str, NixValue] = {"type": "zfs_fs", "options": {"mountpoint": "legacy"}}
        entry.update(_mount_of(plan, dataset))
        if plan.rollback == "zfs" and name == plan.zfs.root_dataset:
            snapshot = escape_shell_arg(f"{dataset}@{plan.zfs.blank_snapshot}")
            entry["postCreateHook"] = (
                f"zfs list -H -o name -t snapshot {snapshot} >/dev/null 2>&1 ||\n"
                f"  zfs snapshot {snapshot}\n"
            )
        datasets[name] = entry
    pool_options: dict[str, NixValue] = {k: v for k, v in _properties(zfs.POOL_OPTIONS)}
    fs_options: dict[str, NixValue] = {k: v for k, v in _properties(zfs.DATASET_OPTIONS)}
    return {
        plan.zfs.pool: {
            "type": "zpool",
            "options": dict(sorted(pool_options.items())),
            "rootFsOptions": dict(sorted(fs_options.items())),
            "datasets": datasets,
        }
    }


def devices(plan: Plan, disk_device: str | None = None) -> dict[str, NixValue]:
    """The value of `disko.devices`; `disk_device` replaces the plan's disk.device."""
    if plan.disk is None:
        raise BlankslateError(
            f"host {plan.host_name!r} has no disk (rollback {plan.rollback!r}: the platform "
            "owns it), nothing for disko"
        )
    device = disk_device or plan.disk.device
    if device is None:
        raise BlankslateError("the plan names no disk (disk.device is null): give --disk DEV")
    partitions: dict[str, NixValue] = {}
    for index, part in enumerate(plan.disk.partitions):
        entry: dict[str, NixValue] = {
            "priority": index + 1,
            "label": part.name,
            "type": part.type.upper(),
            "size": "100%" if part.size is None else sgdisk_size(part.size),
        }
        content = _content(plan, part)
        if content is not None:
            entry["content"] = content
        partitions[part.name] = entry
    result: dict[str, NixValue] = {
        "disk": {
            "main": {
                "type": "disk",
                "device": device,
                "content": {"type": "gpt", "partitions": partitions},
            }
        }
    }
    if plan.zfs is not None:
        result["zpool"] = _zpool(plan)
    tmpfs: dict[str, NixValue] = {
        m.mount_point: {"fsType": "tmpfs", "mountOptions": list(m.options)}
        for m in plan.mounts
        if m.fs_type == "tmpfs"
    }
    if tmpfs:
        result["nodev"] = dict(sorted(tmpfs.items()))
    return result


def expression(plan: Plan, disk_device: str | None = None) -> str:
    """A disko configuration file: `{ disko.devices = ...; }` (also a NixOS module)."""
    value: dict[str, Any] = {"disko": {"devices": devices(plan, disk_device)}}
    header = (
        f"# disko layout of host {plan.host_name}, written by `blankslate disko` from its plan.\n"
        "# A disko configuration: `disko --mode destroy,format,mount FILE`, or import it next\n"
        "# to disko's nixosModules.disko. With the blankslate modules, set\n"
        "# blankslate.disko.enable instead: it sets the same disko.devices.\n"
    )
    return header + render(value) + "\n"
