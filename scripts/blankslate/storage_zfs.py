"""rollback "zfs" (modules/rollback/zfs.nix): datasets in one pool and the blank snapshot the
root dataset is rolled back to; persist snapshots are snapshots of persistPath's dataset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blankslate import process, zfs
from blankslate.plan import BtrfsStorage, Mount, Partition, PersistSnapshots, ZfsStorage

if TYPE_CHECKING:
    from blankslate.snapshots import Snapshot
    from blankslate.storage_kind import Scans, T


def datasets(storage: ZfsStorage) -> list[str]:
    """Every dataset, pool/name."""
    return [f"{storage.pool}/{name}" for name in storage.datasets]


def _exists(name: str, *, snapshot: bool = False) -> bool:
    found = process.probe(zfs.zfs_list(name, snapshots=snapshot), check=False)
    return found.returncode == 0


@contextmanager
def _listed(dataset: str, mountpoint: str) -> Iterator[list[Snapshot]]:
    from blankslate import snapshots  # loaded to read kept copies only: diff starts faster

    yield snapshots.zfs_listing(dataset, mountpoint)


@dataclass(frozen=True)
class ZfsKind:
    storage: ZfsStorage
    tools: tuple[str, ...] = ("zpool", "zfs")
    volumes: str = "datasets"

    def describe(self, part: Partition) -> str | None:
        if part.format != "zfs":
            return None
        return f"zpool {part.label}: {', '.join(self.storage.datasets)}"

    def extra_rows(self) -> list[list[str]]:
        return []

    def create(self, main: str, *, dry_run: bool) -> None:
        del main  # the pool is made on it with the partitions
        for name in datasets(self.storage):
            process.run(zfs.zfs_create(name), dry_run=dry_run)
        snapshot = zfs.zfs_snapshot(self.storage.root, self.storage.blank_snapshot)
        process.run(snapshot, dry_run=dry_run)

    def missing(self, main: str) -> list[str]:
        del main
        missing = [name for name in datasets(self.storage) if not _exists(name)]
        blank = f"{self.storage.root}@{self.storage.blank_snapshot}"
        if not _exists(blank, snapshot=True):
            missing.append(blank)
        return missing

    def scan(self, scans: Scans[T]) -> T:
        # The paths `zfs diff` gives are on the root dataset, measured on the live /.
        return scans.zfs_diff(self.storage.root, self.storage.blank_snapshot)

    def describe_mount(self, mount: Mount) -> str | None:
        if mount.fs_type != "zfs":
            return None
        return f"dataset {mount.device.removeprefix(self.storage.pool + '/')!r}"

    def btrfs_root(self) -> BtrfsStorage | str:
        return "rollback zfs: no btrfs root"

    def persist_snapshots(
        self, setting: PersistSnapshots, persist_path: str, device: str | None
    ) -> AbstractContextManager[list[Snapshot]]:
        del device  # snapshots of a dataset: no filesystem to mount
        return _listed(setting.persist, persist_path)

    def send_command(
        self, setting: PersistSnapshots, snapshot: Snapshot, parent: Snapshot | None
    ) -> list[str]:
        from blankslate.snapshots import ZFS_PREFIX

        full = f"{setting.persist}@{ZFS_PREFIX}{snapshot.name}"
        return zfs.send(full, None if parent is None else f"@{ZFS_PREFIX}{parent.name}")

    def btrfs_persist(self) -> str | None:
        return "rollback zfs: no btrfs persistPath"

    @property
    def platform_resets(self) -> bool:
        return False
