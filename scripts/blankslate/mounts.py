"""Mounting, unmounting and asking the kernel what is mounted (`mount`, `umount`, `findmnt`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from blankslate import process
from blankslate.errors import BlankslateError
from blankslate.paths import is_under


def mount_cmd(
    source: str, target: Path | str, *, options: Sequence[str] = (), fstype: str | None = None
) -> list[str]:
    args = ["mount"]
    if fstype:
        args += ["-t", fstype]
    if options:
        args += ["-o", ",".join(options)]
    return [*args, "--", source, str(target)]


def umount_cmd(target: Path | str, *, recursive: bool = False, lazy: bool = False) -> list[str]:
    args = ["umount"]
    if recursive:
        args.append("-R")
    if lazy:
        args.append("-l")
    return [*args, "--", str(target)]


def findmnt_cmd(*, target: Path | str | None = None, source: str | None = None) -> list[str]:
    args = ["findmnt", "--json", "--list", "--output", "TARGET,SOURCE,FSTYPE,OPTIONS"]
    if target is not None:
        args += ["--mountpoint", str(target)]
    if source is not None:
        args += ["--source", source]
    return args


@dataclass(frozen=True)
class MountEntry:
    target: str
    source: str
    fstype: str
    options: tuple[str, ...]

    @property
    def device(self) -> str:
        """The source without a btrfs subvolume suffix: "/dev/vda3[/persist]" -> "/dev/vda3"."""
        return self.source.split("[", 1)[0]


def _entries(args: list[str]) -> list[MountEntry]:
    result = process.probe(args, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return []  # findmnt exits 1 when nothing matches
    try:
        rows = json.loads(result.stdout)["filesystems"]
    except (ValueError, KeyError) as error:
        raise BlankslateError(f"findmnt: unexpected output ({error})") from None
    return [
        MountEntry(row["target"], row["source"], row["fstype"], tuple(row["options"].split(",")))
        for row in rows
    ]


def all_mounts() -> list[MountEntry]:
    return _entries(findmnt_cmd())


def mount_at(target: Path | str) -> MountEntry | None:
    """The filesystem mounted exactly at `target`, or None."""
    entries = _entries(findmnt_cmd(target=target))
    return entries[-1] if entries else None


def mounts_below(directory: Path | str) -> list[MountEntry]:
    """Mounts at or below `directory`, deepest first (the order to unmount them)."""
    base = str(Path(directory))
    inside = [entry for entry in all_mounts() if is_under(base, entry.target)]
    return sorted(inside, key=lambda entry: entry.target.count("/"), reverse=True)


def persist_mount(persist: Path | str, hint: str) -> MountEntry:
    """What is mounted on persistPath (the one under --root); an error when nothing is: a
    write there would land on the root the next boot erases (or on some other directory)."""
    wanted = os.path.normpath(persist)
    found = [entry for entry in all_mounts() if entry.target == wanted]
    if not found:
        raise BlankslateError(f"persistPath {wanted} is not mounted ({hint})")
    return found[-1]


def holding_mount(root: str, mount_targets: frozenset[str], system_root: str = "/") -> Path:
    """The mountpoint of the filesystem a persistence root lies on: the root itself, or the
    nearest directory above it that is mounted, never the system's root (`/`, or the --root
    of a target system), which the next boot erases."""
    holders = [
        t for t in mount_targets if is_under(system_root, t, strictly=True) and is_under(t, root)
    ]
    if not holders:
        raise BlankslateError(
            f"persistence root {root} is on no mounted filesystem but {system_root} (mount it "
            "first: a copy there would land on the root that the next boot erases)"
        )
    return Path(max(holders, key=len))


def same_device(first: str, second: str) -> bool:
    """Whether two device paths name one block device (/dev/disk/by-label/x and /dev/vda3)."""
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        one, two = os.stat(first), os.stat(second)
    except OSError:
        return False
    return stat.S_ISBLK(one.st_mode) and stat.S_ISBLK(two.st_mode) and one.st_rdev == two.st_rdev


def backing_device(path: Path | str) -> str:
    """The block device whose filesystem is mounted at `path` (e.g. the one holding /persist)."""
    entry = mount_at(path)
    if entry is None:
        raise BlankslateError(f"{path} is not a mountpoint (give --device, or mount it first)")
    return entry.device


@contextlib.contextmanager
def mounted(
    source: str, *, options: Sequence[str] = (), fstype: str | None = None, dry_run: bool = False
) -> Iterator[Path]:
    """Mount `source` on a private temporary directory; always unmount and remove it after,
    whatever ends the block (an error, Ctrl-C, even one that lands while `mount` runs).

    A read-only mount is a probe and happens under --dry-run too; a writable one does not.
    The directory is removed only once nothing is mounted on it.
    """
    probe = "ro" in options
    sweep_stale_scratch(dry_run=dry_run)
    directory = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}."))
    made = False
    try:
        try:
            process.run(
                mount_cmd(source, directory, options=options, fstype=fstype),
                dry_run=dry_run and not probe,
            )
            made = True
        finally:
            made = made or os.path.ismount(directory)  # interrupted after the kernel mounted it
        yield directory
    finally:
        try:
            if made:
                _unmount_temporary(directory, dry_run=dry_run and not probe)
        finally:
            if not os.path.ismount(directory):  # never a recursive delete into a mount
                shutil.rmtree(directory, ignore_errors=True)


SCRATCH_PREFIX = "blankslate."


def _owner_alive(name: str) -> bool:
    """Whether the process that made scratch directory `name` (blankslate.<pid>.XXXX) runs."""
    fields = name.split(".")
    if len(fields) < 3 or not fields[1].isdigit():
        return True  # not ours, or from before the pid was in the name: leave it
    try:
        os.kill(int(fields[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_scratch(*, dry_run: bool = False) -> list[Path]:
    """Unmount and remove the scratch mounts of blankslate runs that were killed (SIGKILL,
    power cut of the process) before their own cleanup: blankslate.<pid>.* directories in the
    temporary directory whose process is gone. Returns what it took down."""
    if dry_run:
        return []
    base = Path(tempfile.gettempdir())
    swept = []
    try:
        names = [name for name in os.listdir(base) if name.startswith(SCRATCH_PREFIX)]
    except OSError:
        return []
    for name in names:
        directory = base / name
        if directory.is_symlink() or not os.path.ismount(directory) or _owner_alive(name):
            continue
        with contextlib.suppress(BlankslateError, OSError):
            for _ in range(8):  # a mount stacked on another: one layer at a time
                if not os.path.ismount(directory):
                    break
                _unmount_temporary(directory, dry_run=False)
            directory.rmdir()
            swept.append(directory)
    return swept


def _unmount_temporary(directory: Path, *, dry_run: bool) -> None:
    """umount; when the filesystem is busy, detach it lazily (it goes once its users do)."""
    result = process.run(umount_cmd(directory), check=False, dry_run=dry_run)
    if result.returncode != 0:
        process.run(umount_cmd(directory, lazy=True), dry_run=dry_run)


def top_level(
    device: str, *, readonly: bool = True, dry_run: bool = False
) -> contextlib.AbstractContextManager[Path]:
    """The top level of a btrfs filesystem (subvolid=5), where every subvolume is visible."""
    options = ["subvolid=5", "ro" if readonly else "rw"]
    return mounted(device, options=options, fstype="btrfs", dry_run=dry_run)
