"""`extra-files`: the tree `nixos-anywhere --extra-files DIR` copies onto the new system's root.

It holds what must exist before the first boot and that no Nix store may hold: the SSH host
keys below persistPath (private 0600, public 0644, directories 0755) and each admin's password
file (0600, in a 0700 directory, as `passwd` makes it). Every file is written through
safefile, so a link planted below DIR is refused, never followed.

DIR trusts nothing a user owns: it is new (then made 0700), or an empty directory owned by
root (or by whoever runs this) that nobody else may write to. Another user's directory, or a
group- or world-writable one, would let that user replace the host key and the admin's hash
between this command and `nixos-anywhere`'s copy. nixos-anywhere copies DIR's contents with
their modes and sets the target's root directory to 0755 afterwards.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from blankslate import hostkeys, lockout, passwd, paths, process, safefile
from blankslate.errors import BlankslateError
from blankslate.plan import Plan


@dataclass
class ExtraFiles:
    directory: Path
    keys: list[hostkeys.HostKey] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # written, or to write under --dry-run
    # (user, file) of each admin whose password file was not written (not asked for)
    without_password: list[tuple[str, Path]] = field(default_factory=list)


NO_TERMINAL = (
    "add --no-passwords, then write each admin's file with "
    "`blankslate passwd USER --output FILE --stdin` (extra-files prints each FILE)"
)


def extra_files(
    plan: Plan,
    directory: Path,
    *,
    host_keys_from: Path | None,
    passwords: bool = True,
    dry_run: bool = False,
) -> ExtraFiles:
    """`blankslate extra-files DIR`: DIR and the admins' keys are checked before anything is
    asked; each admin's password is asked on the terminal (not with `passwords` false, nor in
    a dry run), then everything is written (`write`)."""
    check_directory(directory)
    lockout.refuse_lockout(plan, "extra-files")
    wanted = passwords and bool(plan.users) and not dry_run
    hashes = passwd.ask_passwords(plan, NO_TERMINAL) if wanted else {}
    result = write(plan, directory, host_keys_from=host_keys_from, hashes=hashes, dry_run=dry_run)
    if not hashes:
        result.without_password = [
            (user.name, paths.inside(directory, user.hashed_password_file)) for user in plan.users
        ]
    return result


def check_directory(directory: Path) -> None:
    """DIR may not exist yet, or be an empty directory (not a link to one) that only root (or
    whoever runs this) may write to: nothing in it is ever replaced, nothing else ends up on
    the new system, and no other user can change what does."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        if not directory.parent.is_dir():
            raise BlankslateError(f"{directory}: {directory.parent} does not exist") from None
        return
    if stat.S_ISLNK(info.st_mode):
        raise BlankslateError(f"{directory} is a symlink: give the directory itself")
    if not stat.S_ISDIR(info.st_mode):
        raise BlankslateError(f"{directory} exists and is not a directory")
    check_trusted(directory, info)
    if any(directory.iterdir()):
        raise BlankslateError(
            f"{directory} is not empty: give a new or empty directory (all of it is copied "
            "onto the new system)"
        )


def check_trusted(directory: Path, info: os.stat_result) -> None:
    """DIR is root's (or this user's) and nobody else may write to it."""
    if info.st_uid not in (0, os.geteuid()):
        raise BlankslateError(
            f"{directory} is owned by uid {info.st_uid}, who could replace the host keys and "
            "password hashes in it: give a new directory, or an empty one of root's"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise BlankslateError(
            f"{directory} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o}), "
            "who could replace the host keys and password hashes in it: give a new directory, "
            "or an empty one only root may write to"
        )


def planned_files(plan: Plan, directory: Path, *, passwords: bool) -> list[Path]:
    files = []
    for key in plan.ssh_host_keys:
        files += [paths.inside(directory, key), paths.inside(directory, f"{key}.pub")]
    if passwords:
        files += [paths.inside(directory, user.hashed_password_file) for user in plan.users]
    return files


def write(
    plan: Plan,
    directory: Path,
    *,
    host_keys_from: Path | None,
    hashes: dict[str, str],
    dry_run: bool = False,
) -> ExtraFiles:
    """Make (or take) the host keys and write them and the password files below DIR.
    Under --dry-run only the keys are read or made, in a private temporary directory."""
    check_directory(directory)
    result = ExtraFiles(directory)
    with hostkeys.scratch() as work:
        if host_keys_from is not None:
            result.keys = hostkeys.take_keys(plan, host_keys_from, work)
        else:
            result.keys = hostkeys.make_keys(plan, work)
        result.fingerprints = [hostkeys.fingerprint(key, work) for key in result.keys]
    result.files = planned_files(plan, directory, passwords=bool(hashes))
    if dry_run:
        for path in result.files:
            process.log.warning("would write %s", path)
        return result
    # Root's files when run as root; else the caller's (the README says to run it as root).
    owner = (0, 0) if os.geteuid() == 0 else None
    uid, gid = owner or (os.geteuid(), os.getegid())
    # DIR itself 0700 when made here; checked again on the directory held, in case it was
    # made or replaced by someone else since check_directory.
    held = safefile.open_directory(directory, make=safefile.fixed(0o700, uid, gid))
    try:
        check_trusted(directory, os.fstat(held.fd))
        if not held.created and os.listdir(held.fd):
            raise BlankslateError(f"{directory} is not empty any more; nothing written")
    finally:
        held.close()
    hostkeys.write_keys(result.keys, directory, owner=owner)
    for user in plan.users:
        if user.name in hashes:
            path = paths.inside(directory, user.hashed_password_file)
            safefile.write_file(
                path,
                hashes[user.name] + "\n",
                mode=0o600,
                owner=owner,
                below=directory,
                make=safefile.fixed(0o700, uid, gid),
            )
    return result
