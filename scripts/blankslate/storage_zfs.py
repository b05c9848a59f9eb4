"""rollback "zfs" (modules/rollback/zfs.nix): datasets in one pool and the blank snapshot the
root dataset is rolled back to."""

from __future__ import annotations

from dataclasses import dataclass

from blankslate import process, zfs
from blankslate.plan import Partition, ZfsStorage


def datasets(storage: ZfsStorage) -> list[str]:
    """Every dataset, pool/name."""
    return [f"{storage.pool}/{name}" for name in storage.datasets]


def _exists(name: str, *, snapshot: bool = False) -> bool:
    found = process.probe(zfs.zfs_list(name, snapshots=snapshot), check=False)
    return found.returncode == 0


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
