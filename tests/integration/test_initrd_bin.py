"""The rollback unit's command, run with nothing but what the initrd's /bin holds.

systemd's initrd gives every unit PATH=/bin:/sbin (nixos/modules/system/boot/systemd/initrd.nix),
and /bin holds the programs of `boot.initrd.systemd.initrdBin` and the names of `extraBin`.
The packages come from evaluating host `example` (tests/nix/eval.nix); each one's programs are
taken from the Debian package of the same upstream project installed here. The unit's own
ExecStart then runs against a real btrfs layout with PATH set to that directory and nothing else:
a program the script needs but the initrd lacks fails the test with "command not found".
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "modules/rollback/btrfs-rollback.bash"

# nixpkgs package -> the Debian package that ships the same upstream programs.
DEBIAN_PACKAGE = {
    "bashInteractive": "bash",
    "coreutils": "coreutils",
    "findutils": "findutils",
    "btrfs-progs": "btrfs-progs",
    "kmod": "kmod",
    "systemd": "systemd",
}
# What no initrd /bin can go without; the others join when Debian has them installed.
ESSENTIAL = {"bash", "coreutils", "findutils", "btrfs-progs"}
BIN_DIRS = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/")


def nix_eval(expr: str) -> Any:
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix-instantiate is not installed")
    found = subprocess.run(
        ["nix-instantiate", "--find-file", "impermanence"], capture_output=True, check=False
    )
    if found.returncode != 0:
        pytest.skip("<nixpkgs/lib> or <impermanence> not found on the Nix search path")
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "--readonly-mode", "-E", expr],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def example(attr: str) -> Any:
    return nix_eval(f'(import ./tests/nix/eval.nix {{ host = "example"; }}).config.{attr}')


def programs_of(debian_package: str) -> dict[str, str]:
    listed = subprocess.run(
        ["dpkg", "-L", debian_package], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        assert debian_package not in ESSENTIAL, f"Debian package {debian_package} is missing"
        return {}
    programs = {}
    for path in listed.stdout.splitlines():
        if path.startswith(BIN_DIRS) and os.access(path, os.X_OK) and not os.path.isdir(path):
            programs[os.path.basename(path)] = path
    return programs


def initrd_bin(directory: Path, *, leave_out: str | None = None) -> Path:
    """A directory with the programs the example host's initrd /bin holds."""
    directory.mkdir()
    packages = nix_eval(
        '(map (p: p.pname) (import ./tests/nix/eval.nix { host = "example"; })'
        ".config.boot.initrd.systemd.initrdBin)"
    )
    for package in packages:
        if package == leave_out:
            continue
        for name, path in programs_of(DEBIAN_PACKAGE[package]).items():
            (directory / name).unlink(missing_ok=True)
            (directory / name).symlink_to(path)
    extra_bin = example("boot.initrd.systemd.extraBin")
    for name in extra_bin:
        host_program = shutil.which(name)
        assert host_program is not None or name == "less", f"{name} is not installed here"
        if host_program is not None:
            (directory / name).unlink(missing_ok=True)
            (directory / name).symlink_to(host_program)
    return directory


def unit_command(device: str, *, expire_everything: bool) -> list[str]:
    """The unit's ExecStart, with this machine's script and device; optionally every old root
    expired (keep days and keep newest 0), so the pruning and nested deletion run too."""
    command = shlex.split(
        example("boot.initrd.systemd.services.blankslate-rollback.serviceConfig.ExecStart")
    )
    # bash by its store path (in the initrd's storePaths); here, the bash of bin_dir
    assert command[0].endswith("-bash/bin/bash") and command[1].endswith("/btrfs-rollback.bash")
    # Options first (--prune-budget SECONDS, --root-quota SIZE), then the positional ones.
    options: list[str] = []
    rest = command[2:]
    while rest[0].startswith("--"):
        options, rest = [*options, *rest[:2]], rest[2:]
    assert options[:1] == ["--prune-budget"]
    assert rest[0] == "/dev/disk/by-label/nixos"
    arguments = rest[1:]
    # root, blank, old roots, KEEP_DAYS, KEEP_NEWEST and KEEP_MAX (keepMax is 30 by default)
    assert len(arguments) == 6
    if expire_everything:  # KEEP_MAX cannot be 0: left out, as keepMax = null does
        arguments = [*arguments[:3], "0", "0"]
    return [str(SCRIPT), *options, device, *arguments]


def run_in_initrd(
    bin_dir: Path, run_dir: Path, command: list[str]
) -> subprocess.CompletedProcess[str]:
    run_dir.mkdir(exist_ok=True)
    return subprocess.run(
        [str(bin_dir / "bash"), *command],
        env={
            "PATH": str(bin_dir),
            "TMPDIR": str(run_dir),
            "BLANKSLATE_RECORD_DIR": str(run_dir.parent / "record"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_rollback_runs_on_the_initrd_bin_alone(
    helpers: Any, layout: Any, tmp_path: Path
) -> None:
    bin_dir = initrd_bin(tmp_path / "bin")
    with helpers.mount_top_level(layout.device) as top:
        (top / "root/etc").mkdir()
        (top / "root/etc/stale").write_text("erased at boot\n")
        helpers.run(["btrfs", "subvolume", "create", top / "root/var-lib-machines"])
        helpers.run(["btrfs", "subvolume", "create", top / "root/var-lib-machines/nested"])

        first = run_in_initrd(
            bin_dir, tmp_path / "run", unit_command(layout.device, expire_everything=False)
        )
        assert first.returncode == 0, first.stderr
        assert "command not found" not in first.stderr
        assert list((top / "root").iterdir()) == []
        (old_root,) = (top / "old_roots").iterdir()
        assert (old_root / "etc/stale").read_text() == "erased at boot\n"
        # the boot record is written with the initrd's programs too
        record = (tmp_path / "record" / "reset").read_text().splitlines()
        assert record[:4] == ["kind=btrfs", "outcome=reset", "reason=", f"old_root={old_root.name}"]

        # Everything expired: the old root and its nested subvolumes are deleted.
        second = run_in_initrd(
            bin_dir, tmp_path / "run", unit_command(layout.device, expire_everything=True)
        )
        assert second.returncode == 0, second.stderr
        assert "command not found" not in second.stderr
        assert list((top / "old_roots").iterdir()) == []
        assert helpers.mounts_under(tmp_path / "run") == []


def test_a_program_missing_from_the_initrd_is_seen(
    helpers: Any, layout: Any, tmp_path: Path
) -> None:
    """The restricted PATH is really all the script gets: without btrfs-progs it cannot run."""
    bin_dir = initrd_bin(tmp_path / "bin", leave_out="btrfs-progs")
    result = run_in_initrd(
        bin_dir, tmp_path / "run", unit_command(layout.device, expire_everything=False)
    )
    assert result.returncode != 0
    assert "btrfs: command not found" in result.stderr
    assert helpers.mounts_under(tmp_path / "run") == []
