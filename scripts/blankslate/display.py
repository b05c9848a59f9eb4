"""How names and sizes are shown to people, in every command's output.

Plain functions on the standard library only: `diff`'s fast start imports this, and `ui`
(which loads rich, a tenth of a second) is for interactive steps, not for a monitoring run.
"""

from __future__ import annotations

_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "'": "\\'", "\\": "\\\\"}


def quote_path(path: str) -> str:
    """`path` as is when it is printable UTF-8, else in bash's $'...' quoting."""
    if path.isprintable():
        return path
    out: list[str] = []
    for char in path:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif "\udc80" <= char <= "\udcff":  # an undecodable byte (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char.isprintable():
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
    return "$'" + "".join(out) + "'"


def printable(text: str) -> str:
    """`text` with every character a terminal would act on (escape sequences, carriage
    returns, newlines, other controls, undecodable bytes) written out as \\xNN or \\n: for a
    message that may hold a name quoted already, or not."""
    if text.isprintable():
        return text
    out: list[str] = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif "\udc80" <= char <= "\udcff":
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def format_size(size: int) -> str:
    """Bytes for people, in binary units: 512 -> "512 B", 2048 -> "2.0 KiB"."""
    if size < 1024:
        return f"{size} B"  # most files of a diff: no float, no loop
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
