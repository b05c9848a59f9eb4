"""The classification of `blankslate diff`: one status per scanned entry, with a reason.

`persisted`, `managed`, `ignored` or `lost`, from the plan, the ignore rules and /etc/.clean.

Every scan reads what lies on the root's own filesystem (the stored root subvolume, the root
dataset, the root seen beneath its mounts), so whatever it finds strictly below a persisted
path or a mountpoint is hidden there by the mount and erased with the root: it is `lost`, with
a reason that says what hides it ("hidden under the bind mount of /var/lib/foo"). Only the
mountpoint itself, an empty placeholder file and impermanence's symlink are kept.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import add, eq, itemgetter
from typing import Any, Literal, NamedTuple, overload

from blankslate import storage
from blankslate.ignore_rules import Rule, RuleSet, find_sorted
from blankslate.plan import Mount, Plan
from blankslate.scan import RawTuple

Status = Literal["lost", "ignored", "managed", "persisted"]
STATUSES: tuple[Status, ...] = ("lost", "ignored", "managed", "persisted")

# The only symlinks NixOS places by their target: the etc activation (setup-etc.pl in
# nixpkgs' nixos/modules/system/etc) links /etc/static into the store and every symlink entry
# of environment.etc, /etc/NAME, to /etc/static/NAME. A symlink anywhere else is managed only
# when its path is one NixOS places (BUILTIN_MANAGED), whatever it points to: a user's link
# into /nix/store is the user's, and lost.
ETC_STATIC = "/etc/static"

# NixOS re-creates these at every boot; the reason says who does.
BUILTIN_MANAGED: dict[str, str] = {
    "/bin": "created by NixOS activation (binsh)",
    "/usr": "created by NixOS activation (usrbinenv)",
    "/usr/bin": "created by NixOS activation (usrbinenv)",
    "/etc": "populated from the configuration by NixOS activation (etc)",
    "/etc/.clean": "NixOS activation's list of the files it copied into /etc",
    "/etc/NIXOS": "marker written by NixOS activation",
    "/etc/mtab": "symlink to /proc/mounts, created by NixOS activation",
    "/bin/sh": "created by NixOS activation (binsh)",
    "/usr/bin/env": "created by NixOS activation (usrbinenv)",
    # environment.ldso (nixpkgs nixos/modules/config/ldso.nix, the stub-ld by default):
    # systemd-tmpfiles makes the directory and the loader's link at every boot.
    "/lib64": "made by systemd-tmpfiles for the ELF loader (environment.ldso)",
    "/lib64/ld-linux-x86-64.so.2": "linked by systemd-tmpfiles (environment.ldso)",
    "/lib": "made by systemd-tmpfiles for the ELF loader (environment.ldso32, ldso)",
    "/lib/ld-linux.so.2": "linked by systemd-tmpfiles (environment.ldso32)",
    "/lib/ld-linux-aarch64.so.1": "linked by systemd-tmpfiles (environment.ldso)",
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


HIDDEN_PREFIX = "hidden under "


def hidden_reason(cover: str) -> str:
    """The reason of an entry hidden by `cover` ("the bind mount of /var/lib/foo")."""
    return HIDDEN_PREFIX + cover


def is_hidden(entry: tuple[str, str, int, str, str]) -> bool:
    """Whether a classified entry is lost because a mount hides it (the only lost entries
    with a reason)."""
    return entry[3] == "lost" and entry[4].startswith(HIDDEN_PREFIX)


class Entry(NamedTuple):
    path: str
    kind: str
    size: int
    status: Status
    reason: str


# Entry as a plain tuple, built in the hot loops: the fields of Entry in its order.
EntryTuple = tuple[str, str, int, Status, str]


# What lies below a listed directory deeper than the scan lists (`bounds.LISTED_PATH_MAX`):
# (the directory's path, entries, bytes, status, reason), one status for all of them.
DeeperTuple = tuple[str, int, int, Status, str]


@dataclass
class Report:
    method: str
    entries: list[EntryTuple]
    summary: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    old_root: str | None = None  # the kept old root audited, None for the live root
    deeper: list[DeeperTuple] = field(default_factory=list)

    def __post_init__(self) -> None:
        counts = Counter(map(itemgetter(3), self.entries))
        for _path, count, _size, status, _reason in self.deeper:
            counts[status] += count
        self.summary = {status: counts.get(status, 0) for status in STATUSES}

    @property
    def complete(self) -> bool:
        """Whether every entry was read: no warning (an unreadable directory, one moved while
        it was read, a scan that could not look beneath the mounts)."""
        return not self.problems

    def _when(self, next_boot: str, old_root: str) -> str:
        """`next_boot` for the live root; `old_root` with the old root's name appended."""
        return next_boot if self.old_root is None else f"{old_root} {self.old_root}"

    @property
    def headline(self) -> str:
        return self._when("Lost at the next boot", "Thrown away with old root")

    @property
    def hidden_headline(self) -> str:
        return self._when(
            "Hidden beneath mounts, lost at the next boot",
            "Hidden beneath mounts, thrown away with old root",
        )

    @property
    def nothing_lost(self) -> str:
        return self._when("Nothing is lost at the next boot", "Nothing was lost with old root")

    @property
    def lost(self) -> int:
        return self.summary["lost"]

    def lost_entries(self) -> Iterator[EntryTuple]:
        """Every lost entry (those hidden beneath a mount too: a reason that starts with
        HIDDEN_PREFIX), in path order, one at a time; nothing is copied. What lies too deep
        to list is in `deeper`."""
        for entry in self.entries:
            if entry[3] == "lost":
                yield entry


@dataclass
class Rules:
    """What classification needs to know, gathered once from the plan and the scanned root."""

    persisted: dict[str, str] = field(default_factory=dict)  # path -> reason
    persisted_parents: set[str] = field(default_factory=set)
    # What a mount puts over each persisted path or mountpoint, hiding what the root holds
    # below it: path -> "the bind mount of /var/lib/foo", "the mount of subvolume 'home' on
    # /home".
    covers: dict[str, str] = field(default_factory=dict)
    managed: dict[str, str] = field(default_factory=lambda: dict(BUILTIN_MANAGED))
    clean: set[str] = field(default_factory=set)  # files NixOS copied into /etc
    ignore: RuleSet = field(default_factory=lambda: RuleSet(()))


def add_live_mounts(rules: Rules, targets: Iterable[str]) -> None:
    """The mountpoints of the live system (as on /), for a scan that sees beneath them: what
    lies below one is hidden by it; the mountpoint itself is made again by its mount."""
    for target in targets:
        path = target.rstrip("/")
        if path and path not in rules.covers:
            rules.covers[path] = f"the mount on {path}"
            rules.managed.setdefault(path, "mountpoint of a mount of the live system")


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
    named = storage.of(plan.storage).describe_mount(mount)
    return named if named is not None else f"{mount.fs_type} {mount.device}"


def rules_for(plan: Plan, ignore: Sequence[Rule], etc_clean: str | None = None) -> Rules:
    """Classification rules from the plan, the ignore rules and /etc/.clean's text."""
    rules = Rules(ignore=RuleSet(ignore))

    def persist(path: str, reason: str) -> None:
        path = path.rstrip("/") or "/"
        rules.persisted.setdefault(path, reason)
        rules.persisted_parents.update(_ancestors(path))

    persist(plan.persist_path, "persistPath")
    for root in plan.persistence_roots[1:]:
        persist(root, "persistence root")
    for entry in plan.persisted:
        where = "" if entry.root == plan.persist_path else f" (in {entry.root})"
        persist(entry.path, f"persisted {entry.kind}{where}")
    for mount in plan.mounts:
        if mount.mount_point != "/":
            persist(mount.mount_point, f"mountpoint of {_mounted_what(plan, mount)}")
    # What covers each of them: a mount of the layout, else impermanence's bind mount, else
    # the mount of a persistence root (the platform's, with rollback "none").
    covers = rules.covers
    for mount in plan.mounts:
        if mount.mount_point != "/":
            covers.setdefault(
                mount.mount_point.rstrip("/"),
                f"the mount of {_mounted_what(plan, mount)} on {mount.mount_point}",
            )
    for entry in plan.persisted:
        covers.setdefault(entry.path.rstrip("/") or "/", f"the bind mount of {entry.path}")
    covers.setdefault(
        plan.persist_path.rstrip("/"), f"the mount of persistPath {plan.persist_path}"
    )
    for root in plan.persistence_roots[1:]:
        covers.setdefault(root.rstrip("/"), f"the mount of persistence root {root}")
    covers.pop("/", None)
    if etc_clean:
        for line in etc_clean.splitlines():
            name = line.strip()
            if name:
                rules.clean.add(name if name.startswith("/") else f"/etc/{name}")
    return rules


_path_of = itemgetter(0)
_kind_of = itemgetter(1)
_FIRST_THREE = itemgetter(slice(0, 3))
_AS_LOST = ("lost", "")
_CHUNK = 4096


class _Paths(Sequence[str]):
    """The paths of entries sorted by path, read from the entries themselves rather than held
    as a second list (a reference per entry). Iterating runs in C; indexing, which bisection
    does a few times per rule, in Python."""

    __slots__ = ("entries",)

    def __init__(self, entries: Sequence[tuple[Any, ...]]) -> None:
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return list(map(_path_of, self.entries[index]))
        path: str = self.entries[index][0]
        return path

    def __iter__(self) -> Iterator[str]:
        return map(_path_of, self.entries)


DIRECTORY_OF_KEPT_ENTRIES = "holds only entries that are not lost"
CLEAN_REASON = "listed in /etc/.clean (copied by NixOS activation)"


MANAGED_LINK_REASON = "symlink placed by NixOS activation (environment.etc)"


def _is_managed_link(path: str, target: str) -> bool:
    """Whether the symlink at `path` is one the etc activation places: /etc/static into the
    store, or /etc/NAME to /etc/static/NAME."""
    if path == ETC_STATIC:
        return target.startswith("/nix/store/")
    return path.startswith("/etc/") and target == ETC_STATIC + path[len("/etc") :]


def _status_of(path: str, target: str | None, rules: Rules) -> tuple[Status, str]:
    """The status of an entry that is not persisted: managed, ignored or lost."""
    reason = rules.managed.get(path)
    if reason is not None:
        return "managed", reason
    if target is not None and _is_managed_link(path, target):
        return "managed", MANAGED_LINK_REASON
    if path in rules.clean:
        return "managed", CLEAN_REASON
    if path in rules.persisted_parents:
        return "managed", "parent of a persisted path"
    rule = rules.ignore.match(path)
    if rule is not None:
        return "ignored", f"{rule.reason} [{rule.pattern}]"
    return "lost", ""


def classify_deeper(beyond: Mapping[str, Sequence[int]], rules: Rules) -> list[DeeperTuple]:
    """A status for what lies below each listed directory too deep to list (`beyond`: the
    directory's path, "" for /, -> [entries, bytes]): hidden (lost) when a persisted path or
    mountpoint covers the directory, ignored when a rule matches a name below it, else lost.
    Nothing that deep is persisted or managed: no plan or NixOS path is that long."""
    deeper: list[DeeperTuple] = []
    for cut, (count, size) in sorted(beyond.items()):
        path = cut or "/"
        status: Status = "lost"
        reason = ""
        cover = next(
            (head for head in [*reversed(list(_ancestors(cut))), cut] if head in rules.covers),
            None,
        )
        if cover is not None:
            reason = hidden_reason(rules.covers[cover])
        else:
            rule = rules.ignore.match(f"{cut}/\x00")
            if rule is not None:
                status, reason = "ignored", f"{rule.reason} [{rule.pattern}]"
        deeper.append((path, count, size, status, reason))
    return deeper


def classify(raw: Iterable[RawTuple], rules: Rules, *, consume: bool = False) -> list[EntryTuple]:
    """One status per entry, sorted by path.

    Order of precedence: hidden (strictly below a persisted path or mountpoint: lost, with
    what hides it; a non-empty file where a persisted file is bind-mounted too), persisted
    (the path itself), managed, ignored, lost. A directory that would be lost but holds only
    entries that are not lost is managed: NixOS or the persisted paths' parents re-create it.

    Most entries of a root are lost, so everything starts lost and only the entries some rule
    names are looked at one by one: the rules' paths are found by bisection in the sorted paths,
    and the entries below a covered path form one slice of them.

    `consume`: `raw` is a list the caller hands over; it is sorted and its tuples replaced by
    the classified ones in place (and returned), so that a scan's entries are never held
    twice. Otherwise `raw` is left as it was.
    """
    ordered: list[Any] = raw if consume and isinstance(raw, list) else list(raw)
    try:
        # By the tuples themselves: no list of keys (8 MB at 1,000,000 entries), and faster on
        # the scan's order. A root never holds one path twice, so the path decides.
        ordered.sort()
    except TypeError:  # one path twice, with a target beside None: the path alone
        ordered.sort(key=_path_of)
    paths = _Paths(ordered)
    # Only a symlink has a target, and only a link in /etc can be one the etc activation
    # places (`_is_managed_link`): every other path is looked at for its name alone.
    etc_first = bisect_left(ordered, "/etc/", key=_path_of)
    etc_end = bisect_left(ordered, "/etc0", etc_first, key=_path_of)
    targets = {
        index: ordered[index][3]
        for index in range(etc_first, etc_end)
        if ordered[index][3] is not None
    }
    # Every entry starts lost: a chunk at a time, each tuple made in C (no Python-level step
    # per entry), the scan's tuple dropped as its replacement takes its place.
    for first in range(0, len(ordered), _CHUNK):
        chunk = ordered[first : first + _CHUNK]
        ordered[first : first + _CHUNK] = map(add, map(_FIRST_THREE, chunk), repeat(_AS_LOST))
    entries: list[EntryTuple] = ordered
    # The indices settled already: the persisted ones, and the slices below a cover (kept as
    # slices, not one index each: a mount may hide most of a root).
    settled: set[int] = set()
    hidden: list[tuple[int, int]] = []
    # An outer cover hides the covers below it with all below them: they are skipped.
    covers = set(rules.covers)
    for cover in rules.covers:
        if any(head in covers for head in _ancestors(cover)):
            continue
        first = bisect_left(paths, cover + "/")
        end = bisect_left(paths, cover + "0", first)
        reason = hidden_reason(rules.covers[cover])
        for inner in range(first, end):
            entry = entries[inner]
            entries[inner] = (entry[0], entry[1], entry[2], "lost", reason)
        if end > first:
            hidden.append((first, end))
    hidden.sort()  # the slices of outer covers do not overlap
    starts = [first for first, _end in hidden]

    def is_hidden_index(index: int) -> bool:
        slice_ = bisect_right(starts, index) - 1
        return slice_ >= 0 and index < hidden[slice_][1]

    for index in sorted(find_sorted(paths, rules.persisted)):
        if is_hidden_index(index):
            continue
        path, kind, size = entries[index][:3]
        if kind == "file" and size > 0 and path in rules.covers:
            # Data in the placeholder a file is bind-mounted over: hidden by it.
            entries[index] = (path, kind, size, "lost", hidden_reason(rules.covers[path]))
        else:
            entries[index] = (path, kind, size, "persisted", rules.persisted[path])
        settled.add(index)
    named = set(find_sorted(paths, [*rules.managed, *rules.clean, *rules.persisted_parents]))
    named.update(targets)
    named.update(rules.ignore.candidates(paths))
    for index in named - settled:
        if is_hidden_index(index):
            continue
        path, kind, size = entries[index][:3]
        status, reason = _status_of(path, targets.get(index), rules)
        entries[index] = (path, kind, size, status, reason)
    _keep_directories_of_kept_entries(entries)
    return entries


def _keep_directories_of_kept_entries(entries: list[EntryTuple]) -> None:
    """A lost directory that holds entries, none of them lost, becomes managed.

    Only directories change, and children sort after their parent: walking the lost
    directories backwards sees every child directory before its parent. A directory's
    children are read until the first lost one, which in a real root comes at once.
    """
    # The directories found in C (an itemgetter and `==` on interned kinds), their status
    # looked at in Python: a root holds far fewer directories than files.
    directories = compress(range(len(entries)), map(eq, map(_kind_of, entries), repeat("dir")))
    lost_directories = [index for index in directories if entries[index][3] == "lost"]
    end = len(entries)
    for index in reversed(lost_directories):
        path, kind, size, _status, _reason = entries[index]
        prefix = path + "/"
        child = index + 1  # where what lies below it starts, unless "/a.b" sorts first
        if child < end and not entries[child][0].startswith(prefix):
            child = bisect_left(entries, prefix, child, key=_path_of)
        if child == end or not entries[child][0].startswith(prefix):
            continue  # empty: lost
        if not _has_lost_child(entries, prefix, child):
            entries[index] = (path, kind, size, "managed", DIRECTORY_OF_KEPT_ENTRIES)


def _has_lost_child(entries: list[EntryTuple], prefix: str, first: int) -> bool:
    """Whether a direct child of the directory `prefix` (with its "/") is lost; `first` is
    where what lies below the directory starts in the entries, sorted by path."""
    index, end = first, len(entries)
    while index < end:
        path, _kind, _size, status, _reason = entries[index]
        if not path.startswith(prefix):
            return False
        slash = path.find("/", len(prefix))
        if slash >= 0:  # below a child directory: skip what lies below it
            index = bisect_left(entries, path[:slash] + "0", index, key=_path_of)
            continue
        if status == "lost":
            return True
        index += 1
    return False
