"""rollback "btrfs" (modules/rollback/btrfs.nix): subvolumes on one btrfs partition and the
read-only blank snapshot the root is reset from, the previous root kept as an old root. The
subvolume helpers (and those of the persist snapshots) serve tmpfs too."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blankslate import btrfs, mounts, process
from blankslate.plan import BtrfsStorage, Mount, Partition, PersistSnapshots

if TYPE_CHECKING:
    from blankslate.snapshots import Snapshot
    from blankslate.storage_kind import Scans, T

TOOLS = ("mkfs.btrfs", "btrfs")


def describe_subvolumes(part: Partition, subvolumes: tuple[str, ...]) -> str | None:
    if part.format != "btrfs":
        return None
    return f"btrfs, label {part.label}: {', '.join(subvolumes)}"


def create_subvolumes(
    main: str, subvolumes: tuple[str, ...], blank: tuple[str, str] | None, *, dry_run: bool
) -> None:
    """Each subvolume, then `blank`'s (root, snapshot): a read-only snapshot of the empty root."""
    with mounts.top_level(main, readonly=False, dry_run=dry_run) as top:
        for name in subvolumes:
            process.run(btrfs.subvolume_create(top / name), dry_run=dry_run)
        if blank is not None:
            root, snapshot = blank
            process.run(
                btrfs.subvolume_snapshot(top / root, top / snapshot, readonly=True), dry_run=dry_run
            )


def missing_subvolumes(main: str, wanted: list[str]) -> list[str]:
    with mounts.top_level(main) as top:
        return [name for name in wanted if not btrfs.is_subvolume(top / name)]


@contextmanager
def subvolume_snapshots(
    setting: PersistSnapshots, persist_path: str, device: str | None
) -> Iterator[list[Snapshot]]:
    """The persist snapshots in their subvolume at the top level of the btrfs filesystem
    (`device`, else the one holding persistPath), mounted read-only while the block runs."""
    from blankslate import snapshots  # loaded to read kept copies only: diff starts faster

    assert setting.subvolume is not None  # plan validation: btrfs has one
    with mounts.top_level(mounts.backing_device(persist_path) if device is None else device) as top:
        yield snapshots.listing(top, setting.subvolume)


def send_subvolume(snapshot: Snapshot, parent: Snapshot | None) -> list[str]:
    return btrfs.send(snapshot.path, None if parent is None else parent.path)


class PersistOnSubvolumes:
    """What the kinds whose persistPath is a btrfs subvolume share (btrfs, tmpfs; none in
    name only: plan validation gives its plans no persist snapshots): the persist snapshots
    are read-only subvolumes, sent with `btrfs send`, and a mount is said as any mount is."""

    def describe_mount(self, mount: Mount) -> str | None:
        del mount
        return None

    def persist_snapshots(
        self, setting: PersistSnapshots, persist_path: str, device: str | None
    ) -> AbstractContextManager[list[Snapshot]]:
        return subvolume_snapshots(setting, persist_path, device)

    def send_command(
        self, setting: PersistSnapshots, snapshot: Snapshot, parent: Snapshot | None
    ) -> list[str]:
        del setting
        return send_subvolume(snapshot, parent)


@dataclass(frozen=True)
class BtrfsKind(PersistOnSubvolumes):
    storage: BtrfsStorage
    tools: tuple[str, ...] = TOOLS
    volumes: str = "subvolumes"

    def describe(self, part: Partition) -> str | None:
        return describe_subvolumes(part, self.storage.subvolumes)

    def extra_rows(self) -> list[list[str]]:
        return [["blank snapshot", self.storage.blank_snapshot, "read-only, empty root"]]

    def create(self, main: str, *, dry_run: bool) -> None:
        blank = (self.storage.root_subvolume, self.storage.blank_snapshot)
        create_subvolumes(main, self.storage.subvolumes, blank, dry_run=dry_run)

    def missing(self, main: str) -> list[str]:
        wanted = [*self.storage.subvolumes, self.storage.blank_snapshot]
        return missing_subvolumes(main, wanted)

    def scan(self, scans: Scans[T]) -> T:
        return scans.stored_root(self.storage.root_subvolume)

    def btrfs_root(self) -> BtrfsStorage | str:
        return self.storage

    def btrfs_persist(self) -> str | None:
        return None

    @property
    def platform_resets(self) -> bool:
        return False
