"""Nix, Python and bash agree on every name rule, for every string (a differential test).

scripts/blankslate/rules.json holds the patterns; modules/lib.nix reads it with
`builtins.fromJSON` (POSIX ERE through `builtins.match`), scripts/blankslate/rules.py with
Python's `re`, and the ZFS boot scripts get the patterns they check from their unit's
environment and match with `[[ =~ ]]`. Hypothesis makes the strings, biased toward what
separates the dialects and the rules: / _ . - : @ + $ %, space, control characters, newline,
non-ASCII, the empty string, leading and trailing separators, near-misses of good names and
lengths around a bound. Each batch goes through ONE nix-instantiate and ONE bash, and every
string is judged by every rule on all three sides:

- Nix: `blib.follows RULE` and lib.nix's own helper for the rule (isSize, isPoolName, ...);
- Python: `rules.matches` (what plan.py's checks use) and plan.is_normal_path;
- bash: the very `follows` function of zfs-rollback.bash and zfs-persist-snapshot.bash.

CI runs at least ~1000 strings per rule (every string meets every rule); elsewhere fewer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blankslate import plan, rules

from ..support.strategies import SURROGATES

pytestmark = pytest.mark.nix

REPO = Path(__file__).resolve().parents[2]
RULES_FILE = REPO / "scripts/blankslate/rules.json"
SCRIPTS = [
    REPO / "modules/rollback/zfs-rollback.bash",
    REPO / "modules/snapshots/zfs-persist-snapshot.bash",
]
IN_CI = os.environ.get("CI") == "true"
# batches of 50 to 70 strings: CI checks 20 batches, so over 1000 strings per rule
BATCHES = 20 if IN_CI else 4

# lib.nix's named helper for a rule, where it has one (the options' types use these)
NIX_HELPERS = {
    "size": "isSize",
    "normalPath": "isNormalPath",
    "subvolumeName": "isRelativeName",
    "label": "isLabel",
    "zfsPool": "isPoolName",
    "zfsDataset": "isDatasetName",
    "zfsSnapshot": "isSnapshotName",
    "userName": "isUserName",
}

# Good values of each rule, which the strategy bends into near-misses.
SEEDS = [
    "0",
    "8GiB",
    "512M",
    "1B",
    "25%",
    "100%",
    "/",
    "/var/lib",
    "/.x/..y/...",
    "root",
    "safe/persist",
    "@home",
    "+x-",
    "nixos",
    "BOOT",
    "x" * 32,
    "p" + "x" * 31,
    "rpool",
    "local/root",
    "_x/y:z.1",
    "blank",
    "rpool/safe/persist",
    "admin",
    "_svc-1",
    "user$",
    "a.b-c",
    "0755",
    "01777",
    "EF00",
    "8300",
]
# the characters that tell the dialects and the rules apart
TRICKY = list("/_.-:@+$% aZz09KMGTiB\t\n\r\x01\x1f\x7f\x80\u00e9\u00df\u20ac\U0001f600[]()^*\\")
ANY_CHARACTER = st.characters(blacklist_categories=SURROGATES, blacklist_characters="\x00")
CHARACTER = st.sampled_from(TRICKY) | ANY_CHARACTER


@st.composite
def near_miss(draw: st.DrawFn) -> str:
    """A good value of some rule with up to three edits: insert, delete, replace, double."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "double", "prefix", "suffix"]))
        char = draw(CHARACTER)
        if edit == "insert":
            text = text[:at] + char + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + 1 :]
        elif edit == "replace":
            text = text[:at] + char + text[at + 1 :]
        elif edit == "double":
            text = text[:at] + text[at:] + text[at:]
        elif edit == "prefix":
            text = char + text
        else:
            text = text + char
    return text


STRINGS = st.one_of(
    near_miss(),
    st.lists(near_miss(), min_size=1, max_size=3).map("/".join),
    st.lists(near_miss(), min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts)),
    st.text(st.sampled_from(TRICKY), max_size=8),
    st.text(ANY_CHARACTER, max_size=8),
)


def nix_verdicts(strings: list[str], tmp: Path) -> dict[str, Any]:
    """{ follows.RULE: [bool per string], helpers.RULE: [...], rules: {RULE: pattern} }."""
    data = tmp / "strings.json"
    data.write_text(json.dumps(strings))
    helpers = " ".join(f"{rule} = blib.{name};" for rule, name in NIX_HELPERS.items())
    expr = f"""
      let
        lib = import <nixpkgs/lib>;
        blib = import ./modules/lib.nix {{ inherit lib; }};
        strings = builtins.fromJSON (builtins.readFile {data});
      in {{
        inherit (blib) rules;
        follows = lib.mapAttrs (rule: _: map (blib.follows rule) strings) blib.rules;
        helpers = lib.mapAttrs (_: check: map check strings) {{ {helpers} }};
      }}
    """
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "--readonly-mode", "-E", expr],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    verdicts: dict[str, Any] = json.loads(result.stdout)
    return verdicts


def scripts_follows() -> str:
    """The `follows` function of the ZFS boot scripts: one definition, the same in both."""
    found: set[str] = set()
    for script in SCRIPTS:
        lines = re.findall(r"(?m)^follows\(\) \{.*\}$", script.read_text())
        assert len(lines) == 1, f"{script.name}: one `follows() {{ ...; }}` line expected"
        found.update(lines)
    assert len(found) == 1, f"the scripts check names differently: {found}"
    return found.pop()


# Reads NUL-separated strings on stdin; for each pattern argument prints a line of 0/1.
BASH_JUDGE = r"""
set -o nounset
eval "$FOLLOWS"
strings=()
while IFS= read -r -d '' s; do strings+=("$s"); done
for rule in "$@"; do
  line=
  for s in "${strings[@]}"; do
    if follows "$rule" "$s"; then line+=1; else line+=0; fi
  done
  printf '%s\n' "$line"
done
"""


def bash_verdicts(
    strings: list[str], patterns: dict[str, str]
) -> Callable[[], dict[str, list[bool]]]:
    """Starts bash on the batch; the call returned waits for its verdicts (Nix runs meanwhile)."""
    names = sorted(patterns)
    judge = subprocess.Popen(
        ["bash", "-c", BASH_JUDGE, "judge", *(patterns[name] for name in names)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "FOLLOWS": scripts_follows()},
    )

    def verdicts() -> dict[str, list[bool]]:
        out, err = judge.communicate("".join(s + "\0" for s in strings).encode(), timeout=120)
        assert judge.returncode == 0, err
        lines = out.decode().splitlines()
        assert len(lines) == len(names)
        return {name: [c == "1" for c in line] for name, line in zip(names, lines, strict=True)}

    return verdicts


def python_verdicts(strings: list[str]) -> dict[str, list[bool]]:
    return {rule: [rules.matches(rule, s) for s in strings] for rule in rules.PATTERNS}


def disagreements(strings: list[str], sides: dict[str, dict[str, list[bool]]]) -> list[str]:
    found = []
    for rule in rules.PATTERNS:
        for index, string in enumerate(strings):
            said = {
                side: verdicts[rule][index] for side, verdicts in sides.items() if rule in verdicts
            }
            if len(set(said.values())) != 1:
                found.append(f"{rule} {string!r}: {said}")
    return found


@pytest.fixture(scope="module")
def nix_ready(nix_paths: Any) -> None:
    """<nixpkgs/lib> is there (else skip; CI fails instead)."""


def test_the_file_is_the_rules_every_side_reads(nix_ready: None, tmp_path: Path) -> None:
    data = json.loads(RULES_FILE.read_text())
    shared = {name: value for name, value in data.items() if not name.startswith("_")}
    assert shared == rules.PATTERNS
    assert nix_verdicts([], tmp_path)["rules"] == shared
    # what the common subset of the three dialects allows (the file's _comment)
    for name, pattern in shared.items():
        assert "\\" not in pattern and "\x00" not in pattern, name
        assert not re.search(r"\(\?|\[:|\*\?|\+\?|\}\?", pattern), name


@settings(
    max_examples=BATCHES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(STRINGS, min_size=50, max_size=70))
@example(
    batch=[
        # the drift between plan.py/lib.nix and the ZFS scripts that this file ended
        "a/b",
        "_tank/root",
        ".x",
        "-x",
        "tank/.x",
        "tank/-x",
        "tank/_x",
        "1tank/root",
        "tank",
        "",
        "/",
        "//",
        "/a/",
        "/a/.",
        "/a/..",
        "/a/...",
        "/a\nb",
        "a\n",
        "x" * 32,
        "x" * 33,
        "100%",
        "101%",
        "8iB",
        "user$",
        "$",
        "0o755",
    ]
)
def test_nix_python_and_bash_agree(
    nix_ready: None, tmp_path_factory: Any, batch: list[str]
) -> None:
    bash = bash_verdicts(batch, rules.PATTERNS)
    nix = nix_verdicts(batch, tmp_path_factory.mktemp("rules"))
    sides = {
        "nix": nix["follows"],
        "nix helper": nix["helpers"],
        "python": python_verdicts(batch),
        "python is_normal_path": {"normalPath": [plan.is_normal_path(s) for s in batch]},
        "bash": bash(),
    }
    found = disagreements(batch, sides)
    assert not found, "\n".join(found[:20])


@given(name=STRINGS)
@settings(max_examples=200 if IN_CI else 50, deadline=None)
def test_a_value_with_nul_follows_no_rule(name: str) -> None:
    # Nix and bash cannot hold a NUL; Python, which can, refuses it under every rule
    for rule in rules.PATTERNS:
        assert not rules.matches(rule, name + "\x00")
        assert not rules.matches(rule, "\x00" + name)


@given(name=STRINGS)
@settings(max_examples=300 if IN_CI else 100, deadline=None)
def test_a_pool_dataset_is_a_pool_then_a_dataset(name: str) -> None:
    # zfsPoolDataset, which the scripts check full names with, is zfsPool "/" zfsDataset
    pool, slash, dataset = name.partition("/")
    expected = (
        bool(slash) and rules.matches("zfsPool", pool) and rules.matches("zfsDataset", dataset)
    )
    assert rules.matches("zfsPoolDataset", name) == expected


def test_the_units_hand_the_scripts_these_rules(host_eval: Any) -> None:
    expected = {
        "BLANKSLATE_ZFS_DATASET_RULE": rules.PATTERNS["zfsPoolDataset"],
        "BLANKSLATE_ZFS_SNAPSHOT_RULE": rules.PATTERNS["zfsSnapshot"],
    }
    initrd = host_eval("zfs", "config.boot.initrd.systemd.services.blankslate-rollback")
    assert initrd["environment"] == expected
    on = '{ blankslate.persistSnapshots.interval = "hourly"; }'
    snapshot = host_eval("zfs", "config.systemd.services.blankslate-persist-snapshot", on)
    assert snapshot["environment"] == expected
    # systemd's Environment= (quoted by nixpkgs with toJSON) would expand % and unescape \
    assert not any(c in value for value in expected.values() for c in '%\\"$')
    scripted = "{ boot.initrd.systemd.enable = lib.mkForce false; }"
    commands = host_eval("zfs", "config.boot.initrd.postResumeCommands", scripted)
    assignments = " ".join(f"{name}='{value}'" for name, value in expected.items())
    assert f"{assignments} bash -c " in commands
