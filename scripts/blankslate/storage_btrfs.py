"""rollback "btrfs" (modules/rollback/btrfs.nix): subvolumes on one btrfs partition and the
read-only blank snapshot the root is reset from. The subvolume helpers serve tmpfs too."""

from __future__ import annotations

from dataclasses import dataclass

from blankslate import btrfs, mounts, process
from blankslate.plan import BtrfsStorage, Partition

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


@dataclass(frozen=True)
class BtrfsKind:
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
