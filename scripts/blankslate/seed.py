"""`blankslate seed`: copy today's data of newly persisted paths into persistPath.

It never overwrites and never deletes: a path whose copy exists already is left alone, and a
copy of a different kind is a conflict, reported and skipped. A copy goes to a temporary name
next to its target and is renamed into place only when complete, so a failed copy (no space, an
I/O error) leaves nothing half-written behind.

`make_parents` is public: the installer seeds host keys and password files with it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from blankslate import copy, mounts, process
from blankslate.errors import BlankslateError
from blankslate.plan import Plan
from blankslate.process import quote_path

log = logging.getLogger("blankslate")

Action = Literal["copy", "present", "mounted", "absent", "conflict", "problem"]
Kind = Literal["directory", "file"]
PARTIAL_SUFFIX = ".blankslate-partial"


@dataclass(frozen=True)
class SeedItem:
    """One persisted path of the plan and what seeding does with it."""

    path: str  # as on /, e.g. /var/lib/nixos
    kind: Kind  # what the plan persists
    action: Action
    source: Path  # the live path under --root
    target: Path  # its copy under persistPath
    detail: str = ""

    @property
    def needs_attention(self) -> bool:
        return self.action in ("conflict", "problem")


def rm_partial_cmd(path: Path) -> list[str]:
    return ["rm", "-rf", "--one-file-system", "--", str(path)]


def _describe_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "a special file"


def _matches(kind: Kind, mode: int) -> bool:
    return stat.S_ISDIR(mode) if kind == "directory" else stat.S_ISREG(mode)


def _under(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def check_persist_mounted(persist_path: str, mount_targets: frozenset[str]) -> None:
    if os.path.normpath(persist_path) not in mount_targets:
        raise BlankslateError(
            f"persistPath {persist_path} is not mounted (mount it first; seeding it would "
            "write to the root that the next boot erases)"
        )


def _inspect(
    path: str, kind: Kind, root: Path, persist: Path, mount_targets: frozenset[str]
) -> SeedItem:
    relative = path.lstrip("/")
    source, target = root / relative, persist / relative

    def item(action: Action, detail: str = "") -> SeedItem:
        return SeedItem(path, kind, action, source, target, detail)

    if str(source) in mount_targets:
        return item("mounted", "already a mount: persisted already")
    try:
        live = os.lstat(source)
    except FileNotFoundError:
        return item("absent", "not on the live system: nothing to copy")
    if stat.S_ISLNK(live.st_mode):
        link = os.readlink(source)
        resolved = Path(os.path.realpath(source))
        if not resolved.exists():
            return item("problem", f"dangling symlink to {link}: nothing to copy")
        if _under(resolved, Path(os.path.realpath(persist))):
            return item("present", f"a symlink into persistPath ({link})")
        return item("problem", f"a symlink to {link}: persist the path it points to instead")
    if not _matches(kind, live.st_mode):
        return item(
            "problem", f"{_describe_mode(live.st_mode)} on disk, but the plan persists a {kind}"
        )
    for parent in reversed(target.parents):
        if _under(persist, parent):
            continue
        if parent.exists() and not parent.is_dir():
            return item("conflict", f"{parent} is not a directory: left as is")
    try:
        existing = os.lstat(target)
    except FileNotFoundError:
        return item("copy")
    if _matches(kind, existing.st_mode):
        return item("present", "already in persistPath: left as is")
    return item("conflict", f"{target} exists as {_describe_mode(existing.st_mode)}: left as is")


def plan_seed(
    plan: Plan, *, root: Path = Path("/"), selection: Sequence[str] = ()
) -> list[SeedItem]:
    """What seeding would do with every persisted path (or those in `selection`), by path."""
    mount_targets = frozenset(entry.target for entry in mounts.all_mounts())
    check_persist_mounted(plan.persist_path, mount_targets)
    base = Path(os.path.abspath(root))
    wanted: list[tuple[str, Kind]] = [
        (directory.directory, "directory") for directory in plan.persistence.directories
    ] + [(persisted.file, "file") for persisted in plan.persistence.files]
    if selection:
        unknown = sorted(set(selection) - {path for path, _ in wanted})
        if unknown:
            raise BlankslateError(f"{unknown[0]} is not a persisted path of the plan")
        wanted = [(path, kind) for path, kind in wanted if path in selection]
    persist = Path(plan.persist_path)
    return [_inspect(path, kind, base, persist, mount_targets) for path, kind in sorted(wanted)]


def make_parents(
    persist_root: Path,
    relative_path: str | PurePosixPath,
    live_root: Path | None = None,
    *,
    mode: int = 0o755,
) -> list[Path]:
    """Create the missing parent directories of `persist_root/relative_path`.

    Each gets the owner and mode of the same directory under `live_root` when that exists, else
    root:root and `mode`. Returns the directories created (none under dry-run).
    """
    parts = PurePosixPath(str(relative_path).lstrip("/")).parts[:-1]
    created: list[Path] = []
    current, live = persist_root, live_root
    for part in parts:
        current = current / part
        live = live / part if live is not None else None
        if current.is_dir():
            continue
        if os.path.lexists(current):
            raise BlankslateError(f"{current} exists and is not a directory (move it away)")
        try:
            info = os.stat(live) if live is not None else None
        except OSError:
            info = None
        uid, gid = (info.st_uid, info.st_gid) if info is not None else (0, 0)
        permissions = stat.S_IMODE(info.st_mode) if info is not None else mode
        if process.settings.dry_run:
            log.warning("would create %s (mode %04o, owner %d:%d)", current, permissions, uid, gid)
            continue
        try:
            os.mkdir(current)
            os.chown(current, uid, gid)
            os.chmod(current, permissions)
        except OSError as error:
            raise BlankslateError(f"cannot create {current}: {error.strerror}") from None
        created.append(current)
    return created


def copy_into_place(source: Path, target: Path) -> None:
    """Copy with all metadata to a temporary name, then rename; remove the partial on failure."""
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    if os.path.lexists(partial):
        process.run(rm_partial_cmd(partial))  # left by an interrupted earlier run
    try:
        process.run(copy.cp_archive(source, partial))
    except BlankslateError as error:
        process.run(rm_partial_cmd(partial), check=False)
        raise BlankslateError(
            f"copying {source} failed, its partial copy was removed: {error}"
        ) from None
    if not process.settings.dry_run:
        os.rename(partial, target)


def apply(
    items: Sequence[SeedItem], *, persist_root: Path, live_root: Path = Path("/")
) -> list[SeedItem]:
    """Carry out the copies; returns the items copied."""
    done: list[SeedItem] = []
    base = Path(os.path.abspath(live_root))
    copies = [item for item in items if item.action == "copy"]
    for number, item in enumerate(copies, 1):
        log.info("[%d/%d] copying %s", number, len(copies), quote_path(item.path))
        if os.path.lexists(item.target):
            log.warning("%s appeared in the meantime: left as is", item.target)
            continue  # e.g. copied with a persisted parent directory
        make_parents(persist_root, item.path, base)
        copy_into_place(item.source, item.target)
        done.append(item)
    return done


def describe(items: Sequence[SeedItem]) -> list[str]:
    """One line per item, for the listing shown before asking."""
    width = max((len(item.action) for item in items), default=0)
    lines = []
    for item in items:
        source, target = quote_path(str(item.source)), quote_path(str(item.target))
        where = f"{source} -> {target}" if item.action == "copy" else quote_path(item.path)
        detail = f"  ({item.detail})" if item.detail else ""
        lines.append(f"{item.action:<{width}}  {item.kind:<9}  {where}{detail}")
    return lines


def next_step(plan: Plan) -> str:
    return (
        f"next: nixos-rebuild boot --flake .#{plan.host_name}, then reboot "
        "(the persisted paths are mounted from persistPath from that boot on)"
    )
