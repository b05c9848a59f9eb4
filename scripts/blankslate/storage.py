"""The storage kinds behind `rollback`: one module each (storage_btrfs, storage_zfs,
storage_tmpfs, storage_none, as modules/rollback/*.nix), each implementing `Kind`
(storage_kind.py: install, diff's scan, the kept copies, doctor's checks).

`of` is the one dispatch on the plan's tagged storage value: an exhaustive `match` ending in
`assert_never`, so a new kind that is not handled here is a type error, and so is a kind module
that lacks one of `Kind`'s answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from blankslate import storage_btrfs, storage_none, storage_tmpfs, storage_zfs
from blankslate.plan import BtrfsStorage, NoStorage, Storage, TmpfsStorage, ZfsStorage

if TYPE_CHECKING:
    from blankslate.storage_kind import Kind


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
