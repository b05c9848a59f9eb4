"""The kept old roots: list them (`blankslate roots`) and copy a path back out (`recover`).

At every boot the rollback moves the previous root to `<oldRoots.subvolume>/<UTC time>` at the
top level of the btrfs filesystem, named `%Y-%m-%dT%H:%M:%SZ` with a `.N` suffix when the name
was taken. Both commands mount the top level read-only on a private directory and unmount it
again; nothing under it is ever changed.

An entry of the old roots directory whose name is not such a timestamp (a snapshot someone made
by hand, say) is still listed, with an unknown time, after every timestamped one; `--from` can
name it, and the search for the newest root holding a path reaches it last.

`recover` writes below persistPath (where users own directories) or below `--to`: it checks
first that persistPath is mounted, from the device the old roots are on, and never writes
through a symlink there (`safefile`, `copy`).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from blankslate import btrfs, copy, mounts, process, safefile, treesearch
from blankslate.display import format_size
from blankslate.errors import BlankslateError
from blankslate.paths import is_under, normalise, resolves_under
from blankslate.plan import Persisted, Plan

_ROOT_NAME = re.compile(r"^(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)(?:\.(?P<sequence>\d+))?$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Sizes:
    """From btrfs quota groups: bytes the root refers to, and bytes only it holds."""

    referenced: int
    exclusive: int


@dataclass(frozen=True)
class OldRoot:
    name: str
    path: Path  # where it is under the mounted top level (only valid while mounted)
    time: datetime | None  # None: the name is not a rollback timestamp
    sequence: int  # the ".N" suffix; 0 without one
    sizes: Sizes | None = None  # None: quotas are off, sizes are not cheap to have
    # btrfs numbers subvolumes in creation order: no clock or name can fake it. None: unknown.
    subvolume_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """One entry of `roots --json`; a stable contract (keys are never renamed)."""
        return {
            "name": self.name,
            "time": self.time.strftime(_TIME_FORMAT) if self.time else None,
            "referencedBytes": self.sizes.referenced if self.sizes else None,
            "exclusiveBytes": self.sizes.exclusive if self.sizes else None,
        }


@dataclass(frozen=True)
class Recovery:
    path: str
    root: str
    target: Path


def parse_root_name(name: str) -> tuple[datetime, int] | None:
    """ "2026-11-20T08:00:00Z.2" -> (that time in UTC, 2); anything else -> None."""
    match = _ROOT_NAME.match(name)
    if match is None:
        return None
    try:
        time = datetime.strptime(match["time"], _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None  # shaped like a timestamp, but not a date (month 13)
    return time, int(match["sequence"] or 0)


def newest_first(roots: Sequence[OldRoot]) -> list[OldRoot]:
    """Newest first: by creation (subvolume ID) when btrfs tells every root's, so a root named
    by a wrong clock (2099, 1970) takes its true place; otherwise timestamped roots by name
    (".2" after ".1" is newer), then the others by name."""
    ids = [root.subvolume_id for root in roots]
    if roots and None not in ids:
        return sorted(roots, key=lambda root: root.subvolume_id or 0, reverse=True)
    stamped = [root for root in roots if root.time is not None]
    others = [root for root in roots if root.time is None]
    stamped.sort(key=lambda root: (root.time, root.sequence), reverse=True)
    return stamped + sorted(others, key=lambda root: root.name)


def old_roots_subvolume(plan: Plan) -> str:
    """The name of the old roots subvolume; the plan must roll back a btrfs root."""
    if plan.rollback != "btrfs" or plan.btrfs is None or plan.btrfs.old_roots is None:
        raise BlankslateError(
            f"old roots are kept only with rollback 'btrfs' (this plan's rollback is "
            f"{plan.rollback!r})"
        )
    return plan.btrfs.old_roots.subvolume


def default_device(plan: Plan, device: str | None) -> str:
    return device if device is not None else mounts.backing_device(plan.persist_path)


def qgroup_sizes(top: Path) -> dict[str, Sizes]:
    """Sizes by subvolume path (relative to the top level); empty when quotas are off.

    Quotas are usually off, and then `btrfs qgroup show` fails at once; walking the trees
    instead would take minutes on a real root, so sizes are then simply not shown.
    """
    shown = process.probe(btrfs.qgroup_show(top), check=False)
    if shown.returncode != 0:
        return {}
    sizes_by_id: dict[str, Sizes] = {}
    for line in shown.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].startswith("0/") and fields[1].isdigit():
            sizes_by_id[fields[0][2:]] = Sizes(int(fields[1]), int(fields[2].rstrip(",")))
    listed = process.probe(btrfs.subvolume_list(top), check=False)
    sizes: dict[str, Sizes] = {}
    for line in listed.stdout.splitlines():
        # "ID 257 gen 12 top level 5 path old_roots/2026-11-20T08:00:00Z"
        match = re.match(r"^ID (\d+) .*? path (.*)$", line)
        if match and match[1] in sizes_by_id:
            sizes[match[2]] = sizes_by_id[match[1]]
    return sizes


def list_roots(top: Path, subvolume: str, *, with_sizes: bool = False) -> list[OldRoot]:
    """The old roots under the mounted top level `top`, newest first."""
    directory = top / subvolume
    if not directory.is_dir():
        raise BlankslateError(
            f"no old roots: there is no {subvolume!r} subvolume at the top level "
            "(has the system booted with the rollback yet?)"
        )
    sizes = qgroup_sizes(top) if with_sizes else {}
    roots = []
    for entry in directory.iterdir():
        if entry.is_symlink() or not entry.is_dir():
            continue  # only directories (subvolumes) can be roots
        parsed = parse_root_name(entry.name)
        roots.append(
            OldRoot(
                name=entry.name,
                path=entry,
                time=parsed[0] if parsed else None,
                sequence=parsed[1] if parsed else 0,
                sizes=sizes.get(f"{subvolume}/{entry.name}"),
                subvolume_id=_subvolume_id(entry),
            )
        )
    return newest_first(roots)


def _subvolume_id(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return treesearch.subvolume_id(fd) if os.fstat(fd).st_ino == 256 else None
    except OSError:
        return None  # not btrfs
    finally:
        os.close(fd)


def retention(plan: Plan, count: int) -> str | None:
    """One line under `blankslate roots`: how many are kept and the rules that prune them
    (None for a plan without btrfs old roots)."""
    if plan.btrfs is None or plan.btrfs.old_roots is None:
        return None
    rules = plan.btrfs.old_roots
    bound = (
        "no bound on their number"
        if rules.keep_max is None
        else (f"at most {rules.keep_max} (keepMax)")
    )
    return (
        f"{count} old root{'' if count == 1 else 's'} kept; each boot keeps {bound}, "
        f"the {rules.keep_newest} newest whatever their age (keepNewest), "
        f"the others for {rules.keep_days} days (keepDays)"
    )


def roots(plan: Plan, device: str | None = None) -> list[OldRoot]:
    """`blankslate roots`: the kept old roots of the plan's btrfs filesystem, newest first;
    none before the first boot has made their subvolume."""
    subvolume = old_roots_subvolume(plan)
    with mounts.top_level(default_device(plan, device)) as top:
        if not (top / subvolume).is_dir():
            return []
        return list_roots(top, subvolume, with_sizes=True)


def root_json(root: OldRoot, lost: Mapping[str, int] | None = None) -> dict[str, Any]:
    """One entry of `roots --json`, with "lostEntries" under `--audit` (`lost`: by name)."""
    data = root.to_json()
    if lost is not None:
        data["lostEntries"] = lost[root.name]
    return data


def format_table(
    roots: Sequence[OldRoot],
    now: datetime | None = None,
    lost: Mapping[str, int] | None = None,
) -> str:
    """A plain text table, newest first: NAME, TIME (UTC), AGE, REFERENCED, EXCLUSIVE, and
    LOST (entries its boot erased) when `lost` gives them by name."""
    now = now or datetime.now(UTC)
    header = ("NAME", "TIME (UTC)", "AGE", "REFERENCED", "EXCLUSIVE")
    rows = [header + (("LOST",) if lost is not None else ())]
    for root in roots:
        row = (
            root.name,
            root.time.strftime("%Y-%m-%d %H:%M:%S") if root.time else "unknown time",
            _age(now - root.time) if root.time else "-",
            format_size(root.sizes.referenced) if root.sizes else "-",
            format_size(root.sizes.exclusive) if root.sizes else "-",
        )
        rows.append(row + ((str(lost[root.name]),) if lost is not None else ()))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _age(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def check_path(path: str) -> str:
    """An absolute path as it was on /, normalised: "/var//lib/./x/" -> "/var/lib/x"."""
    if not path.startswith("/"):
        raise BlankslateError(f"{path!r} is not an absolute path (give it as it was on /)")
    if "\0" in path:
        raise BlankslateError("a path may not contain a NUL byte")
    normal = normalise(path)
    if normal == "/":
        raise BlankslateError("cannot recover / as a whole (name a file or directory in it)")
    return normal


def _stand_in(candidate: Path, persist_path: str) -> bool:
    """Whether `candidate` is what impermanence leaves on / for a persisted path: an empty
    mountpoint directory, or a symlink into persistPath. The data was never in that root."""
    if candidate.is_symlink():
        target = os.readlink(candidate)
        return is_under(persist_path, target)
    return candidate.is_dir() and not any(candidate.iterdir())


def find_source(
    roots: Sequence[OldRoot], path: str, persist_path: str, name: str | None = None
) -> tuple[OldRoot, Path]:
    """The old root to copy `path` from and the path to copy: the named root, or the newest
    one that really holds it (impermanence's empty stand-ins are passed over)."""
    if name is not None:
        chosen = [root for root in roots if root.name == name]
        if not chosen:
            known = ", ".join(root.name for root in roots[:5]) or "none"
            raise BlankslateError(f"no old root named {name!r} (newest: {known})")
        candidates = chosen
    else:
        candidates = list(roots)
    relative = path.lstrip("/")
    for root in candidates:
        candidate = root.path / relative
        if not os.path.lexists(candidate):
            continue
        # A symlink on the way (an absolute /etc -> /somewhere, say) would lead out of the old
        # root into the live system: refuse rather than copy the wrong thing.
        if not resolves_under(candidate.parent, root.path):
            raise BlankslateError(
                f"{path} in old root {root.name} goes through a symlink leading out of it"
            )
        if name is None and _stand_in(candidate, persist_path):
            continue
        return root, candidate
    where = f"old root {name}" if name is not None else f"any of the {len(roots)} old roots"
    raise BlankslateError(f"{path} is not in {where}")


def keeping_entry(plan: Plan, path: str) -> Persisted | None:
    """The persisted path that `path` is, or lies in; the deepest one, since a directory
    persisted inside another is mounted over it."""
    keeping = [
        entry
        for entry in plan.persisted
        if path == entry.path or (entry.kind == "directory" and is_under(entry.path, path))
    ]
    return max(keeping, key=lambda entry: len(entry.path), default=None)


def destination(path: str, to: Path | None, entry: Persisted | None, persist_path: str) -> Path:
    """--to DIR gives DIR/<basename>; without it, a persisted path goes back into the root that
    keeps it (`entry`, from `keeping_entry`)."""
    if to is not None:
        return to / posixpath.basename(path)
    if entry is None:
        raise BlankslateError(
            f"{path} is not persisted, so it has no place in {persist_path} "
            "(give --to DIR to copy it into DIR)"
        )
    return Path(entry.root) / path.lstrip("/")


def check_target_free(target: Path) -> None:
    """Never overwrite. An empty directory is the one exception: impermanence creates a
    persisted directory empty, and filling it overwrites nothing."""
    if not os.path.lexists(target):
        return
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        return
    raise BlankslateError(f"{target} already exists (move it away first; recover never overwrites)")


def recover(
    plan: Plan,
    path: str,
    *,
    from_root: str | None = None,
    to: Path | None = None,
    device: str | None = None,
) -> Recovery:
    """`blankslate recover`: copy `path` out of a kept old root, every piece of metadata kept."""
    path = check_path(path)
    subvolume = old_roots_subvolume(plan)
    entry = keeping_entry(plan, path)
    target = destination(path, to, entry, plan.persist_path)
    holder = None
    if to is None and entry is not None:
        holder = Path(check_persist_device(plan.persist_path, device).target)
        if entry.root != plan.persist_path:
            targets = frozenset(mounted.target for mounted in mounts.all_mounts())
            holder = mounts.holding_mount(entry.root, targets)
        refusal = safefile.check_no_links(holder, str(target.relative_to(holder)))
        if refusal is not None:
            raise BlankslateError(f"{refusal}: refusing to write through it")
    check_target_free(target)
    with mounts.top_level(default_device(plan, device)) as top:
        kept = list_roots(top, subvolume)
        if not kept:
            raise BlankslateError(f"no old roots: {subvolume!r} is empty")
        root, _source = find_source(kept, path, plan.persist_path, from_root)
        with copy.held_source(root.path, path, frozen=True) as source:
            copy_to(source, target, holder)
    return Recovery(path, root.name, target)


def check_persist_device(persist_path: str, device: str | None) -> mounts.MountEntry:
    """persistPath is mounted, and from `device` when one is named: the old roots of another
    disk are never copied into this system's persistPath."""
    entry = mounts.persist_mount(persist_path, "mount it, or give --to DIR")
    if device is not None and not mounts.same_device(entry.device, device):
        raise BlankslateError(
            f"persistPath {persist_path} is on {entry.device}, not on {device} (mount that "
            "disk's persist subvolume there, or give --to DIR)"
        )
    return entry


def copy_to(source: Path | copy.Source, target: Path, persist: Path | None) -> None:
    """Copy into `target`, its parent reached from `persist` (when given) or opened as named,
    then component by component without following a symlink; missing directories are made
    root's, 0755."""
    make = safefile.fixed(0o755)
    if persist is not None:
        parent = safefile.walk(persist, str(target.parent.relative_to(persist)), make=make)
    else:
        parent = safefile.open_directory(target.parent, make=make)
    with safefile.held(parent):
        existing = parent.entry(target.name)
        if existing is None:
            copy.copy_new(source, parent, target.name)
        elif stat.S_ISDIR(existing.st_mode):
            copy.copy_into_empty(source, parent, target.name)
        else:
            check_target_free(target)  # raises: it appeared in the meantime
            raise BlankslateError(f"{target} already exists (recover never overwrites)")
