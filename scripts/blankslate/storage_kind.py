"""The protocol every storage kind module implements (`Kind`), and the audit's ways to read a
root (`Scans`), which a kind picks from.

Each rollback kind has its module (storage_btrfs, storage_zfs, storage_tmpfs, storage_none, as
modules/rollback/*.nix), and `storage.of` is the one dispatch from a plan's storage to it. What
depends on the kind (the tools and volumes `install` makes, which root `diff` scans and how,
the kept copies `roots`, `recover` and `persist` read, the checks `doctor` runs or skips) is
asked of the kind here, so that a module that lacks an answer is a type error where `of`
returns it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from blankslate.plan import BtrfsStorage, Mount, Partition, PersistSnapshots
from blankslate.snapshots import Snapshot

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Scans(Protocol[T_co]):
    """The audit's ways to read the root the next boot throws away (audit.py, suggest.py)."""

    def live(self) -> T_co:
        """Walk the live / on one filesystem, beneath its mounts: nothing stores the root."""
        ...

    def zfs_diff(self, dataset: str, snapshot: str) -> T_co:
        """`zfs diff` of the root dataset against its blank snapshot, measured on the live /."""
        ...

    def stored_root(self, subvolume: str) -> T_co:
        """The root subvolume as stored, at the top level of the btrfs filesystem."""
        ...


class Kind(Protocol):
    """What the tool does with one storage kind."""

    # --- install --------------------------------------------------------------------------

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

    # --- diff -----------------------------------------------------------------------------

    def scan(self, scans: Scans[T]) -> T:
        """Which root `diff` reads on a running system, and how: one of `scans`' ways."""
        ...

    def describe_mount(self, mount: Mount) -> str | None:
        """What `diff` says a plan's mount of the kind's volumes mounts ("dataset 'safe/log'");
        None: what it says of any mount."""
        ...

    # --- kept copies: old roots and persist snapshots -------------------------------------

    def btrfs_root(self) -> BtrfsStorage | str:
        """The root subvolume reset from the blank snapshot at every boot, the previous one
        kept as an old root (`roots`, `recover`, `diff --old-root`, and doctor's blank,
        root-age and old-roots); for a kind without one, doctor's line why those are skipped."""
        ...

    def persist_snapshots(
        self, setting: PersistSnapshots, persist_path: str, device: str | None
    ) -> AbstractContextManager[list[Snapshot]]:
        """The persist snapshots, newest first; their paths are valid inside the block.
        `device`: the btrfs filesystem's (None: the one holding persistPath)."""
        ...

    def send_command(
        self, setting: PersistSnapshots, snapshot: Snapshot, parent: Snapshot | None
    ) -> list[str]:
        """The argv that streams the persist snapshot `snapshot` (incremental from `parent`)."""
        ...

    # --- doctor ---------------------------------------------------------------------------

    def btrfs_persist(self) -> str | None:
        """None when persistPath is a btrfs subvolume, whose snapshots hold none of the
        subvolumes nested in it; else doctor's line why persist-nested is skipped."""
        ...

    @property
    def platform_resets(self) -> bool:
        """The platform, not a rollback of ours, resets / and mounts persistPath (no rollback
        record, no mount of the plan needed for it)."""
        ...
