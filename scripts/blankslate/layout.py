"""The on-disk layout a plan describes: partitions, filesystems, subvolumes, and their mounts.

Shared by `install` (create, then mount) and `mount` (check, then mount) so both agree exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from blankslate import btrfs, disk, mounts, process, safefile, zfs
from blankslate import plan as plan_module
from blankslate.errors import BlankslateError
from blankslate.plan import Plan

STATE_FILE = Path("/run/blankslate/mounted.json")


@dataclass(frozen=True)
class Partitions:
    """The plan's partitions and the nodes they get on one disk (partition N is the Nth)."""

    nodes: tuple[tuple[plan_module.Partition, str], ...]

    def of(self, kind: plan_module.PartitionFormat) -> str | None:
        return next((node for part, node in self.nodes if part.format == kind), None)

    @property
    def main(self) -> str:
        return self.nodes[-1][1]

    @property
    def esp(self) -> str | None:
        return self.of("vfat")

    @property
    def swap(self) -> str | None:
        return self.of("swap")

    def source(self, device: str) -> str:
        """A mount table device as this disk has it: by-label names become partition nodes."""
        return next((node for part, node in self.nodes if part.device == device), device)


def partitions(plan: Plan, device: str) -> Partitions:
    assert plan.disk is not None
    return Partitions(
        tuple(
            (part, disk.partition_path(device, number))
            for number, part in enumerate(plan.disk.partitions, start=1)
        )
    )


@dataclass(frozen=True)
class Mount:
    source: str
    target: str  # as seen by the installed system: "/", "/nix", "/boot"
    fstype: str
    options: tuple[str, ...]


def planned_mounts(plan: Plan, parts: Partitions) -> list[Mount]:
    """The plan's mount table on this disk, in the plan's order (parents before children)."""
    return [Mount(parts.source(m.device), m.mount_point, m.fs_type, m.options) for m in plan.mounts]


def inside(mountpoint: Path, target: str) -> Path:
    return mountpoint / target.lstrip("/")


def mkdir_cmd(path: Path) -> list[str]:
    return ["mkdir", "-p", "--", str(path)]


# --- creating -------------------------------------------------------------------------------


def create_filesystems(plan: Plan, parts: Partitions) -> None:
    for part, node in parts.nodes:
        if part.format == "vfat":
            process.run(disk.mkfs_vfat(node, label=part.label))
        elif part.format == "swap":
            process.run(disk.mkswap(node, label=part.label))
        elif part.format == "zfs":
            process.run(zfs.zpool_create(part.label, node))
        else:
            process.run(btrfs.mkfs_btrfs(node, label=part.label))


def zfs_datasets(plan: Plan) -> list[str]:
    assert plan.zfs is not None
    return [f"{plan.zfs.pool}/{name}" for name in plan.zfs.datasets]


def create_volumes(plan: Plan, parts: Partitions) -> None:
    """Subvolumes (or datasets), then the read-only blank snapshot of the still-empty root."""
    if plan.zfs is not None:
        for name in zfs_datasets(plan):
            process.run(zfs.zfs_create(name))
        if plan.rollback == "zfs":
            process.run(zfs.zfs_snapshot(plan.zfs.root, plan.zfs.blank_snapshot))
        return
    assert plan.btrfs is not None
    with mounts.top_level(parts.main, readonly=False) as top:
        for name in plan.btrfs.subvolumes:
            process.run(btrfs.subvolume_create(top / name))
        root, blank = plan.btrfs.root_subvolume, plan.btrfs.blank_snapshot
        if root is not None and blank is not None:
            process.run(btrfs.subvolume_snapshot(top / root, top / blank, readonly=True))


# --- checking and mounting ------------------------------------------------------------------


def missing_volumes(plan: Plan, parts: Partitions) -> list[str]:
    """Subvolumes/datasets (and the blank) of the plan that the device does not carry."""
    if plan.zfs is not None:
        missing = [name for name in zfs_datasets(plan) if not _zfs_exists(name)]
        blank = f"{plan.zfs.root}@{plan.zfs.blank_snapshot}"
        if plan.rollback == "zfs" and not _zfs_exists(blank, snapshot=True):
            missing.append(blank)
        return missing
    assert plan.btrfs is not None
    wanted = list(plan.btrfs.subvolumes)
    if plan.btrfs.blank_snapshot is not None:
        wanted.append(plan.btrfs.blank_snapshot)
    with mounts.top_level(parts.main) as top:
        return [name for name in wanted if not btrfs.is_subvolume(top / name)]


def _zfs_exists(name: str, *, snapshot: bool = False) -> bool:
    found = process.run(zfs.zfs_list(name, snapshots=snapshot), check=False, capture=True)
    return found.returncode == 0


def kernel_filesystems() -> set[str]:
    try:
        lines = Path("/proc/filesystems").read_text().splitlines()
    except OSError:
        return set()
    return {line.split()[-1] for line in lines if line.strip()}


def can_mount_esp() -> bool:
    """Some kernels (containers, minimal VMs) have no vfat; the ESP is then made but not mounted."""
    return "vfat" in kernel_filesystems()


def mount_layout(
    plan: Plan, parts: Partitions, mountpoint: Path, *, with_esp: bool = True
) -> list[Mount]:
    planned = [m for m in planned_mounts(plan, parts) if with_esp or m.fstype != "vfat"]
    for mount in planned:
        target = inside(mountpoint, mount.target)
        process.run(mkdir_cmd(target))
        process.run(
            mounts.mount_cmd(mount.source, target, options=mount.options, fstype=mount.fstype)
        )
    return planned


# --- what `unmount` must undo ---------------------------------------------------------------


def remember(mountpoint: Path, *, loop: str | None, swap: str | None) -> None:
    if process.settings.dry_run:
        return
    state = _read_state()
    state[str(mountpoint.resolve())] = {"loop": loop, "swap": swap}
    safefile.write_file(STATE_FILE, json.dumps(state, indent=2), make=safefile.fixed(0o755))


def forget(mountpoint: Path) -> dict[str, str | None]:
    state = _read_state()
    entry = state.pop(str(mountpoint.resolve()), {"loop": None, "swap": None})
    if not process.settings.dry_run and STATE_FILE.exists():
        safefile.write_file(STATE_FILE, json.dumps(state, indent=2))
    return entry


def _read_state() -> dict[str, dict[str, str | None]]:
    try:
        state = json.loads(STATE_FILE.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise BlankslateError(f"{STATE_FILE}: corrupt ({error}); remove it") from None
    assert isinstance(state, dict)
    return state


def unmount_all(mountpoint: Path) -> list[str]:
    """Unmount everything at or below `mountpoint`, deepest first; undo swap and loop."""
    done = []
    for entry in mounts.mounts_below(mountpoint.resolve()):
        process.run(mounts.umount_cmd(entry.target))
        done.append(entry.target)
    undo = forget(mountpoint)
    if undo.get("swap") and undo["swap"] in disk.active_swaps():
        process.run(disk.swapoff(str(undo["swap"])))
    if undo.get("loop"):
        process.run(disk.losetup_detach(str(undo["loop"])))
    return done
