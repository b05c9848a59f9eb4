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

import contextlib
import errno
import grp
import os
import pwd
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from blankslate import ignore_rules, nixtext
from blankslate.classify import HIDDEN_PREFIX, EntryTuple
from blankslate.display import quote_path
from blankslate.plan import BtrfsStorage, Plan, Unit
from blankslate.plansource import PlanSource

GroupBy = Literal["service", "user", "top", "hidden"]
_T = TypeVar("_T")
# (uid, gid, st_mode) of an entry, as lstat gives them.
Observed = tuple[int, int, int]

CACHE_REASON = "a cache, rebuilt on demand"
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
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Skipped:
    path: str
    why: str


@dataclass(frozen=True)
class Suggestion:
    persist_path: str
    groups: tuple[Group, ...]
    skipped: tuple[Skipped, ...] = ()


# --------------------------------------------------------------------------- Nix text


def nix_string(text: str) -> str:
    """`text` as a Nix string literal, on one line (nixtext.string). Other control characters
    and undecodable bytes are refused before (`nix_safe`)."""
    return nixtext.string(text)


def nix_safe(text: str) -> bool:
    """Whether `text` can be written by `nix_string` as printable Nix: valid UTF-8 (no
    surrogateescape byte) and no control character but newline, tab and carriage return."""
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


def topmost(
    entries: Iterable[EntryTuple],
    wanted: Callable[[EntryTuple], bool] = is_plainly_lost,
    keep_apart: Iterable[str] = (),
    split: Iterable[str] = (),
) -> list[EntryTuple]:
    """The topmost `wanted` entries of `entries` (in path order, as a report lists them): a
    directory stands for what lies below it when all of that is wanted too. A directory with
    an entry that is not (kept, or hidden) below it is not taken whole, nor is one above a path of
    `keep_apart` (a unit's directory: suggested on its own), nor a path of `split` or one
    above it (a home: what it holds is suggested entry by entry)."""
    listed = entries if isinstance(entries, Sequence) else list(entries)
    mixed: set[str] = set()

    def mix_above(path: str) -> None:
        for head in _ancestors(path):
            if head in mixed:
                return
            mixed.add(head)

    for entry in listed:
        if not wanted(entry):
            mix_above(entry[0])
    for path in keep_apart:
        mix_above(path)
    for path in split:
        mix_above(path)
        mixed.add(path)
    chosen: list[EntryTuple] = []
    taken: set[str] = set()
    for entry in listed:
        path = entry[0]
        if path in mixed or not wanted(entry):
            continue
        if any(head in taken for head in _ancestors(path)):
            continue
        taken.add(path)
        chosen.append(entry)
    return chosen


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


def group(
    entries: Iterable[EntryTuple],
    plan: Plan,
    observe: Callable[[str], Observed | None],
    user_name: Callable[[int], str],
    group_name: Callable[[int], str],
) -> Suggestion:
    """Groups of what `entries` (a report's, in path order) has lost, with the owner and
    mode `observe` gives for each path (None: it is gone since)."""
    listed = entries if isinstance(entries, Sequence) else list(entries)
    units = unit_directories(plan)
    by_path = {directory: (unit, option) for directory, unit, option in units}
    # The symlinks systemd makes next to a DynamicUser's private directories.
    dynamic_links = {
        directory.replace("/private/", "/", 1): unit.name
        for directory, unit, _option in units
        if unit.dynamic_user
    }
    homes = {"/root"}
    for path, *_rest in listed:
        home = _home_of(path)
        if home is not None:
            homes.add(home[1])
    groups: dict[tuple[GroupBy, str], tuple[str, list[Item]]] = {}
    skipped: list[Skipped] = []
    for path, kind, _size, _status, reason in topmost(listed, is_hidden):
        cover = reason.removeprefix(HIDDEN_PREFIX)
        item = Item(path, path, _kind(kind), None, None, None)
        _add(groups, skipped, ("hidden", cover), f"hidden under {cover}", item)
    for path, kind, _size, _status, _reason in topmost(listed, is_plainly_lost, by_path, homes):
        if kind == "symlink" and path in dynamic_links:
            skipped.append(Skipped(path, f"a symlink systemd makes for {dynamic_links[path]}"))
            continue
        if kind not in ("dir", "subvolume", "file", "symlink"):
            skipped.append(Skipped(path, "not a file or directory (a socket, fifo or device)"))
            continue
        observed = observe(path)
        if observed is None:
            skipped.append(Skipped(path, GONE))
            continue
        owner = (user_name(observed[0]), group_name(observed[1]))
        owning = _owning_unit(path, units)
        home = _home_of(path)
        if owning is not None:
            _directory, unit, option = owning
            key: tuple[GroupBy, str] = ("service", unit.name)
            note = f"{unit.name}.service: {option}"
            if unit.dynamic_user:
                # systemd gives the directory the service's user at every start.
                note += " (DynamicUser: systemd sets its owner at every start)"
                owner = ("root", "root")
            cache = looks_like_cache(path, option == "CacheDirectory")
            name = path
        elif home is not None:
            key, note, name = ("user", home[0]), f"the home of {home[0]}, {home[1]}", home[2]
            cache = looks_like_cache(path, False)
        else:
            top = "/" + path.split("/")[1]
            key, note, name = ("top", top), f"in {top}", path
            cache = looks_like_cache(path, False)
        item_kind = _kind(kind)
        item = Item(
            path,
            name,
            item_kind,
            owner[0],
            owner[1],
            _mode(observed),
            cache,
            ignore_pattern(path, item_kind) if cache else None,
        )
        _add(groups, skipped, key, note, item)
    order: dict[GroupBy, int] = {"service": 0, "user": 1, "top": 2, "hidden": 3}
    ordered = sorted(groups.items(), key=lambda pair: (order[pair[0][0]], pair[0][1]))
    return Suggestion(
        plan.persist_path,
        tuple(Group(by, name, note, tuple(items)) for (by, name), (note, items) in ordered),
        tuple(skipped),
    )


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


def _add(
    groups: dict[tuple[GroupBy, str], tuple[str, list[Item]]],
    skipped: list[Skipped],
    key: tuple[GroupBy, str],
    note: str,
    item: Item,
) -> None:
    if not (nix_safe(item.path) and nix_safe(key[1])):
        skipped.append(
            Skipped(
                item.path,
                "Nix strings cannot hold this name printably (bytes that are not UTF-8, or a "
                "control character)",
            )
        )
        return
    groups.setdefault(key, (note, []))[1].append(item)


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
    if suggestion.skipped:
        lines.append("# Not suggested:")
        for skipped in suggestion.skipped:
            lines.append(f"#   {quote_path(skipped.path)}: {skipped.why}")
    if not any(g.items for g in suggestion.groups):
        lines.insert(2, "# Nothing is lost at the next boot: nothing to add.")
    return "\n".join(lines) + "\n"


def _list(lines: list[str], name: str, values: list[str], indent: str) -> None:
    if not values:
        return
    lines.append(f"{name} = [")
    lines.extend(f"{indent}  {value}" for value in values)
    lines.append(f"{indent}];")


def to_json(suggestion: Suggestion) -> dict[str, Any]:
    """The suggestion as data: the groups in order, each with its entries."""
    return {
        "version": 1,
        "persistPath": suggestion.persist_path,
        "groups": [
            {
                "by": grouped.by,
                "name": grouped.name,
                "note": grouped.note,
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
    elif isinstance(plan.storage, BtrfsStorage):
        with mounts.top_level(oldroots.default_device(plan, device)) as top:
            yield str(top / plan.storage.root_subvolume)
    else:
        yield "/"


def run(
    plan: Plan,
    entries: Sequence[EntryTuple],
    *,
    device: str | None = None,
    root: Path | None = None,
    old_root: str | None = None,
) -> Suggestion:
    """The suggestion for a report's entries, observing owners and modes on the root the
    report was made from."""
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
        return run(plan, report.entries, device=device, root=root, old_root=old_root)
    finally:
        process.echo.setLevel(level)
