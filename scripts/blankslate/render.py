"""The renderings of a `blankslate diff` report: text for people; JSON or YAML (a stable
contract, version 1) for programs.

Paths are `str` decoded with surrogateescape (`os.fsdecode`), so any byte string survives; the
renderers escape what is not printable UTF-8.
"""

from __future__ import annotations

import base64
from json.encoder import encode_basestring_ascii

from blankslate.classify import STATUSES, Entry, Report
from blankslate.plan import format_size
from blankslate.process import quote_path


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
