"""The name, size, mode and account rules: rules.json, the one file Nix reads too.

modules/lib.nix reads the same file with `builtins.fromJSON`, and the units it writes hand the
ZFS name patterns to the boot scripts. A pattern is written in the subset of regular expressions
that Nix (POSIX ERE), bash (`[[ =~ ]]`) and Python read alike (rules.json's `_comment` says
which); tests/nix/test_rules.py checks that the three accept the same strings.
"""

from __future__ import annotations

import json
import re
from importlib import resources

RULES_FILE = "rules.json"


def _load() -> dict[str, str]:
    text = resources.files("blankslate").joinpath(RULES_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    return {name: pattern for name, pattern in data.items() if not name.startswith("_")}


PATTERNS: dict[str, str] = _load()


def compiled(name: str) -> re.Pattern[str]:
    """Rule NAME as a Python pattern whose `.match` takes the whole value and refuses a NUL.

    No string in Nix or bash holds a NUL, so the shared patterns cannot speak of it; a value that
    holds one follows no rule.
    """
    return re.compile(rf"(?=[^\x00]*\Z)(?:{PATTERNS[name]})\Z")


def matches(name: str, value: str) -> bool:
    """True when the whole VALUE follows rule NAME: matches("zfsPool", "rpool") is True."""
    return compiled(name).match(value) is not None
