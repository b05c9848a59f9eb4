"""The renderings of a `blankslate diff` report: text for people; JSON or YAML (a stable
contract, version 2) for programs.

Paths are `str` decoded with surrogateescape (`os.fsdecode`), so any byte string survives; the
renderers escape what is not printable UTF-8.
"""

from __future__ import annotations

import base64
import io
import re
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from heapq import heappop, heappush
from itertools import chain, compress, repeat
from json.encoder import encode_basestring_ascii
from operator import eq, itemgetter, ne
from typing import Any, NamedTuple, TextIO

from blankslate.bounds import LISTED_PATH_MAX
from blankslate.classify import HIDDEN_PREFIX, STATUSES, DeeperTuple, EntryTuple, Report
from blankslate.display import format_size, printable, quote_path


@dataclass(frozen=True)
class Style:
    """The ANSI colours of the text rendering; the empty style colours nothing."""

    lost: str = ""
    persisted: str = ""
    reset: str = ""


PLAIN = Style()
COLOURED = Style(lost="\x1b[31m", persisted="\x1b[32m", reset="\x1b[0m")


def colour_wanted(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour only for a person at a terminal: not into a pipe or a file, not with NO_COLOR
    set to anything but the empty string (no-color.org), not on a dumb terminal."""
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except ValueError:  # closed
        return False


_path_of = itemgetter(0)
_kind_of_entry = itemgetter(1)
_size_of_entry = itemgetter(2)
_status_of_entry = itemgetter(3)
_status_and_reason = itemgetter(3, 4)
_PLAIN_LOST = ("lost", "")


_PIECE = 1 << 16  # entries copied at once to be read in C: 512 KiB of references


def _pieces(entries: Sequence[EntryTuple], first: int, end: int) -> Iterator[Sequence[EntryTuple]]:
    """entries[first:end] as slices of at most `_PIECE`: read in C without copying a whole
    root's references at once, nor walking the entries before `first` as an islice would."""
    for start in range(first, end, _PIECE):
        yield entries[start : min(start + _PIECE, end)]


def _size_of_slice(entries: Sequence[EntryTuple], first: int, end: int) -> int:
    return sum(sum(map(_size_of_entry, piece)) for piece in _pieces(entries, first, end))


def kept_indices(entries: Sequence[EntryTuple]) -> array[int]:
    """The indices of the entries that are not lost, or lost hidden beneath a mount (with a
    reason), in order: everything else is lost and not hidden. Found without a Python-level
    step per entry (itemgetter, `!=` and compress run in C): most entries are lost."""
    differs = map(ne, map(_status_and_reason, entries), repeat(_PLAIN_LOST))
    return array("q", compress(range(len(entries)), differs))


def _entries(count: int) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"


def _top(path: str) -> str:
    end = path.find("/", 1)
    return path if end < 0 else path[:end]


def _deeper_line(path: str, count: int, size: int, red: str, reset: str) -> str:
    """What lies below `path` too deep to list, as one line of the text."""
    return (
        f"  {'deeper':<9} {format_size(size):>10}  {red}{quote_path(path)}/...{reset}  "
        f"({_entries(count)} deeper than {LISTED_PATH_MAX} bytes, not listed)"
    )


Collapsed = tuple[int, int, int]  # first, end (indices of what lies below) and its size


def collapsed_directories(entries: Sequence[EntryTuple]) -> dict[int, Collapsed]:
    """The lost directories to show as one line: index -> (first, end, size) of what lies
    below it, all of it lost. Only the outermost such directory of a tree is kept."""
    listed = _Collapser(entries).listed_all()
    return {index: below for index, below in listed if below is not None}


class _Collapser:
    """Which lost directories of `entries` (sorted by path) are shown as one line, found as
    the entries are listed rather than all at once beforehand.

    What lies below a directory is one slice of the entries, from its path + "/" to its path
    + "0" ("0" follows "/"), though not always right after it ("/a.b" sorts between "/a" and
    "/a/b"). The slice is all lost when no index of `kept` (the entries that are not lost, or
    lost hidden beneath a mount, which have a section of their own) lies in it: two
    bisections. What this holds is those indices, whose number does not grow with the lost
    entries, and the slices of the collapsed directories being listed.
    """

    def __init__(self, entries: Sequence[EntryTuple]) -> None:
        self.entries = entries
        self.kept = kept_indices(entries)

    def below(self, index: int) -> Collapsed | None:
        """(first, end, size) of what lies below entry `index` when it is a lost directory
        with entries below it, all of them lost (all hidden by the same mount, for a hidden
        one); else None. The sizes are summed only for a directory that collapses, and what
        lies below it is not looked at again, so each entry is summed at most once."""
        entries = self.entries
        path, kind, _size, status, reason = entries[index]
        if status != "lost" or (kind != "dir" and kind != "subvolume"):
            return None
        first = bisect_left(entries, path + "/", index + 1, key=_path_of)
        end = bisect_left(entries, path + "0", first, key=_path_of)
        if end == first:
            return None
        # Slices, not islice: that would walk every entry before `first` again.
        if reason:  # hidden: collapsed when all below is hidden by the same mount
            hidden_alike = ("lost", reason)
            alike = all(
                all(map(eq, map(_status_and_reason, piece), repeat(hidden_alike)))
                for piece in _pieces(entries, first, end)
            )
        else:
            kept = self.kept
            alike = bisect_left(kept, end) == bisect_left(kept, first)
        if not alike:
            return None
        return first, end, _size_of_slice(entries, first, end)

    def listed(self, indices: Iterable[int]) -> Iterator[tuple[int, Collapsed | None]]:
        """Of `indices` (increasing), those listed (not below a collapsed directory), each
        with what it collapses. The slices of the collapsed directories whose ends are not
        reached yet wait in a heap by their first index: they do not overlap, so an index is
        below one exactly when it lies in the one on top, once those that ended are gone."""
        waiting: list[tuple[int, int]] = []
        for index in indices:
            while waiting and waiting[0][1] <= index:
                heappop(waiting)
            if waiting and waiting[0][0] <= index:
                continue  # below a collapsed directory
            yield index, self._collapsing(index, waiting)

    def listed_all(self) -> Iterator[tuple[int, Collapsed | None]]:
        """`listed` of every index, jumping over what a collapsed directory holds."""
        waiting: list[tuple[int, int]] = []
        index, count = 0, len(self.entries)
        while index < count:
            while waiting and waiting[0][1] <= index:
                heappop(waiting)
            if waiting and waiting[0][0] <= index:
                index = waiting[0][1]  # past what lies below a collapsed directory
                continue
            yield index, self._collapsing(index, waiting)
            index += 1

    def _collapsing(self, index: int, waiting: list[tuple[int, int]]) -> Collapsed | None:
        """What the listed entry at `index` collapses (a lost directory whose whole content is
        alike), its slice put on `waiting`; None for any other entry."""
        entry = self.entries[index]
        if entry[3] != "lost" or (entry[1] != "dir" and entry[1] != "subvolume"):
            return None
        below = self.below(index)
        if below is not None:
            heappush(waiting, (below[0], below[1]))
        return below


class _Chunks:
    """Lines written to `out` a few thousand at a time: one call per line would cost more than
    the line, and the whole document at once would hold it all in memory."""

    __slots__ = ("_out", "lines")
    SIZE = 4096

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.lines: list[str] = []  # a hot loop appends here itself, and flushes at SIZE

    def line(self, text: str) -> None:
        lines = self.lines
        lines.append(text)
        if len(lines) >= self.SIZE:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self.lines.append("")
            self._out.write("\n".join(self.lines))
            self.lines.clear()


class _Group:
    """The lost entries of one section of the text (a top directory, or what hides them):
    how many, their size, and the stretches of indices they lie in. A stretch may hold other
    entries too (a kept one, another section's), which are passed over when it is listed; a
    new one starts only where another group's entry came in between, so there are few."""

    __slots__ = ("count", "runs", "size")

    def __init__(self) -> None:
        self.count = 0
        self.size = 0
        self.runs: list[list[int]] = []


def _between(kept: array[int], first: int, end: int) -> list[tuple[int, int]]:
    """The stretches of [first, end) that hold no index of `kept`."""
    stretches = []
    for index in kept[bisect_left(kept, first) : bisect_left(kept, end)]:
        if index > first:
            stretches.append((first, index))
        first = index + 1
    if end > first:
        stretches.append((first, end))
    return stretches


class _Column(dict[Any, str]):
    """A column of the text, each value formatted once and kept when `keep` says so."""

    def __init__(self, format_value: Callable[[Any], str], keep: Callable[[Any], bool]) -> None:
        super().__init__()
        self.format_value = format_value
        self.keep = keep

    def __missing__(self, value: Any) -> str:
        text = self.format_value(value)
        if self.keep(value):
            self[value] = text
        return text


class _LineFormat:
    """The line of a lost entry that is listed alone: `  KIND  SIZE  PATH`."""

    def __init__(self, red: str, reset: str) -> None:
        self.kinds = _Column(lambda kind: f"  {kind:<9} ", lambda _kind: True)
        # Sizes below 1 KiB (most files of a root) are kept; a larger one is formatted anew.
        self.sizes = _Column(lambda size: f"{format_size(size):>10}  ", lambda size: size < 1024)
        self.red, self.reset = red, reset

    def one(self, path: str, kind: str, size: int) -> str:
        return f"{self.kinds[kind]}{self.sizes[size]}{self.red}{quote_path(path)}{self.reset}"

    def collapsed(self, path: str, kind: str, size: int, count: int) -> str:
        """A lost directory listed with the `count` entries, of `size` bytes, it holds."""
        return (
            f"{self.kinds[kind]}{self.sizes[size]}{self.red}{quote_path(path)}/{self.reset}  "
            f"(all {count} entries lost)"
        )

    def plain(self, entries: Sequence[EntryTuple]) -> list[str]:
        """The lines of `entries` (a comprehension of f-strings, the columns looked up): each
        name is quoted only when one of them is not printable."""
        kinds, sizes, red, reset = self.kinds, self.sizes, self.red, self.reset
        if "".join(map(_path_of, entries)).isprintable():
            return [
                f"{kinds[kind]}{sizes[size]}{red}{path}{reset}"
                for path, kind, size, _status, _reason in entries
            ]
        return [self.one(path, kind, size) for path, kind, size, _status, _reason in entries]


def render_text(
    report: Report, *, full: bool = False, all_entries: bool = False, style: Style = PLAIN
) -> str:
    """`write_text` into a string."""
    out = io.StringIO()
    write_text(report, out, full=full, all_entries=all_entries, style=style)
    return out.getvalue()


def write_text(
    report: Report,
    out: TextIO,
    *,
    full: bool = False,
    all_entries: bool = False,
    style: Style = PLAIN,
) -> None:
    """Lost entries by top directory, then (`all_entries`) the other statuses, then counts,
    written to `out` as they are read (two passes over the entries, no line kept).

    Unless `full`, a directory whose every entry is lost is one line with their count and
    size, instead of one line per entry."""
    entries = report.entries
    collapser = _Collapser(entries)
    kept = collapser.kept
    red, green, reset = style.lost, style.persisted, style.reset
    groups: dict[str, _Group] = {}  # top directory -> its lost entries
    covered: dict[str, _Group] = {}  # what hides them -> the hidden entries
    total = hidden_total = 0
    last_top: str | None = None
    last_cover: str | None = None
    start = 0
    # Between two kept indices every entry is lost and not hidden: those are grouped a top
    # directory at a time (its entries are one slice, found by bisection), not one by one.
    for stop in chain(kept, (len(entries),)):
        index = start
        while index < stop:
            path = entries[index][0]
            slash = path.find("/", 1)
            top = path if slash < 0 else path[:slash]
            end = index + 1
            if slash >= 0 or (end < stop and entries[end][0].startswith(top + "/")):
                end = bisect_left(entries, top + "0", end, stop, key=_path_of)
            size = _size_of_slice(entries, index, end)
            total += size
            group = groups.get(top)
            if group is None:
                group = groups[top] = _Group()
            group.count += end - index
            group.size += size
            if top == last_top:
                group.runs[-1][1] = end
            else:
                group.runs.append([index, end])
            last_top = top
            index = end
        start = stop + 1
        if stop == len(entries):
            break
        _path, _kind, size, status, reason = entries[stop]
        if status != "lost":
            continue
        hidden_total += size  # only a hidden entry is lost with a reason
        group = covered.get(reason)
        if group is None:
            group = covered[reason] = _Group()
        group.count += 1
        group.size += size
        if reason == last_cover:
            group.runs[-1][1] = stop + 1
        else:
            group.runs.append([stop, stop + 1])
        last_cover = reason

    line_of = _LineFormat(red, reset)

    def entry_lines(key: str, group: _Group, by_reason: bool) -> None:
        """The lines of a group's entries: lost, and hidden by `key` (`by_reason`) or not
        hidden and below the top directory `key`. What lies below a directory is in its
        group too, so the collapsed directories of a group are found while its own entries
        are listed (as `_Collapser.listed` does, written out here: this runs per entry)."""
        lines = chunks.lines
        waiting: list[tuple[int, int]] = []  # slices of the collapsed directories
        for first, end in group.runs:
            # A top directory's run is its lost entries, with kept or hidden ones between
            # them (at kept indices); a cover's run is its hidden entries, with others between.
            stretches = [(first, end)] if by_reason else _between(kept, first, end)
            for stretch_first, stretch_end in stretches:
                if full and not by_reason:
                    for chunk_first in range(stretch_first, stretch_end, _Chunks.SIZE):
                        chunk_end = min(chunk_first + _Chunks.SIZE, stretch_end)
                        lines.extend(line_of.plain(entries[chunk_first:chunk_end]))
                        if len(lines) >= _Chunks.SIZE:
                            chunks.flush()
                    continue
                index = stretch_first
                while index < stretch_end:
                    path, kind, size_of, status, reason = entries[index]
                    if by_reason and (status != "lost" or reason != key):
                        index += 1
                        continue
                    below = None
                    if not full:
                        while waiting and waiting[0][1] <= index:
                            heappop(waiting)
                        if waiting and waiting[0][0] <= index:
                            index = waiting[0][1]  # past what lies below a collapsed directory
                            continue
                        if kind == "dir" or kind == "subvolume":
                            below = collapser.below(index)
                            if below is not None:
                                heappush(waiting, (below[0], below[1]))
                    if below is None:
                        lines.append(line_of.one(path, kind, size_of))
                    else:
                        first_below, end_below, inner = below
                        count = end_below - first_below + 1
                        lines.append(line_of.collapsed(path, kind, size_of + inner, count))
                    if len(lines) >= _Chunks.SIZE:
                        chunks.flush()
                    index += 1

    deep_lines: dict[str, list[str]] = {}  # group (top directory, or cover) -> lines
    deep_counts: dict[str, tuple[int, int]] = {}
    for path, count, size, status, reason in report.deeper:
        if status != "lost":
            continue
        key = reason or _top(path)
        if reason:
            hidden_total += size
            covered.setdefault(key, _Group())
        else:
            total += size
            groups.setdefault(key, _Group())
        deep_lines.setdefault(key, []).append(_deeper_line(path, count, size, red, reset))
        before = deep_counts.get(key, (0, 0))
        deep_counts[key] = (before[0] + count, before[1] + size)

    def counted(key: str, group: _Group) -> tuple[int, int]:
        extra = deep_counts.get(key, (0, 0))
        return group.count + extra[0], group.size + extra[1]

    chunks = _Chunks(out)
    if groups:
        count = sum(counted(top, group)[0] for top, group in groups.items())
        chunks.line(f"{report.headline}: {_entries(count)}, {format_size(total)}")
        for top, group in groups.items():
            number, size_of = counted(top, group)
            head = f"{quote_path(top)}  ({_entries(number)}, {format_size(size_of)}"
            first = group.runs[0][0] if group.runs else -1
            if (
                not full
                and first >= 0
                and entries[first][0] == top
                and collapser.below(first) is not None
            ):
                chunks.line(f"{red}{head}, all lost){reset}")
                continue
            chunks.line(f"{head})")
            entry_lines(top, group, False)
            for line in deep_lines.get(top, []):
                chunks.line(line)
    if covered:
        if groups:
            chunks.line("")
        count = sum(counted(reason, group)[0] for reason, group in covered.items())
        chunks.line(f"{report.hidden_headline}: {_entries(count)}, {format_size(hidden_total)}")
        for reason, group in covered.items():
            number, size_of = counted(reason, group)
            chunks.line(f"{printable(reason)}  ({_entries(number)}, {format_size(size_of)})")
            entry_lines(reason, group, True)
            for line in deep_lines.get(reason, []):
                chunks.line(line)
    if not groups and not covered:
        chunks.line(f"{report.nothing_lost}.")
    if all_entries:
        # Every entry that is not lost has a kept index: the lost ones are not looked at.
        counts = Counter(map(_status_of_entry, map(entries.__getitem__, kept)))
        for status in STATUSES[1:]:
            if counts[status]:
                colour, plain = (green, reset) if status == "persisted" else ("", "")
                chunks.line("")
                chunks.line(f"{status.capitalize()} ({counts[status]}):")
                for path, kind, _size, entry_status, reason in map(entries.__getitem__, kept):
                    if entry_status == status:
                        chunks.line(
                            f"  {kind:<9} {colour}{quote_path(path)}{plain}  ({printable(reason)})"
                        )
            for path, count, size, deep_status, reason in report.deeper:
                if deep_status == status:
                    chunks.line(
                        f"  {_entries(count)} ({format_size(size)}) deeper than "
                        f"{LISTED_PATH_MAX} bytes below {quote_path(path)}  ({printable(reason)})"
                    )
    for problem in report.problems:
        chunks.line(f"warning: {printable(problem)}")
    if not report.complete:
        chunks.line("warning: the audit is incomplete (see above): more may be lost")
    chunks.line("")
    chunks.line(", ".join(f"{status} {report.summary[status]}" for status in STATUSES))
    chunks.flush()


METRICS = (
    (
        "blankslate_lost_entries",
        "Entries the audited root holds that nothing keeps: lost at the next boot.",
    ),
    ("blankslate_lost_bytes", "Bytes of the lost entries (file sizes and symlink target lengths)."),
    ("blankslate_audit_timestamp_seconds", "When the audit ran, in seconds since the Unix epoch."),
    (
        "blankslate_hidden_entries",
        "Lost entries hidden beneath a mount (a persisted path's bind mount, a mountpoint).",
    ),
    (
        "blankslate_hidden_bytes",
        "Bytes of the hidden entries (counted in blankslate_lost_bytes too).",
    ),
    (
        "blankslate_audit_complete",
        "1 when the audit read every entry; 0 when it was cut short or is still running.",
    ),
)


def _metric(name: str, help_text: str, value: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]


def render_metrics(report: Report, now: float) -> str:
    """The node-exporter textfile (Prometheus text format, version 0.0.4): six gauges, from
    the sum of every size and a look at each entry that is not plainly lost."""
    entries = report.entries
    # Every entry counts as lost but those at kept indices, which are looked at one by one.
    lost_bytes = sum(map(_size_of_entry, entries))
    hidden_count = hidden_bytes = 0
    for _path, _kind, size, status, reason in map(entries.__getitem__, kept_indices(entries)):
        if status != "lost":
            lost_bytes -= size
        elif reason.startswith(HIDDEN_PREFIX):
            hidden_count += 1
            hidden_bytes += size
    for _path, count, size, status, reason in report.deeper:
        if status == "lost":
            lost_bytes += size
            if reason:
                hidden_count += count
                hidden_bytes += size
    values = (
        str(report.lost),
        str(lost_bytes),
        f"{now:.3f}",
        str(hidden_count),
        str(hidden_bytes),
        "1" if report.complete else "0",
    )
    lines: list[str] = []
    for (name, help_text), value in zip(METRICS, values, strict=True):
        lines += _metric(name, help_text, value)
    return "\n".join(lines) + "\n"


def render_started_metrics(now: float) -> str:
    """The textfile an audit writes before it starts: complete 0, until the finished audit
    replaces it. An audit that is killed (out of memory, out of time) leaves it so."""
    name, help_text = METRICS[-1]
    lines = _metric(METRICS[2][0], METRICS[2][1], f"{now:.3f}") + _metric(name, help_text, "0")
    return "\n".join(lines) + "\n"


TERMINATED = (
    "blankslate_audit_terminated",
    "1 when SIGTERM (the unit's TimeoutStartSec=, or a stop) ended the audit before it finished.",
)


def render_terminated_metrics(started: float) -> str:
    """The textfile of an audit that SIGTERM ended: its start, complete 0 and terminated 1.
    The next audit that finishes replaces it (without the terminated gauge)."""
    return render_started_metrics(started) + "\n".join(_metric(*TERMINATED, "1")) + "\n"


def _encode(text: str) -> str:
    """A JSON (and YAML double-quoted) string; undecodable bytes become \\udcXX escapes."""
    return encode_basestring_ascii(text)


_SURROGATE_PAIR = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _yaml_string(text: str) -> str:
    """A YAML double-quoted string that every YAML reader reads back as `text`: escaped ASCII
    as in JSON, except that a character beyond U+FFFF is one \\UXXXXXXXX escape (YAML's \\u
    escapes are 16-bit: a JSON surrogate pair reads back as two lone surrogates) and DEL,
    which YAML does not allow unescaped, is \\x7f. Only a name that is not UTF-8 holds lone
    surrogates (`_undecodable` writes those as U+FFFD first)."""
    encoded = encode_basestring_ascii(text)
    if "\\ud" in encoded:
        encoded = _SURROGATE_PAIR.sub(_astral, encoded)
    if "\x7f" in encoded:
        encoded = encoded.replace("\x7f", "\\x7f")
    return encoded


def _astral(match: re.Match[str]) -> str:
    high, low = int(match.group(1), 16), int(match.group(2), 16)
    return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"


def _undecodable(path: str) -> tuple[str, str] | None:
    """For a name that is not UTF-8 (its undecodable bytes are lone surrogates here, as
    `os.fsdecode` gives them): the name with U+FFFD for each such byte, and the exact bytes in
    base64. None for a name that is UTF-8."""
    try:
        path.encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte: not from the kernel
        raw = path.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace"), base64.b64encode(raw).decode("ascii")


def _json_path(path: str, encoded: str) -> str:
    """The value of "path", followed by a "pathBytes" key when the name is not UTF-8."""
    found = _undecodable(path)
    if found is None:
        return encoded
    return f'{encode_basestring_ascii(found[0])}, "pathBytes": "{found[1]}"'


_HIDDEN = ', "hidden": true'

# One listed entry of a document: the entry, and for a collapsed directory (entries, bytes)
# of what lies below it, not listed.
Row = tuple[EntryTuple, tuple[int, int] | None]


class PlainRun(NamedTuple):
    """Entries a full document lists one by one that are all lost and not hidden, so that
    their lines differ only in path, type and size: a writer makes them a run at a time."""

    entries: Sequence[EntryTuple]


def _each_row(rows: Iterable[Row | PlainRun]) -> Iterator[Row]:
    """`rows` one entry at a time, a plain run's entries as rows of their own."""
    for row in rows:
        if isinstance(row, PlainRun):
            for entry in row.entries:
                yield entry, None
        else:
            yield row


@dataclass(frozen=True)
class Heading:
    """What a document says before its entries: known before the first entry is written."""

    method: str
    old_root: str | None
    complete: bool
    summary: Mapping[str, int]

    @classmethod
    def of(cls, report: Report) -> Heading:
        return cls(report.method, report.old_root, report.complete, report.summary)


def listed_rows(report: Report, *, full: bool = False) -> Iterator[Row | PlainRun]:
    """The entries a document lists, in path order, one at a time: every entry when `full`
    (the plainly lost ones as runs of at most `_Chunks.SIZE`); else what lies below a
    directory whose every entry is lost is left out, and the directory carries its count and
    size."""
    entries = report.entries
    if full:
        start = 0
        for stop in chain(kept_indices(entries), (len(entries),)):
            for first in range(start, stop, _Chunks.SIZE):
                yield PlainRun(entries[first : min(first + _Chunks.SIZE, stop)])
            if stop < len(entries):
                yield entries[stop], None
            start = stop + 1
        return
    for index, below in _Collapser(entries).listed_all():
        yield entries[index], None if below is None else (below[1] - below[0], below[2])


def render_json(report: Report, *, full: bool = False) -> str:
    """`write_json` into a string."""
    out = io.StringIO()
    write_json(report, out, full=full)
    return out.getvalue()


def write_json(report: Report, out: TextIO, *, full: bool = False) -> None:
    """The version 2 document (`write_json_document`) of `report`, written to `out` entry by
    entry. Unless `full`, a directory whose every entry below is lost (hidden by the same
    mount) is listed alone, with `"collapsed": {"entries": N, "size": BYTES}` for what lies
    below it."""
    write_json_document(out, Heading.of(report), listed_rows(report, full=full), report.deeper)


def write_json_document(
    out: TextIO, heading: Heading, rows: Iterable[Row | PlainRun], deeper: Iterable[DeeperTuple]
) -> None:
    """The version 2 document, one entry per line, each written as it comes from `rows`
    (nothing is kept: memory does not grow with the entries); strings are escaped ASCII. A
    lost entry hidden beneath a mount has `"hidden": true` after its reason.

    A name that is not UTF-8 has its bytes in "pathBytes" (base64), and in "path" a U+FFFD
    for each byte that is not UTF-8. Only a name whose escaped form holds a surrogate ("\\ud")
    is looked at twice."""
    encode = encode_basestring_ascii  # the C encoder, called directly: this runs per entry
    summary = ", ".join(f'"{status}": {heading.summary[status]}' for status in STATUSES)
    old_root = "" if heading.old_root is None else f' "oldRoot": {encode(heading.old_root)},'
    complete = "true" if heading.complete else "false"
    out.write(
        f'{{"version": 2, "method": {encode(heading.method)},{old_root} '
        f'"complete": {complete}, "summary": {{{summary}}},\n'
        f'"entries": '
    )
    parts: list[str] = []
    separator = "[\n  "
    for row in rows:
        if isinstance(row, PlainRun):
            if not row.entries:
                continue
            plain = _json_plain(row.entries)
            if plain is not None:
                parts.append(separator + plain)
                separator = ",\n  "
                out.write("".join(parts))
                parts.clear()
                continue
        for (path, kind, size, status, reason), below in _each_row((row,)):
            p = encode(path)
            if "\\ud" in p:
                p = _json_path(path, p)
            parts.append(
                f'{separator}{{"path": {p}, "type": "{kind}", "size": {size}, '
                f'"status": "{status}", "reason": {encode(reason)}'
                f"{_HIDDEN if reason and status == 'lost' else ''}"
            )
            if below is not None:
                parts.append(f', "collapsed": {{"entries": {below[0]}, "size": {below[1]}}}')
            parts.append("}")
            separator = ",\n  "
            if len(parts) >= _CHUNK:
                out.write("".join(parts))
                parts.clear()
    parts.append("[]" if separator.startswith("[") else "\n]")
    out.write("".join(parts))
    listed = ",\n  ".join(_json_deeper(item) for item in deeper)
    out.write(f',\n"deeper": {f"[{chr(10)}  {listed}{chr(10)}]" if listed else "[]"}}}\n')


_CHUNK = 8192  # pieces of a document written at once


def _json_plain(entries: Sequence[EntryTuple]) -> str | None:
    """The lines of a plain run, joined (a comprehension of f-strings: faster than
    str.format or a loop); None when a name in it is not UTF-8 or beyond U+FFFF (its escaped
    form holds "\\ud"): those go one by one."""
    encode = encode_basestring_ascii
    text = ",\n  ".join(
        [
            f'{{"path": {encode(path)}, "type": "{kind}", "size": {size}, '
            '"status": "lost", "reason": ""}'
            for path, kind, size, _status, _reason in entries
        ]
    )
    return None if "\\ud" in text else text


def _json_deeper(item: DeeperTuple) -> str:
    path, count, size, status, reason = item
    encoded = encode_basestring_ascii(path)
    if "\\ud" in encoded:
        encoded = _json_path(path, encoded)
    hidden = _HIDDEN if reason and status == "lost" else ""
    return (
        f'{{"path": {encoded}, "entries": {count}, "size": {size}, "status": "{status}", '
        f'"reason": {encode_basestring_ascii(reason)}{hidden}}}'
    )


def _yaml_path(path: str, indent: str) -> list[str]:
    undecodable = _undecodable(path)
    if undecodable is None:
        return [f"{indent}- path: {_yaml_string(path)}"]
    return [
        f"{indent}- path: {_yaml_string(undecodable[0])}",
        f'{indent}  pathBytes: "{undecodable[1]}"',
    ]


def render_yaml(report: Report, *, full: bool = False) -> str:
    """`write_yaml` into a string."""
    out = io.StringIO()
    write_yaml(report, out, full=full)
    return out.getvalue()


def write_yaml(report: Report, out: TextIO, *, full: bool = False) -> None:
    """The same document as `write_json`'s, as YAML, written to `out` entry by entry."""
    write_yaml_document(out, Heading.of(report), listed_rows(report, full=full), report.deeper)


def write_yaml_document(
    out: TextIO, heading: Heading, rows: Iterable[Row | PlainRun], deeper: Iterable[DeeperTuple]
) -> None:
    """The same document as `write_json_document`'s, as YAML, each entry written as it comes;
    strings are double-quoted with escapes every YAML reader reads back exactly
    (`_yaml_string`)."""
    chunks = _Chunks(out)
    chunks.line("version: 2")
    chunks.line(f"method: {heading.method}")
    if heading.old_root is not None:
        chunks.line(f"oldRoot: {_yaml_string(heading.old_root)}")
    chunks.line(f"complete: {'true' if heading.complete else 'false'}")
    chunks.line("summary:")
    for status in STATUSES:
        chunks.line(f"  {status}: {heading.summary[status]}")
    line = chunks.line
    encode = encode_basestring_ascii  # the C encoder, called directly: this runs per entry
    started = False
    for (path, kind, size, status, reason), below in _each_row(rows):
        if not started:
            line("entries:")
            started = True
        # As JSON escapes them, unless a name holds what `_yaml_string` and `_yaml_path`
        # write otherwise: a surrogate ("\\ud": not UTF-8, or beyond U+FFFF) or DEL.
        head = f"  - path: {encode(path)}"
        if "\\ud" in head or "\x7f" in head:
            head = "\n".join(_yaml_path(path, "  "))
        said = encode(reason)
        if "\\ud" in said or "\x7f" in said:
            said = _yaml_string(reason)
        # One piece per entry, its lines joined here: the writer's lines are joined alike.
        line(
            f"{head}\n    type: {kind}\n    size: {size}\n    status: {status}"
            f"\n    reason: {said}"
            + ("\n    hidden: true" if status == "lost" and reason else "")
            + (
                ""
                if below is None
                else f"\n    collapsed:\n      entries: {below[0]}\n      size: {below[1]}"
            )
        )
    if not started:
        line("entries: []")
    started = False
    for path, count, size, status, reason in deeper:
        if not started:
            line("deeper:")
            started = True
        for text in _yaml_path(path, "  "):
            line(text)
        line(f"    entries: {count}")
        line(f"    size: {size}")
        line(f"    status: {status}")
        line(f"    reason: {_yaml_string(reason)}")
        if status == "lost" and reason:
            line("    hidden: true")
    if not started:
        line("deeper: []")
    chunks.flush()
