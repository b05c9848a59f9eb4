"""The kept old roots: list them (`blankslate roots`) and copy a path back out (`recover`).

At every boot the rollback moves the previous root to `<oldRoots.subvolume>/<UTC time>` at the
top level of the btrfs filesystem, named as kept.bash names every kept copy (snapshots.py reads
them back: the entry type, the naming rule, the listing, the table). Both commands mount the
top level read-only on a private directory and unmount it again; nothing under it is ever
changed.

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
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blankslate import copy, mounts, paths, safefile, snapshots, storage
from blankslate.errors import BlankslateError
from blankslate.paths import is_under, normalise, resolves_under
from blankslate.plan import Persisted, Plan
from blankslate.snapshots import Snapshot


@dataclass(frozen=True)
class Recovered:
    """What `recover` copied (or would copy): `path` from the `kind` ("old root" or "persist
    snapshot") named `source`, into `target`."""

    path: str
    kind: str
    source: str
    target: Path


def old_roots_subvolume(plan: Plan) -> str:
    """The name of the old roots subvolume; the plan's storage kind must have a btrfs root."""
    root = storage.of(plan.storage).btrfs_root()
    if isinstance(root, str):
        raise BlankslateError(
            f"old roots are kept only with rollback 'btrfs' (this plan's rollback is "
            f"{plan.rollback!r})"
        )
    return root.old_roots.subvolume


def default_device(plan: Plan, device: str | None) -> str:
    return device if device is not None else mounts.backing_device(plan.persist_path)


def list_roots(top: Path, subvolume: str, *, with_sizes: bool = False) -> list[Snapshot]:
    """The old roots under the mounted top level `top`, newest first; an error when their
    subvolume is missing."""
    if not (top / subvolume).is_dir():
        raise BlankslateError(
            f"no old roots: there is no {subvolume!r} subvolume at the top level "
            "(has the system booted with the rollback yet?)"
        )
    return snapshots.listing(top, subvolume, with_sizes=with_sizes)


def pick(kept: Sequence[Snapshot], name: str) -> Snapshot:
    """The old root named `name`, or the newest for "latest"; an error names what there is."""
    return snapshots.pick(
        kept,
        name,
        what="old root",
        none_yet="no old roots kept yet (the rollback keeps one at every boot)",
        hint="; or give 'latest'",
    )


def retention(plan: Plan, count: int) -> str | None:
    """One line under `blankslate roots`: how many are kept and the rules that prune them
    (None for a plan without btrfs old roots)."""
    root = storage.of(plan.storage).btrfs_root()
    if isinstance(root, str):
        return None
    rules = root.old_roots
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


def roots(plan: Plan, device: str | None = None) -> list[Snapshot]:
    """`blankslate roots`: the kept old roots of the plan's btrfs filesystem, newest first;
    none before the first boot has made their subvolume."""
    subvolume = old_roots_subvolume(plan)
    with mounts.top_level(default_device(plan, device)) as top:
        return snapshots.listing(top, subvolume, with_sizes=True)


def root_json(root: Snapshot, lost: Mapping[str, int] | None = None) -> dict[str, Any]:
    """One entry of `roots --json`, with "lostEntries" under `--audit` (`lost`: by name)."""
    data = root.to_json()
    if lost is not None:
        data["lostEntries"] = lost[root.name]
    return data


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
    roots: Sequence[Snapshot], path: str, persist_path: str, name: str | None = None
) -> tuple[Snapshot, Path]:
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
    return paths.inside(Path(entry.root), path)


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
) -> Recovered:
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
    return Recovered(path, "old root", root.name, target)


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
