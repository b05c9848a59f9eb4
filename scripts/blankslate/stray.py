"""`persist stray` and `persist du`: what the persistence roots hold that nothing declares any
more, and how much each declared path holds.

A persistence root holds three kinds of entries: declared ones (a persisted path, a user's
password file, an SSH host key and its .pub), the directories above them, and strays: all else,
left by a removed service or a path no longer declared. A user may own a directory in a root
and swap its entries at any time, so every walk holds directory fds and never follows a symlink,
and a move is a rename between held directories.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from blankslate import display, paths, safefile
from blankslate.errors import BlankslateError
from blankslate.plan import Plan

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
# Deeper than this, a subtree's size is not added up (and `truncated` says so): each level
# holds a directory fd, and a user can nest directories far deeper than any service does.
MAX_DEPTH = 256
MOVED_PREFIX = "strays-"


@dataclass(frozen=True)
class Usage:
    """What a path holds: apparent bytes of its files and symlinks, entries, newest change."""

    bytes: int = 0
    entries: int = 0
    changed: float = 0.0
    truncated: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.bytes + other.bytes,
            self.entries + other.entries,
            max(self.changed, other.changed),
            self.truncated or other.truncated,
        )


@dataclass(frozen=True)
class Entry:
    """A path of a persistence root, named as the running system names it."""

    root: str
    path: str
    kind: str  # directory, file, symlink or other
    usage: Usage

    @property
    def relative(self) -> str:
        return "/" + os.path.relpath(self.path, self.root) if self.path != self.root else "/"


def declared(plan: Plan) -> dict[str, set[str]]:
    """persistence root -> the paths it keeps, relative to it ("/var/lib/nixos"): persisted
    paths, users' password files, SSH host keys and their public halves."""
    kept: dict[str, set[str]] = {root: set() for root in plan.persistence_roots}
    for entry in plan.persisted:
        kept[entry.root].add(paths.normalise(entry.path))
    own = [user.hashed_password_file for user in plan.users]
    own += [name for key in plan.ssh_host_keys for name in (key, key + ".pub")]
    for path in own:
        for root in kept:
            if paths.is_under(root, path, strictly=True):
                kept[root].add("/" + os.path.relpath(path, root))
    return kept


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def _size(info: os.stat_result) -> int:
    return info.st_size if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode) else 0


def _open_below(name: str, parent: int) -> int | None:
    """An fd of directory `name` in `parent`; None when it vanished or is no directory now."""
    try:
        return os.open(name, _DIRECTORY, dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            return None
        raise


def _children(fd: int) -> list[tuple[str, os.stat_result]]:
    """The entries of the directory `fd` with their lstat; an entry that vanishes is left out."""
    found = []
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                found.append((entry.name, entry.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue
    return found


def usage_below(fd: int) -> Usage:
    """What the directory `fd` holds below it, walked depth first with at most MAX_DEPTH fds."""
    total = Usage()
    stack: list[tuple[int, list[tuple[str, os.stat_result]]]] = []
    try:
        stack.append((os.dup(fd), _children(fd)))
        while stack:
            current, pending = stack[-1]
            if not pending:
                os.close(current)
                stack.pop()
                continue
            name, info = pending.pop()
            total += Usage(_size(info), 1, info.st_mtime)
            if not stat.S_ISDIR(info.st_mode):
                continue
            if len(stack) >= MAX_DEPTH:
                total += Usage(truncated=True)
                continue
            child = _open_below(name, current)
            if child is not None:
                stack.append((child, _children(child)))
    finally:
        for current, _ in stack:
            os.close(current)
    return total


def usage_of(parent: int, name: str, info: os.stat_result) -> Usage:
    """What `name` in the directory `parent` holds, itself included."""
    own = Usage(_size(info), 1, info.st_mtime)
    if not stat.S_ISDIR(info.st_mode):
        return own
    fd = _open_below(name, parent)
    if fd is None:
        return own
    try:
        return own + usage_below(fd)
    finally:
        os.close(fd)


def _is_moved(name: str, info: os.stat_result) -> bool:
    """A directory of moved strays that `persist stray --move-to` made: root's, strays-<time>."""
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == 0
        and re.fullmatch(MOVED_PREFIX + r"\d{4}-\d\d-\d\dT\d{6}", name) is not None
    )


def _above(kept: set[str]) -> set[str]:
    """The directories above the kept paths, relative to the root ("/", "/var", "/var/lib")."""
    return {str(parent) for path in kept for parent in PurePosixPath(path).parents}


def find_strays(
    root: str, kept: set[str], *, target_root: Path, skip: Path | None = None
) -> Iterator[Entry]:
    """Every entry of the persistence root `root` that no kept path covers, each stray once,
    at its topmost path. `target_root`: where the system's / is; `skip`: a directory of moved
    strays (its path on this machine), left out."""
    base = paths.inside(target_root, root)
    if not os.path.isdir(base):
        return
    above = _above(kept)
    moved_to = set()
    if skip is not None and paths.is_under(str(base), str(skip), strictly=True):
        moved_to.add("/" + os.path.relpath(skip, base))
    # A kept directory is a stray's end, not a way down, even when a kept path lies below it.
    for parent, path, info in _topmost(base, above - kept):
        name = os.path.basename(path)
        if path in kept or path in moved_to or _is_moved(name, info):
            continue
        yield Entry(
            root, paths.normalise(root + path), _kind(info.st_mode), usage_of(parent, name, info)
        )


def _topmost(base: Path, above: set[str]) -> Iterator[tuple[int, str, os.stat_result]]:
    """(the fd of its directory, its path relative to `base`, its lstat) for every entry below
    `base` that is not a directory in `above`, whose entries are visited instead. Each
    directory is opened from its parent's fd without following a link."""
    with safefile.held(safefile.walk(base, "")) as start:
        stack = [("/", os.dup(start.fd))]
        try:
            while stack:
                relative, fd = stack.pop()
                try:
                    for name, info in sorted(_children(fd)):
                        path = os.path.join(relative, name)
                        if path in above and stat.S_ISDIR(info.st_mode):
                            child = _open_below(name, fd)
                            if child is not None:
                                stack.append((path, child))
                            continue
                        yield fd, path, info
                finally:
                    os.close(fd)
        finally:
            for _, fd in stack:
                os.close(fd)


def strays(plan: Plan, *, target_root: Path = Path("/"), skip: Path | None = None) -> list[Entry]:
    """Every stray of every persistence root, largest first."""
    found = [
        entry
        for root, kept in declared(plan).items()
        for entry in find_strays(root, kept, target_root=target_root, skip=skip)
    ]
    return sorted(found, key=lambda entry: (-entry.usage.bytes, entry.path))


def disk_usage(plan: Plan, *, target_root: Path = Path("/")) -> tuple[list[Entry], list[Entry]]:
    """(each declared path, each persistence root), largest first. A declared path that is
    missing from its root is listed with no usage and kind "missing"."""
    declared_entries: list[Entry] = []
    roots: list[Entry] = []
    for root, kept in declared(plan).items():
        base = paths.inside(target_root, root)
        if not os.path.isdir(base):
            continue
        with safefile.held(safefile.walk(base, "")) as directory:
            info = os.fstat(directory.fd)
            roots.append(
                Entry(
                    root, root, "directory", Usage(0, 1, info.st_mtime) + usage_below(directory.fd)
                )
            )
        for path in sorted(kept):
            declared_entries.append(_declared_usage(base, root, path))

    def order(entry: Entry) -> tuple[int, str]:
        return -entry.usage.bytes, entry.path

    return sorted(declared_entries, key=order), sorted(roots, key=order)


def _declared_usage(base: Path, root: str, path: str) -> Entry:
    relative = PurePosixPath(path.lstrip("/"))
    full = paths.normalise(root + path)
    try:
        parent = safefile.walk(base, str(relative.parent))
    except BlankslateError:
        return Entry(root, full, "missing", Usage())
    with safefile.held(parent):
        info = parent.entry(relative.name)
        if info is None:
            return Entry(root, full, "missing", Usage())
        return Entry(root, full, _kind(info.st_mode), usage_of(parent.fd, relative.name, info))


# --- moving strays away and back ------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    source: str  # as the running system names it
    target: str
    done: bool
    problem: str | None = None


def moved_directory_name(now: float) -> str:
    return MOVED_PREFIX + time.strftime("%Y-%m-%dT%H%M%S", time.gmtime(now))


def _check_same_filesystem(move_to: Path, root: str, target_root: Path) -> None:
    base = paths.inside(target_root, root)
    if os.stat(move_to).st_dev != os.stat(base).st_dev:
        raise BlankslateError(
            f"--move-to {move_to} is on another filesystem than {root}: strays are renamed, "
            "never copied; give a directory in the same filesystem"
        )


def move_strays(
    plan: Plan,
    move_to: Path,
    *,
    target_root: Path = Path("/"),
    dry_run: bool,
    now: float | None = None,
) -> list[Move]:
    """Rename every stray into MOVE_TO/strays-<UTC time>/<root>/<its path in the root>: in the
    same filesystem, never a copy, never a deletion. The dated directory is root's, 0700."""
    if not os.path.isdir(move_to) or os.path.islink(move_to):
        raise BlankslateError(f"--move-to {move_to}: no such directory (make it first)")
    move_to = Path(os.path.abspath(move_to))
    dated = moved_directory_name(time.time() if now is None else now)
    found = strays(plan, target_root=target_root, skip=move_to)
    for root in dict.fromkeys(entry.root for entry in found):
        _check_same_filesystem(move_to, root, target_root)
    moves: list[Move] = []
    for entry in found:
        relative = PurePosixPath(dated, entry.root.lstrip("/"), entry.relative.lstrip("/"))
        target = f"{move_to}/{relative}"
        if dry_run:
            moves.append(Move(entry.path, target, False))
            continue
        base = paths.inside(target_root, entry.root)
        source = PurePosixPath(entry.relative.lstrip("/"))
        moves.append(_rename(base, source, move_to, relative, (entry.path, target)))
    return moves


def restore(plan: Plan, moved: Path, *, target_root: Path = Path("/"), dry_run: bool) -> list[Move]:
    """Move back what `move_strays` put in MOVED (a strays-<time> directory); an entry whose
    place is taken again stays where it is, one line each."""
    moved = Path(os.path.abspath(moved))
    if not moved.name.startswith(MOVED_PREFIX) or not os.path.isdir(moved):
        raise BlankslateError(f"{moved} is no directory of moved strays ({MOVED_PREFIX}<time>)")
    moves: list[Move] = []
    for root, kept in declared(plan).items():
        held_root = paths.inside(moved, root)
        if not os.path.isdir(held_root):
            continue
        base = paths.inside(target_root, root)
        for relative in _moved_entries(held_root, _above(kept)):
            source, target = f"{held_root}{relative}", paths.normalise(root + relative)
            if dry_run:
                moves.append(Move(source, target, False))
                continue
            within = PurePosixPath(relative.lstrip("/"))
            moves.append(_rename(held_root, within, base, within, (source, target)))
    return moves


def _moved_entries(base: Path, above: set[str]) -> Iterator[str]:
    """The topmost moved entries below `base`: what is not a directory above a kept path,
    relative to `base`."""
    for _, path, _ in _topmost(base, above):
        yield path


def _rename(
    source_base: Path,
    source: PurePosixPath,
    target_base: Path,
    target: PurePosixPath,
    shown: tuple[str, str],
) -> Move:
    """Rename SOURCE_BASE/SOURCE to TARGET_BASE/TARGET. Each base is opened as named (a
    persistence root, or the moved directory root made); every component after it is walked
    without following a link, the target's missing directories made root's, 0700. An existing
    target is never replaced (renameat2 RENAME_NOREPLACE)."""
    try:
        with (
            safefile.held(safefile.walk(source_base, str(source.parent))) as from_dir,
            safefile.held(
                safefile.walk(target_base, str(target.parent), make=safefile.fixed(0o700))
            ) as to_dir,
        ):
            rename_no_replace(from_dir.fd, source.name, to_dir.fd, target.name)
    except BlankslateError as error:
        return Move(*shown, False, str(error))
    except FileExistsError:
        return Move(*shown, False, f"{shown[1]} exists: {shown[0]} left in place")
    except OSError as error:
        return Move(*shown, False, f"cannot move {shown[0]}: {error.strerror}")
    return Move(*shown, True)


_RENAME_NOREPLACE = 1


def rename_no_replace(from_fd: int, name: str, to_fd: int, new_name: str) -> None:
    """renameat2(..., RENAME_NOREPLACE): FileExistsError instead of replacing what is there."""
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.renameat2(
        from_fd, os.fsencode(name), to_fd, os.fsencode(new_name), _RENAME_NOREPLACE
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), name)


# --- what the commands print ------------------------------------------------------------------


def _changed(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(when)) if when else "-"


def _path_json(path: str) -> dict[str, str]:
    """ "path" (U+FFFD for each byte that is not UTF-8) and, for such a name, its "pathBytes"."""
    raw = os.fsencode(path)
    try:
        return {"path": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"path": raw.decode("utf-8", "replace"), "pathBytes": base64.b64encode(raw).decode()}


def entry_json(entry: Entry) -> dict[str, object]:
    return {
        **_path_json(entry.path),
        "root": entry.root,
        "type": entry.kind,
        "bytes": entry.usage.bytes,
        "entries": entry.usage.entries,
        "changed": _changed(entry.usage.changed) if entry.usage.changed else None,
        "truncated": entry.usage.truncated,
    }


def render_table(entries: list[Entry], heading: str) -> list[str]:
    """One line per entry, size first, as `du` shows it; names escaped as the diff does."""
    lines = [heading]
    for entry in entries:
        size = display.format_size(entry.usage.bytes) + ("+" if entry.usage.truncated else "")
        kind = "" if entry.kind in ("directory", "file") else f"  ({entry.kind})"
        when = _changed(entry.usage.changed)
        lines.append(f"  {size:>10}  {when:<16}  {display.quote_path(entry.path)}{kind}")
    return lines


STRAY_METRICS = (
    ("blankslate_stray_entries", "Entries in the persistence roots that nothing declares."),
    ("blankslate_stray_bytes", "Bytes of the entries in the persistence roots nothing declares."),
)


def render_metrics(found: list[Entry]) -> str:
    """The node-exporter textfile of `persist stray --metrics`: two gauges."""
    values = (len(found), sum(entry.usage.bytes for entry in found))
    lines: list[str] = []
    for (name, help_text), value in zip(STRAY_METRICS, values, strict=True):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
    return "\n".join(lines) + "\n"
