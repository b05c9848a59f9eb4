"""The name, size, mode and account rules: rules.json, the one file Nix reads too.

modules/lib.nix reads the same file with `builtins.fromJSON`, and the units it writes hand the
ZFS name patterns to the boot scripts. A pattern is written in the subset of regular expressions
that Nix (POSIX ERE), bash (`[[ =~ ]]`) and Python read alike (rules.json's `_comment` says
which); tests/nix/test_rules.py checks that the three accept the same strings.
"""

from __future__ import annotations

import json
import os
import re

RULES_FILE = "rules.json"


def _load() -> dict[str, str]:
    # Beside this module, read as a plain file: importlib.resources alone took 3.5 ms of
    # `diff`'s start.
    with open(os.path.join(os.path.dirname(__file__), RULES_FILE), encoding="utf-8") as file:
        text = file.read()
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
