"""The renderings of a `blankslate diff` report: text for people; JSON or YAML (a stable
contract, version 2) for programs.

Paths are `str` decoded with surrogateescape (`os.fsdecode`), so any byte string survives; the
renderers escape what is not printable UTF-8.
"""

from __future__ import annotations

import base64
import re
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from json.encoder import encode_basestring_ascii
from typing import TextIO

from blankslate.bounds import LISTED_PATH_MAX
from blankslate.classify import STATUSES, DeeperTuple, Entry, EntryTuple, Report, is_hidden
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


def collapsed_directories(entries: Sequence[EntryTuple]) -> dict[int, tuple[int, int, int]]:
    """The lost directories to show as one line: index -> (first, end, size) of what lies
    below it, all of it lost. Only the outermost such directory of a tree is kept.

    `entries` are sorted by path, so what lies below a directory is one slice of them, from
    its path + "/" to its path + "0" ("0" follows "/"), though not always right after it
    ("/a.b" sorts between "/a" and "/a/b"). A running count of the entries that are not lost
    tells in one subtraction whether a slice is all lost.
    """
    paths = [entry[0] for entry in entries]
    # kept_before[i]: how many of entries[:i] are not lost, or lost hidden beneath a mount
    # (those have a section of their own)
    kept_before = list(
        accumulate((entry[3] != "lost" or entry[4] != "" for entry in entries), initial=0)
    )
    candidates = [
        index
        for index, entry in enumerate(entries)
        if entry[3] == "lost" and (entry[1] == "dir" or entry[1] == "subvolume")
    ]
    collapsed: dict[int, tuple[int, int, int]] = {}
    hidden = bytearray(len(entries))  # below a collapsed directory
    for index in candidates:
        if hidden[index]:
            continue
        path = paths[index]
        first = bisect_left(paths, path + "/", index + 1)
        end = bisect_left(paths, path + "0", first)
        reason = entries[index][4]
        if reason:  # hidden: collapsed when all below is hidden by the same mount
            alike = all(entry[3] == "lost" and entry[4] == reason for entry in entries[first:end])
        else:
            alike = kept_before[end] == kept_before[first]
        if end > first and alike:
            collapsed[index] = (first, end, sum(entry[2] for entry in entries[first:end]))
            hidden[first:end] = b"\x01" * (end - first)
    return collapsed


def render_text(
    report: Report, *, full: bool = False, all_entries: bool = False, style: Style = PLAIN
) -> str:
    """Lost entries by top directory, then (`all_entries`) the other statuses, then counts.

    Unless `full`, a directory whose every entry is lost is one line with their count and
    size, instead of one line per entry."""
    entries = report.entries
    collapsed = {} if full else collapsed_directories(entries)
    hidden = bytearray(len(entries))
    for first, end, _size in collapsed.values():
        hidden[first:end] = b"\x01" * (end - first)
    red, green, reset = style.lost, style.persisted, style.reset
    groups: dict[str, list[int]] = {}  # top directory -> indices of its lost entries
    covered: dict[str, list[int]] = {}  # what hides them -> indices of the hidden entries
    total = hidden_total = 0
    for index, (path, _kind, size, status, reason) in enumerate(entries):
        if status != "lost":
            continue
        if reason:  # only a hidden entry is lost with a reason
            hidden_total += size
            covered.setdefault(reason, []).append(index)
            continue
        total += size
        end = path.find("/", 1)
        top = path if end < 0 else path[:end]
        members = groups.get(top)
        if members is None:
            groups[top] = [index]
        else:
            members.append(index)

    def entry_lines(members: list[int]) -> list[str]:
        listed: list[str] = []
        for index in members:
            if hidden[index]:
                continue
            path, kind, size_of, _status, _reason = entries[index]
            below = collapsed.get(index)
            if below is None:
                listed.append(
                    f"  {kind:<9} {format_size(size_of):>10}  {red}{quote_path(path)}{reset}"
                )
            else:
                first, end, inner = below
                listed.append(
                    f"  {kind:<9} {format_size(size_of + inner):>10}  "
                    f"{red}{quote_path(path)}/{reset}  (all {end - first + 1} entries lost)"
                )
        return listed

    lines: list[str] = []
    deep_lines: dict[str, list[str]] = {}  # group (top directory, or cover) -> lines
    deep_counts: dict[str, tuple[int, int]] = {}
    for path, count, size, status, reason in report.deeper:
        if status != "lost":
            continue
        group = reason or _top(path)
        if reason:
            hidden_total += size
            covered.setdefault(reason, [])
        else:
            total += size
            groups.setdefault(group, [])
        deep_lines.setdefault(group, []).append(_deeper_line(path, count, size, red, reset))
        before = deep_counts.get(group, (0, 0))
        deep_counts[group] = (before[0] + count, before[1] + size)

    def counted(group: str, members: list[int]) -> tuple[int, int]:
        extra = deep_counts.get(group, (0, 0))
        return len(members) + extra[0], sum(entries[i][2] for i in members) + extra[1]

    if groups:
        count = sum(counted(top, members)[0] for top, members in groups.items())
        lines.append(f"{report.headline}: {_entries(count)}, {format_size(total)}")
        for top, members in groups.items():
            number, size_of = counted(top, members)
            head = f"{quote_path(top)}  ({_entries(number)}, {format_size(size_of)}"
            if members and entries[members[0]][0] == top and members[0] in collapsed:
                lines.append(f"{red}{head}, all lost){reset}")
                continue
            lines.append(f"{head})")
            lines += entry_lines(members)
            lines += deep_lines.get(top, [])
    if covered:
        if groups:
            lines.append("")
        count = sum(counted(reason, members)[0] for reason, members in covered.items())
        lines.append(f"{report.hidden_headline}: {_entries(count)}, {format_size(hidden_total)}")
        for reason, members in covered.items():
            number, size_of = counted(reason, members)
            lines.append(f"{printable(reason)}  ({_entries(number)}, {format_size(size_of)})")
            lines += entry_lines(members)
            lines += deep_lines.get(reason, [])
    if not groups and not covered:
        lines.append(f"{report.nothing_lost}.")
    if all_entries:
        for status in STATUSES[1:]:
            listed = [Entry(*entry) for entry in entries if entry[3] == status]
            if listed:
                colour, plain = (green, reset) if status == "persisted" else ("", "")
                lines.append("")
                lines.append(f"{status.capitalize()} ({len(listed)}):")
                for entry in listed:
                    lines.append(
                        f"  {entry.kind:<9} {colour}{quote_path(entry.path)}{plain}  "
                        f"({printable(entry.reason)})"
                    )
            for path, count, size, deep_status, reason in report.deeper:
                if deep_status == status:
                    lines.append(
                        f"  {_entries(count)} ({format_size(size)}) deeper than "
                        f"{LISTED_PATH_MAX} bytes below {quote_path(path)}  ({printable(reason)})"
                    )
    for problem in report.problems:
        lines.append(f"warning: {printable(problem)}")
    if not report.complete:
        lines.append("warning: the audit is incomplete (see above): more may be lost")
    lines.append("")
    lines.append(", ".join(f"{status} {report.summary[status]}" for status in STATUSES))
    return "\n".join(lines) + "\n"


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
    """The node-exporter textfile (Prometheus text format, version 0.0.4): six gauges."""
    lost = [entry[2] for entry in report.entries if entry[3] == "lost"]
    hidden = [entry[2] for entry in report.entries if is_hidden(entry)]
    for _path, _count, size, status, reason in report.deeper:
        if status == "lost":
            lost.append(size)
            if reason:
                hidden.append(size)
    hidden_count = len([e for e in report.entries if is_hidden(e)]) + sum(
        count for _p, count, _s, status, reason in report.deeper if status == "lost" and reason
    )
    values = (
        str(report.lost),
        str(sum(lost)),
        f"{now:.3f}",
        str(hidden_count),
        str(sum(hidden)),
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


def _listed(report: Report, full: bool) -> tuple[list[int], dict[int, tuple[int, int, int]]]:
    """The indices of the entries a document lists, and the collapsed directories among them
    (index -> first, end, size of what lies below, not listed). `full`: every entry."""
    entries = report.entries
    if full:
        return list(range(len(entries))), {}
    collapsed = collapsed_directories(entries)
    hidden = bytearray(len(entries))
    for first, end, _size in collapsed.values():
        hidden[first:end] = b"\x01" * (end - first)
    return [index for index in range(len(entries)) if not hidden[index]], collapsed


def render_json(report: Report, *, full: bool = False) -> str:
    """The version 2 document, one entry per line; strings are escaped ASCII. A lost entry
    hidden beneath a mount has `"hidden": true` after its reason. Unless `full`, a directory
    whose every entry below is lost (hidden by the same mount) is listed alone, with
    `"collapsed": {"entries": N, "size": BYTES}` for what lies below it.

    A name that is not UTF-8 has its bytes in "pathBytes" (base64), and in "path" a U+FFFD
    for each byte that is not UTF-8. Only a name whose escaped form holds a surrogate ("\\ud")
    is looked at twice."""
    summary = ", ".join(f'"{status}": {report.summary[status]}' for status in STATUSES)
    encode = encode_basestring_ascii  # the C encoder, called directly: this runs per entry
    entries = report.entries
    listed, collapsed = _listed(report, full)
    rows = []
    for index in listed:
        path, kind, size, status, reason = entries[index]
        p = encode(path)
        if "\\ud" in p:
            p = _json_path(path, p)
        row = (
            f'{{"path": {p}, "type": "{kind}", "size": {size}, '
            f'"status": "{status}", "reason": {encode(reason)}'
            f"{_HIDDEN if reason and status == 'lost' else ''}"
        )
        below = collapsed.get(index)
        if below is not None:
            row += f', "collapsed": {{"entries": {below[1] - below[0]}, "size": {below[2]}}}'
        rows.append(row + "}")
    body = ",\n  ".join(rows)
    listing = f"[\n  {body}\n]" if rows else "[]"
    deeper = ",\n  ".join(_json_deeper(item) for item in report.deeper)
    old_root = "" if report.old_root is None else f' "oldRoot": {encode(report.old_root)},'
    complete = "true" if report.complete else "false"
    return (
        f'{{"version": 2, "method": {encode(report.method)},{old_root} '
        f'"complete": {complete}, "summary": {{{summary}}},\n'
        f'"entries": {listing},\n'
        f'"deeper": {f"[{chr(10)}  {deeper}{chr(10)}]" if deeper else "[]"}}}\n'
    )


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
    """The same document as YAML; strings are double-quoted with escapes every YAML reader
    reads back exactly (`_yaml_string`)."""
    lines = ["version: 2", f"method: {report.method}"]
    if report.old_root is not None:
        lines.append(f"oldRoot: {_yaml_string(report.old_root)}")
    lines.append(f"complete: {'true' if report.complete else 'false'}")
    lines.append("summary:")
    lines += [f"  {status}: {report.summary[status]}" for status in STATUSES]
    listed, collapsed = _listed(report, full)
    if not listed:
        lines.append("entries: []")
    else:
        lines.append("entries:")
        entries = report.entries
        for index in listed:
            path, kind, size, status, reason = entries[index]
            lines += _yaml_path(path, "  ")
            lines += [
                f"    type: {kind}",
                f"    size: {size}",
                f"    status: {status}",
                f"    reason: {_yaml_string(reason)}",
            ]
            if status == "lost" and reason:
                lines.append("    hidden: true")
            below = collapsed.get(index)
            if below is not None:
                lines += [
                    "    collapsed:",
                    f"      entries: {below[1] - below[0]}",
                    f"      size: {below[2]}",
                ]
    if not report.deeper:
        lines.append("deeper: []")
    else:
        lines.append("deeper:")
        for path, count, size, status, reason in report.deeper:
            lines += _yaml_path(path, "  ")
            lines += [
                f"    entries: {count}",
                f"    size: {size}",
                f"    status: {status}",
                f"    reason: {_yaml_string(reason)}",
            ]
            if status == "lost" and reason:
                lines.append("    hidden: true")
    return "\n".join(lines) + "\n"
