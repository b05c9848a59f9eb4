"""Moving the rules into rules.json changed nothing but the ZFS names (#26's drift).

The oracles are the rules as plan.py wrote them before rules.json; every rule but the ZFS pool,
snapshot and pool/dataset ones must take exactly the strings it took then. The ZFS ones are
checked against what changed on purpose.
"""

from __future__ import annotations

import os
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from blankslate import plan, rules

EXAMPLES = 1000 if os.environ.get("CI") == "true" else 200

_BEFORE = {
    "size": r"^([0-9]+)([KMGT](i?B)?|B)?\Z",
    "tmpfsPercent": r"^([1-9][0-9]?|100)%\Z",
    "subvolumeName": r"^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*(/[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*)*\Z",
    "label": r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\Z",
    "zfsDataset": r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*(/[A-Za-z0-9_][A-Za-z0-9_.:-]*)*\Z",
    "userName": r"^[a-z_][a-z0-9_-]*\Z",
    "account": r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?\Z",
    "mode": r"^0?[0-7]{3,4}\Z",
    "typeCode": r"^[0-9A-Fa-f]{4}\Z",
}


def _normal_path_before(path: str) -> bool:
    if path == "/":
        return True
    if not re.match(r"^(/[^/\x00-\x1f\x7f]+)+\Z", path):
        return False
    return all(part not in (".", "..") for part in path.split("/")[1:])


TEXT = st.text(
    st.sampled_from(list("/_.-:@+$% aZz09KMGTiB%\t\n\x00\x01\x1f\x7f\x80\u00e9")) | st.characters(),
    max_size=40,
)


@given(text=TEXT)
@settings(max_examples=EXAMPLES)
@example(text="/a/..")
@example(text="/...")
@example(text="/a\x00b")
@example(text="x" * 32)
@example(text="x" * 33)
def test_every_rule_but_the_zfs_names_takes_what_it_took(text: str) -> None:
    for rule, before in _BEFORE.items():
        assert rules.matches(rule, text) == bool(re.match(before, text)), rule
    assert plan.is_normal_path(text) == _normal_path_before(text)
    assert rules.matches("normalPath", text) == _normal_path_before(text)


@given(text=TEXT)
@settings(max_examples=EXAMPLES)
def test_zfs_names_are_the_old_rules_narrowed_as_zfs_requires(text: str) -> None:
    label = rules.matches("label", text)
    # a pool: a label that begins with a letter (OpenZFS refuses a digit or '_' first)
    assert rules.matches("zfsPool", text) == (label and text[:1].isascii() and text[:1].isalpha())
    # a snapshot: a dataset name of one component (a '/' has no place after '@')
    assert rules.matches("zfsSnapshot", text) == (
        rules.matches("zfsDataset", text) and "/" not in text
    )


def test_the_drift_names() -> None:
    assert not rules.matches("zfsPool", "_tank")
    assert not rules.matches("zfsSnapshot", "a/b")
    for bad in ("_tank/root", "tank/.x", "tank/-x", "tank", "1tank/root"):
        assert not rules.matches("zfsPoolDataset", bad), bad
    for good in ("rpool/local/root", "tank/_x", "Tank-1.2/a:b/c"):
        assert rules.matches("zfsPoolDataset", good), good
