"""Hashed password files for `users.users.<name>.hashedPasswordFile` (`mkpasswd`)."""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
from pathlib import Path

from blankslate import process
from blankslate.errors import BlankslateError
from blankslate.plan import Plan

SCHEMES = {"yescrypt": "$y$", "sha-512": "$6$"}


def mkpasswd(method: str) -> list[str]:
    """The password goes on stdin: never in argv, where any user could read it."""
    return ["mkpasswd", f"--method={method}", "--stdin"]


def target_path(plan: Plan, user: str, root: Path, output: Path | None) -> Path:
    if output is not None:
        plan.user(user)
        return output
    if not root.is_dir():
        raise BlankslateError(f"--root {root}: not a directory")
    return root / plan.user(user).hashed_password_file.lstrip("/")


def read_password(*, from_stdin: bool) -> str:
    try:
        password = _read_password(from_stdin=from_stdin)
        password.encode("utf-8")  # a byte that was not UTF-8 is a lone surrogate here
    except UnicodeError:
        raise BlankslateError("the password is not valid UTF-8; nothing written") from None
    if not password:
        raise BlankslateError("empty password refused; nothing written")
    return password


def _read_password(*, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise BlankslateError("no terminal to ask for the password (use --stdin)")
    password = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != password:
        raise BlankslateError("the passwords do not match; nothing written")
    return password


def hash_password(password: str, method: str) -> str:
    if method not in SCHEMES:
        raise BlankslateError(f"unknown hash method {method!r} (use yescrypt or sha-512)")
    hashed = process.run(mkpasswd(method), input=password + "\n", capture=True).stdout.strip()
    if not hashed.startswith(SCHEMES[method]):
        raise BlankslateError(f"mkpasswd gave no {method} hash; nothing written")
    return hashed


def write_secret(path: Path, content: str) -> None:
    """Atomically: a 0600 root-owned temporary file in the same 0700 directory, then rename."""
    if process.settings.dry_run:
        process.log.warning("would write %s (mode 0600)", path)
        return
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    closed = False
    try:
        os.fchmod(handle, 0o600)
        os.fchown(handle, 0, 0)
        os.write(handle, content.encode())
        os.fsync(handle)
        os.close(handle)
        closed = True
        os.replace(temporary, path)
    except BaseException:
        if not closed:
            os.close(handle)
        Path(temporary).unlink(missing_ok=True)
        raise


def set_password(plan: Plan, user: str, path: Path, *, method: str, from_stdin: bool) -> Path:
    if os.geteuid() != 0:
        raise BlankslateError("run as root (the password file belongs to root)")
    password = read_password(from_stdin=from_stdin)
    write_secret(path, hash_password(password, method) + "\n")
    return path
