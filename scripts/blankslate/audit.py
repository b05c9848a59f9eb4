"""`blankslate diff`: what lives on / that the next boot will erase.

Three steps, kept apart so each can be tested alone:
1. scan: every entry of the root as it will be thrown away (btrfs: the root subvolume as stored,
   read from the top level; zfs: `zfs diff` against the blank snapshot; tmpfs/none: a walk of the
   live tree on one filesystem, mounts left out), as `Raw` tuples;
2. classify: one status per entry, `persisted`, `managed`, `ignored` or `lost`, with a reason;
3. render: text for people, JSON or YAML (a stable contract, version 1) for programs.

Paths are `str` decoded with surrogateescape (`os.fsdecode`), so any byte string survives; the
renderers escape what is not printable UTF-8.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import os
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from pathlib import Path
from typing import Literal, NamedTuple

from blankslate import mounts, process, treesearch
from blankslate.display import format_size, quote_path
from blankslate.errors import BlankslateError
from blankslate.ignore_rules import Rule, RuleSet, find_sorted
from blankslate.plan import Mount, Plan

Status = Literal["lost", "ignored", "managed", "persisted"]
STATUSES: tuple[Status, ...] = ("lost", "ignored", "managed", "persisted")
KINDS = ("file", "dir", "symlink", "subvolume", "other")
BTRFS_FIRST_FREE_OBJECTID = 256  # the root directory of every btrfs subvolume has this inode

# Symlinks pointing here are re-created by NixOS activation at every boot.
MANAGED_LINK_PREFIXES = ("/nix/store/", "/etc/static/", "/run/current-system/")
MANAGED_LINK_TARGETS = {"/etc/static", "/run/current-system", "/run/booted-system"}

# NixOS re-creates these at every boot; the reason says who does.
BUILTIN_MANAGED: dict[str, str] = {
    "/bin": "created by NixOS activation (binsh)",
    "/usr": "created by NixOS activation (usrbinenv)",
    "/usr/bin": "created by NixOS activation (usrbinenv)",
    "/etc": "populated from the configuration by NixOS activation (etc)",
    "/etc/.clean": "NixOS activation's list of the files it copied into /etc",
    "/etc/NIXOS": "marker written by NixOS activation",
    "/etc/mtab": "symlink to /proc/mounts, created by NixOS activation",
    "/etc/passwd": "generated from users.users by NixOS activation",
    "/etc/group": "generated from users.groups by NixOS activation",
    "/etc/shadow": "generated from users.users by NixOS activation",
    "/etc/subuid": "generated from users.users by NixOS activation",
    "/etc/subgid": "generated from users.users by NixOS activation",
    "/etc/.pwd.lock": "lock file of the users activation",
    "/etc/resolv.conf": "written by resolvconf or systemd-resolved at boot",
    "/etc/.updated": "systemd's ConditionNeedsUpdate stamp",
    "/var/.updated": "systemd's ConditionNeedsUpdate stamp",
    "/var": "created by NixOS activation",
    "/var/lib": "created by NixOS activation",
    "/var/db": "created by NixOS activation",
    "/var/empty": "created read-only by NixOS activation",
    "/var/run": "symlink to /run, created by systemd-tmpfiles",
    "/var/lock": "symlink to /run/lock, created by systemd-tmpfiles",
    "/root": "root's home, created by the users activation",
    "/boot": "mountpoint of the boot partition",
    "/dev": "mountpoint of devtmpfs",
    "/proc": "mountpoint of procfs",
    "/sys": "mountpoint of sysfs",
    "/run": "mountpoint of the /run tmpfs",
    "/tmp": "erased at every boot by definition",
}


class Raw(NamedTuple):
    """One scanned entry: absolute path (as on /), kind, size in bytes, symlink target."""

    path: str
    kind: str
    size: int
    target: str | None


class Entry(NamedTuple):
    path: str
    kind: str
    size: int
    status: Status
    reason: str


# The hot loops build plain tuples (a NamedTuple's constructor is a Python call per entry);
# Raw and Entry have the same fields in the same order.
RawTuple = tuple[str, str, int, str | None]
EntryTuple = tuple[str, str, int, Status, str]


@dataclass
class Report:
    method: str
    entries: list[EntryTuple]
    summary: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        counts = Counter(map(itemgetter(3), self.entries))
        self.summary = {status: counts.get(status, 0) for status in STATUSES}

    @property
    def lost(self) -> int:
        return self.summary["lost"]


# --------------------------------------------------------------------------- scanning


def walk(
    base: str, *, skip: frozenset[str] = frozenset(), one_filesystem: bool = False
) -> tuple[list[RawTuple], list[str]]:
    """Every entry below `base` as (entries, problems); paths are given as if `base` were `/`.

    Symlinks are never followed. `skip` holds paths (as on /) left out with what is below them
    (the mountpoints); `one_filesystem` also leaves out what lies on another device, except
    btrfs subvolumes (directories with inode 256), which are reported as such and descended
    into.
    """
    entries: list[RawTuple] = []
    problems: list[str] = []
    append = entries.append
    stack: list[tuple[str, str, int]] = [("", base, os.lstat(base).st_dev)]
    while stack:
        logical, real, device = stack.pop()
        try:
            iterator = os.scandir(real)
        except OSError as error:
            problems.append(f"cannot read {logical or '/'}: {error.strerror}")
            continue
        with iterator:
            for item in iterator:
                path = f"{logical}/{item.name}"
                try:
                    if item.is_dir(follow_symlinks=False):
                        if path in skip:
                            continue
                        info = item.stat(follow_symlinks=False)
                        subvolume = info.st_ino == BTRFS_FIRST_FREE_OBJECTID
                        # A nested btrfs subvolume has its own st_dev but is no mount (those
                        # are in `skip`): it belongs to the tree.
                        if one_filesystem and info.st_dev != device and not subvolume:
                            continue
                        append((path, "subvolume" if subvolume else "dir", 0, None))
                        stack.append((path, item.path, info.st_dev))
                    elif path in skip:
                        continue
                    elif item.is_file(follow_symlinks=False):
                        info = item.stat(follow_symlinks=False)
                        if one_filesystem and info.st_dev != device:
                            continue  # a file bind-mounted from elsewhere
                        append((path, "file", info.st_size, None))
                    elif item.is_symlink():
                        target = os.readlink(item.path)
                        append((path, "symlink", len(os.fsencode(target)), target))
                    else:
                        append((path, "other", 0, None))
                except FileNotFoundError:
                    continue  # vanished while we looked (a live tree changes)
                except OSError as error:
                    problems.append(f"cannot inspect {path}: {error.strerror}")
    return entries, problems


def zfs_diff_cmd(dataset: str, snapshot: str) -> list[str]:
    return ["zfs", "diff", "-H", "-F", f"{dataset}@{snapshot}"]


_ZFS_ESCAPE = re.compile(rb"\\([0-7]{4})")
_ZFS_KINDS = {"F": "file", "/": "dir", "@": "symlink"}


def _zfs_unescape(text: str) -> str:
    """`zfs diff` writes spaces, backslashes and non-printable bytes as \\NNNN (octal)."""
    raw = os.fsencode(text)
    return os.fsdecode(_ZFS_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), raw))


def parse_zfs_diff(output: str, mountpoint: str = "/") -> list[tuple[str, str]]:
    """(path as on /, kind) of every entry that exists now and differs from the snapshot.

    Removed entries are gone already; modified directories existed in the snapshot, so the
    blank brings them back.
    """
    found: list[tuple[str, str]] = []
    prefix = mountpoint.rstrip("/")
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        change, kind_code = fields[0], fields[1]
        path = _zfs_unescape(fields[3] if change == "R" and len(fields) > 3 else fields[2])
        kind = _ZFS_KINDS.get(kind_code, "other")
        if change == "-" or (change == "M" and kind == "dir"):
            continue
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            path = path[len(prefix) :] or "/"
        if path != "/":
            found.append((path, kind))
    return found


def scan_zfs(plan: Plan, live_root: str = "/") -> tuple[list[RawTuple], list[str]]:
    assert plan.zfs is not None
    output = process.output(zfs_diff_cmd(plan.zfs.root, plan.zfs.blank_snapshot))
    entries: list[RawTuple] = []
    problems: list[str] = []
    for path, kind in parse_zfs_diff(output):
        live = os.path.join(live_root, path.lstrip("/"))
        try:
            info = os.lstat(live)
            target = os.readlink(live) if kind == "symlink" else None
        except FileNotFoundError:
            continue
        except OSError as error:
            problems.append(f"cannot inspect {path}: {error.strerror}")
            continue
        size = info.st_size if kind in ("file", "symlink") else 0
        entries.append(Raw(path, kind, size, target))
    return entries, problems


def mount_targets_below(root: str) -> frozenset[str]:
    """Mountpoints strictly below `root`, as paths relative to it (`/persist`)."""
    base = os.path.abspath(root).rstrip("/")
    targets = set()
    for entry in mounts.all_mounts():
        if entry.target.startswith(base + "/"):
            targets.add(entry.target[len(base) :])
    return frozenset(targets)


def scan_stored_root(root: str) -> tuple[list[RawTuple], list[str]]:
    """A subvolume's whole tree; the fast btrfs tree search when the kernel allows it."""
    scanned = treesearch.scan(root)
    if scanned is not None:
        return scanned, []
    return walk(root)


# --------------------------------------------------------------------------- classification


@dataclass
class Rules:
    """What classification needs to know, gathered once from the plan and the scanned root."""

    persisted: dict[str, str] = field(default_factory=dict)  # path -> reason
    persisted_trees: set[str] = field(default_factory=set)  # persisted with everything below
    persisted_parents: set[str] = field(default_factory=set)
    managed: dict[str, str] = field(default_factory=lambda: dict(BUILTIN_MANAGED))
    clean: set[str] = field(default_factory=set)  # files NixOS copied into /etc
    ignore: RuleSet = field(default_factory=lambda: RuleSet(()))


def _ancestors(path: str) -> Iterator[str]:
    head = path.rpartition("/")[0]
    while head:
        yield head
        head = head.rpartition("/")[0]


def _mounted_what(plan: Plan, mount: Mount) -> str:
    """ "subvolume 'home'", "dataset 'safe/log'", or "vfat /dev/disk/by-label/BOOT"."""
    subvolume = next((o[len("subvol=") :] for o in mount.options if o.startswith("subvol=")), None)
    if mount.fs_type == "btrfs" and subvolume is not None:
        return f"subvolume {subvolume!r}"
    if mount.fs_type == "zfs" and plan.zfs is not None:
        return f"dataset {mount.device.removeprefix(plan.zfs.pool + '/')!r}"
    return f"{mount.fs_type} {mount.device}"


def rules_for(plan: Plan, ignore: Sequence[Rule], etc_clean: str | None = None) -> Rules:
    """Classification rules from the plan, the ignore rules and /etc/.clean's text."""
    rules = Rules(ignore=RuleSet(ignore))

    def persist(path: str, reason: str, tree: bool) -> None:
        path = path.rstrip("/") or "/"
        rules.persisted.setdefault(path, reason)
        if tree:
            rules.persisted_trees.add(path)
        rules.persisted_parents.update(_ancestors(path))

    persist(plan.persist_path, "persistPath", tree=True)
    for root in plan.persistence_roots[1:]:
        persist(root, "persistence root", tree=True)
    for entry in plan.persisted:
        where = "" if entry.root == plan.persist_path else f" (in {entry.root})"
        persist(entry.path, f"persisted {entry.kind}{where}", tree=entry.kind == "directory")
    for mount in plan.mounts:
        if mount.mount_point != "/":
            persist(mount.mount_point, f"mountpoint of {_mounted_what(plan, mount)}", tree=True)
    if etc_clean:
        for line in etc_clean.splitlines():
            name = line.strip()
            if name:
                rules.clean.add(name if name.startswith("/") else f"/etc/{name}")
    return rules


_path_of = itemgetter(0)
DIRECTORY_OF_KEPT_ENTRIES = "holds only entries that are not lost"
CLEAN_REASON = "listed in /etc/.clean (copied by NixOS activation)"


def _is_managed_link(target: str) -> bool:
    return target.startswith(MANAGED_LINK_PREFIXES) or target in MANAGED_LINK_TARGETS


def _status_of(path: str, target: str | None, rules: Rules) -> tuple[Status, str]:
    """The status of an entry that is not persisted: managed, ignored or lost."""
    reason = rules.managed.get(path)
    if reason is not None:
        return "managed", reason
    if target is not None and _is_managed_link(target):
        return "managed", "symlink into the NixOS configuration"
    if path in rules.clean:
        return "managed", CLEAN_REASON
    if path in rules.persisted_parents:
        return "managed", "parent of a persisted path"
    rule = rules.ignore.match(path)
    if rule is not None:
        return "ignored", f"{rule.reason} [{rule.pattern}]"
    return "lost", ""


def classify(raw: Iterable[RawTuple], rules: Rules) -> list[EntryTuple]:
    """One status per entry, sorted by path.

    Order of precedence: persisted (the path or one of its parents), managed, ignored, lost. A
    directory that would be lost but holds only entries that are not lost is managed: NixOS or
    the persisted paths' parents re-create it.

    Most entries of a root are lost, so everything starts lost and only the entries some rule
    names are looked at one by one: the rules' paths are found by bisection in the sorted paths,
    and the entries below a persisted directory form one slice of them.
    """
    ordered = sorted(raw, key=_path_of)
    paths = [entry[0] for entry in ordered]
    entries: list[EntryTuple] = [(path, kind, size, "lost", "") for path, kind, size, _ in ordered]
    settled: set[int] = set()
    for index in sorted(find_sorted(paths, rules.persisted)):
        if index in settled:
            continue  # below an outer persisted tree, whose reason it takes
        path, kind, size, _target = ordered[index]
        reason = rules.persisted[path]
        entries[index] = (path, kind, size, "persisted", reason)
        settled.add(index)
        if path in rules.persisted_trees and kind in ("dir", "subvolume"):
            below = f"under {path} ({reason})"
            # What lies below sorts from path + "/" to path + "0" ("0" follows "/").
            first = bisect_left(paths, path + "/", index + 1)
            end = bisect_left(paths, path + "0", first)
            for inner in range(first, end):
                entry = ordered[inner]
                entries[inner] = (entry[0], entry[1], entry[2], "persisted", below)
            settled.update(range(first, end))
    named = set(find_sorted(paths, [*rules.managed, *rules.clean, *rules.persisted_parents]))
    named.update(index for index, entry in enumerate(ordered) if entry[3] is not None)
    named.update(rules.ignore.candidates(paths))
    for index in named - settled:
        path, kind, size, target = ordered[index]
        status, reason = _status_of(path, target, rules)
        entries[index] = (path, kind, size, status, reason)
    _keep_directories_of_kept_entries(entries, paths)
    return entries


def _keep_directories_of_kept_entries(entries: list[EntryTuple], paths: list[str]) -> None:
    """A lost directory that holds entries, none of them lost, becomes managed.

    Only directories change, and children sort after their parent: walking the lost
    directories backwards sees every child directory before its parent. A directory's
    children are read until the first lost one, which in a real root comes at once.
    """
    lost_directories = [
        index for index, entry in enumerate(entries) if entry[1] == "dir" and entry[3] == "lost"
    ]
    for index in reversed(lost_directories):
        path, kind, size, _status, _reason = entries[index]
        prefix = path + "/"
        child = bisect_left(paths, prefix, index + 1)
        if child == len(paths) or not paths[child].startswith(prefix):
            continue  # empty: lost
        if not _has_lost_child(entries, paths, prefix, child):
            entries[index] = (path, kind, size, "managed", DIRECTORY_OF_KEPT_ENTRIES)


def _has_lost_child(entries: list[EntryTuple], paths: list[str], prefix: str, first: int) -> bool:
    """Whether a direct child of the directory `prefix` (with its "/") is lost; `first` is
    where what lies below the directory starts in the sorted paths."""
    index, end = first, len(paths)
    while index < end:
        path = paths[index]
        if not path.startswith(prefix):
            return False
        slash = path.find("/", len(prefix))
        if slash >= 0:  # below a child directory: skip what lies below it
            index = bisect_left(paths, path[:slash] + "0", index)
            continue
        if entries[index][3] == "lost":
            return True
        index += 1
    return False


# --------------------------------------------------------------------------- the command


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="surrogateescape")
    except OSError:
        return None


def run_diff(
    plan: Plan,
    *,
    device: str | None = None,
    root: Path | None = None,
    ignore: Sequence[Rule] = (),
) -> Report:
    """Scan by rollback kind (a walk of `root` when given) and classify."""
    with _collector_paused():
        return _scan_and_classify(plan, device, root, ignore)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A scan makes hundreds of thousands of tuples and strings, and no cycles: the cyclic
    garbage collector would only walk them over and over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _scan_and_classify(
    plan: Plan, device: str | None, root: Path | None, ignore: Sequence[Rule]
) -> Report:
    if root is not None or plan.rollback in ("tmpfs", "none"):
        base = str(root if root is not None else Path("/"))
        if not os.path.isdir(base):
            raise BlankslateError(f"{base} is not a directory (check --root)")
        raw, problems = walk(base, skip=mount_targets_below(base), one_filesystem=True)
        etc_clean = _read_text(os.path.join(base, "etc/.clean"))
        method = "walk"
    elif plan.rollback == "zfs":
        raw, problems = scan_zfs(plan)
        etc_clean = _read_text("/etc/.clean")
        method = "zfs"
    else:
        assert plan.btrfs is not None and plan.btrfs.root_subvolume is not None
        if device is None:
            device = mounts.backing_device(plan.persist_path)
        with mounts.top_level(device) as top:
            stored = top / plan.btrfs.root_subvolume
            if not stored.is_dir():
                raise BlankslateError(
                    f"subvolume {plan.btrfs.root_subvolume!r} not found on {device} "
                    "(check --device)"
                )
            raw, problems = scan_stored_root(str(stored))
            etc_clean = _read_text(str(stored / "etc/.clean"))
        method = "btrfs"
    entries = classify(raw, rules_for(plan, ignore, etc_clean))
    return Report(method, entries, problems=problems)


# --------------------------------------------------------------------------- rendering


def _top_directory(path: str) -> str:
    end = path.find("/", 1)
    return path if end < 0 else path[:end]


def render_text(report: Report, *, all_entries: bool = False) -> str:
    lines: list[str] = []
    lost = [Entry(*entry) for entry in report.entries if entry[3] == "lost"]
    if lost:
        total = sum(entry.size for entry in lost)
        lines.append(f"Lost at the next boot: {len(lost)} entries, {format_size(total)}")
        groups: dict[str, list[Entry]] = {}
        for entry in lost:
            groups.setdefault(_top_directory(entry.path), []).append(entry)
        for top, members in groups.items():
            size = format_size(sum(entry.size for entry in members))
            count = f"{len(members)} {'entry' if len(members) == 1 else 'entries'}"
            lines.append(f"{quote_path(top)}  ({count}, {size})")
            for entry in members:
                lines.append(
                    f"  {entry.kind:<9} {format_size(entry.size):>10}  {quote_path(entry.path)}"
                )
    else:
        lines.append("Nothing is lost at the next boot.")
    if all_entries:
        for status in STATUSES[1:]:
            members = [Entry(*entry) for entry in report.entries if entry[3] == status]
            if members:
                lines.append("")
                lines.append(f"{status.capitalize()} ({len(members)}):")
                for entry in members:
                    lines.append(f"  {entry.kind:<9} {quote_path(entry.path)}  ({entry.reason})")
    for problem in report.problems:
        lines.append(f"warning: {problem}")
    lines.append("")
    lines.append(", ".join(f"{status} {report.summary[status]}" for status in STATUSES))
    return "\n".join(lines) + "\n"


def _encode(text: str) -> str:
    """A JSON (and YAML double-quoted) string; undecodable bytes become \\udcXX escapes."""
    return encode_basestring_ascii(text)


def _undecodable(path: str) -> tuple[str, str] | None:
    """For a name that is not UTF-8 (its undecodable bytes are lone surrogates here, as
    `os.fsdecode` gives them): the name with U+FFFD for each such byte, as a JSON string, and
    the exact bytes in base64. None for a name that is UTF-8."""
    try:
        path.encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte: not from the kernel
        raw = path.encode("utf-8", "surrogatepass")
    readable = encode_basestring_ascii(raw.decode("utf-8", "replace"))
    return readable, base64.b64encode(raw).decode("ascii")


def _json_path(path: str, encoded: str) -> str:
    """The value of "path", followed by a "pathBytes" key when the name is not UTF-8."""
    found = _undecodable(path)
    return encoded if found is None else f'{found[0]}, "pathBytes": "{found[1]}"'


def render_json(report: Report) -> str:
    """The version 1 document, one entry per line; strings are escaped ASCII.

    A name that is not UTF-8 has its bytes in "pathBytes" (base64), and in "path" a U+FFFD
    for each byte that is not UTF-8. Only a name whose escaped form holds a surrogate ("\\ud")
    is looked at twice."""
    summary = ", ".join(f'"{status}": {report.summary[status]}' for status in STATUSES)
    encode = encode_basestring_ascii  # the C encoder, called directly: this runs per entry
    rows = [
        f'{{"path": {p}, "type": "{kind}", "size": {size}, '
        f'"status": "{status}", "reason": {encode(reason)}}}'
        for path, kind, size, status, reason in report.entries
        # always true: `p` is the escaped path, with "pathBytes" after it when needed
        if "\\ud" not in (p := encode(path)) or (p := _json_path(path, p))
    ]
    body = ",\n  ".join(rows)
    entries = f"[\n  {body}\n]" if rows else "[]"
    return (
        f'{{"version": 1, "method": {encode(report.method)}, "summary": {{{summary}}},\n'
        f'"entries": {entries}}}\n'
    )


def render_yaml(report: Report) -> str:
    """The same document as YAML; strings are double-quoted with JSON-compatible escapes."""
    lines = ["version: 1", f"method: {report.method}", "summary:"]
    lines += [f"  {status}: {report.summary[status]}" for status in STATUSES]
    if not report.entries:
        lines.append("entries: []")
    else:
        lines.append("entries:")
        for path, kind, size, status, reason in report.entries:
            undecodable = _undecodable(path)
            if undecodable is None:
                lines.append(f"  - path: {_encode(path)}")
            else:
                lines += [f"  - path: {undecodable[0]}", f'    pathBytes: "{undecodable[1]}"']
            lines += [
                f"    type: {kind}",
                f"    size: {size}",
                f"    status: {status}",
                f"    reason: {_encode(reason)}",
            ]
    return "\n".join(lines) + "\n"
