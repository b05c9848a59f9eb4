"""The one subprocess wrapper: logging, dry-run, errors."""

from __future__ import annotations

import pytest
from pytest_subprocess import FakeProcess

from blankslate import process
from blankslate.errors import BlankslateError


def test_run_captures_output(fp: FakeProcess) -> None:
    fp.register(["blkid", "/dev/vda"], stdout="TYPE=btrfs\n")
    assert process.output(["blkid", "/dev/vda"]) == "TYPE=btrfs\n"


def test_failure_carries_the_last_stderr_line(fp: FakeProcess) -> None:
    fp.register(["mkfs.btrfs", "/dev/vda"], returncode=1, stderr="warning\nERROR: device busy\n")
    with pytest.raises(BlankslateError, match=r"^mkfs.btrfs /dev/vda failed: ERROR: device busy$"):
        process.run(["mkfs.btrfs", "/dev/vda"], dry_run=False)


def test_unchecked_failure_returns_the_code(fp: FakeProcess) -> None:
    fp.register(["findmnt", "/x"], returncode=1)
    assert process.probe(["findmnt", "/x"], check=False).returncode == 1


def test_dry_run_prints_mutations_and_runs_probes(
    fp: FakeProcess, caplog: pytest.LogCaptureFixture
) -> None:
    fp.register(["lsblk", "/dev/vda"], stdout="vda\n")
    result = process.run(["wipefs", "--all", "/dev/my disk"], dry_run=True)
    assert result.returncode == 0
    assert process.output(["lsblk", "/dev/vda"]) == "vda\n"
    assert "would run: wipefs --all '/dev/my disk'" in caplog.text
    assert fp.call_count(["wipefs", "--all", "/dev/my disk"]) == 0


def test_secrets_travel_on_stdin(fp: FakeProcess, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="blankslate")
    fp.register(["mkpasswd", "--stdin"], stdout="$y$hash\n")
    assert process.run(
        ["mkpasswd", "--stdin"], input="hunter2\n", capture=True, dry_run=False
    ).stdout
    assert "hunter2" not in caplog.text
    assert "$ mkpasswd --stdin" in caplog.text


def test_missing_program_is_a_clear_error(fp: FakeProcess) -> None:
    fp.register(["no-such-tool"], callback=_raise_not_found)
    with pytest.raises(BlankslateError, match="no-such-tool: command not found"):
        process.run(["no-such-tool"], dry_run=False)


def _raise_not_found(_: object) -> None:
    raise FileNotFoundError


def test_require_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "which", lambda name: None if name == "sgdisk" else "/bin/x")
    process.require_tools(["mkfs.btrfs"])
    with pytest.raises(BlankslateError, match="missing tool: sgdisk"):
        process.require_tools(["mkfs.btrfs", "sgdisk"])


def test_failure_reason_prefers_the_final_error_over_retry_warnings(fp: FakeProcess) -> None:
    stderr = "warning: error: unable to download; retrying in 250 ms\nerror: unable to download\n"
    fp.register(["nix-prefetch-url", "u"], returncode=1, stderr=stderr)
    with pytest.raises(BlankslateError, match=r"failed: error: unable to download$"):
        process.run(["nix-prefetch-url", "u"], dry_run=False)
