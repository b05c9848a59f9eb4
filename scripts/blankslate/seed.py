"""`blankslate seed`: copy today's data of newly persisted paths into persistPath.

It never overwrites and never deletes: a path whose copy exists already is left alone, and a
copy of a different kind is a conflict, reported and skipped. A copy goes to a temporary name
next to its target and is moved into place only when complete, so a failed copy (no space, an
I/O error) leaves nothing half-written behind.

Users own directories below persistPath (seed gives them their own), so nothing below it is
written through a symlink: a link on the way is a conflict in the listing (dry run included),
and the writes themselves go through directory fds walked without following links
(`safefile`, `copy.copy_new`), so a link planted after the listing is refused too.

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

from blankslate import copy, mounts, process, safefile
from blankslate.errors import BlankslateError
from blankslate.plan import Plan
from blankslate.process import quote_path

log = logging.getLogger("blankslate")

Action = Literal["copy", "present", "mounted", "absent", "conflict", "problem"]
Kind = Literal["directory", "file"]
PARTIAL_SUFFIX = copy.PARTIAL_SUFFIX


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


rm_partial_cmd = copy.rm_partial_cmd


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
    refusal = safefile.check_no_links(persist, relative)
    if refusal is not None:
        return item("conflict", f"{refusal}: left as is (never written through)")
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


def _live_maker(live_root: Path | None, persist_root: Path, mode: int) -> safefile.DirectoryMaker:
    """A missing directory gets the owner and mode of the same one under `live_root` when that
    exists, else root:root and `mode`."""

    def make(path: Path) -> safefile.NewDirectory:
        try:
            info = os.stat(live_root / path.relative_to(persist_root)) if live_root else None
        except OSError:
            info = None
        if info is None:
            return safefile.NewDirectory(mode)
        return safefile.NewDirectory(stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)

    return make


def open_parent(
    persist_root: Path,
    relative_path: str | PurePosixPath,
    live_root: Path | None = None,
    *,
    mode: int = 0o755,
) -> safefile.Directory:
    """The parent directory of `persist_root/relative_path`, held open; its missing components
    created (see `make_parents`), none of them reached through a symlink."""
    parent = PurePosixPath(str(relative_path).lstrip("/")).parent
    return safefile.walk(persist_root, parent, make=_live_maker(live_root, persist_root, mode))


def make_parents(
    persist_root: Path,
    relative_path: str | PurePosixPath,
    live_root: Path | None = None,
    *,
    mode: int = 0o755,
) -> list[Path]:
    """Create the missing parent directories of `persist_root/relative_path`.

    Each gets the owner and mode of the same directory under `live_root` when that exists, else
    root:root and `mode`. A symlink on the way is refused. Returns the directories created
    (none under dry-run).
    """
    if not process.settings.dry_run:
        with safefile.held(open_parent(persist_root, relative_path, live_root, mode=mode)) as made:
            return made.created
    parts = PurePosixPath(str(relative_path).lstrip("/")).parts[:-1]
    refusal = safefile.check_no_links(persist_root, PurePosixPath(*parts) if parts else "")
    if refusal is not None:
        raise BlankslateError(f"{refusal}: refusing to write through it")
    make = _live_maker(live_root, persist_root, mode)
    current = persist_root
    for part in parts:
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
    return []


def copy_into_place(source: Path, target: Path, persist_root: Path, live_root: Path) -> None:
    """Make the missing parents (as `make_parents` does), copy with all metadata to a temporary
    name, then move it into place (`copy.copy_new`). The parent is walked once, and held."""
    relative = str(target.relative_to(persist_root))
    if process.settings.dry_run:
        make_parents(persist_root, relative, live_root)
        process.run(copy.cp_archive(source, target.with_name(target.name + PARTIAL_SUFFIX)))
        return
    with safefile.held(open_parent(persist_root, relative, live_root)) as parent:
        copy.copy_new(source, parent, target.name)


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
        copy_into_place(item.source, item.target, persist_root, base)
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
