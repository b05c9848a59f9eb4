"""modules/attest-nixos-bound.bash, the activation script that notes whether /var/lib/nixos
is a mountpoint right before NixOS's `users` script, read by `blankslate attest`
(attest.parse_nixos_bound). Its record directory is always in tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from blankslate import attest

MODULES = Path(__file__).resolve().parents[2] / "modules"
SCRIPT = MODULES / "attest-nixos-bound.bash"

pytestmark = pytest.mark.skipif(shutil.which("mountpoint") is None, reason="no mountpoint")


def run(records: Path, target: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), str(target)],
        env={**os.environ, "BLANKSLATE_RECORD_DIR": str(records)},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(
    subprocess.run(["mountpoint", "-q", "/"], check=False).returncode != 0,
    reason="/ is not a mount point here (a chroot such as a throw-away Debian)",
)
def test_a_mountpoint_is_noted_bound_and_attest_reads_it(tmp_path: Path) -> None:
    records = tmp_path / "records"
    result = run(records, "/")
    assert result.returncode == 0, result.stderr
    assert attest.parse_nixos_bound((records / "nixos-bound").read_bytes()) is True
    assert (records.stat().st_mode & 0o777) == 0o755


def test_a_plain_directory_is_noted_unbound(tmp_path: Path) -> None:
    records = tmp_path / "records"
    (tmp_path / "nixos").mkdir()
    result = run(records, tmp_path / "nixos")
    assert result.returncode == 0
    assert "is not a mountpoint before the users' activation" in result.stderr
    assert attest.parse_nixos_bound((records / "nixos-bound").read_bytes()) is False


def test_only_the_first_activation_of_a_boot_notes_it(tmp_path: Path) -> None:
    """A later switch, when everything is mounted, keeps what the boot saw."""
    records = tmp_path / "records"
    (tmp_path / "nixos").mkdir()
    run(records, tmp_path / "nixos")
    assert run(records, "/").returncode == 0
    assert attest.parse_nixos_bound((records / "nixos-bound").read_bytes()) is False


def test_a_planted_symlink_is_neither_followed_nor_written_through(tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir(mode=0o755)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (records / "nixos-bound").symlink_to(victim)
    assert run(records, "/").returncode == 0
    assert victim.read_text() == "precious\n"


def test_a_symlinked_record_directory_is_refused_without_failing_the_activation(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    (tmp_path / "records").symlink_to(elsewhere)
    result = run(tmp_path / "records", "/")
    assert result.returncode == 0
    assert "is not a directory (a symlink is not followed)" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_a_record_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    records.chmod(0o777)
    result = run(records, "/")
    assert result.returncode == 0 and "writable by no one else" in result.stderr
    assert not (records / "nixos-bound").exists()


@pytest.mark.root
def test_after_the_early_bind_it_is_bound(tmp_path: Path) -> None:
    """The vpsFree order (modules/attest.nix): early-bind.bash, then this script, then
    `users`: /var/lib/nixos is noted bound."""
    root = tmp_path.resolve()
    source, target = root / "persist/var/lib/nixos", root / "var/lib/nixos"
    try:
        bound = subprocess.run(
            ["bash", str(MODULES / "early-bind.bash"), str(source), str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert bound.returncode == 0, bound.stderr
        assert run(root / "records", target).returncode == 0
        assert attest.parse_nixos_bound((root / "records/nixos-bound").read_bytes()) is True
    finally:
        subprocess.run(["umount", str(target)], capture_output=True, check=False)
