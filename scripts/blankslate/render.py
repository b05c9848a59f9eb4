"""The renderings of a `blankslate diff` report: text for people; JSON or YAML (a stable
contract, version 1) for programs.

Paths are `str` decoded with surrogateescape (`os.fsdecode`), so any byte string survives; the
renderers escape what is not printable UTF-8.
"""

from __future__ import annotations

import base64
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from json.encoder import encode_basestring_ascii
from typing import TextIO

from blankslate.classify import STATUSES, Entry, EntryTuple, Report, is_hidden
from blankslate.display import format_size, quote_path


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
    if groups:
        count = sum(len(members) for members in groups.values())
        lines.append(f"{report.headline}: {_entries(count)}, {format_size(total)}")
        for top, members in groups.items():
            group_size = format_size(sum(entries[index][2] for index in members))
            head = f"{quote_path(top)}  ({_entries(len(members))}, {group_size}"
            if entries[members[0]][0] == top and members[0] in collapsed:
                lines.append(f"{red}{head}, all lost){reset}")
                continue
            lines.append(f"{head})")
            lines += entry_lines(members)
    if covered:
        if groups:
            lines.append("")
        count = sum(len(members) for members in covered.values())
        lines.append(f"{report.hidden_headline}: {_entries(count)}, {format_size(hidden_total)}")
        for reason, members in covered.items():
            group_size = format_size(sum(entries[index][2] for index in members))
            lines.append(f"{reason}  ({_entries(len(members))}, {group_size})")
            lines += entry_lines(members)
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
                        f"({entry.reason})"
                    )
    for problem in report.problems:
        lines.append(f"warning: {problem}")
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
)


def render_metrics(report: Report, now: float) -> str:
    """The node-exporter textfile (Prometheus text format, version 0.0.4): five gauges."""
    lost_bytes = sum(entry[2] for entry in report.entries if entry[3] == "lost")
    hidden = [entry[2] for entry in report.entries if is_hidden(entry)]
    values = (str(report.lost), str(lost_bytes), f"{now:.3f}", str(len(hidden)), str(sum(hidden)))
    lines: list[str] = []
    for (name, help_text), value in zip(METRICS, values, strict=True):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
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


_HIDDEN = ', "hidden": true'


def render_json(report: Report) -> str:
    """The version 1 document, one entry per line; strings are escaped ASCII. A lost entry
    hidden beneath a mount has `"hidden": true` after its reason.

    A name that is not UTF-8 has its bytes in "pathBytes" (base64), and in "path" a U+FFFD
    for each byte that is not UTF-8. Only a name whose escaped form holds a surrogate ("\\ud")
    is looked at twice."""
    summary = ", ".join(f'"{status}": {report.summary[status]}' for status in STATUSES)
    encode = encode_basestring_ascii  # the C encoder, called directly: this runs per entry
    rows = [
        f'{{"path": {p}, "type": "{kind}", "size": {size}, '
        f'"status": "{status}", "reason": {encode(reason)}'
        f"{_HIDDEN if reason and status == 'lost' else ''}}}"
        for path, kind, size, status, reason in report.entries
        # always true: `p` is the escaped path, with "pathBytes" after it when needed
        if "\\ud" not in (p := encode(path)) or (p := _json_path(path, p))
    ]
    body = ",\n  ".join(rows)
    entries = f"[\n  {body}\n]" if rows else "[]"
    old_root = "" if report.old_root is None else f' "oldRoot": {encode(report.old_root)},'
    return (
        f'{{"version": 1, "method": {encode(report.method)},{old_root} "summary": {{{summary}}},\n'
        f'"entries": {entries}}}\n'
    )


def render_yaml(report: Report) -> str:
    """The same document as YAML; strings are double-quoted with JSON-compatible escapes."""
    lines = ["version: 1", f"method: {report.method}"]
    if report.old_root is not None:
        lines.append(f"oldRoot: {_encode(report.old_root)}")
    lines.append("summary:")
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
            if status == "lost" and reason:
                lines.append("    hidden: true")
    return "\n".join(lines) + "\n"
