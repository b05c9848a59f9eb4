"""`blankslate diff --suggest`: what the next boot would erase, as configuration to paste.

The lost entries of a `diff` report are cut down to the topmost ones (a lost directory whose
every entry is lost stands for all of them), then grouped the way a person decides:

- by the service that owns them: a StateDirectory=, CacheDirectory= or LogsDirectory= of a
  unit of the evaluated configuration (the plan's `units`; with DynamicUser= the directory is
  below /var/lib/private, /var/cache/private or /var/log/private);
- by the user whose home they are in (/home/NAME, /root): impermanence's per-user paths,
  relative to the home;
- the rest by their top directory.

Each entry carries the owner and mode observed on the root; one that looks like a cache is
offered as an ignore pattern instead. What a mount hides is already declared (its own group,
copied with `seed --hidden`). A name Nix cannot hold printably (bytes that are not UTF-8, a
control character other than newline, tab and carriage return) is skipped with a note.

Grouping and rendering are pure functions; `run` does the I/O: the audit, and an lstat of
each entry from held directory fds.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import errno
import grp
import os
import pwd
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, compress
from operator import itemgetter, ne
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from blankslate import ignore_rules, nixtext, storage
from blankslate.classify import HIDDEN_PREFIX, EntryTuple
from blankslate.display import printable, quote_path
from blankslate.plan import Plan, Unit
from blankslate.plansource import PlanSource

GroupBy = Literal["service", "user", "top", "hidden"]
_T = TypeVar("_T")
_path_of = itemgetter(0)
# (uid, gid, st_mode) of an entry, as lstat gives them.
Observed = tuple[int, int, int]

CACHE_REASON = "a cache, rebuilt on demand"
# Entries a group shows, and skipped entries listed: the rest are counted. Memory stays
# bounded whatever a local user puts below a lost directory.
SHOWN = 500
SKIPPED_SHOWN = 500
GONE = "gone since the scan, or unreadable"
# Names of directories that hold caches or scratch files, compared in lower case.
CACHE_NAMES = frozenset({".cache", "cache", "caches", "tmp", ".tmp", "temp", ".temp"})
_GLOB = re.compile(r"[*?\[\]]")
_NIX_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*\Z")
_NIX_KEYWORDS = frozenset(
    {"assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with"}
)


@dataclass(frozen=True)
class Item:
    """One path to keep (or to ignore): `path` as on /; `name` how the configuration names
    it (relative to the home for a user's path); the observed owner and mode ("0750"),
    None for what a mount hides (it is declared already)."""

    path: str
    name: str
    kind: Literal["directory", "file"]
    user: str | None
    group: str | None
    mode: str | None
    cache: bool = False
    ignore: str | None = None  # the ignore pattern offered for a cache; None: none can match


@dataclass(frozen=True)
class Group:
    by: GroupBy
    name: str  # the unit, the user, the top directory, or what hides the entries
    note: str
    items: tuple[Item, ...]  # the first SHOWN, in path order
    more: int = 0  # entries of the group beyond them: counted, not observed nor shown


@dataclass(frozen=True)
class Skipped:
    path: str
    why: str


@dataclass(frozen=True)
class Suggestion:
    persist_path: str
    groups: tuple[Group, ...]
    skipped: tuple[Skipped, ...] = ()  # the first SKIPPED_SHOWN
    skipped_more: int = 0  # skipped beyond them
    # What the audit could not read (the report's warnings): more may be lost than shown.
    problems: tuple[str, ...] = ()


# --------------------------------------------------------------------------- Nix text


def nix_string(text: str) -> str:
    """`text` as a Nix string literal, on one line (nixtext.string). Other control characters
    and undecodable bytes are refused before (`nix_safe`)."""
    return nixtext.string(text)


def nix_safe(text: str) -> bool:
    """Whether `text` can be written by `nix_string` as printable Nix: valid UTF-8 (no
    surrogateescape byte) and no control character but newline, tab and carriage return."""
    if text.isprintable():  # (a surrogate is not)
        return True
    return all(char.isprintable() or char in "\n\t\r" for char in text) and not any(
        "\udc80" <= char <= "\udcff" for char in text
    )


def nix_attribute(name: str) -> str:
    """An attribute name: bare when it is an identifier (not a keyword), else a string."""
    if _NIX_IDENTIFIER.match(name) and name not in _NIX_KEYWORDS:
        return name
    return nix_string(name)


# --------------------------------------------------------------------------- grouping


def unit_directories(plan: Plan) -> list[tuple[str, Unit, str]]:
    """(directory as on /, unit, option) of every directory systemd makes for a unit."""
    found: list[tuple[str, Unit, str]] = []
    for unit in plan.units:
        private = "/private" if unit.dynamic_user else ""
        for option, base, names in (
            ("StateDirectory", "/var/lib", unit.state_directories),
            ("CacheDirectory", "/var/cache", unit.cache_directories),
            ("LogsDirectory", "/var/log", unit.logs_directories),
        ):
            found.extend((f"{base}{private}/{name}", unit, option) for name in names)
    return found


def _ancestors(path: str) -> Iterator[str]:
    head = path.rpartition("/")[0]
    while head:
        yield head
        head = head.rpartition("/")[0]


def _home_of(path: str) -> tuple[str, str, str] | None:
    """(user, home, path relative to it) of a path strictly inside /home/NAME or /root."""
    if path.startswith("/root/"):
        return "root", "/root", path[len("/root/") :]
    if path.startswith("/home/"):
        name, slash, rest = path[len("/home/") :].partition("/")
        if name and slash and rest:
            return name, f"/home/{name}", rest
    return None


def is_hidden(entry: EntryTuple) -> bool:
    return entry[3] == "lost" and entry[4].startswith(HIDDEN_PREFIX)


def is_plainly_lost(entry: EntryTuple) -> bool:
    return entry[3] == "lost" and not entry[4].startswith(HIDDEN_PREFIX)


class _Sorted(Generic[_T]):
    """The first `limit` (by path) of the values added, in any order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.paths: list[str] = []
        self.values: list[_T] = []

    def admits(self, path: str) -> bool:
        return len(self.paths) < self.limit or path < self.paths[-1]

    def add(self, path: str, value: _T) -> bool:
        """False when one value (this one, or the last so far) falls off."""
        paths = self.paths
        if len(paths) < self.limit:
            if not paths or path >= paths[-1]:  # (most come in path order)
                paths.append(path)
                self.values.append(value)
                return True
        elif path >= paths[-1]:
            return False
        index = bisect.bisect_right(paths, path)
        self.paths.insert(index, path)
        self.values.insert(index, value)
        if len(self.paths) > self.limit:
            self.paths.pop()
            self.values.pop()
            return False
        return True

    def drop(self, low: str, high: str) -> None:
        """Forget what lies in [low, high)."""
        first = bisect.bisect_left(self.paths, low)
        end = bisect.bisect_left(self.paths, high, first)
        del self.paths[first:end], self.values[first:end]


class _Frame:
    """A wanted entry whose subtree the stream may still be in (until a path from `end`
    on), pending until something below it is not wanted (then `mixed`)."""

    __slots__ = ("counts", "end", "entry", "mixed", "parent", "path", "store", "top")

    def __init__(self, entry: EntryTuple, parent: _Frame | None) -> None:
        self.entry = entry
        self.path = entry[0]
        self.end = entry[0] + "0"  # "0" follows "/": every path below sorts before it
        self.mixed = False
        self.parent = parent
        # A pending frame (not mixed yet): `counts`, by category, of its closed
        # children, each whole (wanted, not mixed); they stand in its place if it turns
        # mixed. `top`: the outermost pending frame above it (or itself), whose `store`
        # holds the first of the candidates of all of them, by path. (Made only when needed:
        # most frames are of files, closed at once.)
        self.counts: dict[Category, int] | None = None
        self.top: _Frame | None = None
        self.store: tuple[_Held, _Held] | None = None


# A candidate's category, for what a pending directory holds: the reason it is skipped, or
# None for an entry of the group (one for all the candidates a chain of pending directories
# holds: that of the outermost).
Category = str | None
_Held = _Sorted[tuple[EntryTuple, Category]]


class Topmost:
    """The topmost `wanted` entries of a stream in path order, handed to `emit` as soon as
    they are known: in path order, but where a name extends another ("/a.b" comes out before
    "/a", known only once the stream is past "/a/"). A directory stands for what lies below
    it when all of that is wanted too. A directory with an entry that is not wanted below it
    is not taken whole, nor is one above a path of `keep_apart` (a unit's directory:
    suggested on its own), nor a path of `split` or one above it (a home: what it holds is
    suggested entry by entry), nor the directory `split_at` names for an entry below it.

    Memory stays bounded whatever the stream holds: only the entries whose path is a prefix
    of the current one are held (no more than a path has characters). What the pending
    directories among them would hand out if they turned mixed all goes to one group: its
    first `room` by path are held (candidates whose `category` is None, and those it is a
    skip reason of), the rest only counted and handed to `spill` by category, with the
    outermost pending directory (whose group they are in).

    Only pending directories are held at all: an entry that is not wanted, or is mixed from
    the start, has every directory above it mixed, so it is no different from none.

    `splits_below(path)`: whether `split_at` may name that directory, or one above it, for an
    entry below it (its default, True, says nothing). A wanted run (`feed_wanted`) takes a
    directory whole without reading below it only where it does not."""

    def __init__(
        self,
        wanted: Callable[[EntryTuple], bool],
        emit: Callable[[EntryTuple], None],
        *,
        keep_apart: Iterable[str] = (),
        split: Iterable[str] = (),
        split_at: Callable[[str], str | None] | None = None,
        category: Callable[[EntryTuple], Category] = lambda _entry: None,
        spill: Callable[[Category, int, EntryTuple], None] = lambda _c, _n, _top: None,
        room: tuple[int, int] = (sys.maxsize, sys.maxsize),
        splits_below: Callable[[str], bool] = lambda _path: True,
    ) -> None:
        self._wanted = wanted
        self._emit = emit
        self._split_at = split_at
        self._splits_below = splits_below
        self._category = category
        self._spill = spill
        self._room = room
        self._mixed: set[str] = set()
        for path in keep_apart:
            self._mixed.update(_ancestors(path))
        for path in split:
            self._mixed.update(_ancestors(path))
            self._mixed.add(path)
        self._stack: list[_Frame] = []
        self._last = ""

    def feed(self, entry: EntryTuple) -> None:
        path = entry[0]
        if path <= self._last:
            if path == self._last:
                return  # listed twice: once is enough
            raise ValueError(f"entries out of path order: {path!r} after {self._last!r}")
        self._last = path
        parent = self._arrive(path)
        wanted = self._wanted(entry)
        if not wanted:
            self._mix(parent)
        self._split(path, parent)
        if wanted and path not in self._mixed:
            frame = _Frame(entry, parent)
            self._pend(frame)
            self._stack.append(frame)

    def _arrive(self, path: str) -> _Frame | None:
        """The frames `path` lies past are closed; the frame of its parent, if pending."""
        stack = self._stack
        while stack and path >= stack[-1].end:
            self._close(stack.pop())
        # Every frame left is a prefix of `path`: its own subtree's, or a name it extends
        # ("/a" under "/a.b"), which is not above it.
        for frame in reversed(stack):
            if path[len(frame.path)] == "/":
                return frame
        return None

    def _split(self, path: str, parent: _Frame | None) -> str | None:
        """Where `split_at` splits `path` (a home), with the frames from there up mixed."""
        at = None if self._split_at is None else self._split_at(path)
        if at is not None:
            above = parent
            while above is not None and len(above.path) > len(at):
                above = above.parent
            self._mix(above)
        return at

    def skip(self, entries: Sequence[EntryTuple], low: int, high: int) -> None:
        """`feed` of each of entries[low:high], none of them wanted, where `entries` is a
        list in path order: only those that can change something are fed. An entry that is
        not wanted, with no pending frame above it, is nothing to it: it mixes what is above
        it, mixed already, and the frames it would close are mixed too, which do nothing when
        closed (the next entry fed closes them). The first entry below a pending frame mixes
        it (and what is above it); one past its end closes it: each entry fed leaves one
        pending frame fewer, and with none left, the rest are nothing."""
        stack = self._stack
        while low < high:
            below = [frame.path + "/" for frame in stack if not frame.mixed]
            if not below:
                break
            low = bisect.bisect_left(entries, min(below), low, high, key=_path_of)
            if low == high:
                break
            self.feed(entries[low])
            low += 1
        if low < high:
            self._last = max(self._last, entries[high - 1][0])

    def feed_wanted(self, entries: Sequence[EntryTuple], low: int, high: int) -> None:
        """`feed` of each of entries[low:high], every one of them wanted, where `entries` is
        the whole stream, a list in path order, and nothing else is fed between. What
        follows an entry tells what lies below it without reading further:

        - a leaf (the next entry is not below it, nor a name that extends it) is closed at
          once, without a frame: the next `feed` would close it first thing;
        - a directory whose whole subtree lies in the slice, and that `split_at` does not
          split below it, is whole: it is closed at once too, and what lies below it is
          skipped. Closed, a whole directory stands for its subtree: the candidates its
          entries would have held are dropped when it closes (they come after all that is
          held, so they push nothing out), and nothing below it is mixed or emitted."""
        stack = self._stack
        mixed_paths = self._mixed
        split_at = self._split_at
        splits_below = self._splits_below
        emit = self._emit
        category_of = self._category
        size = len(entries)
        last = self._last
        index = low
        try:
            while index < high:
                entry = entries[index]
                path = entry[0]
                index += 1
                if path <= last:
                    if path == last:
                        continue  # listed twice: once is enough
                    raise ValueError(f"entries out of path order: {path!r} after {last!r}")
                last = path
                parent = self._arrive(path)
                at = self._split(path, parent)
                if path in mixed_paths:
                    continue
                if index < size:
                    following = entries[index][0]
                    if following.startswith(path):
                        if following[len(path) : len(path) + 1] != "/" or (
                            split_at is not None and at is None and splits_below(path)
                        ):
                            frame = _Frame(entry, parent)
                            self._pend(frame)
                            stack.append(frame)
                            continue
                        end = bisect.bisect_left(
                            entries, path + "0", index, min(high + 1, size), key=_path_of
                        )
                        if end > high:  # the subtree goes on past the slice
                            frame = _Frame(entry, parent)
                            self._pend(frame)
                            stack.append(frame)
                            continue
                        index = end
                # `_closing` of a frame made and closed at once: it holds nothing.
                if parent is None or parent.mixed:
                    emit(entry)
                    continue
                assert parent.counts is not None and parent.top is not None
                assert parent.top.store is not None
                category = category_of(entry)
                parent.counts[category] = parent.counts.get(category, 0) + 1
                parent.top.store[category is not None].add(path, (entry, category))
        finally:
            self._last = last

    def close(self) -> None:
        """The end of the stream: what is still open is complete."""
        while self._stack:
            self._close(self._stack.pop())

    def _pend(self, frame: _Frame) -> None:
        parent = frame.parent
        frame.counts = {}
        if parent is not None and not parent.mixed:
            frame.top = parent.top
        else:
            frame.top = frame
            frame.store = (_Sorted(self._room[0]), _Sorted(self._room[1]))

    def _close(self, frame: _Frame) -> None:
        try:
            self._closing(frame)
        finally:
            # a chain's top frame is its own top: a cycle only the cyclic collector frees,
            # which a scan pauses (audit._collector_paused)
            frame.top = None

    def _closing(self, frame: _Frame) -> None:
        if frame.mixed:
            return
        parent = frame.parent
        if parent is None or parent.mixed:
            self._emit(frame.entry)
            return
        # Both pending, under one top: the frame stands for its children.
        assert parent.counts is not None and frame.top is not None
        assert frame.top.store is not None
        category = self._category(frame.entry)
        parent.counts[category] = parent.counts.get(category, 0) + 1
        if frame.counts:  # what it held of its children is forgotten: it stands for them
            for held in frame.top.store:
                held.drop(frame.path + "/", frame.end)
        frame.top.store[0 if category is None else 1].add(frame.path, (frame.entry, category))

    def _mix(self, frame: _Frame | None) -> None:
        """`frame` and every frame above it are mixed: what the pending ones stand for is
        handed out (the first held, the rest counted)."""
        chain: list[_Frame] = []
        while frame is not None and not frame.mixed:
            chain.append(frame)
            frame = frame.parent
        if not chain:
            return
        top = chain[-1]
        assert top.store is not None
        totals: dict[Category, int] = {}
        for pending in chain:
            pending.mixed = True
            for category, count in (pending.counts or {}).items():
                totals[category] = totals.get(category, 0) + count
            pending.counts = None
        emit = self._emit
        entries, skipped = top.store
        for entry, _category in entries.values:  # (all of the category None)
            emit(entry)
        if entries.values:
            totals[None] = totals.get(None, 0) - len(entries.values)
        for entry, category in skipped.values:
            emit(entry)
            totals[category] = totals.get(category, 0) - 1
        for category, count in totals.items():
            if count > 0:
                self._spill(category, count, top.entry)
        top.store = None
        # A pending frame below the chain (one whose name the current path extends) has
        # no closed child yet: it starts a chain of its own.
        for frame in self._stack:
            if not frame.mixed and frame.top is not None and frame.top.mixed:
                self._pend(frame)


def topmost(
    entries: Iterable[EntryTuple],
    wanted: Callable[[EntryTuple], bool] = is_plainly_lost,
    keep_apart: Iterable[str] = (),
    split: Iterable[str] = (),
) -> list[EntryTuple]:
    """The topmost `wanted` entries of `entries` (in path order), as `Topmost` finds them,
    all of them."""
    chosen: list[EntryTuple] = []
    finder = Topmost(wanted, chosen.append, keep_apart=keep_apart, split=split)
    for entry in entries:
        finder.feed(entry)
    finder.close()
    return sorted(chosen)


def looks_like_cache(path: str, cache_directory: bool) -> bool:
    if cache_directory or path == "/var/cache" or path.startswith("/var/cache/"):
        return True
    return any(part.lower() in CACHE_NAMES for part in path.split("/"))


def ignore_pattern(path: str, kind: str) -> str | None:
    """The ignore rule that matches `path` (and, for a directory, what lies below it), or
    None when the name holds a glob character or cannot be a pattern."""
    if _GLOB.search(path):
        return None
    pattern = f"{path}/**" if kind == "directory" else path
    try:
        ignore_rules.check_pattern(pattern)
    except ValueError:
        return None
    return pattern


def _mode(observed: Observed) -> str:
    return f"{stat.S_IMODE(observed[2]):04o}"


_SUGGESTED_KINDS = frozenset({"dir", "subvolume", "file", "symlink"})
NIX_UNSAFE = (
    "Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)"
)
SOCKET = "not a file or directory (a socket, fifo or device)"


class _Shown(_Sorted[Any]):
    """The first `limit` items by path of those added (in any order), and how many more
    there were."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.more = 0

    @property
    def items(self) -> list[Any]:
        return self.values

    def add(self, path: str, value: Any) -> bool:
        if super().add(path, value):
            return True
        self.more += 1
        return False


class _Grouping:
    """The groups a stream of topmost entries makes: the first SHOWN entries of each group
    observed and kept, the rest counted (not observed)."""

    def __init__(
        self,
        plan: Plan,
        observe: Callable[[str], Observed | None],
        user_name: Callable[[int], str],
        group_name: Callable[[int], str],
    ) -> None:
        self.units = unit_directories(plan)
        self.observe = observe
        self.user_name = user_name
        self.group_name = group_name
        # The symlinks systemd makes next to a DynamicUser's private directories.
        self.dynamic_links = {
            directory.replace("/private/", "/", 1): unit.name
            for directory, unit, _option in self.units
            if unit.dynamic_user
        }
        self.groups: dict[tuple[GroupBy, str], tuple[str, _Shown]] = {}
        self.unit_paths = frozenset(directory for directory, _unit, _option in self.units)
        self.unit_prefixes = tuple(f"{directory}/" for directory in sorted(self.unit_paths))
        # The group of the entries below the last directory `plain` found one for (nix_safe).
        self._last_directory: str | None = None
        self._last_held: _Shown | None = None
        # Skipped in the hidden pass, then in the rest: as the passes list them.
        self.skipped = (_Shown(SKIPPED_SHOWN), _Shown(SKIPPED_SHOWN))

    def _group(self, key: tuple[GroupBy, str], note: str) -> _Shown:
        return self.groups.setdefault(key, (note, _Shown(SHOWN)))[1]

    def _skip(self, hidden: bool, path: str, why: str) -> None:
        self.skipped[0 if hidden else 1].add(path, Skipped(path, why))

    # ---- the hidden entries: grouped by what hides them, never observed

    def _hidden_key(self, entry: EntryTuple) -> tuple[GroupBy, str]:
        return ("hidden", entry[4].removeprefix(HIDDEN_PREFIX))

    def hidden_category(self, entry: EntryTuple) -> Category:
        return None if nix_safe(entry[0]) else NIX_UNSAFE

    def hidden(self, entry: EntryTuple) -> None:
        path, kind = entry[0], entry[1]
        key = self._hidden_key(entry)
        if not (nix_safe(path) and nix_safe(key[1])):
            self._skip(True, path, NIX_UNSAFE)
            return
        self._group(key, f"hidden under {key[1]}").add(
            path, Item(path, path, _kind(kind), None, None, None)
        )

    def spill_hidden(self, category: Category, count: int, top: EntryTuple) -> None:
        key = self._hidden_key(top)
        self._spill(True, category, count, key, f"hidden under {key[1]}")

    # ---- the rest: by service, user, top directory

    def _static_skip(self, entry: EntryTuple) -> str | None:
        path, kind = entry[0], entry[1]
        if kind == "symlink" and path in self.dynamic_links:
            return f"a symlink systemd makes for {self.dynamic_links[path]}"
        if kind not in _SUGGESTED_KINDS:
            return SOCKET
        return None

    def _key(self, path: str) -> tuple[GroupBy, str] | None:
        """The group key `_where` gives `path`, found faster; None where a unit may own it.
        Below a directory (not /), it is the same for every path but a unit's directory."""
        if path in self.unit_paths or path.startswith(self.unit_prefixes):
            return None
        if path.startswith(("/root/", "/home/")):
            home = _home_of(path)
            if home is not None:
                return ("user", home[0])
        end = path.find("/", 1)
        return ("top", path if end < 0 else path[:end])

    def _where(self, path: str) -> tuple[tuple[GroupBy, str], str, str, str | None, bool]:
        """(group key, its note, the name to give, the unit's option, DynamicUser) of a path."""
        owning = _owning_unit(path, self.units)
        if owning is not None:
            _directory, unit, option = owning
            note = f"{unit.name}.service: {option}"
            if unit.dynamic_user:
                # systemd gives the directory the service's user at every start.
                note += " (DynamicUser: systemd sets its owner at every start)"
            return ("service", unit.name), note, path, option, unit.dynamic_user
        home = _home_of(path)
        if home is not None:
            return ("user", home[0]), f"the home of {home[0]}, {home[1]}", home[2], None, False
        top = "/" + path.split("/")[1]
        return ("top", top), f"in {top}", path, None, False

    def plain_category(self, entry: EntryTuple) -> Category:
        path, kind = entry[0], entry[1]
        if kind in _SUGGESTED_KINDS and (kind != "symlink" or path not in self.dynamic_links):
            return None if path.isprintable() or nix_safe(path) else NIX_UNSAFE
        return self._static_skip(entry)

    def plain(self, entry: EntryTuple) -> None:
        path, kind = entry[0], entry[1]
        if kind not in _SUGGESTED_KINDS or (kind == "symlink" and path in self.dynamic_links):
            self._skip(False, path, self._static_skip(entry) or SOCKET)
            return
        # Most entries of a big group are past what it shows: counted, not observed. Below
        # one directory, what is not a unit's own directory is in one group (`_key`).
        directory = path[: path.rfind("/")]
        if directory == self._last_directory and path not in self.unit_paths:
            held: _Shown | None = self._last_held
        else:
            held = None
            quick = self._key(path)
            if quick is not None and quick in self.groups and nix_safe(quick[1]):
                held = self.groups[quick][1]
                if directory:
                    self._last_directory, self._last_held = directory, held
        if (
            held is not None
            and len(held.paths) >= held.limit
            and path >= held.paths[-1]
            and (path.isprintable() or nix_safe(path))
        ):
            held.more += 1  # not observed: it is not shown
            return
        key, note, name, option, dynamic = self._where(path)
        safe = nix_safe(path) and nix_safe(key[1])
        shown = self.groups[key][1] if key in self.groups else None
        if safe and shown is not None and not shown.admits(path):
            shown.more += 1  # not observed: it is not shown
            return
        observed = self.observe(path)
        if observed is None:
            self._skip(False, path, GONE)
            return
        if not safe:
            self._skip(False, path, NIX_UNSAFE)
            return
        owner = (self.user_name(observed[0]), self.group_name(observed[1]))
        if dynamic:
            owner = ("root", "root")
        cache = looks_like_cache(path, option == "CacheDirectory")
        item_kind = _kind(kind)
        self._group(key, note).add(
            path,
            Item(
                path,
                name,
                item_kind,
                owner[0],
                owner[1],
                _mode(observed),
                cache,
                ignore_pattern(path, item_kind) if cache else None,
            ),
        )

    def spill_plain(self, category: Category, count: int, top: EntryTuple) -> None:
        key, note, _name, _option, _dynamic = self._where(top[0])
        self._spill(False, category, count, key, note)

    def _spill(
        self, hidden: bool, category: Category, count: int, key: tuple[GroupBy, str], note: str
    ) -> None:
        if category is None and nix_safe(key[1]):
            self._group(key, note).more += count
        else:
            self.skipped[0 if hidden else 1].more += count

    def suggestion(self, persist_path: str) -> Suggestion:
        order: dict[GroupBy, int] = {"service": 0, "user": 1, "top": 2, "hidden": 3}
        ordered = sorted(self.groups.items(), key=lambda pair: (order[pair[0][0]], pair[0][1]))
        skipped = [*self.skipped[0].items, *self.skipped[1].items]
        more = self.skipped[0].more + self.skipped[1].more + max(0, len(skipped) - SKIPPED_SHOWN)
        return Suggestion(
            persist_path,
            tuple(
                Group(by, name, note, tuple(shown.items), shown.more)
                for (by, name), (note, shown) in ordered
            ),
            tuple(skipped[:SKIPPED_SHOWN]),
            more,
        )


def group(
    entries: Iterable[EntryTuple],
    plan: Plan,
    observe: Callable[[str], Observed | None],
    user_name: Callable[[int], str],
    group_name: Callable[[int], str],
) -> Suggestion:
    """Groups of what `entries` (a report's, in path order, read once) has lost, with the
    owner and mode `observe` gives for each path shown (None: it is gone since). Each group
    shows its first SHOWN entries and counts the rest; memory does not grow with the
    number of entries. A list (the report's) gives the same groups as its entries one by one,
    read a run at a time: what a run holds below a directory it holds whole is not read."""
    grouping = _Grouping(plan, observe, user_name, group_name)
    hidden = Topmost(
        is_hidden,
        grouping.hidden,
        category=grouping.hidden_category,
        spill=grouping.spill_hidden,
        room=(SHOWN, SKIPPED_SHOWN),
    )
    plain = Topmost(
        is_plainly_lost,
        grouping.plain,
        keep_apart=[directory for directory, _unit, _option in grouping.units],
        split=("/root",),
        split_at=_home_directory,
        category=grouping.plain_category,
        spill=grouping.spill_plain,
        room=(SHOWN, SKIPPED_SHOWN),
        splits_below=_splits_homes,
    )
    if isinstance(entries, list):
        # A run of entries of one status and reason (most are plainly lost: one run between
        # two that are not) is one step of each pass, which wants all of them or none. The
        # passes share nothing: one may read a run before the other.
        low = 0
        for high in _run_ends(entries):
            for finder, wanted in ((hidden, is_hidden), (plain, is_plainly_lost)):
                if wanted(entries[low]):
                    finder.feed_wanted(entries, low, high)
                else:
                    finder.skip(entries, low, high)
            low = high
    else:
        for entry in entries:
            hidden.feed(entry)
            plain.feed(entry)
    hidden.close()
    plain.close()
    return grouping.suggestion(plan.persist_path)


_status_and_reason = itemgetter(3, 4)


def _run_ends(entries: list[EntryTuple]) -> Iterator[int]:
    """The end of each run of entries of one status and reason (what `is_hidden` and
    `is_plainly_lost` read), in order, found in C one at a time, as `render.kept_indices`
    finds the entries that are not plainly lost."""
    if not entries:
        return iter(())
    following = map(_status_and_reason, entries)
    next(following)
    changes = map(ne, following, map(_status_and_reason, entries))
    return chain(compress(range(1, len(entries)), changes), (len(entries),))


def _splits_homes(path: str) -> bool:
    """Whether `_home_directory` may name `path`, or a directory above it, for an entry below
    it: /root, /home and a home in it."""
    return path in ("/root", "/home") or (path.startswith("/home/") and path.find("/", 6) < 0)


def _home_directory(path: str) -> str | None:
    """The home a path lies strictly inside: it is suggested entry by entry."""
    if not path.startswith(("/root/", "/home/")):
        return None
    home = _home_of(path)
    return None if home is None else home[1]


def _kind(kind: str) -> Literal["directory", "file"]:
    return "directory" if kind in ("dir", "subvolume") else "file"


def _owning_unit(path: str, units: list[tuple[str, Unit, str]]) -> tuple[str, Unit, str] | None:
    """The unit directory holding `path` (the deepest), if any."""
    best: tuple[str, Unit, str] | None = None
    for directory, unit, option in units:
        if (path == directory or path.startswith(directory + "/")) and (
            best is None or len(directory) > len(best[0])
        ):
            best = (directory, unit, option)
    return best


# --------------------------------------------------------------------------- rendering


def _directory(item: Item) -> str:
    return (
        f"{{ directory = {nix_string(item.name)}; user = {nix_string(item.user or 'root')}; "
        f"group = {nix_string(item.group or 'root')}; mode = {nix_string(item.mode or '0755')}; }}"
    )


def _escaped(text: str) -> str:
    """`text` as inside a Nix string: a newline in a name cannot end a comment."""
    return nix_string(text)[1:-1]


def _comment(group: Group) -> str:
    return f"# {_escaped(group.note)}"


def render_nix(suggestion: Suggestion) -> str:
    """The suggestion as one Nix attribute set to paste into the host's configuration,
    with a comment per group; caches as ignore patterns; the hidden and skipped entries as
    comments after it."""
    directories: list[str] = []
    files: list[str] = []
    homes: dict[str, tuple[list[str], list[str]]] = {}
    ignores: list[str] = []
    last: dict[int, str] = {}  # the group comment each list had last
    for grouped in suggestion.groups:
        if grouped.by == "hidden":
            continue
        comment = _comment(grouped)
        for item in grouped.items:
            if item.cache:
                target = ignores
                line = nix_string(item.ignore) if item.ignore is not None else None
                if line is None:
                    # No pattern can match it: offered to keep, as a comment.
                    line = "# no ignore pattern matches this name; to keep it: " + (
                        _directory(item) if item.kind == "directory" else nix_string(item.name)
                    )
            else:
                line = _directory(item) if item.kind == "directory" else nix_string(item.name)
                if grouped.by == "user":
                    home_directories, home_files = homes.setdefault(grouped.name, ([], []))
                    target = home_directories if item.kind == "directory" else home_files
                else:
                    target = directories if item.kind == "directory" else files
            if last.get(id(target)) != comment:
                target.append(comment)
                last[id(target)] = comment
            target.append(line)
    lines = [
        "# blankslate diff --suggest: what the next boot would erase, as configuration for the",
        "# host (hosts/<name>/default.nix). Keep the lines you want; what you drop stays lost.",
        "{",
    ]
    _list(lines, "  blankslate.persistence.directories", directories, "  ")
    _list(lines, "  blankslate.persistence.files", files, "  ")
    for user, (home_directories, home_files) in sorted(homes.items()):
        where = f"environment.persistence.{nix_string(suggestion.persist_path)}"
        lines.append(f"  {where}.users.{nix_attribute(user)} = {{")
        _list(lines, "    directories", home_directories, "    ")
        _list(lines, "    files", home_files, "    ")
        lines.append("  };")
    if ignores:
        lines.append(
            "  # Caches, rebuilt on demand: ignored by the audit rather than kept. To keep"
        )
        lines.append("  # one instead, move it up; to put the rule in the host's ignore file:")
        lines.append(f'  #   blankslate ignore PATTERN --reason "{CACHE_REASON}"')
    _list(lines, "  blankslate.audit.ignore", ignores, "  ")
    lines.append("}")
    hidden = [g for g in suggestion.groups if g.by == "hidden"]
    if hidden:
        lines.append("# Hidden beneath mounts: their paths are declared already, but the data the")
        lines.append("# root holds under them is erased; copy it with `blankslate seed --hidden`:")
        for grouped in hidden:
            for item in grouped.items:
                lines.append(f"#   {nix_string(item.path)} ({_escaped(grouped.note)})")
    if suggestion.skipped or suggestion.skipped_more:
        lines.append("# Not suggested:")
        for skipped in suggestion.skipped:
            lines.append(f"#   {quote_path(skipped.path)}: {skipped.why}")
        if suggestion.skipped_more:
            lines.append(f"#   and {suggestion.skipped_more} more")
    more = [g for g in suggestion.groups if g.more]
    if more:
        lines.append(f"# Not shown: each group shows its first {SHOWN} entries; the rest of")
        lines.append("# them (`blankslate diff --full` lists all):")
        for grouped in more:
            lines.append(f"#   {grouped.more} more: {_escaped(grouped.note)}")
    for problem in suggestion.problems:
        lines.append(f"# warning: {printable(problem)}")
    if suggestion.problems:
        lines.append("# warning: the audit is incomplete (see above): more may be lost")
    if not any(g.items or g.more for g in suggestion.groups):
        lines.insert(2, "# Nothing is lost at the next boot: nothing to add.")
    return "\n".join(lines) + "\n"


def _list(lines: list[str], name: str, values: list[str], indent: str) -> None:
    if not values:
        return
    lines.append(f"{name} = [")
    lines.extend(f"{indent}  {value}" for value in values)
    lines.append(f"{indent}];")


def to_json(suggestion: Suggestion) -> dict[str, Any]:
    """The suggestion as data: the groups in order, each with its entries (the first SHOWN;
    "more": how many it does not list, only when some); "skippedMore": the skipped entries
    "skipped" does not list, only when some; "problems": what the audit could not read, only
    when something."""
    document = {
        "version": 1,
        "persistPath": suggestion.persist_path,
        "groups": [
            {
                "by": grouped.by,
                "name": grouped.name,
                "note": grouped.note,
                **({"more": grouped.more} if grouped.more else {}),
                "entries": [
                    {
                        "path": item.path,
                        "name": item.name,
                        "kind": item.kind,
                        "user": item.user,
                        "group": item.group,
                        "mode": item.mode,
                        "cache": item.cache,
                        "ignore": item.ignore,
                    }
                    for item in grouped.items
                ],
            }
            for grouped in suggestion.groups
        ],
        "skipped": [{"path": quote_path(s.path), "why": s.why} for s in suggestion.skipped],
    }
    if suggestion.skipped_more:
        document["skippedMore"] = suggestion.skipped_more
    if suggestion.problems:
        document["problems"] = [printable(problem) for problem in suggestion.problems]
    return document


# --------------------------------------------------------------------------- I/O

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


class Observer:
    """lstat of paths as on / below a base directory, from directory fds opened with
    O_NOFOLLOW component by component: a link swapped in is never followed. None for an
    entry that is gone (or now reached through a link)."""

    def __init__(self, base: str) -> None:
        self._base = os.open(base, _DIRECTORY)

    def close(self) -> None:
        os.close(self._base)

    def __call__(self, path: str) -> Observed | None:
        found = self._at(path, lambda fd, name: os.stat(name, dir_fd=fd, follow_symlinks=False))
        return None if found is None else (found.st_uid, found.st_gid, found.st_mode)

    def read(self, path: str, limit: int) -> str | None:
        """The text of the regular file at `path` (never through a link), None when it is
        missing, not a regular file or bigger than `limit`."""

        def read_at(fd: int, name: str) -> str | None:
            opened = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            with os.fdopen(opened, "rb") as file:
                info = os.fstat(file.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
                    return None
                return file.read(limit).decode("utf-8", "surrogateescape")

        return self._at(path, read_at)

    def _at(self, path: str, act: Callable[[int, str], _T]) -> _T | None:
        parts = [part for part in path.split("/") if part]
        if not parts:
            return None
        fds: list[int] = []
        try:
            current = self._base
            for part in parts[:-1]:
                current = os.open(part, _DIRECTORY, dir_fd=current)
                fds.append(current)
            return act(current, parts[-1])
        except OSError as error:
            if error.errno in _GONE or error.errno == errno.EACCES:
                return None
            raise
        finally:
            for fd in fds:
                os.close(fd)


# /etc/passwd and /etc/group bigger than this are not read (the live system's names then).
ACCOUNTS_MAX = 4 * 1024 * 1024


def parse_accounts(text: str) -> dict[int, str]:
    """id -> name from the lines of /etc/passwd or /etc/group (NAME:x:ID:...); the first
    name of an id wins; a malformed line is skipped."""
    names: dict[int, str] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and fields[2].isascii() and fields[2].isdigit():
            names.setdefault(int(fields[2]), fields[0])
    return names


def _names(observer: Observer, path: str, live: Callable[[int], str]) -> Callable[[int], str]:
    """Names of ids as the audited root's `path` (etc/passwd, etc/group) gives them, else as
    the live system does, else the number."""
    text = observer.read(path, ACCOUNTS_MAX)
    known = parse_accounts(text) if text is not None else {}

    def name(number: int) -> str:
        found = known.get(number)
        return found if found is not None else live(number)

    return name


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


@contextlib.contextmanager
def _base(plan: Plan, device: str | None, root: Path | None, old_root: str | None) -> Iterator[str]:
    """The directory the audited root is seen in, for the lstat of its entries: --root, the
    old root or the stored root subvolume on the top level (mounted read-only again), else /."""
    from blankslate import mounts, oldroots

    if root is not None:
        yield str(root)
    elif old_root is not None:
        subvolume = oldroots.old_roots_subvolume(plan)
        with mounts.top_level(oldroots.default_device(plan, device)) as top:
            yield str(oldroots.pick(oldroots.list_roots(top, subvolume), old_root).path)
    else:
        with storage.of(plan.storage).scan(_Seen(plan, device)) as base:
            yield base


class _Seen:
    """Where the root `diff` read on a running system is seen (`storage_kind.Scans`): / for
    a walk and for `zfs diff`'s paths, the stored root subvolume on the top level for btrfs."""

    def __init__(self, plan: Plan, device: str | None) -> None:
        self.plan = plan
        self.device = device

    def live(self) -> contextlib.AbstractContextManager[str]:
        return contextlib.nullcontext("/")

    def zfs_diff(self, dataset: str, snapshot: str) -> contextlib.AbstractContextManager[str]:
        del dataset, snapshot
        return contextlib.nullcontext("/")

    @contextlib.contextmanager
    def stored_root(self, subvolume: str) -> Iterator[str]:
        from blankslate import mounts, oldroots

        with mounts.top_level(oldroots.default_device(self.plan, self.device)) as top:
            yield str(top / subvolume)


def run(
    plan: Plan,
    entries: Iterable[EntryTuple],
    *,
    device: str | None = None,
    root: Path | None = None,
    old_root: str | None = None,
) -> Suggestion:
    """The suggestion for a report's entries (read once, in path order), observing owners
    and modes on the root the report was made from."""
    with _base(plan, device, root, old_root) as base:
        observer = Observer(base)
        try:
            users = _names(observer, "/etc/passwd", user_name)
            groups = _names(observer, "/etc/group", group_name)
            return group(entries, plan, observer, users, groups)
        finally:
            observer.close()


def from_source(
    source: PlanSource,
    *,
    device: str | None = None,
    root: Path | None = None,
    old_root: str | None = None,
    ignore_file: Path | None = None,
    verbose: bool = False,
) -> Suggestion:
    """`diff --suggest`: the audit of `diff` for the plan of `source`, then the suggestion.
    The temporary mounts are echoed only with `verbose` (or --debug), as for `diff`."""
    import logging

    from blankslate import audit, plansource, process

    plan = plansource.load(source, builtin=False)
    rules = ignore_rules.collect(plan.audit.ignore, source.host or plan.host_name, ignore_file)
    level = process.echo.level
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    process.echo.setLevel(logging.INFO if verbose or debug else logging.WARNING)
    try:
        report = audit.run_diff(plan, device=device, root=root, ignore=rules, old_root=old_root)
        found = run(plan, report.entries, device=device, root=root, old_root=old_root)
        return dataclasses.replace(found, problems=tuple(report.problems))
    finally:
        process.echo.setLevel(level)
