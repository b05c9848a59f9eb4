"""nixtext, the JSON -> Nix printer `blankslate disko` writes with: for generated JSON data, its
text parses (`nix-instantiate --parse`) and evaluates back (`--eval --strict --json`) to the
same data; a string never becomes code."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blankslate import nixtext

from .conftest import REPO

AWKWARD = [
    "${x}",
    "$${x}",
    "\\${x}",
    "${",
    "$",
    "a$",
    '"',
    "\\",
    "\\\\$",
    "''",
    "''${",
    "''\\n",
    "\n",
    "\r\n",
    "\t",
    "\x01\x1b\x7f",
    "é ü 漢字 😀 \u2028 \ufeff",
    "",
    " ",
    "in",
    "or",
    "rec",
    "true",
    "null",
    "1x",
    "a-b",
    "x'",
    "a.b",
    "/",
    "#",
    "/*",
    "# not a comment",
]
# Every character but NUL (no Nix string holds one) and lone surrogates (no UTF-8 does).
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
) | st.sampled_from(AWKWARD)
# Nix's toJSON prints an attribute set with `outPath` or `__toString` as a string: the value is
# the set all the same, but it does not read back as it went in (no disko key is either).
KEYS = TEXT.filter(lambda key: key not in ("outPath", "__toString"))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), -(2**63) + 1]),
    TEXT,
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=16,
)

ROUND_TRIP = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def nix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nix-instantiate", *args], cwd=REPO, capture_output=True, text=True, check=False
    )


def canonical(value: Any) -> str:
    """JSON that tells true from 1 (Python's == does not) and ignores key order."""
    return json.dumps(value, sort_keys=True)


@ROUND_TRIP
@given(value=DATA)
@example(value={"disk": {"${x}": ['a"; ${builtins.abort "pwned"} \\${', "$"]}})
@example(value=[-(2**63), 2**63 - 1, -5, {"in": {"": None}}])
@example(value="line\nnext\r\n\ttab ''${x} \\$")
def test_any_json_data_parses_and_evaluates_back(nix_instantiate: str, value: Any) -> None:
    text = nixtext.render(value)
    parsed = nix("--parse", "-E", text)
    assert parsed.returncode == 0, parsed.stderr
    evaluated = nix("--eval", "--strict", "--json", "--readonly-mode", "-E", text)
    assert evaluated.returncode == 0, evaluated.stderr
    assert canonical(json.loads(evaluated.stdout)) == canonical(value)


@ROUND_TRIP
@given(value=DATA)
def test_the_disko_key_order_keeps_the_data(nix_instantiate: str, value: Any) -> None:
    """Whatever order `blankslate disko` prints the keys in, the value is the same."""
    from blankslate import disko

    text = nixtext.render({"partitions": value, "options": value, "x": value}, disko.key_order)
    evaluated = nix("--eval", "--strict", "--json", "--readonly-mode", "-E", text)
    assert evaluated.returncode == 0, evaluated.stderr
    assert canonical(json.loads(evaluated.stdout)) == canonical(
        {"partitions": value, "options": value, "x": value}
    )


@pytest.mark.parametrize("key", ["outPath", "__toString"])
def test_keys_nix_gives_meaning_still_hold_the_set(nix_instantiate: str, key: str) -> None:
    """Why KEYS leaves two names out: the set is there (attrNames sees it), only toJSON
    prints such a set as a string."""
    text = nixtext.render({key: "x", "other": 1})
    evaluated = nix("--eval", "--strict", "--json", "-E", f"builtins.attrNames ({text})")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout) == sorted([key, "other"])
