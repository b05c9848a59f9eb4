"""nixtext, the JSON -> Nix printer: exact text for each kind of value, the escapes, and one
error for what Nix cannot hold. (tests/nix/test_nixtext.py evaluates its output with Nix.)"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blankslate import nixtext
from blankslate.errors import BlankslateError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${x}", '"\\${x}"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("line\nnext\ttab\r", '"line\\nnext\\ttab\\r"'),
        ("$", '"\\$"'),
        ("''${", "\"''\\${\""),
        ("é😀", '"é😀"'),
        ("", '""'),
    ],
)
def test_strings_are_escaped(text: str, expected: str) -> None:
    assert nixtext.string(text) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ESP", "ESP"),
        ("x'-_1", "x'-_1"),
        ("in", '"in"'),
        ("or", '"or"'),
        ("1x", '"1x"'),
        ("safe/persist", '"safe/persist"'),
        ("${x}", '"\\${x}"'),
        ("", '""'),
        ("a.b", '"a.b"'),
    ],
)
def test_attribute_names(key: str, expected: str) -> None:
    assert nixtext.name(key) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        (7, "7"),
        (-5, "(-5)"),
        (2**63 - 1, "9223372036854775807"),
        (-(2**63), "(-9223372036854775807 - 1)"),
    ],
)
def test_integers(value: int, expected: str) -> None:
    assert nixtext.integer(value) == expected


def test_layout_is_two_spaces_per_level() -> None:
    value = {"a": [1, True, None, "s"], "b": {}, "c": [], "in": {"x": False}}
    assert nixtext.render(value) == (
        "{\n"
        "  a = [\n"
        "    1\n"
        "    true\n"
        "    null\n"
        '    "s"\n'
        "  ];\n"
        "  b = { };\n"
        "  c = [ ];\n"
        '  "in" = {\n'
        "    x = false;\n"
        "  };\n"
        "}"
    )


def test_key_order_is_the_callers() -> None:
    seen: list[tuple[str, ...]] = []

    def backwards(path: tuple[str, ...], value: dict[str, Any]) -> list[str]:
        seen.append(path)
        return sorted(value, reverse=True)

    assert nixtext.render({"a": 1, "b": {"c": 2}}, backwards) == (
        "{\n  b = {\n    c = 2;\n  };\n  a = 1;\n}"
    )
    assert seen == [(), ("b",)]
    with pytest.raises(ValueError, match="not a permutation"):
        nixtext.render({"a": 1}, lambda path, value: ["b"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\0b", "NUL byte"),
        (["\ud800"], "lone surrogate"),
        ({"\0": 1}, "NUL byte"),
        (2**63, "beyond a Nix integer"),
        (-(2**63) - 1, "beyond a Nix integer"),
        (1.5, "float 1.5 has no Nix text"),
        ({"a": (1,)}, "tuple"),
    ],
)
def test_what_nix_cannot_hold_is_one_error(value: object, message: str) -> None:
    with pytest.raises(BlankslateError, match=message) as raised:
        nixtext.render(value)
    assert "\n" not in str(raised.value)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=ANY_JSON)
def test_any_json_is_text_or_one_error(value: object) -> None:
    """No JSON value ends in a traceback: text, or a one-line BlankslateError."""
    try:
        text = nixtext.render(value)
    except BlankslateError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(text, str)
        text.encode()  # printable: no lone surrogate reaches stdout
