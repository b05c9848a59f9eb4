"""The scan of `blankslate diff`: every entry of a root as the next boot will throw it away.

btrfs: the root subvolume as stored, read from the top level (the tree search of `treesearch`,
else a walk); zfs: `zfs diff` against the blank snapshot; tmpfs/none: a walk of the live tree
on one filesystem, seen beneath its mounts (`beneath`). Each entry is one `Raw` row (a plain
tuple in the hot loops).
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from blankslate import mounts, process, treesearch
from blankslate.plan import Plan

BTRFS_FIRST_FREE_OBJECTID = 256  # the root directory of every btrfs subvolume has this inode


class Raw(NamedTuple):
    """One scanned entry: absolute path (as on /), kind, size in bytes, symlink target."""

    path: str
    kind: str
    size: int
    target: str | None


# The hot loops build plain tuples (a NamedTuple's constructor is a Python call per entry);
# a RawTuple has Raw's fields in Raw's order.
RawTuple = tuple[str, str, int, str | None]


def walk(
    base: str, *, skip: frozenset[str] = frozenset(), one_filesystem: bool = False
) -> tuple[list[RawTuple], list[str]]:
    """Every entry below `base` as (entries, problems); paths are given as if `base` were `/`.

    Symlinks are never followed. `skip` holds paths (as on /) left out with what is below them
    (the mountpoints); `one_filesystem` also leaves out what lies on another device, except
    btrfs subvolumes (directories with inode 256), which are reported as such and descended
    into.
    """
    entries: list[RawTuple] = []
    problems: list[str] = []
    append = entries.append
    stack: list[tuple[str, str, int]] = [("", base, os.lstat(base).st_dev)]
    while stack:
        logical, real, device = stack.pop()
        try:
            iterator = os.scandir(real)
        except OSError as error:
            problems.append(f"cannot read {logical or '/'}: {error.strerror}")
            continue
        with iterator:
            for item in iterator:
                path = f"{logical}/{item.name}"
                try:
                    if item.is_dir(follow_symlinks=False):
                        if path in skip:
                            continue
                        info = item.stat(follow_symlinks=False)
                        subvolume = info.st_ino == BTRFS_FIRST_FREE_OBJECTID
                        # A nested btrfs subvolume has its own st_dev but is no mount (those
                        # are in `skip`): it belongs to the tree.
                        if one_filesystem and info.st_dev != device and not subvolume:
                            continue
                        append((path, "subvolume" if subvolume else "dir", 0, None))
                        stack.append((path, item.path, info.st_dev))
                    elif path in skip:
                        continue
                    elif item.is_file(follow_symlinks=False):
                        info = item.stat(follow_symlinks=False)
                        if one_filesystem and info.st_dev != device:
                            continue  # a file bind-mounted from elsewhere
                        append((path, "file", info.st_size, None))
                    elif item.is_symlink():
                        target = os.readlink(item.path)
                        append((path, "symlink", len(os.fsencode(target)), target))
                    else:
                        append((path, "other", 0, None))
                except FileNotFoundError:
                    continue  # vanished while we looked (a live tree changes)
                except OSError as error:
                    problems.append(f"cannot inspect {path}: {error.strerror}")
    return entries, problems


def zfs_diff_cmd(dataset: str, snapshot: str) -> list[str]:
    return ["zfs", "diff", "-H", "-F", f"{dataset}@{snapshot}"]


_ZFS_ESCAPE = re.compile(rb"\\([0-7]{4})")
_ZFS_KINDS = {"F": "file", "/": "dir", "@": "symlink"}


def _zfs_unescape(text: str) -> str:
    """`zfs diff` writes spaces, backslashes and non-printable bytes as \\NNNN (octal)."""
    raw = os.fsencode(text)
    return os.fsdecode(_ZFS_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), raw))


def parse_zfs_diff(output: str, mountpoint: str = "/") -> list[tuple[str, str]]:
    """(path as on /, kind) of every entry that exists now and differs from the snapshot.

    Removed entries are gone already; modified directories existed in the snapshot, so the
    blank brings them back.
    """
    found: list[tuple[str, str]] = []
    prefix = mountpoint.rstrip("/")
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        change, kind_code = fields[0], fields[1]
        path = _zfs_unescape(fields[3] if change == "R" and len(fields) > 3 else fields[2])
        kind = _ZFS_KINDS.get(kind_code, "other")
        if change == "-" or (change == "M" and kind == "dir"):
            continue
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            path = path[len(prefix) :] or "/"
        if path != "/":
            found.append((path, kind))
    return found


def scan_zfs(plan: Plan, live_root: str = "/") -> tuple[list[RawTuple], list[str]]:
    """The entries `zfs diff` finds on the root dataset, looked at under `live_root` (the
    root seen beneath its mounts, or / itself)."""
    assert plan.zfs is not None
    output = process.output(zfs_diff_cmd(plan.zfs.root, plan.zfs.blank_snapshot))
    entries: list[RawTuple] = []
    problems: list[str] = []
    for path, kind in parse_zfs_diff(output):
        live = os.path.join(live_root, path.lstrip("/"))
        try:
            info = os.lstat(live)
            target = os.readlink(live) if kind == "symlink" else None
        except FileNotFoundError:
            continue
        except OSError as error:
            problems.append(f"cannot inspect {path}: {error.strerror}")
            continue
        size = info.st_size if kind in ("file", "symlink") else 0
        entries.append((path, kind, size, target))
    return entries, problems


def mount_targets_below(root: str) -> frozenset[str]:
    """Mountpoints strictly below `root`, as paths relative to it (`/persist`)."""
    base = os.path.abspath(root).rstrip("/")
    targets = set()
    for entry in mounts.all_mounts():
        if entry.target.startswith(base + "/"):
            targets.add(entry.target[len(base) :])
    return frozenset(targets)


def scan_stored_root(root: str) -> tuple[list[RawTuple], list[str]]:
    """A subvolume's whole tree; the fast btrfs tree search when the kernel allows it."""
    scanned = treesearch.scan(root)
    if scanned is not None:
        return scanned, []
    return walk(root)
