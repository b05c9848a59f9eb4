"""rollback "tmpfs" (modules/rollback/tmpfs.nix): / is a tmpfs; with a disk, /nix and the
persisted subvolumes are on btrfs, without a root or a blank snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from blankslate import storage_btrfs
from blankslate.errors import BlankslateError
from blankslate.plan import Btrfs, BtrfsStorage, Partition, TmpfsStorage

if TYPE_CHECKING:
    from blankslate.storage_kind import Scans, T


@dataclass(frozen=True)
class TmpfsKind(storage_btrfs.PersistOnSubvolumes):
    storage: TmpfsStorage
    tools: tuple[str, ...] = storage_btrfs.TOOLS
    volumes: str = "subvolumes"

    def _layout(self) -> Btrfs:
        if self.storage.layout is None:
            raise BlankslateError("rollback 'tmpfs' without a disk has no subvolumes of ours")
        return self.storage.layout

    def describe(self, part: Partition) -> str | None:
        layout = self.storage.layout
        return (
            None if layout is None else storage_btrfs.describe_subvolumes(part, layout.subvolumes)
        )

    def extra_rows(self) -> list[list[str]]:
        layout = self.storage.layout
        if layout is None or not layout.blank_snapshot:
            return []
        return [["blank snapshot", layout.blank_snapshot, "read-only, empty root"]]

    def create(self, main: str, *, dry_run: bool) -> None:
        layout = self._layout()
        root, blank = layout.root_subvolume, layout.blank_snapshot
        pair = (root, blank) if root is not None and blank is not None else None
        storage_btrfs.create_subvolumes(main, layout.subvolumes, pair, dry_run=dry_run)

    def missing(self, main: str) -> list[str]:
        layout = self._layout()
        wanted = list(layout.subvolumes)
        if layout.blank_snapshot is not None:
            wanted.append(layout.blank_snapshot)
        return storage_btrfs.missing_subvolumes(main, wanted)

    def scan(self, scans: Scans[T]) -> T:
        return scans.live()  # nothing stores the root: it is the live tmpfs

    def btrfs_root(self) -> BtrfsStorage | str:
        return "rollback tmpfs: no btrfs root"

    def btrfs_persist(self) -> str | None:
        return None if self.storage.layout is not None else "rollback tmpfs: no btrfs persistPath"

    @property
    def platform_resets(self) -> bool:
        return False
