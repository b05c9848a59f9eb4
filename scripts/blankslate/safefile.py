"""Every file the package writes, and every directory it walks to write below persistPath.

Root and the configuration are trusted, local users are not. A user may own a directory below
persistPath (seed gives users their own) or the directory a command was pointed at, and can
plant a symlink there at any moment. So:

- a directory below an untrusted point is reached from a directory fd, one component at a time,
  with O_NOFOLLOW: a symlink on the way is refused, never followed (`walk`);
- a directory created on the way gets its mode with fchmod, so the umask cannot widen it;
- a file is written to a fresh random name (O_CREAT|O_EXCL|O_NOFOLLOW) in the directory fd held,
  fsynced, renamed over the target relative to that same fd (a rename replaces a symlink, it
  never follows one), and the directory is fsynced (`write_file`).

A path the command was given (`--to DIR`, `--output FILE`, `--ignore-file`) is opened as named,
up to the directory the file goes in: root named it. Everything after that goes through the fd.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TextIO

from blankslate import paths
from blankslate.errors import BlankslateError
from blankslate.paths import is_under

log = logging.getLogger("blankslate")

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NO_LINK_DIRECTORY = _DIRECTORY | os.O_NOFOLLOW


@dataclass(frozen=True)
class NewDirectory:
    """Mode and owner of a directory `walk` creates."""

    mode: int
    uid: int = 0
    gid: int = 0


# Given the path of a missing directory, the mode and owner to create it with.
DirectoryMaker = Callable[[Path], NewDirectory]


def fixed(mode: int, uid: int = 0, gid: int = 0) -> DirectoryMaker:
    return lambda _path: NewDirectory(mode, uid, gid)


@dataclass
class Directory:
    """An open directory: `fd` is what every later step works relative to."""

    fd: int
    path: Path  # as named, for messages only
    created: list[Path] = field(default_factory=list)

    def proc_path(self, *names: str) -> str:
        """A path that reaches this very directory through the fd, wherever it was moved:
        for a command (cp, rm) that must act inside it. /proc/<pid>/fd/N is the fd's open
        directory itself, not a name looked up again."""
        return os.path.join(f"/proc/{os.getpid()}/fd/{self.fd}", *names)

    def entry(self, name: str) -> os.stat_result | None:
        """lstat of `name` in this directory, None when there is none."""
        return _lstat_at(name, self.fd)

    def open_subdirectory(self, name: str) -> int:
        """An fd of the directory `name` in this one; a symlink there is refused."""
        fd, _ = _step(self.fd, name, self.path / name, None)
        return fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _refusal(path: Path, info: os.stat_result | None) -> BlankslateError:
    if info is not None and stat.S_ISLNK(info.st_mode):
        return BlankslateError(f"{path} is a symlink: refusing to write through it")
    return BlankslateError(f"{path} exists and is not a directory (move it away)")


def _lstat_at(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_as_named(path: Path) -> int:
    try:
        return os.open(path, _DIRECTORY)
    except OSError as error:
        raise BlankslateError(f"cannot open {path}: {error.strerror}") from None


def _step(parent: int, name: str, path: Path, make: DirectoryMaker | None) -> tuple[int, bool]:
    """Open `name` in `parent` without following a link; create it if missing and allowed."""
    try:
        return os.open(name, _NO_LINK_DIRECTORY, dir_fd=parent), False
    except FileNotFoundError:
        if make is None:
            raise BlankslateError(f"{path} does not exist") from None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _refusal(path, _lstat_at(name, parent)) from None
        raise BlankslateError(f"cannot open {path}: {error.strerror}") from None
    wanted = make(path)
    try:
        os.mkdir(name, 0o700, dir_fd=parent)  # nobody else can enter it until it is ready
        fd = os.open(name, _NO_LINK_DIRECTORY, dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ELOOP, errno.ENOTDIR):
            raise _refusal(path, _lstat_at(name, parent)) from None
        raise BlankslateError(f"cannot create {path}: {error.strerror}") from None
    try:
        if os.fstat(fd).st_uid != os.geteuid():  # swapped between mkdir and open
            raise BlankslateError(f"{path} was replaced while it was created")
        os.fchown(fd, wanted.uid, wanted.gid)
        os.fchmod(fd, wanted.mode)
    except BaseException as error:
        os.close(fd)
        if isinstance(error, OSError):
            raise BlankslateError(f"cannot create {path}: {error.strerror}") from None
        raise
    return fd, True


def walk(
    base: Path, relative: str | PurePosixPath, *, make: DirectoryMaker | None = None
) -> Directory:
    """Open `base` (trusted: as named) and then each component of `relative` below it without
    following symlinks, creating missing ones with `make` (refused without it)."""
    fd = _open_as_named(base)
    directory = Directory(fd, base)
    try:
        for name in PurePosixPath(str(relative).lstrip("/")).parts:
            path = directory.path / name
            fd, made = _step(directory.fd, name, path, make)
            directory.close()
            directory.fd, directory.path = fd, path
            if made:
                directory.created.append(path)
    except BaseException:
        directory.close()
        raise
    directory.path = paths.inside(base, str(relative))
    return directory


def open_directory(path: Path, *, make: DirectoryMaker | None = None) -> Directory:
    """`path` as named; its missing components (with `make`) created without following links."""
    full = Path(os.path.abspath(path))
    existing = full
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    return walk(existing, "" if existing == full else str(full.relative_to(existing)), make=make)


def check_no_links(base: Path, relative: str | PurePosixPath) -> str | None:
    """What refuses a write below `base` at `relative` (a symlink or a non-directory on the
    way, the final component included), or None. For reports and dry runs; `walk` and
    `write_file` check again, on the fds they hold, when they write."""
    current = base
    for name in PurePosixPath(str(relative).lstrip("/")).parts:
        current = current / name
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return None
        except OSError as error:
            return f"{current}: {error.strerror}"
        if stat.S_ISLNK(info.st_mode):
            return f"{current} is a symlink"
        if not stat.S_ISDIR(info.st_mode) and current != paths.inside(base, str(relative)):
            return f"{current} is not a directory"
    return None


@contextlib.contextmanager
def held(directory: Directory) -> Iterator[Directory]:
    try:
        yield directory
    finally:
        directory.close()


# Writes a document into the open text file it is given, piece by piece.
Producer = Callable[[TextIO], None]


def write_file(
    path: Path,
    data: bytes | str | Producer,
    *,
    mode: int = 0o644,
    owner: tuple[int, int] | None = None,
    below: Path | None = None,
    make: DirectoryMaker | None = None,
    keep_mode: bool = False,
) -> None:
    """Replace `path` atomically with `data`: a reader sees the old file or the new one.

    `below`: a trusted directory `path` lies under; every component after it is walked without
    following links. Without it the parent directory is opened as named. `make` creates missing
    parent directories. `keep_mode`: an existing file's mode wins over `mode`. `data` may be
    a producer: it writes the content (UTF-8) into the fresh file as it goes, so that a large
    document is never held whole; it is renamed into place only when the producer is done.
    """
    content = data.encode() if isinstance(data, str) else data
    if below is not None:
        if not is_under(os.path.normpath(below), os.path.normpath(path.parent)):
            raise BlankslateError(f"{path} is not below {below}")
        relative = os.path.relpath(path.parent, below)
        directory = walk(below, "" if relative == "." else relative, make=make)
    else:
        directory = open_directory(path.parent, make=make)
    with held(directory):
        _write_at(directory, path, content, mode, owner, keep_mode)


def _write_at(
    directory: Directory,
    path: Path,
    content: bytes | Producer,
    mode: int,
    owner: tuple[int, int] | None,
    keep_mode: bool,
) -> None:
    name = path.name
    existing = _lstat_at(name, directory.fd)
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise BlankslateError(f"{path} is a directory (name a file)")
    if keep_mode and existing is not None and stat.S_ISREG(existing.st_mode):
        mode = stat.S_IMODE(existing.st_mode)
    temporary = f".{name}.{os.urandom(8).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temporary, flags, 0o600, dir_fd=directory.fd)
    except OSError as error:
        raise BlankslateError(f"cannot write {path}: {error.strerror}") from None
    try:
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)
            if callable(content):
                with open(fd, "w", encoding="utf-8", closefd=False) as stream:
                    content(stream)
            else:
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=directory.fd, dst_dir_fd=directory.fd)
        os.fsync(directory.fd)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory.fd)
        if isinstance(error, OSError):
            raise BlankslateError(f"cannot write {path}: {error.strerror}") from None
        raise


def live_maker(live_root: Path | None, persist_root: Path, mode: int) -> DirectoryMaker:
    """A missing directory gets the owner and mode of the same one under `live_root` when that
    exists, else root:root and `mode`."""

    def make(path: Path) -> NewDirectory:
        try:
            info = os.stat(live_root / path.relative_to(persist_root)) if live_root else None
        except OSError:
            info = None
        if info is None:
            return NewDirectory(mode)
        return NewDirectory(stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)

    return make


def open_parent(
    persist_root: Path,
    relative_path: str | PurePosixPath,
    live_root: Path | None = None,
    *,
    mode: int = 0o755,
) -> Directory:
    """The parent directory of `persist_root/relative_path`, held open; its missing components
    created (see `make_parents`), none of them reached through a symlink."""
    parent = PurePosixPath(str(relative_path).lstrip("/")).parent
    return walk(persist_root, parent, make=live_maker(live_root, persist_root, mode))


def make_parents(
    persist_root: Path,
    relative_path: str | PurePosixPath,
    live_root: Path | None = None,
    *,
    mode: int = 0o755,
    dry_run: bool = False,
) -> list[Path]:
    """Create the missing parent directories of `persist_root/relative_path`.

    Each gets the owner and mode of the same directory under `live_root` when that exists, else
    root:root and `mode`. A symlink on the way is refused. Returns the directories created
    (none under dry-run).
    """
    if not dry_run:
        with held(open_parent(persist_root, relative_path, live_root, mode=mode)) as made:
            return made.created
    parts = PurePosixPath(str(relative_path).lstrip("/")).parts[:-1]
    refusal = check_no_links(persist_root, PurePosixPath(*parts) if parts else "")
    if refusal is not None:
        raise BlankslateError(f"{refusal}: refusing to write through it")
    show_parents(persist_root, PurePosixPath(*parts), live_maker(live_root, persist_root, mode))
    return []


def show_parents(base: Path, relative: PurePosixPath, make: DirectoryMaker) -> None:
    """Dry run: say which directories below `base` would be made, and how."""
    current = base
    for part in relative.parts:
        current = current / part
        if not os.path.lexists(current):
            wanted = make(current)
            log.warning(
                "would create %s (mode %04o, owner %d:%d)",
                current,
                wanted.mode,
                wanted.uid,
                wanted.gid,
            )


def walk_source(base: Path, relative: str | PurePosixPath) -> Directory:
    """For reading: open `base` (trusted: as named) and then each component of `relative`
    below it without following symlinks. A symlink on the way (a user's `~/.config ->
    ../../root`) is refused, never followed, as `walk` refuses one on the way to a write."""
    fd = _open_as_named(base)
    directory = Directory(fd, base)
    try:
        for name in PurePosixPath(str(relative).lstrip("/")).parts:
            path = directory.path / name
            try:
                fd = os.open(name, _NO_LINK_DIRECTORY, dir_fd=directory.fd)
            except OSError as error:
                info = _lstat_at(name, directory.fd) if error.errno != errno.ENOENT else None
                if info is not None and stat.S_ISLNK(info.st_mode):
                    raise BlankslateError(
                        f"{path} is a symlink: refusing to read through it"
                    ) from None
                if error.errno == errno.ENOTDIR:
                    raise BlankslateError(f"{path} is not a directory") from None
                raise BlankslateError(f"cannot open {path}: {error.strerror}") from None
            directory.close()
            directory.fd, directory.path = fd, path
    except BaseException:
        directory.close()
        raise
    directory.path = paths.inside(base, str(relative))
    return directory
