"""Owners by name from a root's own /etc/passwd and /etc/group."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blankslate import accounts
from blankslate.errors import BlankslateError


def write_etc(root: Path, passwd: str, group: str) -> None:
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/passwd").write_text(passwd)
    (root / "etc/group").write_text(group)


def test_names_resolve_from_the_roots_own_files(tmp_path: Path) -> None:
    write_etc(
        tmp_path,
        "alice:x:1000:100::/home/alice:/bin/sh\nbroken line\nalice:x:5:5::/:\nbob:x:nan:1::/:\n",
        "users:x:100:alice\n",
    )
    found = accounts.Accounts.of(tmp_path)
    assert (found.uid("alice"), found.gid("users")) == (1000, 100)
    assert (found.uid("root"), found.gid("root")) == (0, 0)
    with pytest.raises(BlankslateError, match=f"user 'bob' is not in {tmp_path}/etc/passwd"):
        found.uid("bob")
    with pytest.raises(BlankslateError, match=f"group 'wheel' is not in {tmp_path}/etc/group"):
        found.gid("wheel")


def test_a_root_without_etc_knows_only_root(tmp_path: Path) -> None:
    found = accounts.Accounts.of(tmp_path)
    assert found.uid("root") == 0
    with pytest.raises(BlankslateError, match="user 'alice' is not in"):
        found.uid("alice")


@given(text=st.text(max_size=200), name=st.text(max_size=10))
def test_any_passwd_text_parses_without_a_traceback(text: str, name: str) -> None:
    ids = accounts._ids(text)
    assert all(isinstance(value, int) and value >= 0 for value in ids.values())
    found = accounts.Accounts(Path("/x"), ids, {})
    try:
        found.uid(name)
    except BlankslateError as error:
        assert "\n" not in str(error).replace(name, "")
