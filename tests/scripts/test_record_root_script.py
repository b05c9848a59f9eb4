"""modules/rollback/record-root.bash, the boot record of the tmpfs and none rollbacks, and
modules/rollback/record.bash, the record every rollback writes: run as the initrd runs them,
with BLANKSLATE_RECORD_DIR in tmp_path (never the machine's own /run/blankslate)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[2] / "modules" / "rollback"
SCRIPT = HERE / "record-root.bash"
LIBRARY = HERE / "record.bash"
KEYS = ["kind", "outcome", "reason", "old_root", "time"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not found")


def run(
    records: Path, *args: str, inline: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(SCRIPT), *args]
    if inline:  # as record.nix writes it into postMountCommands
        text = LIBRARY.read_text() + "\n" + SCRIPT.read_text()
        argv = ["bash", "-c", text, "record-root.bash", *args]
    return subprocess.run(
        argv,
        env={**os.environ, "BLANKSLATE_RECORD_DIR": str(records), **(env or {})},
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def record(records: Path) -> dict[str, str]:
    """The record, checked for its form: five keys in order, 0644 in a 0755 directory, no
    temporary file left beside it."""
    assert os.lstat(records).st_mode & 0o7777 == 0o755
    path = records / "reset"
    assert not path.is_symlink() and os.lstat(path).st_mode & 0o7777 == 0o644
    assert [p.name for p in records.iterdir()] == ["reset"]
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    pairs = [line.split("=", 1) for line in text[:-1].split("\n")]
    assert [key for key, _ in pairs] == KEYS
    values = dict(pairs)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", values["time"])
    return values


@pytest.fixture
def tmpfs_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "sysroot"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "blankslate-test", root], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", root], check=True)


@pytest.mark.root
@pytest.mark.parametrize("inline", [False, True], ids=["file", "inline"])
def test_tmpfs_root_records_reset(tmp_path: Path, tmpfs_root: Path, inline: bool) -> None:
    records = tmp_path / "run-blankslate"
    proc = run(records, "tmpfs", str(tmpfs_root), inline=inline)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert record(records) | {"time": ""} == {
        "kind": "tmpfs",
        "outcome": "reset",
        "reason": "",
        "old_root": "",
        "time": "",
    }


def test_root_that_is_no_mount_point_records_failed(tmp_path: Path) -> None:
    """/sysroot not mounted at all: failed, and the boot goes on (exit 0)."""
    root = tmp_path / "sysroot"
    root.mkdir()
    records = tmp_path / "run-blankslate"
    proc = run(records, "tmpfs", str(root))
    assert proc.returncode == 0
    values = record(records)
    assert (values["kind"], values["outcome"]) == ("tmpfs", "failed")
    assert values["reason"] == f"{root} is not a mount point: / was not mounted"
    assert values["reason"] in proc.stderr


@pytest.mark.root
def test_root_on_another_filesystem_records_failed(tmp_path: Path) -> None:
    """/ mounted from something other than a tmpfs (here ramfs): not reset by construction."""
    root = tmp_path / "sysroot"
    root.mkdir()
    subprocess.run(["mount", "-t", "ramfs", "blankslate-test", root], check=True)
    try:
        records = tmp_path / "run-blankslate"
        proc = run(records, "tmpfs", str(root))
    finally:
        subprocess.run(["umount", root], check=True)
    assert proc.returncode == 0
    values = record(records)
    assert values["outcome"] == "failed"
    assert values["reason"] == f"/ ({root}) is ramfs, not a tmpfs: it was not reset"


def test_missing_root_records_failed(tmp_path: Path) -> None:
    records = tmp_path / "run-blankslate"
    proc = run(records, "tmpfs", str(tmp_path / "nowhere"))
    assert proc.returncode == 0
    assert record(records)["reason"] == f"{tmp_path / 'nowhere'} is not a directory"


@pytest.mark.parametrize("inline", [False, True], ids=["file", "inline"])
def test_none_records_skipped(tmp_path: Path, inline: bool) -> None:
    records = tmp_path / "run-blankslate"
    proc = run(records, "none", inline=inline)
    assert proc.returncode == 0, proc.stderr
    assert record(records) | {"time": ""} == {
        "kind": "none",
        "outcome": "skipped",
        "reason": "the platform resets /",
        "old_root": "",
        "time": "",
    }


@pytest.mark.parametrize(
    "args", [(), ("tmpfs",), ("none", "x"), ("btrfs",), ("tmpfs", "/a", "/b"), ("zfs", "/")]
)
def test_bad_arguments_are_a_usage_error_and_record_nothing(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    records = tmp_path / "run-blankslate"
    proc = run(records, *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: ")
    assert not records.exists()


def test_a_second_record_replaces_the_first(tmp_path: Path) -> None:
    records = tmp_path / "run-blankslate"
    run(records, "tmpfs", str(tmp_path / "nowhere"))
    assert record(records)["outcome"] == "failed"
    run(records, "none")
    assert record(records)["outcome"] == "skipped"


def test_a_link_planted_at_the_record_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    records = tmp_path / "run-blankslate"
    records.mkdir()
    records.chmod(0o755)
    (records / "reset").symlink_to(victim)
    proc = run(records, "none")
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "precious\n"
    assert record(records)["outcome"] == "skipped"


def test_a_directory_planted_at_the_record_is_left_alone(tmp_path: Path) -> None:
    records = tmp_path / "run-blankslate"
    (records / "reset").mkdir(parents=True)
    records.chmod(0o755)
    proc = run(records, "none")
    assert proc.returncode == 0
    assert "warning: could not record the outcome (skipped)" in proc.stderr
    assert sorted(p.name for p in records.iterdir()) == ["reset"]
    assert list((records / "reset").iterdir()) == []


def test_a_link_planted_at_the_record_directory_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o755)
    records = tmp_path / "run-blankslate"
    records.symlink_to(elsewhere)
    proc = run(records, "none")
    assert proc.returncode == 0
    assert "is not a directory (a symbolic link is not followed)" in proc.stderr
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_directory_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    records = tmp_path / "run-blankslate"
    records.mkdir()
    records.chmod(mode)
    proc = run(records, "none")
    assert proc.returncode == 0
    assert "writable by no one else" in proc.stderr
    assert list(records.iterdir()) == []


def test_a_relative_record_directory_is_refused(tmp_path: Path) -> None:
    proc = run(Path("relative/dir"), "none")
    assert proc.returncode == 0
    assert "must be an absolute path" in proc.stderr


def test_control_characters_in_a_reason_stay_on_one_line(tmp_path: Path) -> None:
    root = tmp_path / "sys\nroot"
    root.mkdir()
    records = tmp_path / "run-blankslate"
    run(records, "tmpfs", str(root))
    values = record(records)
    assert values["outcome"] == "failed" and "\n" not in values["reason"]
    assert "root" in values["reason"]
