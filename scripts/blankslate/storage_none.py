"""rollback "none" (modules/rollback/none.nix): the platform resets / (or nothing does); the tool
makes no storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from blankslate import storage_btrfs
from blankslate.errors import BlankslateError
from blankslate.plan import BtrfsStorage, NoStorage, Partition

if TYPE_CHECKING:
    from blankslate.storage_kind import Scans, T


@dataclass(frozen=True)
class NoKind(storage_btrfs.PersistOnSubvolumes):
    storage: NoStorage
    tools: tuple[str, ...] = storage_btrfs.TOOLS  # what install has always asked for
    volumes: str = "subvolumes"

    def describe(self, part: Partition) -> str | None:
        del part
        return None

    def extra_rows(self) -> list[list[str]]:
        return []

    def create(self, main: str, *, dry_run: bool) -> None:
        del main, dry_run
        raise BlankslateError("rollback 'none' has no subvolumes or datasets to make")

    def missing(self, main: str) -> list[str]:
        del main
        raise BlankslateError("rollback 'none' has no subvolumes or datasets to check")

    def scan(self, scans: Scans[T]) -> T:
        return scans.live()

    def btrfs_root(self) -> BtrfsStorage | str:
        return "rollback none: no btrfs root"

    def btrfs_persist(self) -> str | None:
        return "rollback none: no btrfs persistPath"

    @property
    def platform_resets(self) -> bool:
        return True  # no rollback record, and persistPath may be the platform's mount
