"""`blankslate doctor`'s private-state check: /var/lib/private, where DynamicUser services keep
their state, must be root's and 0700 on / and in persistPath (impermanence #93, #254)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blankslate import doctor, plansource

PLAN = plansource.default()
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="the directory must be root's")


def results(root: Path) -> list[tuple[str, str]]:
    found = doctor.check_private_state(doctor.Context(PLAN, root, NOW))
    return [(r.status, r.message) for r in found]


def test_the_check_runs_last_in_doctor() -> None:
    assert doctor.CHECKS[-1] == "private-state"
    assert doctor.parse_only(["private-state"]) == ("private-state",)


def test_nothing_there_is_ok(tmp_path: Path) -> None:
    assert results(tmp_path) == [("ok", "no /var/lib/private (no DynamicUser state yet)")]


@root_only
def test_root_owned_0700_on_both_sides_is_ok(tmp_path: Path) -> None:
    for base in (tmp_path, tmp_path / "persist"):
        (base / "var/lib/private").mkdir(parents=True)
        (base / "var/lib/private").chmod(0o700)
    [(status, message)] = results(tmp_path)
    assert status == "ok"
    assert "persist/var/lib/private" in message


def test_a_0755_copy_in_persist_fails_and_says_how_to_fix(tmp_path: Path) -> None:
    private = tmp_path / "persist/var/lib/private"
    private.mkdir(parents=True)
    private.chmod(0o755)
    [(status, message)] = results(tmp_path)
    assert status == "fail"
    assert "mode 755 (want uid 0, mode 700" in message
    assert f"chmod 700 {private}" in message


def test_a_symlink_fails_and_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "var/lib").mkdir(parents=True)
    (tmp_path / "var/lib/private").symlink_to(elsewhere)
    [(status, message)] = results(tmp_path)
    assert status == "fail"
    assert "is a symlink" in message


def test_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "var/lib").mkdir(parents=True)
    (tmp_path / "var/lib/private").write_text("")
    assert [s for s, _ in results(tmp_path)] == ["fail"]
