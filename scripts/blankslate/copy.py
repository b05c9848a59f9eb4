"""Copying with every piece of metadata kept (`cp`, or `fdcopy` for a live tree); shared by
seed, recover and install. Nothing here runs in a dry run: a dry run stops before it
(`seed.copy_into_place`).

The target's directory is held open (`safefile.Directory`); cp is pointed at the copy's place
through /proc/<pid>/fd/<fd>, fdcopy works relative to the fd itself. Either way that is the
directory the fd holds, so a user who owns it (or any directory above it) cannot swap it, or
plant a link that the copy would follow, between our checks and the copy. The final component
is ours too: the copy is made inside a staging directory we made root-only (`copy_new`), or
fills an empty directory we first took from its owner (`copy_into_empty`). Only then does the
copy move into place, relative to the fds.

The source side is held the same way (`held_source`): every component of its path is opened
from a held directory fd without following a link (a user's `~/.config -> ../../root` is
refused). What nothing can change under the copy (`frozen`: a read-only snapshot, an old root
only root reaches) is read by cp through /proc/<pid>/fd/<fd>. Below that directory cp walks by
name, so a live tree, where a user who can write a directory inside it can exchange a
subdirectory and a link while cp runs, is copied by `fdcopy` instead: every entry opened from
its parent's held fd without following a link, never by name from the top.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from blankslate import fdcopy, process, safefile
from blankslate.errors import BlankslateError

PARTIAL_SUFFIX = ".blankslate-partial"


def cp_archive(source: Path | str, target: Path | str, *, follow_source: bool = False) -> list[str]:
    """Owner, mode, timestamps, ACLs and xattrs kept; extents shared where the filesystem can.
    `follow_source`: -H, the source argument (a /proc/<pid>/fd/<fd> link to a held file) is
    followed; links inside a copied tree never are."""
    return [
        "cp",
        "--archive",
        *(["-H"] if follow_source else []),
        "--reflink=auto",
        "--no-target-directory",
        "--",
        str(source),
        str(target),
    ]


@dataclass(frozen=True)
class Source:
    """What cp reads: `argument`, a path through a held fd; `named` for messages."""

    argument: str
    named: Path
    follow: bool = False  # cp -H: `argument` is the /proc link to a held file
    # Nothing changes under the copy (a read-only snapshot, an old root): cp reads it. Else
    # `fdcopy` reads the held `fd` (a directory, or a regular file opened O_PATH), or the
    # entry `name` of the held directory `parent` (a symlink, a special file).
    frozen: bool = True
    fd: int = -1
    parent: int = -1
    name: str = ""


_READ_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_HOLD_FILE = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def held_source(
    base: Path, relative: str | PurePosixPath, *, frozen: bool = False
) -> Iterator[Source]:
    """`base/relative` held open for the copy to read, every component below `base` (trusted,
    as named) opened without following a link. A directory is read through its fd ("/." so cp
    sees the directory, not the /proc link), a regular file through its O_PATH fd (cp -H), and
    a symlink or special file as the entry of its held parent (cp copies the entry itself).
    `frozen`: nothing below `base` changes while it is read (a read-only snapshot), so cp may
    walk it by name; otherwise `fdcopy` walks it through fds."""
    parts = PurePosixPath(str(relative).lstrip("/"))
    named = base / parts
    if not parts.parts:
        raise BlankslateError(f"{named}: nothing to copy")
    parent = safefile.walk_source(base, parts.parent)
    fd = -1
    try:
        info = parent.entry(parts.name)
        if info is None:
            raise BlankslateError(f"{named} does not exist")
        proc = f"/proc/{os.getpid()}/fd"
        if stat.S_ISDIR(info.st_mode):
            fd = _open_source(parts.name, parent.fd, _READ_DIRECTORY, named)
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                raise BlankslateError(f"{named} changed while it was opened: not copied")
            yield Source(f"{proc}/{fd}/.", named, frozen=frozen, fd=fd)
        elif stat.S_ISREG(info.st_mode):
            fd = _open_source(parts.name, parent.fd, _HOLD_FILE, named)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BlankslateError(f"{named} changed while it was opened: not copied")
            yield Source(f"{proc}/{fd}", named, follow=True, frozen=frozen, fd=fd)
        else:
            yield Source(
                parent.proc_path(parts.name), named, frozen=frozen, parent=parent.fd,
                name=parts.name,
            )  # fmt: skip
    finally:
        if fd >= 0:
            os.close(fd)
        parent.close()


def _open_source(name: str, dir_fd: int, flags: int, named: Path) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as error:
        raise BlankslateError(
            f"{named} changed while it was opened ({error.strerror}): not copied"
        ) from None


def _as_source(source: Path | Source) -> Source:
    return source if isinstance(source, Source) else Source(str(source), source)


def rm_partial_cmd(path: Path | str) -> list[str]:
    return ["rm", "-rf", "--one-file-system", "--", str(path)]


def copy_new(source: Path | Source, directory: safefile.Directory, name: str) -> None:
    """Copy `source` to the new entry `name` of `directory`, never over anything.

    cp writes into `<name>.blankslate-partial/<name>`, a directory made here mode 0700: no
    other user can plant anything in it. The finished copy is then moved into place (a file
    by link(), which fails rather than replace; a directory by rename()); a failed copy is
    removed, so nothing half-written is left behind.
    """
    read = _as_source(source)
    target = directory.path / name
    stage = name + PARTIAL_SUFFIX
    if directory.entry(stage) is not None:  # left by an interrupted earlier run
        process.run(rm_partial_cmd(directory.proc_path(stage)), dry_run=False)
    try:
        os.mkdir(stage, 0o700, dir_fd=directory.fd)
        stage_fd = directory.open_subdirectory(stage)
    except OSError as error:
        raise BlankslateError(f"cannot create {directory.path / stage}: {error.strerror}") from None
    try:
        info = os.fstat(stage_fd)
        if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise BlankslateError(f"{directory.path / stage} was replaced while it was created")
        if read.frozen:
            process.run(
                cp_archive(
                    read.argument,
                    Path(f"/proc/{os.getpid()}/fd/{stage_fd}", name),
                    follow_source=read.follow,
                ),
                dry_run=False,
            )
        else:
            fdcopy.copy_held(read.fd, read.parent, read.name, stage_fd, name, read.named)
        if directory.entry(name) is not None:
            raise BlankslateError(f"{target} appeared during the copy: left as is")
        try:
            if stat.S_ISDIR(os.stat(name, dir_fd=stage_fd, follow_symlinks=False).st_mode):
                os.rename(name, name, src_dir_fd=stage_fd, dst_dir_fd=directory.fd)
            else:
                os.link(name, name, src_dir_fd=stage_fd, dst_dir_fd=directory.fd)
                os.unlink(name, dir_fd=stage_fd)
        except OSError as error:
            raise BlankslateError(f"cannot move the copy to {target}: {error.strerror}") from None
    except BlankslateError as error:
        process.run(rm_partial_cmd(directory.proc_path(stage)), check=False, dry_run=False)
        raise BlankslateError(
            f"copying {read.named} failed, its partial copy was removed: {error}"
        ) from None
    finally:
        os.close(stage_fd)
    with contextlib.suppress(OSError):
        os.rmdir(stage, dir_fd=directory.fd)
    os.fsync(directory.fd)


def copy_into_empty(source: Path | Source, directory: safefile.Directory, name: str) -> None:
    """Fill the existing empty directory `name` (impermanence made it; it may be bind-mounted,
    so it must stay the same inode) with a copy of the directory `source`.

    While cp runs the directory is root's, mode 0700, so its owner cannot plant a link in it;
    cp gives it the source's owner and mode at the end. On failure its own come back.
    """
    read = _as_source(source)
    target = directory.path / name
    fd = directory.open_subdirectory(name)
    before = os.fstat(fd)
    try:
        os.fchown(fd, 0, 0)
        os.fchmod(fd, 0o700)
        if os.listdir(fd):
            raise BlankslateError(
                f"{target} already exists (move it away first; recover never overwrites)"
            )
        if not read.frozen:
            fdcopy.copy_contents(read.fd, fd, read.named)
        else:
            # "/." so cp sees the directory the magic link leads to, not the link itself.
            process.run(
                cp_archive(
                    read.argument, f"/proc/{os.getpid()}/fd/{fd}/.", follow_source=read.follow
                ),
                dry_run=False,
            )
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.fchown(fd, before.st_uid, before.st_gid)
            os.fchmod(fd, stat.S_IMODE(before.st_mode))
        if isinstance(error, OSError):
            raise BlankslateError(f"cannot copy into {target}: {error.strerror}") from None
        raise
    finally:
        os.close(fd)
