"""rollback "none" (modules/rollback/none.nix): the platform resets / (or nothing does); the tool
makes no storage."""

from __future__ import annotations

from dataclasses import dataclass

from blankslate import storage_btrfs
from blankslate.errors import BlankslateError
from blankslate.plan import NoStorage, Partition


@dataclass(frozen=True)
class NoKind:
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
