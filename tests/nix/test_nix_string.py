"""The one Nix-string escaper (nixtext.string), which pin, new-host and suggest write with:
for any text Nix can hold, Nix reads the escaped string back as the same text. Many strings go
into one `nix-instantiate --eval` (a Nix list) to keep the tier fast."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blankslate import nixtext, suggest
from blankslate.errors import BlankslateError

from ..support.nixeval import REPO
from ..support.strategies import SURROGATES

# Every character Nix can hold in a string: all but NUL and lone surrogates (no UTF-8 has one).
CHARACTERS = st.characters(blacklist_categories=SURROGATES, blacklist_characters="\x00")
AWKWARD = ["${x}", "$${x}", "\\${x}", "$", "a$", "$\\", '"', "\\", "''${", "\r", "\r\n", "\x01"]
AWKWARD += ["\x1b[0m", "\x7f", "é 漢字 😀 \u2028 \ufeff", "\x85", ""]
TEXTS = st.lists(st.text(alphabet=CHARACTERS, max_size=16) | st.sampled_from(AWKWARD), max_size=40)

# Every name a module writes Nix strings with: each must be the one escaper's behaviour.
ESCAPERS: dict[str, Callable[[str], str]] = {
    "nixtext.string": nixtext.string,
    "suggest.nix_string": suggest.nix_string,
}


def read_back(nix_instantiate: str, literals: list[str]) -> list[str]:
    """What Nix reads the literals as: one evaluation of `[ literal ... ]`."""
    expr = "[\n" + "\n".join(literals) + "\n]"
    result = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", "--readonly-mode", "--expr", expr],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    value = json.loads(result.stdout)
    assert isinstance(value, list)
    return [str(item) for item in value]


@pytest.mark.parametrize("escaper", ESCAPERS)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=TEXTS)
@example(texts=AWKWARD)
def test_nix_reads_any_escaped_text_back(
    nix_instantiate: str, escaper: str, texts: list[str]
) -> None:
    escape = ESCAPERS[escaper]
    assert read_back(nix_instantiate, [escape(text) for text in texts]) == texts


def test_raw_control_characters_are_read_as_themselves(nix_instantiate: str) -> None:
    """Why the escaper writes control characters other than \\n \\t \\r as they are: Nix has
    no escape for them (`\\a` is `a`) and keeps them literally inside "..."."""
    assert read_back(nix_instantiate, ['"\x01\x1b\x7f"', '"\\a\\u0001"']) == [
        "\x01\x1b\x7f",
        "au0001",
    ]


@pytest.mark.parametrize("escaper", ESCAPERS)
@pytest.mark.parametrize("text", ["\x00", "a\x00b"])
def test_a_nul_is_one_error(escaper: str, text: str) -> None:
    with pytest.raises(BlankslateError, match="NUL"):
        ESCAPERS[escaper](text)
