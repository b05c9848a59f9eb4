"""The scan of `blankslate diff`: every entry of a root as the next boot will throw it away.

btrfs: the root subvolume as stored, read from the top level (the tree search of `treesearch`,
else a walk); zfs: `zfs diff` against the blank snapshot; tmpfs/none: a walk of the live tree
on one filesystem, seen beneath its mounts (`beneath`). Each entry is one `Raw` row (a plain
tuple in the hot loops).
"""

from __future__ import annotations

import errno
import os
import re
from typing import NamedTuple

from blankslate import mounts, process, treesearch
from blankslate.bounds import Beyond, count_beyond, too_long
from blankslate.display import quote_path
from blankslate.treesearch import RawTuple as RawTuple

BTRFS_FIRST_FREE_OBJECTID = 256  # the root directory of every btrfs subvolume has this inode


class Raw(NamedTuple):
    """One scanned entry: absolute path (as on /), kind, size in bytes, symlink target."""

    path: str
    kind: str
    size: int
    target: str | None


# The hot loops build plain tuples (a NamedTuple's constructor is a Python call per entry);
# a RawTuple (defined in treesearch, below this module) has Raw's fields in Raw's order.


# A walk keeps the directories above it open down to this depth; deeper, a directory is
# closed while its children are walked and opened again through "..", checked to be the same.
KEEP_OPEN = 64


class _Frame:
    """A directory being walked: its fd (None while closed), its path as on / (None beyond the
    cap), the listed directory it is counted into beyond the cap, its device and identity, and
    its subdirectories still to walk: (name, path as on / or None beyond the cap)."""

    __slots__ = ("children", "cut", "device", "fd", "ident", "logical")

    def __init__(self, fd: int, logical: str | None, cut: str, info: os.stat_result) -> None:
        self.fd: int | None = fd
        self.logical = logical
        self.cut = cut
        self.device = info.st_dev
        self.ident = (info.st_dev, info.st_ino)
        self.children: list[tuple[str, str | None]] = []


_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_VANISHED = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def _where(logical: str | None, cut: str) -> str:
    """A directory's path for a warning, escaped: beyond the cap, the listed one above it."""
    if logical is not None:
        return quote_path(logical or "/")
    return f"a directory below {quote_path(cut or '/')}"


def walk(
    base: str,
    *,
    skip: frozenset[str] = frozenset(),
    one_filesystem: bool = False,
    beyond: Beyond | None = None,
) -> tuple[list[RawTuple], list[str]]:
    """Every entry below `base` as (entries, problems); paths are given as if `base` were `/`.

    Symlinks are never followed, and no path is handed to the kernel: every directory is
    opened from its parent's descriptor with O_NOFOLLOW, so depth is no limit, and an entry
    that vanishes while it is read is left out. The walk is a loop, not a recursion. `skip`
    holds paths (as on /) left out with what is below them (the mountpoints);
    `one_filesystem` also leaves out what lies on another device, except btrfs subvolumes
    (directories with inode 256), which are reported as such and descended into. What lies
    deeper than LISTED_PATH_MAX bytes is counted into `beyond` (when given), not listed.
    Warnings name paths escaped (`display.quote_path`): they reach a terminal.
    """
    entries: list[RawTuple] = []
    problems: list[str] = []
    counted: Beyond = beyond if beyond is not None else {}
    root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    stack = [_Frame(root_fd, "", "", os.fstat(root_fd))]
    fresh = True  # the frame on top has not been listed yet
    try:
        while stack:
            frame = stack[-1]
            if fresh:
                _list(frame, entries, problems, counted, skip, one_filesystem)
                fresh = False
            if not frame.children:
                stack.pop()
                assert frame.fd is not None
                if stack and stack[-1].fd is None:
                    _reopen_parent(stack, frame, problems)
                os.close(frame.fd)
                frame.fd = None
                continue
            name, logical = frame.children.pop()
            assert frame.fd is not None
            try:
                fd = os.open(name, _DIRECTORY, dir_fd=frame.fd)
            except OSError as error:
                if error.errno not in _VANISHED:
                    problems.append(f"cannot read {_where(logical, frame.cut)}: {error.strerror}")
                continue
            cut = frame.cut if logical is None else logical
            child = _Frame(fd, logical, cut, os.fstat(fd))
            if len(stack) > KEEP_OPEN:
                os.close(frame.fd)
                frame.fd = None
            stack.append(child)
            fresh = True
    finally:
        for frame in stack:
            if frame.fd is not None:
                os.close(frame.fd)
    return entries, problems


def _reopen_parent(stack: list[_Frame], child: _Frame, problems: list[str]) -> None:
    """Open the closed directory above `child` again, through ".." from the child's
    descriptor. When what is there now is not the directory it was (a user moved it), the
    closed directories on top of the stack are given up, with a warning."""
    parent = stack[-1]
    assert child.fd is not None
    try:
        fd = os.open("..", _DIRECTORY, dir_fd=child.fd)
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) == parent.ident:
            parent.fd = fd
            return
        os.close(fd)
    except OSError:
        pass
    problems.append(f"{_where(parent.logical, parent.cut)} moved while it was read: not read whole")
    while stack and stack[-1].fd is None:
        stack.pop()


def _list(
    frame: _Frame,
    entries: list[RawTuple],
    problems: list[str],
    beyond: Beyond,
    skip: frozenset[str],
    one_filesystem: bool,
) -> None:
    """The entries of one directory into `entries` (or `beyond`), its subdirectories into
    `frame.children`."""
    assert frame.fd is not None
    logical, device, fd = frame.logical, frame.device, frame.fd
    try:
        iterator = os.scandir(fd)
    except OSError as error:
        problems.append(f"cannot read {_where(logical, frame.cut)}: {error.strerror}")
        return
    append, children = entries.append, frame.children
    with iterator:
        for item in iterator:
            name = item.name
            path: str | None = None
            if logical is not None:
                path = f"{logical}/{name}"
                if too_long(path):
                    path = None
            try:
                if item.is_dir(follow_symlinks=False):
                    if path is not None and path in skip:
                        continue
                    info = item.stat(follow_symlinks=False)
                    subvolume = info.st_ino == BTRFS_FIRST_FREE_OBJECTID
                    # A nested btrfs subvolume has its own st_dev but is no mount (those
                    # are in `skip`): it belongs to the tree.
                    if one_filesystem and info.st_dev != device and not subvolume:
                        continue
                    if path is None:
                        count_beyond(beyond, frame.cut, 0)
                    else:
                        append((path, "subvolume" if subvolume else "dir", 0, None))
                    children.append((name, path))
                elif path is not None and path in skip:
                    continue
                elif item.is_file(follow_symlinks=False):
                    info = item.stat(follow_symlinks=False)
                    if one_filesystem and info.st_dev != device:
                        continue  # a file bind-mounted from elsewhere
                    if path is None:
                        count_beyond(beyond, frame.cut, info.st_size)
                    else:
                        append((path, "file", info.st_size, None))
                elif item.is_symlink():
                    target = os.readlink(name, dir_fd=fd)
                    size = len(os.fsencode(target))
                    if path is None:
                        count_beyond(beyond, frame.cut, size)
                    else:
                        append((path, "symlink", size, target))
                elif path is None:
                    count_beyond(beyond, frame.cut, 0)
                else:
                    append((path, "other", 0, None))
            except FileNotFoundError:
                continue  # vanished while we looked (a live tree changes)
            except OSError as error:
                shown = quote_path(path) if path is not None else _where(None, frame.cut)
                problems.append(f"cannot inspect {shown}: {error.strerror}")


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


def scan_zfs(dataset: str, snapshot: str, live_root: str = "/") -> tuple[list[RawTuple], list[str]]:
    """The entries `zfs diff` finds on the root dataset `dataset` against its blank `snapshot`
    (the zfs kind's scan, storage_zfs), looked at under `live_root` (the root seen beneath its
    mounts, or / itself)."""
    output = process.output(zfs_diff_cmd(dataset, snapshot))
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
            problems.append(f"cannot inspect {quote_path(path)}: {error.strerror}")
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


def scan_stored_root(root: str, beyond: Beyond | None = None) -> tuple[list[RawTuple], list[str]]:
    """A subvolume's whole tree; the fast btrfs tree search when the kernel allows it. What
    lies deeper than LISTED_PATH_MAX bytes is counted into `beyond`."""
    counted: Beyond = {} if beyond is None else beyond
    scanned = treesearch.scan(root, counted)
    if scanned is not None:
        return scanned
    counted.clear()
    return walk(root, beyond=counted)
