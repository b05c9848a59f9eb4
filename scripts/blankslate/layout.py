"""The on-disk layout a plan describes: partitions, filesystems, subvolumes, and their mounts.

Shared by `install` (create, then mount) and `mount` (check, then mount) so both agree exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blankslate import btrfs, disk, mounts, paths, process, safefile, storage, ui, zfs
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


def mkdir_cmd(path: Path) -> list[str]:
    return ["mkdir", "-p", "--", str(path)]


# --- creating -------------------------------------------------------------------------------


def create_filesystems(plan: Plan, parts: Partitions, *, dry_run: bool) -> None:
    for part, node in parts.nodes:
        if part.label is None:  # the BIOS boot partition: GRUB writes it raw
            continue
        if part.format == "vfat":
            process.run(disk.mkfs_vfat(node, label=part.label), dry_run=dry_run)
        elif part.format == "swap":
            process.run(disk.mkswap(node, label=part.label), dry_run=dry_run)
        elif part.format == "zfs":
            process.run(zfs.zpool_create(part.label, node), dry_run=dry_run)
        else:
            process.run(btrfs.mkfs_btrfs(node, label=part.label), dry_run=dry_run)


def create_volumes(plan: Plan, parts: Partitions, *, dry_run: bool) -> None:
    """Subvolumes (or datasets), then the read-only blank snapshot of the still-empty root."""
    storage.of(plan.storage).create(parts.main, dry_run=dry_run)


# --- checking and mounting ------------------------------------------------------------------


def missing_volumes(plan: Plan, parts: Partitions) -> list[str]:
    """Subvolumes/datasets (and the blank) of the plan that the device does not carry."""
    return storage.of(plan.storage).missing(parts.main)


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
    plan: Plan, parts: Partitions, mountpoint: Path, *, with_esp: bool = True, dry_run: bool
) -> list[Mount]:
    """Mount the plan's table below `mountpoint`, recording each mount as it is made (one
    interrupted by Ctrl-C after the kernel made it too), so `unmount` can take it down."""
    planned = [m for m in planned_mounts(plan, parts) if with_esp or m.fstype != "vfat"]
    for mount in planned:
        target = paths.inside(mountpoint, mount.target)
        process.run(mkdir_cmd(target), dry_run=dry_run)
        record = MountRecord(os.path.realpath(target), mount.source, mount.fstype)
        # Recorded before the kernel makes it: a SIGKILL right after the mount still leaves a
        # record that `unmount` acts on; a pending record that was never mounted is dropped.
        remember_mount(mountpoint, dataclasses.replace(record, pending=True), dry_run=dry_run)
        try:
            process.run(
                mounts.mount_cmd(mount.source, target, options=mount.options, fstype=mount.fstype),
                dry_run=dry_run,
            )
        except BaseException:
            if not os.path.ismount(target):
                forget_mount(mountpoint, record.target, dry_run=dry_run)
            raise
        remember_mount(mountpoint, record, dry_run=dry_run)
    return planned


# --- what `unmount` must undo ---------------------------------------------------------------
#
# The record (STATE_FILE, one entry per mountpoint) names each mount blankslate made (target and
# source) and the loop device it attached with the identity of its backing file; `unmount`
# checks each against the live system before it acts, and acts on nothing else. Every change
# is a read-modify-write under an flock on the lock file next to it.


@dataclass(frozen=True)
class LoopRecord:
    device: str
    backing_file: str
    st_dev: int
    st_ino: int

    @classmethod
    def of(cls, device: str, image: Path) -> LoopRecord:
        info = os.stat(image)
        return cls(device, str(image), info.st_dev, info.st_ino)

    def mismatch(self) -> str | None:
        """Why the loop device is not (any more) the one recorded, or None when it is."""
        backing = disk.loop_backing_file(self.device)
        if backing is None:
            return f"{self.device} is not attached"
        if backing != self.backing_file:
            return f"{self.device} now backs {backing}"
        try:
            info = os.stat(self.backing_file)
        except OSError:
            return f"{self.backing_file} is gone"
        if (info.st_dev, info.st_ino) != (self.st_dev, self.st_ino):
            return f"{self.backing_file} is another file now, not the recorded {self.backing_file}"
        return None

    def carries(self, source: str) -> bool:
        return source == self.device or source.startswith(f"{self.device}p")


@dataclass(frozen=True)
class MountRecord:
    target: str
    source: str  # as given to mount: /dev/loop3p3, tmpfs, rpool/local/root
    fstype: str
    pending: bool = False  # recorded before the mount command ran; not known to be made

    def matches(self, entry: mounts.MountEntry) -> bool:
        return entry.fstype == self.fstype and (
            entry.device == self.source or mounts.same_device(entry.device, self.source)
        )


@dataclass
class Record:
    mounts: list[MountRecord] = field(default_factory=list)
    loop: LoopRecord | None = None
    swap: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Record:
        try:
            loop = data["loop"]
            return cls(
                [MountRecord(**row) for row in data["mounts"]],
                None if loop is None else LoopRecord(**loop),
                data["swap"],
            )
        except (KeyError, TypeError) as error:
            raise BlankslateError(
                f"{STATE_FILE}: an entry blankslate cannot read ({error}); unmount by hand "
                "and remove it"
            ) from None


@contextlib.contextmanager
def _locked() -> Iterator[dict[str, Any]]:
    """The record, read under an exclusive lock held until the block ends."""
    directory = safefile.open_directory(STATE_FILE.parent, make=safefile.fixed(0o755))
    with safefile.held(directory):
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(f"{STATE_FILE.stem}.lock", flags, 0o600, dir_fd=directory.fd)
        except OSError as error:
            raise BlankslateError(f"cannot lock {STATE_FILE}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield _read_state()
        finally:
            os.close(fd)


def _write_state(state: dict[str, Any]) -> None:
    safefile.write_file(STATE_FILE, json.dumps(state, indent=2), mode=0o600)


def _read_state() -> dict[str, Any]:
    try:
        state = json.loads(STATE_FILE.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise BlankslateError(f"{STATE_FILE}: corrupt ({error}); remove it") from None
    if not isinstance(state, dict):
        raise BlankslateError(f"{STATE_FILE}: corrupt (not an object); remove it")
    return state


def _key(mountpoint: Path) -> str:
    return str(mountpoint.resolve())


def _change(mountpoint: Path, change: Callable[[Record], None], *, dry_run: bool) -> None:
    if dry_run:
        return
    with _locked() as state:
        key = _key(mountpoint)
        record = Record.from_json(state[key]) if key in state else Record()
        change(record)
        state[key] = record.to_json()
        _write_state(state)


def remember(
    mountpoint: Path, *, loop: LoopRecord | None, swap: str | None, dry_run: bool = False
) -> None:
    """A fresh record for `mountpoint`: what was attached, before anything is mounted."""

    def start(record: Record) -> None:
        record.mounts, record.loop, record.swap = [], loop, swap

    _change(mountpoint, start, dry_run=dry_run)


def remember_mount(mountpoint: Path, mount: MountRecord, *, dry_run: bool = False) -> None:
    """Record `mount`, in place of a record of the same target (its pending one)."""

    def put(record: Record) -> None:
        record.mounts = [m for m in record.mounts if m.target != mount.target] + [mount]

    _change(mountpoint, put, dry_run=dry_run)


def forget_mount(mountpoint: Path, target: str, *, dry_run: bool = False) -> None:
    def drop(record: Record) -> None:
        record.mounts = [m for m in record.mounts if m.target != target]

    _change(mountpoint, drop, dry_run=dry_run)


def remember_swap(mountpoint: Path, swap: str | None, *, dry_run: bool = False) -> None:
    def set_swap(record: Record) -> None:
        record.swap = swap

    _change(mountpoint, set_swap, dry_run=dry_run)


def recorded(mountpoint: Path) -> Record | None:
    entry = _read_state().get(_key(mountpoint))
    return None if entry is None else Record.from_json(entry)


def unmount_all(mountpoint: Path) -> list[str]:
    """Undo what blankslate recorded at `mountpoint`, each item checked against the live system
    first: its mounts deepest first, the swap, the loop device. What no longer matches is
    skipped with a warning; a mount it did not make below one of its own refuses the lot."""
    base = mountpoint.resolve()
    if base == Path("/"):
        raise BlankslateError("refusing to unmount /: give the --root the layout is on")
    with _locked() as state:
        if _key(base) not in state:
            raise BlankslateError(
                f"nothing recorded at {base}: blankslate mounted nothing there ({STATE_FILE})"
            )
        record = Record.from_json(state[_key(base)])
        ours = _verified_mounts(record, base)
        done: list[str] = []
        try:
            for target in ours:
                process.run(mounts.umount_cmd(target), dry_run=False)
                done.append(target)
        finally:
            record.mounts = [m for m in record.mounts if m.target not in done]
            state[_key(base)] = record.to_json()
            _write_state(state)
        if record.swap and record.swap in disk.active_swaps():
            process.run(disk.swapoff(record.swap), dry_run=False)
        if record.loop is not None and record.loop.mismatch() is None:
            process.run(disk.losetup_detach(record.loop.device), dry_run=False)
        del state[_key(base)]
        _write_state(state)
    return done


def _verified_mounts(record: Record, base: Path) -> list[str]:
    """The recorded mounts still in place, deepest first; warnings for the others."""
    live = mounts.mounts_below(base)
    # Within one target findmnt lists in mount order (the sort keeps it): the last is on top.
    top = {entry.target: entry for entry in live}
    loop_problem = record.loop.mismatch() if record.loop is not None else None
    if loop_problem is not None:
        ui.warn(f"{loop_problem} (not the loop device blankslate attached): left alone")
    ours: list[str] = []
    for mount in record.mounts:
        entry = top.get(mount.target)
        if entry is None and mount.pending:
            continue  # interrupted before its mount was made
        if entry is None:
            ui.warn(f"{mount.target} is no longer mounted; skipped")
        elif not mount.matches(entry):
            ui.warn(
                f"{mount.target} is mounted from {entry.source} now, not {mount.source} "
                "as recorded: left alone"
            )
        elif loop_problem is not None and record.loop and record.loop.carries(mount.source):
            ui.warn(
                f"{mount.target} is on {record.loop.device}, not the recorded image: left alone"
            )
        elif mount.target not in ours:
            ours.append(mount.target)
    kept = {id(top[target]) for target in ours}
    for entry in live:
        if id(entry) not in kept and any(
            paths.is_under(target, entry.target, strictly=True) for target in ours
        ):
            raise BlankslateError(
                f"{entry.target} is mounted below {base} and blankslate did not mount it: "
                "unmount it first (nothing was unmounted)"
            )
    order = {target: index for index, target in enumerate(ours)}
    return sorted(ours, key=lambda target: (-target.count("/"), -order[target]))
