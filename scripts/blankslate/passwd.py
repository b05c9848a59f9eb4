"""Hashed password files for `users.users.<name>.hashedPasswordFile` (`mkpasswd`)."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from blankslate import mounts, passwordfile, paths, process, safefile, ui
from blankslate.errors import BlankslateError, require_root
from blankslate.plan import Plan

SCHEMES = {"yescrypt": "$y$", "sha-512": "$6$"}


def mkpasswd(method: str) -> list[str]:
    """The password goes on stdin: never in argv, where any user could read it."""
    return ["mkpasswd", f"--method={method}", "--stdin"]


def target_path(plan: Plan, user: str, root: Path, output: Path | None) -> Path:
    """--output FILE as given, else the plan's file under --root; the persistPath it lies in
    must be mounted (else it would land on the root the next boot erases)."""
    if output is not None:
        plan.user(user)
        if output.is_dir():
            raise BlankslateError(f"--output {output} is a directory (name a file)")
        return output
    if not root.is_dir():
        raise BlankslateError(f"--root {root}: not a directory")
    path = paths.inside(root, plan.user(user).hashed_password_file)
    persist = persist_under(plan, root, path)
    if persist is not None:
        mounts.persist_mount(
            persist,
            f"mount it first, e.g. `blankslate mount --root {root}`, or give --output",
        )
    return path


def persist_under(plan: Plan, root: Path, path: Path) -> Path | None:
    """persistPath under `root` when `path` lies in it."""
    persist = paths.inside(root, plan.persist_path)
    return persist if paths.is_under(str(persist), str(path), strictly=True) else None


def read_password(*, from_stdin: bool) -> str:
    try:
        password = _read_password(from_stdin=from_stdin)
        password.encode("utf-8")  # a byte that was not UTF-8 is a lone surrogate here
    except UnicodeError:
        raise BlankslateError("the password is not valid UTF-8; nothing written") from None
    if not password:
        raise BlankslateError("empty password refused; nothing written")
    return password


TRIES = 3  # a typo asks again, as passwd(1) does


def _read_password(*, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise BlankslateError("no terminal to ask for the password (use --stdin)")
    for _ in range(TRIES):
        password = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") == password:
            return password
        print("The passwords do not match; again.", file=sys.stderr)
    raise BlankslateError(f"the passwords did not match {TRIES} times; nothing written")


def hash_password(password: str, method: str) -> str:
    if method not in SCHEMES:
        raise BlankslateError(f"unknown hash method {method!r} (use yescrypt or sha-512)")
    hashed = process.run(
        mkpasswd(method), input=password + "\n", capture=True, dry_run=False
    ).stdout.strip()  # changes nothing: it only hashes
    # The rule doctor and the boot-time guard apply (passwordfile.py): what is written is one
    # hash NixOS turns into a working /etc/shadow entry, or nothing is written.
    if not hashed.startswith(SCHEMES[method]) or passwordfile.text_problem(hashed) is not None:
        raise BlankslateError(f"mkpasswd gave no {method} hash; nothing written")
    return hashed


def write_secret(
    path: Path, content: str, *, below: Path | None = None, dry_run: bool = False
) -> None:
    """Atomically (`safefile`): 0600, root's; missing directories made 0700 whatever the umask.
    Below `below` (persistPath, where users own directories) no symlink is followed."""
    if dry_run:
        process.log.warning("would write %s (mode 0600)", path)
        return
    safefile.write_file(
        path, content, mode=0o600, owner=(0, 0), below=below, make=safefile.fixed(0o700)
    )


def set_password(
    plan: Plan,
    user: str,
    path: Path,
    *,
    method: str,
    from_stdin: bool,
    below: Path | None = None,
) -> Path:
    require_root("the password file belongs to root")
    password = read_password(from_stdin=from_stdin)
    write_secret(path, hash_password(password, method) + "\n", below=below)
    return path


def write_password_file(
    plan: Plan, user: str, *, root: Path, output: Path | None, method: str, from_stdin: bool
) -> Path:
    """`blankslate passwd USER`: ask (or read stdin), hash, and write `user`'s file: --output
    FILE as given, else the plan's file under `root`, where no symlink below persistPath is
    followed. Returns the file written."""
    target = target_path(plan, user, root, output)
    below = None if output is not None else persist_under(plan, root, target)
    return set_password(plan, user, target, method=method, from_stdin=from_stdin, below=below)


def ask_passwords(plan: Plan, no_terminal: str | None = None) -> dict[str, str]:
    """Asked before the first write, so a typo cannot leave a half-made install. Without a
    terminal, the error says `no_terminal`: what the caller's user does instead."""
    if no_terminal is not None and not os.isatty(0):
        raise BlankslateError(f"no terminal to ask for passwords: {no_terminal}")
    hashes = {}
    for user in plan.users:
        ui.say(f"Password for {user.name}:")
        hashes[user.name] = hash_password(read_password(from_stdin=False), "yescrypt")
    return hashes
