"""Kept copies: the Python twin of modules/rollback/kept.bash.

The rollback keeps the old roots of / (`<oldRoots.subvolume>/<name>` at the btrfs top level) and
the persist snapshot timer keeps read-only snapshots of persistPath (a subvolume of its own on
btrfs, `<dataset>@blankslate-<name>` on ZFS). kept.bash names both alike: the UTC time they were
made, `%Y-%m-%dT%H:%M:%SZ`, after a prefix (`kept_prefix`: empty on btrfs, `blankslate-` for the
ZFS snapshots), with `.N` appended when the name was taken. This module reads them back: one
entry type (`Snapshot`), one naming rule (`parse_name`), one listing per place they live
(`listing`, `zfs_listing`), one "by name or latest" (`pick`), one age and one table.

An entry whose name is not such a timestamp (a snapshot someone made by hand, say) is listed by
`listing` with an unknown time, after every timestamped one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from blankslate import btrfs, process, treesearch, zfs
from blankslate.display import format_size
from blankslate.errors import BlankslateError

LATEST = "latest"  # what `pick` takes for the newest
ZFS_PREFIX = "blankslate-"  # kept_prefix of zfs-persist-snapshot.bash
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# kept.bash's stamp_pattern, character for character (tests/unit/test_snapshots.py compares):
# group 1 is the time, group 5 the ".N" suffix.
STAMP_PATTERN = (
    r"([0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z)"
    r"(\.[1-9][0-9]*)?"
)
_NAME = re.compile(f"^{STAMP_PATTERN}\\Z")


@dataclass(frozen=True)
class Sizes:
    """From btrfs quota groups: bytes the copy refers to, and bytes only it holds."""

    referenced: int
    exclusive: int


@dataclass(frozen=True)
class Snapshot:
    """One kept copy: an old root of /, or a persist snapshot."""

    name: str  # without kept_prefix
    path: Path  # where it is readable (under a mounted top level: only while mounted)
    time: datetime | None  # None: the name is not a kept.bash timestamp
    sequence: int  # the ".N" suffix; 0 without one
    sizes: Sizes | None = None  # None: quotas are off, sizes are not cheap to have
    # Creation order (btrfs's subvolume ID, ZFS's createtxg): no clock or name can fake it.
    # None: unknown.
    subvolume_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """One entry of `roots --json`; a stable contract (keys are never renamed)."""
        return {
            "name": self.name,
            "time": self.time.strftime(STAMP_FORMAT) if self.time else None,
            "referencedBytes": self.sizes.referenced if self.sizes else None,
            "exclusiveBytes": self.sizes.exclusive if self.sizes else None,
        }


def is_kept_name(name: str) -> bool:
    """kept.bash's is_kept_name (without a prefix): named as kept.bash names a kept copy."""
    return _NAME.match(name) is not None


def parse_name(name: str) -> tuple[datetime, int] | None:
    """ "2026-11-20T08:00:00Z.2" -> (that time in UTC, 2); anything else -> None."""
    match = _NAME.match(name)
    if match is None:
        return None
    try:
        time = datetime.strptime(match[1], STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None  # shaped like a timestamp, but not a date (February 31)
    return time, int(match[5][1:]) if match[5] else 0


def newest_first(found: Sequence[Snapshot]) -> list[Snapshot]:
    """Newest first: by creation order when every copy's is known, so one named by a wrong
    clock (2099, 1970) takes its true place; otherwise timestamped ones by name (".2" after
    ".1" is newer), then the others by name."""
    ids = [snapshot.subvolume_id for snapshot in found]
    if found and None not in ids:
        return sorted(found, key=lambda snapshot: snapshot.subvolume_id or 0, reverse=True)
    stamped = [snapshot for snapshot in found if snapshot.time is not None]
    others = [snapshot for snapshot in found if snapshot.time is None]
    stamped.sort(key=lambda snapshot: (snapshot.time, snapshot.sequence), reverse=True)
    return stamped + sorted(others, key=lambda snapshot: snapshot.name)


# --------------------------------------------------------------------------- listing


def qgroup_sizes(top: Path) -> dict[str, Sizes]:
    """Sizes by subvolume path (relative to the top level); empty when quotas are off.

    Quotas are usually off, and then `btrfs qgroup show` fails at once; walking the trees
    instead would take minutes on a real root, so sizes are then simply not shown.
    """
    shown = process.probe(btrfs.qgroup_show(top), check=False)
    if shown.returncode != 0:
        return {}
    sizes_by_id: dict[str, Sizes] = {}
    for line in shown.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].startswith("0/") and fields[1].isdigit():
            sizes_by_id[fields[0][2:]] = Sizes(int(fields[1]), int(fields[2].rstrip(",")))
    listed = process.probe(btrfs.subvolume_list(top), check=False)
    sizes: dict[str, Sizes] = {}
    for line in listed.stdout.splitlines():
        # "ID 257 gen 12 top level 5 path old_roots/2026-11-20T08:00:00Z"
        match = re.match(r"^ID (\d+) .*? path (.*)$", line)
        if match and match[1] in sizes_by_id:
            sizes[match[2]] = sizes_by_id[match[1]]
    return sizes


def listing(top: Path, subvolume: str, *, with_sizes: bool = False) -> list[Snapshot]:
    """The copies kept in the directory `subvolume` under the mounted btrfs top level `top`,
    newest first; none when there is no such directory (nothing kept yet)."""
    directory = top / subvolume
    if not directory.is_dir():
        return []
    sizes = qgroup_sizes(top) if with_sizes else {}
    found = []
    for entry in directory.iterdir():
        if entry.is_symlink() or not entry.is_dir():
            continue  # only directories (subvolumes) are kept copies
        parsed = parse_name(entry.name)
        found.append(
            Snapshot(
                name=entry.name,
                path=entry,
                time=parsed[0] if parsed else None,
                sequence=parsed[1] if parsed else 0,
                sizes=sizes.get(f"{subvolume}/{entry.name}"),
                subvolume_id=_subvolume_id(entry),
            )
        )
    return newest_first(found)


def _subvolume_id(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return treesearch.subvolume_id(fd) if os.fstat(fd).st_ino == 256 else None
    except OSError:
        return None  # not btrfs
    finally:
        os.close(fd)


def zfs_listing(dataset: str, mountpoint: str) -> list[Snapshot]:
    """The dataset's snapshots named by blankslate (ZFS_PREFIX and a timestamp), newest first
    (by createtxg), with their paths under `<mountpoint>/.zfs/snapshot`. Names are given
    without the prefix."""
    found = []
    for line in process.output(zfs.list_snapshots(dataset)).splitlines():
        txg, _, full = line.partition("\t")
        snapshot = full.partition("@")[2]
        if not snapshot.startswith(ZFS_PREFIX) or not txg.isdigit():
            continue
        name = snapshot.removeprefix(ZFS_PREFIX)
        parsed = parse_name(name)
        if parsed is None:
            continue
        path = Path(mountpoint, ".zfs", "snapshot", snapshot)
        found.append(Snapshot(name, path, parsed[0], parsed[1], None, int(txg)))
    return newest_first(found)


# --------------------------------------------------------------------------- choosing


def pick(
    found: Sequence[Snapshot],
    name: str,
    *,
    what: str,
    none_yet: str,
    prefix: str = "",
    hint: str = "",
) -> Snapshot:
    """The copy called `name` (which may keep `prefix`), or the newest for LATEST. `what`
    names one ("old root") in the error for an unknown name, which lists the newest five and
    ends with `hint`; `none_yet` is the error when nothing is kept."""
    if not found:
        raise BlankslateError(none_yet)
    if name == LATEST:
        return found[0]
    wanted = name.removeprefix(prefix) if prefix else name
    for snapshot in found:
        if snapshot.name == wanted:
            return snapshot
    newest = ", ".join(snapshot.name for snapshot in found[:5])
    raise BlankslateError(f"no {what} named {name!r} (newest: {newest}{hint})")


# --------------------------------------------------------------------------- showing


def age(delta: timedelta, smallest: Literal["m", "h"] = "m") -> str:
    """ "42m", "5h", "3d": the largest whole unit, minutes only when `smallest` is "m"."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 3600 and smallest == "m":
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def format_table(
    found: Sequence[Snapshot],
    now: datetime | None = None,
    lost: Mapping[str, int] | None = None,
) -> str:
    """A plain text table, newest first: NAME, TIME (UTC), AGE, REFERENCED, EXCLUSIVE, and
    LOST (entries its boot erased) when `lost` gives them by name."""
    now = now or datetime.now(UTC)
    header = ("NAME", "TIME (UTC)", "AGE", "REFERENCED", "EXCLUSIVE")
    rows = [header + (("LOST",) if lost is not None else ())]
    for snapshot in found:
        row = (
            snapshot.name,
            snapshot.time.strftime("%Y-%m-%d %H:%M:%S") if snapshot.time else "unknown time",
            age(now - snapshot.time) if snapshot.time else "-",
            format_size(snapshot.sizes.referenced) if snapshot.sizes else "-",
            format_size(snapshot.sizes.exclusive) if snapshot.sizes else "-",
        )
        rows.append(row + ((str(lost[snapshot.name]),) if lost is not None else ()))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
