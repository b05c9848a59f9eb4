"""`blankslate seed`: copy today's data of newly persisted paths into the persistence root that
keeps each one (persistPath, or another root of environment.persistence or preservation).

It never overwrites and never deletes: a path whose copy exists already is left alone, and a
copy of a different kind is a conflict, reported and skipped. A copy goes to a temporary name
next to its target and is moved into place only when complete, so a failed copy (no space, an
I/O error) leaves nothing half-written behind.

Users own directories below a root (seed gives them their own), so nothing is written through
a symlink, from the mountpoint of the root's filesystem down: a link on the way is a conflict in
the listing (dry run included), and the writes themselves go through directory fds walked
without following links (`safefile`, `copy.copy_new`), so a link planted after the listing is
refused too. Missing directories on the way get the owner and mode the plan declares, else
those of the live directory.

The source side is as safe: users own directories of the live tree too (their homes). Every
source path is resolved component by component without following a link (a user's
`~/.config -> ../../root` is a problem, never followed), and it is read through held fds
(`copy.held_source`). Where the root is a btrfs subvolume, the copies are read by cp from a
read-only snapshot of it taken for the run (`reading_root`), deleted afterwards, also on a
failure or Ctrl-C: nothing changes under cp, so a user who swaps a directory and a symlink in
a loop steers nothing, and each path is copied as it was at one instant. Where no snapshot
holds the source (a tmpfs, ZFS or plain root, a nested subvolume), it is copied by `fdcopy`:
every entry opened from its parent's held fd without following a link, so the same swap
copies at worst the link itself, never what it points to.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from blankslate import accounts, btrfs, copy, mounts, paths, process, safefile, services
from blankslate.display import quote_path
from blankslate.errors import BlankslateError
from blankslate.plan import Persisted, Plan

log = logging.getLogger("blankslate")

Action = Literal["copy", "fill", "present", "mounted", "absent", "conflict", "problem"]
Kind = Literal["directory", "file"]
PARTIAL_SUFFIX = copy.PARTIAL_SUFFIX


@dataclass(frozen=True)
class SeedItem:
    """One persisted path of the plan and what seeding does with it."""

    path: str  # as on /, e.g. /var/lib/nixos
    kind: Kind  # what the plan persists
    action: Action
    source: Path  # the live path under --root
    target: Path  # its copy under the persistence root that keeps it
    detail: str = ""
    base: Path = Path("/")  # the mounted filesystem the copy is written into, walked from here
    # Owner and mode of each directory on the way to `target` that the plan declares.
    declared: Mapping[Path, safefile.NewDirectory] = field(default_factory=dict)
    # The source lies on the root, a btrfs subvolume mounted at --root: a snapshot holds it.
    snapshot: bool = False

    @property
    def root(self) -> Path:
        """The persistence root: `target` is the root followed by `path`."""
        return Path(str(self.target).removesuffix(self.path) or "/")

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


def check_persist_mounted(persist_path: str, mount_targets: frozenset[str]) -> None:
    if os.path.normpath(persist_path) not in mount_targets:
        raise BlankslateError(
            f"persistPath {persist_path} is not mounted (mount it first; seeding it would "
            "write to the root that the next boot erases)"
        )


def _declared_directories(
    entry: Persisted, root: Path, base: Path, users: accounts.Accounts
) -> dict[Path, safefile.NewDirectory]:
    """Owner and mode of the directories from `base` down to the copy in `root` (the
    persistence root as seen from here): the root's own missing directories root's and 0755,
    those above the path as the plan declares them."""
    declared: dict[Path, safefile.NewDirectory] = {}
    for directory in [root, *root.parents]:
        if directory != base and base in directory.parents:
            declared[directory] = safefile.NewDirectory(0o755)
    for parent in entry.parents:
        uid, gid = users.uid(parent.user), users.gid(parent.group)
        declared[paths.inside(root, parent.directory)] = safefile.NewDirectory(
            int(parent.mode, 8), uid, gid
        )
    # DynamicUser services' state: systemd wants /var/lib/private root's and 0700 (impermanence
    # #93, #254), whatever a plan without its parents or a live copy says.
    private = root / "var/lib/private"
    if private in paths.inside(root, entry.path).parents:
        declared[private] = safefile.NewDirectory(0o700, 0, 0)
    return declared


def _inspect(
    entry: Persisted,
    live_root: Path,
    mount_targets: frozenset[str],
    base: Path,
    users: accounts.Accounts,
    snapshot: bool = False,
) -> SeedItem:
    """What seeding does with one path; `base` is the mountpoint holding its root."""
    path, kind = entry.path, entry.kind
    relative = path.lstrip("/")
    persist = paths.inside(live_root, entry.root)
    source, target = live_root / relative, persist / relative

    def item(action: Action, detail: str = "") -> SeedItem:
        return SeedItem(path, kind, action, source, target, detail)

    if str(source) in mount_targets:
        return item("mounted", "already a mount: persisted already")
    on_the_way = safefile.check_no_links(live_root, PurePosixPath(relative).parent)
    if on_the_way is not None:
        return item("problem", f"{on_the_way}: never followed, nothing copied")
    try:
        live = os.lstat(source)
    except FileNotFoundError:
        return item("absent", "not on the live system: nothing to copy")
    try:
        link = os.readlink(source) if stat.S_ISLNK(live.st_mode) else ""
    except OSError as error:  # no longer a link
        return item("problem", f"{source}: {error.strerror} (it changed while looked at)")
    if stat.S_ISLNK(live.st_mode):
        # An absolute link means a path of the system under --root, not of this one.
        pointed = paths.inside(live_root, link) if link.startswith("/") else source.parent / link
        if not pointed.exists():
            return item("problem", f"dangling symlink to {link}: nothing to copy")
        if paths.resolves_under(pointed, persist):
            return item("present", f"a symlink into {persist} ({link})")
        return item("problem", f"a symlink to {link}: persist the path it points to instead")
    if not _matches(kind, live.st_mode):
        return item(
            "problem", f"{_describe_mode(live.st_mode)} on disk, but the plan persists a {kind}"
        )
    refusal = safefile.check_no_links(base, str(target.relative_to(base)))
    if refusal is not None:
        return item("conflict", f"{refusal}: left as is (never written through)")
    try:
        declared = _declared_directories(entry, persist, base, users)
    except BlankslateError as error:
        return item("problem", f"{error}: nothing copied")
    on_root = snapshot and _nearest_mount(source, mount_targets) == str(live_root)
    try:
        existing = os.lstat(target)
    except FileNotFoundError:
        return SeedItem(
            path, kind, "copy", source, target, base=base, declared=declared, snapshot=on_root
        )
    if (
        kind == "directory"
        and _matches(kind, existing.st_mode)
        and _empty_with_data(target, source)
    ):
        # impermanence's activation (nixos-install, a switch) makes the persistent directory
        # before anything is in it: fill it in place, it may be bind-mounted already.
        return SeedItem(
            path, kind, "fill", source, target, "empty there: filled in place", base,
            snapshot=on_root,
        )  # fmt: skip
    if _matches(kind, existing.st_mode):
        return item("present", f"already in {persist}: left as is")
    return item("conflict", f"{target} exists as {_describe_mode(existing.st_mode)}: left as is")


def _nearest_mount(path: Path, mount_targets: frozenset[str]) -> str:
    return max((t for t in mount_targets if paths.is_under(t, str(path))), key=len, default="")


def is_btrfs_subvolume(base: Path, mounted: Sequence[mounts.MountEntry]) -> bool:
    """Whether `base` is a mounted btrfs subvolume (the root of one): a snapshot of it holds
    every file below it that no other mount or nested subvolume holds."""
    entries = [entry for entry in mounted if entry.target == str(base)]
    return bool(entries) and entries[-1].fstype == "btrfs" and btrfs.is_subvolume(base)


def _nested_subvolumes(base: Path) -> list[str] | None:
    """The subvolumes directly below the one mounted at `base`, as paths relative to `base`;
    None when they cannot be placed (then nothing is read from a snapshot)."""
    shown = process.output(btrfs.subvolume_show(base)).splitlines()
    own = shown[0].strip().strip("/") if shown else ""
    found = btrfs.nested_subvolumes(process.output(btrfs.subvolume_list_below(base)))
    prefix = f"{own}/" if own and own != "<FS_TREE>" else ""
    if any(not path.startswith(prefix) for path in found):
        return None
    return [path.removeprefix(prefix) for path in found]


@contextlib.contextmanager
def reading_root(
    base: Path, copies: Sequence[SeedItem], *, dry_run: bool
) -> Iterator[Callable[[SeedItem], Path]]:
    """Where each copy is read from: a read-only snapshot of the root subvolume mounted at
    `base`, taken now in a directory only root can enter and deleted afterwards (also on a
    failure or Ctrl-C), for the items it holds (`SeedItem.snapshot`, and no nested subvolume
    at, above or below the path: a snapshot shows those empty); `base` itself for the rest."""
    wanted = [item for item in copies if item.snapshot]
    nested = _nested_subvolumes(base) if wanted else []
    usable = (
        set()
        if nested is None
        else {
            item.path
            for item in wanted
            if not any(paths.nested(inner, item.path.lstrip("/")) for inner in nested)
        }
    )
    if not usable:
        yield lambda _item: base
        return
    if dry_run:
        place = base / ".blankslate-seed.XXXXXXXX" / "root"
        process.run(btrfs.subvolume_snapshot(base, place, readonly=True), dry_run=True)
        yield lambda _item: base
        return
    directory = Path(tempfile.mkdtemp(prefix=".blankslate-seed.", dir=base))  # mode 0700
    snapshot = directory / "root"
    try:
        process.run(btrfs.subvolume_snapshot(base, snapshot, readonly=True), dry_run=False)
        yield lambda item: snapshot if item.path in usable else base
    finally:  # also when interrupted while the snapshot was being made
        if os.path.lexists(snapshot):
            deleted = process.run(btrfs.subvolume_delete(snapshot), dry_run=False, check=False)
            if deleted.returncode != 0:
                log.error(
                    "could not delete the snapshot %s (%s): delete it with "
                    "`btrfs subvolume delete`",
                    snapshot,
                    process.failure_reason(deleted),
                )
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def _empty_with_data(target: Path, source: Path) -> bool:
    """The persistent directory holds nothing while the live one holds something."""
    try:
        return not os.listdir(target) and bool(os.listdir(source))
    except OSError:
        return False


def selected(plan: Plan, selection: Sequence[str]) -> list[Persisted]:
    """The plan's persisted paths, or those named in `selection` (each must be one of them)."""
    wanted = plan.persisted
    if selection:
        unknown = sorted(set(selection) - {entry.path for entry in wanted})
        if unknown:
            raise BlankslateError(f"{unknown[0]} is not a persisted path of the plan")
        wanted = [entry for entry in wanted if entry.path in selection]
    return wanted


def holding_mounts(
    wanted: Sequence[Persisted], base: Path, mount_targets: frozenset[str]
) -> dict[str, Path]:
    """Each persistence root of `wanted` -> the mountpoint (under `base`) holding it."""
    return {
        persistence_root: mounts.holding_mount(
            str(paths.inside(base, persistence_root)), mount_targets, str(base)
        )
        for persistence_root in dict.fromkeys(entry.root for entry in wanted)
    }


def plan_seed(
    plan: Plan, *, root: Path = Path("/"), selection: Sequence[str] = ()
) -> list[SeedItem]:
    """What seeding would do with every persisted path (or those in `selection`), by path.

    Owners are looked up in the live root's own /etc/passwd and /etc/group: the system whose
    data is copied is the one whose users own it."""
    mounted = mounts.all_mounts()
    mount_targets = frozenset(entry.target for entry in mounted)
    base = Path(os.path.abspath(root))
    check_persist_mounted(str(paths.inside(base, plan.persist_path)), mount_targets)
    snapshot = is_btrfs_subvolume(base, mounted)
    wanted = selected(plan, selection)
    holders = holding_mounts(wanted, base, mount_targets)
    users = accounts.Accounts.of(base)
    items = [
        _inspect(entry, base, mount_targets, holders[entry.root], users, snapshot)
        for entry in wanted
    ]
    return sorted(items, key=lambda item: item.path)


def _item_maker(item: SeedItem, live_root: Path) -> safefile.DirectoryMaker:
    """What the plan declares for a directory on the way, else the live directory's owner and
    mode (`_live_maker`)."""
    live = safefile.live_maker(live_root, item.root, 0o755)
    return lambda path: item.declared.get(path) or live(path)


def _show_copy(item: SeedItem, target: Path) -> None:
    """Dry run: how the copy would be made (cp from the snapshot, else through held fds)."""
    if item.snapshot:
        process.run(copy.cp_archive(item.source, target), dry_run=True)
    else:
        log.warning(
            "would copy %s to %s (read through held fds)",
            quote_path(str(item.source)),
            quote_path(str(target)),
        )


def copy_into_place(
    item: SeedItem, live_root: Path, *, dry_run: bool, read_from: Path | None = None
) -> None:
    """Make the missing parents (as the plan declares them), copy with all metadata to a
    temporary name, then move it into place (`copy.copy_new`). The parent is walked once from
    the filesystem's mountpoint without following a link, and held. `read_from`: a read-only
    snapshot of the live root (cp reads it); the live tree is read through held fds."""
    relative = PurePosixPath(str(item.target.parent.relative_to(item.base)))
    make = _item_maker(item, live_root)
    if dry_run:
        safefile.show_parents(item.base, relative, make)
        partial = item.target.with_name(item.target.name + PARTIAL_SUFFIX)
        _show_copy(item, partial)
        return
    frozen = read_from is not None and read_from != live_root
    with (
        copy.held_source(read_from or live_root, item.path, frozen=frozen) as source,
        safefile.held(safefile.walk(item.base, relative, make=make)) as parent,
    ):
        copy.copy_new(source, parent, item.target.name)


def fill_in_place(item: SeedItem, *, dry_run: bool, read_from: Path | None = None) -> None:
    """Copy the live directory into its empty persistent copy, which keeps its inode (a bind
    mount may show it already); the parent is walked from the mountpoint without links."""
    relative = PurePosixPath(str(item.target.parent.relative_to(item.base)))
    if dry_run:
        _show_copy(item, item.target / ".")
        return
    live_root = Path(str(item.source).removesuffix(item.path) or "/")
    frozen = read_from is not None and read_from != live_root
    with (
        copy.held_source(read_from or live_root, item.path, frozen=frozen) as source,
        safefile.held(safefile.walk(item.base, relative)) as parent,
    ):
        copy.copy_into_empty(source, parent, item.target.name)


def apply(
    items: Sequence[SeedItem], *, live_root: Path = Path("/"), dry_run: bool = False
) -> list[SeedItem]:
    """Carry out the copies and fills; returns the items done."""
    done: list[SeedItem] = []
    base = Path(os.path.abspath(live_root))
    copies = [item for item in items if item.action in ("copy", "fill")]
    with reading_root(base, copies, dry_run=dry_run) as source_of:
        for number, item in enumerate(copies, 1):
            log.info("[%d/%d] copying %s", number, len(copies), quote_path(item.path))
            if item.action == "fill":
                fill_in_place(item, dry_run=dry_run, read_from=source_of(item))
                done.append(item)
                continue
            if os.path.lexists(item.target):
                log.warning("%s appeared in the meantime: left as is", item.target)
                continue  # e.g. copied with a persisted parent directory
            copy_into_place(item, base, dry_run=dry_run, read_from=source_of(item))
            done.append(item)
    return done


def live_users(
    copies: Sequence[SeedItem], live_root: Path, *, proc_root: Path | None = None
) -> list[services.User]:
    """The running units and processes that use a path about to be copied (`services`): units
    by their directory settings when `live_root` is this system's `/`, processes by their open
    files under the live paths."""
    base = Path(os.path.abspath(live_root))
    sources = [str(item.source) for item in copies]
    if not sources:
        return []
    return services.users_of(sources, system_root=base == Path("/"), proc_root=proc_root)


def units_to_stop(users: Sequence[services.User], *, stop_units: bool, live: bool) -> list[str]:
    """What `seed` stops for the copy: nothing while nothing uses the paths; the units with
    `stop_units`; nothing with `live` (a warning). Otherwise a one-line refusal."""
    if not users:
        return []
    listed = "; ".join(user.describe() for user in users)
    if live:
        log.warning("copying while in use (--live): %s", listed)
        return []
    units, outside = services.stoppable(users)
    if not stop_units:
        raise BlankslateError(
            f"in use while seed would copy it: {listed} (stop it first, or give --stop-units "
            "to stop the units for the copy and start them again, or --live to copy anyway)"
        )
    if outside:
        raise BlankslateError(
            f"in use outside any service: {'; '.join(user.describe() for user in outside)} "
            "(end it first, or give --live to copy anyway)"
        )
    return units


def check_stopped(copies: Sequence[SeedItem], live_root: Path, units: Sequence[str]) -> None:
    """After stopping `units`: nothing uses the paths any more, else a refusal (the units are
    started again by the caller)."""
    base = Path(os.path.abspath(live_root))
    still = services.open_files([str(item.source) for item in copies]) if units else []
    if base == Path("/") and units:
        still += services.unit_directories([item.path for item in copies])
    if still:
        raise BlankslateError(
            f"still in use after stopping {', '.join(units)}: "
            f"{'; '.join(user.describe() for user in still)} (nothing was copied)"
        )


def describe(items: Sequence[SeedItem]) -> list[str]:
    """One line per item, for the listing shown before asking."""
    width = max((len(item.action) for item in items), default=0)
    lines = []
    for item in items:
        source, target = quote_path(str(item.source)), quote_path(str(item.target))
        copied = item.action in ("copy", "fill")
        where = f"{source} -> {target}" if copied else quote_path(item.path)
        detail = f"  ({item.detail})" if item.detail else ""
        lines.append(f"{item.action:<{width}}  {item.kind:<9}  {where}{detail}")
    return lines


def next_step(plan: Plan) -> str:
    return (
        f"next: nixos-rebuild boot --flake .#{plan.host_name}, then reboot "
        "(the persisted paths are mounted from persistPath from that boot on)"
    )
