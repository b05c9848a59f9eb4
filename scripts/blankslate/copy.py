"""Copying with every piece of metadata kept (`cp`); shared by seed, recover and install.
Nothing here runs in a dry run: a dry run stops before it (`seed.copy_into_place`).

The target's directory is held open (`safefile.Directory`) and cp is pointed at the copy's
place through /proc/<pid>/fd/<fd>: that path is the directory the fd holds, so a user who owns
it (or any directory above it) cannot swap it, or plant a link that cp would follow, between
our checks and the copy. The final component is ours too: cp creates it inside a staging
directory we made root-only (`copy_new`), or fills an empty directory we first took from its
owner (`copy_into_empty`). Only then does the copy move into place, relative to the fds.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from blankslate import process, safefile
from blankslate.errors import BlankslateError

PARTIAL_SUFFIX = ".blankslate-partial"


def cp_archive(source: Path, target: Path | str) -> list[str]:
    """Owner, mode, timestamps, ACLs and xattrs kept; extents shared where the filesystem can."""
    return [
        "cp",
        "--archive",
        "--reflink=auto",
        "--no-target-directory",
        "--",
        str(source),
        str(target),
    ]


def rm_partial_cmd(path: Path | str) -> list[str]:
    return ["rm", "-rf", "--one-file-system", "--", str(path)]


def copy_new(source: Path, directory: safefile.Directory, name: str) -> None:
    """Copy `source` to the new entry `name` of `directory`, never over anything.

    cp writes into `<name>.blankslate-partial/<name>`, a directory made here mode 0700: no
    other user can plant anything in it. The finished copy is then moved into place (a file
    by link(), which fails rather than replace; a directory by rename()); a failed copy is
    removed, so nothing half-written is left behind.
    """
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
        process.run(
            cp_archive(source, Path(f"/proc/{os.getpid()}/fd/{stage_fd}", name)), dry_run=False
        )
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
            f"copying {source} failed, its partial copy was removed: {error}"
        ) from None
    finally:
        os.close(stage_fd)
    with contextlib.suppress(OSError):
        os.rmdir(stage, dir_fd=directory.fd)
    os.fsync(directory.fd)


def copy_into_empty(source: Path, directory: safefile.Directory, name: str) -> None:
    """Fill the existing empty directory `name` (impermanence made it; it may be bind-mounted,
    so it must stay the same inode) with a copy of the directory `source`.

    While cp runs the directory is root's, mode 0700, so its owner cannot plant a link in it;
    cp gives it the source's owner and mode at the end. On failure its own come back.
    """
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
        # "/." so cp sees the directory the magic link leads to, not the link itself.
        process.run(cp_archive(source, f"/proc/{os.getpid()}/fd/{fd}/."), dry_run=False)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.fchown(fd, before.st_uid, before.st_gid)
            os.fchmod(fd, stat.S_IMODE(before.st_mode))
        if isinstance(error, OSError):
            raise BlankslateError(f"cannot copy into {target}: {error.strerror}") from None
        raise
    finally:
        os.close(fd)
