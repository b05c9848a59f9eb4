"""Copying a live tree through held directory fds, for a source no snapshot holds.

cp walks a tree by name: a user who can write a directory inside it can exchange a
subdirectory and a symlink (renameat2 RENAME_EXCHANGE) while cp runs, and cp then reads
through the link (root's files, copied where the user reads them). Here every entry is opened
relative to its parent's held fd without following a link (O_NOFOLLOW), and what is copied is
what the fd shows (fstat after the open): a directory swapped for a link is at worst copied as
that link, never followed. The walk is iterative (no recursion limit on a deep tree) and an
entry that vanishes between the listing and its copy is one warning line, not a failure.

What `cp --archive` keeps is kept: the type, owner, group, mode (setuid and setgid included),
access and modification times (nanoseconds), extended attributes (ACLs, file capabilities,
SELinux labels: a failure to set one the target refuses is ignored, as cp -a does), hard links
within the copy, symlinks as symlinks, fifos, sockets and device nodes as nodes, and holes of
sparse files; data is shared (reflink) where the filesystem can. Not kept, as with cp: the
change time and the birth time (no call sets them), xattrs of symlinks.

The target side is the caller's: it gives a directory only root can enter (the staging
directory of `copy.copy_new`, or the directory `copy.copy_into_empty` took from its owner),
and every write is fd-relative, O_EXCL and O_NOFOLLOW.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import resource
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from blankslate.display import quote_path
from blankslate.errors import BlankslateError

log = logging.getLogger("blankslate")

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a fifo swapped in after the listing does not block the open (fstat refuses it).
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FICLONE = 0x40049409  # <linux/fs.h>: share the data of another file
_GONE = (errno.ENOENT,)
_CHANGED = (errno.ELOOP, errno.ENOTDIR, errno.EINVAL, errno.EISDIR)
_NO_OFFLOAD = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTTY)


class _Skip(Exception):
    """The entry vanished or changed its type while it was copied: warned, not copied."""


@dataclass
class _Frame:
    """A directory being copied: its source and copy held open, the names left to copy."""

    source: int
    target: int
    info: os.stat_result
    names: Iterator[str]
    relative: str  # below the copy's top, for hard links
    named: Path  # for messages


class _Copier:
    def __init__(self, top: int) -> None:
        self.top = top  # the directory every `relative` is below (root's alone)
        self.links: dict[tuple[int, int], str] = {}
        self.clone = True
        self.offload = True

    # ---------------------------------------------------------------- one entry

    def entry(self, parent: int, name: str, target: int, new: str, relative: str,
              named: Path) -> _Frame | None:  # fmt: skip
        """Copy `name` of the held `parent` to the new entry `new` of `target`; a directory
        is made and returned, for the walk to fill."""
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except OSError as error:
            raise self._failure(error, named) from None
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            fd = self._open(name, parent, _DIRECTORY, named)
            return self._directory(fd, target, new, relative, named)
        if stat.S_ISREG(mode):
            fd = self._open(name, parent, _FILE, named)
            try:
                self.file(fd, target, new, relative, named)
            finally:
                os.close(fd)
            return None
        if stat.S_ISLNK(mode):
            try:
                text = os.readlink(name, dir_fd=parent)
            except OSError as error:
                raise self._failure(error, named) from None
            os.symlink(text, new, dir_fd=target)
            os.chown(new, info.st_uid, info.st_gid, dir_fd=target, follow_symlinks=False)
        else:  # a fifo, socket or device node: made anew, as cp does
            os.mknod(new, stat.S_IFMT(mode) | 0o600, info.st_rdev, dir_fd=target)
            os.chown(new, info.st_uid, info.st_gid, dir_fd=target, follow_symlinks=False)
            os.chmod(new, stat.S_IMODE(mode), dir_fd=target)  # made here: not a link
        os.utime(new, ns=(info.st_atime_ns, info.st_mtime_ns), dir_fd=target,
                 follow_symlinks=False)  # fmt: skip
        return None

    def _open(self, name: str, parent: int, flags: int, named: Path) -> int:
        try:
            return os.open(name, flags, dir_fd=parent)
        except OSError as error:
            raise self._failure(error, named) from None

    @staticmethod
    def _failure(error: OSError, named: Path) -> Exception:
        if error.errno in _GONE:
            return _Skip(f"{quote_path(str(named))} vanished while it was copied: not copied")
        if error.errno in _CHANGED:
            return _Skip(
                f"{quote_path(str(named))} changed while it was copied (now a link or of "
                "another type): not copied"
            )
        return BlankslateError(f"cannot read {quote_path(str(named))}: {error.strerror}")

    def _directory(self, fd: int, target: int, new: str, relative: str, named: Path) -> _Frame:
        """The held source directory `fd` copied as `new` (mode 0700 until filled)."""
        try:
            info = os.fstat(fd)
            if not stat.S_ISDIR(info.st_mode):
                raise _Skip(f"{quote_path(str(named))} changed while it was copied: not copied")
            os.mkdir(new, 0o700, dir_fd=target)
            made = os.open(new, _DIRECTORY, dir_fd=target)
        except BaseException:
            os.close(fd)
            raise
        try:
            os.fchown(made, info.st_uid, info.st_gid)
            copy_xattrs(fd, made)
            names = iter(os.listdir(fd))
        except BaseException:
            os.close(fd)
            os.close(made)
            raise
        return _Frame(fd, made, info, names, relative, named)

    def file(self, fd: int, target: int, new: str, relative: str, named: Path) -> None:
        """The held regular file `fd` copied as `new`; a second name of an inode already
        copied is a hard link to that copy."""
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Skip(f"{quote_path(str(named))} changed while it was copied: not copied")
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in self.links:
            os.link(self.links[key], new, src_dir_fd=self.top, dst_dir_fd=target,
                    follow_symlinks=False)  # fmt: skip
            return
        out = os.open(new, _NEW_FILE, 0o600, dir_fd=target)
        try:
            self._data(fd, out, info.st_size)
            os.fchown(out, info.st_uid, info.st_gid)  # before the mode: it clears setuid
            copy_xattrs(fd, out)  # after chown, which drops a file capability
            os.fchmod(out, stat.S_IMODE(info.st_mode))
            os.utime(out, ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(out)
        if info.st_nlink > 1:
            self.links[key] = relative

    def _data(self, source: int, out: int, size: int) -> None:
        """Shared extents where the filesystem can (FICLONE), else the data segments copied
        in the kernel, holes left holes."""
        if self.clone and size:
            try:
                fcntl.ioctl(out, _FICLONE, source)
                return
            except OSError as error:
                if error.errno in (errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTTY, errno.ENOSYS):
                    self.clone = False  # not on this pair of filesystems: not tried again
        for start, end in _segments(source, size):
            self._range(source, out, start, end)
        os.ftruncate(out, size)

    def _range(self, source: int, out: int, start: int, end: int) -> None:
        position = start
        while position < end:
            count = min(end - position, 1 << 30)
            if self.offload:
                try:
                    done = os.copy_file_range(source, out, count, position, position)
                except OSError as error:
                    if error.errno not in _NO_OFFLOAD:
                        raise
                    self.offload = False
                    continue
            else:
                os.lseek(out, position, os.SEEK_SET)
                done = os.sendfile(out, source, position, count)
            if done == 0:  # the file shrank while it was copied
                return
            position += done

    @staticmethod
    def finish(frame: _Frame) -> None:
        os.fchmod(frame.target, stat.S_IMODE(frame.info.st_mode))
        os.utime(frame.target, ns=(frame.info.st_atime_ns, frame.info.st_mtime_ns))

    # ---------------------------------------------------------------- the walk

    def walk(self, first: _Frame, *, finish_first: bool = True) -> None:
        """Copy everything below `first`, depth first, without recursion."""
        stack = [first]
        try:
            while stack:
                frame = stack[-1]
                name = next(frame.names, None)
                if name is None:
                    if finish_first or len(stack) > 1:
                        self.finish(frame)
                    stack.pop()
                    if stack:
                        os.close(frame.source)
                        os.close(frame.target)
                    continue
                relative = f"{frame.relative}/{name}" if frame.relative else name
                named = frame.named / name
                try:
                    child = self.entry(frame.source, name, frame.target, name, relative, named)
                except _Skip as skipped:
                    log.warning("%s", skipped)
                    continue
                if child is not None:
                    stack.append(child)
        finally:
            for frame in stack[1:]:
                os.close(frame.source)
                os.close(frame.target)


def _segments(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The data ranges of the first `size` bytes of `fd` (SEEK_DATA/SEEK_HOLE); the whole
    file where the filesystem cannot tell."""
    position = 0
    while position < size:
        try:
            start = os.lseek(fd, position, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:  # only a hole is left
                return
            yield position, size
            return
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        position = end


def copy_xattrs(source: int, target: int) -> None:
    """Every extended attribute of `source` (ACLs, capabilities, labels) set on `target`; one
    the target refuses (not supported there, or not root's to set) is left out, as cp -a
    leaves it out."""
    try:
        names = os.listxattr(source)
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for name in names:
        try:
            os.setxattr(target, name, os.getxattr(source, name))
        except OSError as error:
            if error.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.ENODATA):
                raise
            log.debug("extended attribute %s not copied: %s", name, error.strerror)


def _enough_fds() -> None:
    """A deep tree holds two fds per level: the soft limit raised to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _run(work: _Copier, first: _Frame | None, named: Path, *, finish_first: bool) -> None:
    if first is None:
        return
    try:
        work.walk(first, finish_first=finish_first)
    except OSError as error:
        if error.errno == errno.EMFILE:
            raise BlankslateError(
                f"copying {quote_path(str(named))}: too deep (more directories in a chain than "
                "open files allowed)"
            ) from None
        raise BlankslateError(
            f"copying {quote_path(str(named))}: {error.strerror}"
            + (f" ({quote_path(str(error.filename))})" if error.filename else "")
        ) from None


def _copy_from(work: _Copier, named: Path, start: Callable[[], _Frame | None]) -> None:
    """Copy what `start` begins (the top directory it returns, for the walk to fill; None
    when it copied all): a skip or an error of the top entry itself is an error."""
    _enough_fds()
    try:
        first = start()
    except _Skip as skipped:
        raise BlankslateError(str(skipped)) from None
    except OSError as error:
        raise BlankslateError(f"copying {quote_path(str(named))}: {error.strerror}") from None
    try:
        _run(work, first, named, finish_first=True)
    finally:
        if first is not None:
            os.close(first.source)
            os.close(first.target)


def copy_entry(parent: int, name: str, target: int, new: str, named: Path) -> None:
    """Copy the entry `name` of the held directory `parent` (never followed if a link), with
    everything below it, to the new entry `new` of `target`, a directory only root can enter.
    The entry itself vanishing or changing type is an error; below it, a warning."""
    work = _Copier(target)
    _copy_from(work, named, lambda: work.entry(parent, name, target, new, new, named))


def copy_held(held: int, parent: int, name: str, target: int, new: str, named: Path) -> None:
    """Copy what the fd `held` holds (a directory, or a regular file opened O_PATH), with
    everything below it, to the new entry `new` of `target`, a directory only root can enter.
    Without a held fd (-1), the entry `name` of the held directory `parent`, never followed."""
    if held < 0:
        copy_entry(parent, name, target, new, named)
        return
    work = _Copier(target)

    def first() -> _Frame | None:
        if stat.S_ISDIR(os.fstat(held).st_mode):
            return work._directory(os.dup(held), target, new, new, named)
        # the same inode, opened for reading through its magic link (followed)
        fd = os.open(f"/proc/self/fd/{held}", _FILE & ~os.O_NOFOLLOW)
        try:
            work.file(fd, target, new, new, named)
        finally:
            os.close(fd)
        return None

    _copy_from(work, named, first)


def copy_contents(source: int, target: int, named: Path) -> None:
    """Fill the held empty directory `target` (root's alone while this runs) with a copy of
    what the held directory `source` holds, then give it the owner, mode, times and xattrs of
    `source`."""
    _enough_fds()
    info = os.fstat(source)
    work = _Copier(target)
    first = _Frame(source, target, info, iter(os.listdir(source)), "", named)
    _run(work, first, named, finish_first=False)
    try:
        copy_xattrs(source, target)
        os.fchown(target, info.st_uid, info.st_gid)
        work.finish(first)
    except OSError as error:
        raise BlankslateError(f"copying {quote_path(str(named))}: {error.strerror}") from None
