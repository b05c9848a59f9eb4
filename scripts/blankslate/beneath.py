"""A root seen beneath its mounts: what a bind mount hides is still on the root, and the next
boot erases it.

A forked child of the command enters a mount namespace of its own (unshare(2), CLONE_NEWNS),
makes every mount in it private (so nothing it mounts reaches the system's namespace), and
bind-mounts the root, without what is mounted below it (a plain `--bind`, not `--rbind`),
read-only on a fresh directory. There it does its work and hands the result back through a
pipe. The namespace dies with the child, and the mount with it: whatever ends the command (an
error, Ctrl-C, SIGKILL of the child or of the command), nothing stays mounted. Only the empty
directory the view was mounted on can be left behind, if the command itself is killed.
"""

from __future__ import annotations

import marshal
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from blankslate import mounts, process
from blankslate.errors import BlankslateError

T = TypeVar("T")
CLONE_NEWNS = 0x00020000  # <linux/sched.h>: a new mount namespace


class NotRoot(BlankslateError):
    """Only root can make a mount namespace and mount in it."""


def make_private_cmd() -> list[str]:
    """Every mount of this namespace private: no mount made here propagates out."""
    return ["mount", "--make-rprivate", "/"]


def bind_view_cmd(root: str, target: Path | str) -> list[str]:
    """`root`'s own filesystem on `target`, read-only, without the mounts below it."""
    return mounts.mount_cmd(root, target, options=("bind", "ro"))


def _unshare_mount_namespace() -> None:
    import ctypes  # only in the child that needs it: diff's start stays light

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        error = ctypes.get_errno()
        raise BlankslateError(f"cannot make a mount namespace: {os.strerror(error)}")


def _child(root: str, view: Path, work: Callable[[str], Any], write: int) -> int:
    """In the forked child: enter the namespace, mount the view, work, send the result."""
    try:
        _unshare_mount_namespace()
        process.run(make_private_cmd(), dry_run=False)
        process.run(bind_view_cmd(root, view), dry_run=False)
        payload = marshal.dumps((True, work(str(view))))
        status = 0
    except BlankslateError as error:
        payload, status = marshal.dumps((False, str(error))), 1
    except OSError as error:
        what = f"{error.filename}: {error.strerror}" if error.filename else str(error.strerror)
        payload, status = marshal.dumps((False, what)), 1
    with os.fdopen(write, "wb") as pipe:
        pipe.write(payload)
    return status


def in_view(root: str, work: Callable[[str], T]) -> T:
    """`work(view)` run in a child that sees `root` beneath its mounts at `view`; its result
    (plain data: tuples, lists, strings, numbers) comes back. A failure there is raised here.

    Only root can make the namespace: for anyone else this fails at once (BlankslateError)."""
    if os.geteuid() != 0:
        raise NotRoot(f"not root: what the mounts on {root} hide is not seen (run as root)")
    view = Path(tempfile.mkdtemp(prefix="blankslate-beneath."))
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; the integration tests run it
            status = 1
            try:
                os.close(read)
                status = _child(root, view, work, write)
            finally:
                os._exit(status)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        _pid, status = os.waitpid(pid, 0)
    finally:
        if not os.path.ismount(view):  # never a delete into a mount
            shutil.rmtree(view, ignore_errors=True)
    try:
        done, result = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        code = os.waitstatus_to_exitcode(status)
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        raise BlankslateError(f"looking beneath the mounts of {root} failed ({how})") from None
    if not done:
        raise BlankslateError(f"looking beneath the mounts of {root}: {result}")
    return cast(T, result)
