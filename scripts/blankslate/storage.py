"""The storage kinds behind `rollback`: one module each (storage_btrfs, storage_zfs,
storage_tmpfs, storage_none, as modules/rollback/*.nix), each implementing `Kind`.

`of` is the one dispatch on the plan's tagged storage value: an exhaustive `match` ending in
`assert_never`, so a new kind that is not handled here is a type error.
"""

from __future__ import annotations

from typing import Protocol, assert_never

from blankslate import storage_btrfs, storage_none, storage_tmpfs, storage_zfs
from blankslate.plan import BtrfsStorage, NoStorage, Partition, Storage, TmpfsStorage, ZfsStorage


class Kind(Protocol):
    """What the tool does with one storage kind on a disk it installs."""

    @property
    def tools(self) -> tuple[str, ...]:
        """The programs `install` needs to make the kind's filesystem and volumes."""
        ...

    @property
    def volumes(self) -> str:
        """What its volumes are called: "subvolumes" or "datasets"."""
        ...

    def describe(self, part: Partition) -> str | None:
        """How `install` describes `part` when the kind makes it; None: not the kind's."""
        ...

    def extra_rows(self) -> list[list[str]]:
        """`install`'s planned actions after the partitions (the blank snapshot)."""
        ...

    def create(self, main: str, *, dry_run: bool) -> None:
        """The volumes on the main partition's node `main`, then the blank snapshot."""
        ...

    def missing(self, main: str) -> list[str]:
        """The volumes (and the blank snapshot) that `main` does not carry."""
        ...


def of(storage: Storage) -> Kind:
    """The module of the plan's storage kind."""
    match storage:
        case BtrfsStorage():
            return storage_btrfs.BtrfsKind(storage)
        case ZfsStorage():
            return storage_zfs.ZfsKind(storage)
        case TmpfsStorage():
            return storage_tmpfs.TmpfsKind(storage)
        case NoStorage():
            return storage_none.NoKind(storage)
        case _:
            assert_never(storage)
