"""The on-disk layout a plan describes: partitions, filesystems, subvolumes, and their mounts.

Shared by `install` (create, then mount) and `mount` (check, then mount) so both agree exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from blankslate import btrfs, disk, mounts, process, safefile, zfs
from blankslate.errors import BlankslateError
from blankslate.plan import Plan

STATE_FILE = Path("/run/blankslate/mounted.json")


@dataclass(frozen=True)
class Partitions:
    esp: str
    swap: str | None
    main: str


def partitions(plan: Plan, device: str) -> Partitions:
    assert plan.disk is not None
    has_swap = plan.disk.swap_bytes > 0
    return Partitions(
        esp=disk.partition_path(device, 1),
        swap=disk.partition_path(device, 2) if has_swap else None,
        main=disk.partition_path(device, 3 if has_swap else 2),
    )


@dataclass(frozen=True)
class Mount:
    source: str
    target: str  # as seen by the installed system: "/", "/nix", "/boot"
    fstype: str
    options: tuple[str, ...]


def planned_mounts(plan: Plan, parts: Partitions) -> list[Mount]:
    """Every mount of the layout, parents before children."""
    planned: list[Mount] = []
    if plan.tmpfs is not None:
        planned.append(Mount("none", "/", "tmpfs", ("mode=755", f"size={plan.tmpfs.size}")))
    if plan.btrfs is not None:
        for sub in plan.btrfs.subvolumes:
            options = (f"subvol={sub.name}", *sub.options)
            planned.append(Mount(parts.main, sub.mountpoint, "btrfs", options))
    if plan.zfs is not None:
        if plan.rollback == "zfs":
            planned.append(Mount(plan.zfs.root, "/", "zfs", ()))
        for dataset in plan.zfs.datasets:
            planned.append(Mount(f"{plan.zfs.pool}/{dataset.name}", dataset.mountpoint, "zfs", ()))
    planned.append(Mount(parts.esp, "/boot", "vfat", ("fmask=0077", "dmask=0077")))
    return sorted(planned, key=lambda mount: (mount.target != "/", mount.target.count("/")))


def inside(mountpoint: Path, target: str) -> Path:
    return mountpoint / target.lstrip("/")


def mkdir_cmd(path: Path) -> list[str]:
    return ["mkdir", "-p", "--", str(path)]


# --- creating -------------------------------------------------------------------------------


def create_filesystems(plan: Plan, parts: Partitions) -> None:
    assert plan.disk is not None
    process.run(disk.mkfs_vfat(parts.esp))
    if parts.swap:
        process.run(disk.mkswap(parts.swap))
    if plan.zfs is not None:
        process.run(zfs.zpool_create(plan.zfs.pool, parts.main))
    else:
        process.run(btrfs.mkfs_btrfs(parts.main, label=plan.disk.label))


def create_volumes(plan: Plan, parts: Partitions) -> None:
    """Subvolumes (or datasets), then the read-only blank snapshot of the still-empty root."""
    if plan.zfs is not None:
        names = [plan.zfs.root] if plan.rollback == "zfs" else []
        names += [f"{plan.zfs.pool}/{dataset.name}" for dataset in plan.zfs.datasets]
        for name in names:
            process.run(zfs.zfs_create(name))
        if plan.rollback == "zfs":
            process.run(zfs.zfs_snapshot(plan.zfs.root, plan.zfs.blank_snapshot))
        return
    assert plan.btrfs is not None
    with mounts.top_level(parts.main, readonly=False) as top:
        for sub in plan.btrfs.subvolumes:
            process.run(btrfs.subvolume_create(top / sub.name))
        root, blank = plan.btrfs.root_subvolume, plan.btrfs.blank_snapshot
        if root is not None and blank is not None:
            process.run(btrfs.subvolume_snapshot(top / root, top / blank, readonly=True))


# --- checking and mounting ------------------------------------------------------------------


def missing_volumes(plan: Plan, parts: Partitions) -> list[str]:
    """Subvolumes/datasets (and the blank) of the plan that the device does not carry."""
    if plan.zfs is not None:
        wanted = [plan.zfs.root] if plan.rollback == "zfs" else []
        wanted += [f"{plan.zfs.pool}/{dataset.name}" for dataset in plan.zfs.datasets]
        missing = [name for name in wanted if not _zfs_exists(name)]
        blank = f"{plan.zfs.root}@{plan.zfs.blank_snapshot}"
        if plan.rollback == "zfs" and not _zfs_exists(blank, snapshot=True):
            missing.append(blank)
        return missing
    assert plan.btrfs is not None
    wanted = [sub.name for sub in plan.btrfs.subvolumes]
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
