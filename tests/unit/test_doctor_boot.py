"""doctor's `boot` check: the last boot's outcome from the rollback's record, read as
`blankslate attest` reads it (attest.describe_record)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blankslate import doctor, plansource

RESET = (
    "kind=btrfs\noutcome=reset\nreason=\nold_root=2026-12-04_10:00:00\ntime=2026-12-04T10:00:00Z\n"
)
FAILED = (
    "kind=btrfs\noutcome=failed\nreason=no blank snapshot\nold_root=\ntime=2026-12-04T10:00:00Z\n"
)


def boot(monkeypatch: pytest.MonkeyPatch, records: Path, root: Path = Path("/")) -> doctor.Result:
    monkeypatch.setenv("BLANKSLATE_RECORD_DIR", str(records))
    [result] = doctor.check_boot(doctor.Context(plansource.default(), root))
    return result


def test_boot_is_a_doctor_check() -> None:
    assert "boot" in doctor.CHECKS
    assert doctor.parse_only(["boot"]) == ("boot",)


def test_a_reset_is_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "reset").write_text(RESET)
    result = boot(monkeypatch, tmp_path)
    assert (result.check, result.status) == ("boot", "ok")
    assert (
        "reset at 2026-12-04T10:00:00Z" in result.message
        and "2026-12-04_10:00:00" in result.message
    )


def test_a_failed_reset_fails_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "reset").write_text(FAILED)
    result = boot(monkeypatch, tmp_path)
    assert result.status == "fail" and "no blank snapshot" in result.message


def test_no_record_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = boot(monkeypatch, tmp_path)
    assert result.status == "fail" and "the rollback did not run" in result.message


def test_garbage_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "reset").write_bytes(b"\x00\xff" * 10000)
    result = boot(monkeypatch, tmp_path)
    assert result.status == "fail" and "\n" not in result.message


def test_under_root_it_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "reset").write_text(FAILED)
    assert boot(monkeypatch, tmp_path, root=tmp_path).status == "skipped"
