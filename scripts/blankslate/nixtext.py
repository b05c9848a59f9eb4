"""JSON data as Nix expression text: the value goes in, text that evaluates to it comes out.

Pure and total on JSON data (strings, integers, booleans, null, lists, objects): every string
stays data (`"`, `\\` and every `$` are escaped, so no `${` can start an interpolation), every
attribute name that is not a plain identifier is quoted, negative integers are parenthesised
(a list item cannot start with `-`). What Nix cannot hold (a NUL byte, a lone surrogate, an
integer beyond 64 bits, a float) is one BlankslateError. Two spaces per level, one item or
attribute per line, as nixfmt writes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from blankslate.errors import BlankslateError

NixValue = str | int | bool | None | list["NixValue"] | dict[str, "NixValue"]
# How an object's keys are printed: (its path of keys from the top, the object) -> the keys.
KeyOrder = Callable[[tuple[str, ...], dict[str, NixValue]], Sequence[str]]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*\Z")
_KEYWORDS = frozenset({"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"})
_ESCAPES = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def string(text: str) -> str:
    """A double-quoted Nix string that evaluates to `text`."""
    if "\0" in text:
        raise BlankslateError("a Nix string cannot hold a NUL byte")
    if any("\ud800" <= char <= "\udfff" for char in text):
        raise BlankslateError(f"a Nix string cannot hold a lone surrogate: {text[:40]!r}")
    return '"' + "".join(_ESCAPES.get(char, char) for char in text) + '"'


def name(key: str) -> str:
    """An attribute name: bare when it is an identifier (and no keyword), else quoted."""
    if _IDENTIFIER.match(key) and key not in _KEYWORDS:
        return key
    return string(key)


def integer(value: int) -> str:
    """A Nix integer (64 bits, signed); a negative one in parentheses."""
    if not _INT_MIN <= value <= _INT_MAX:
        raise BlankslateError(f"{str(value)[:40]} is beyond a Nix integer (64 bits)")
    if value == _INT_MIN:
        return f"({_INT_MIN + 1} - 1)"  # 9223372036854775808 itself does not parse
    return f"({value})" if value < 0 else str(value)


def _as_given(path: tuple[str, ...], value: dict[str, NixValue]) -> Sequence[str]:
    return list(value)


def render(value: object, order: KeyOrder = _as_given) -> str:
    """Nix text for JSON data; `order` chooses each object's key order (default: as given)."""
    return _render(value, (), 0, order)


def _render(value: object, path: tuple[str, ...], indent: int, order: KeyOrder) -> str:
    pad, end = "  " * (indent + 1), "  " * indent
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return integer(value)
    if isinstance(value, str):
        return string(value)
    if isinstance(value, list):
        if not value:
            return "[ ]"
        items = "".join(f"{pad}{_render(item, path, indent + 1, order)}\n" for item in value)
        return f"[\n{items}{end}]"
    if isinstance(value, dict):
        if not value:
            return "{ }"
        keys = list(order(path, value))
        if sorted(keys) != sorted(value):
            raise ValueError(f"key order {keys!r} is not a permutation of the keys")
        body = "".join(
            f"{pad}{name(key)} = {_render(value[key], (*path, key), indent + 1, order)};\n"
            for key in keys
        )
        return f"{{\n{body}{end}}}"
    raise BlankslateError(f"{type(value).__name__} {str(value)[:40]} has no Nix text")
