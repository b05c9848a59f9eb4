"""modules/early-bind.bash, the activation script that binds /var/lib/nixos before NixOS's
`users` script where there is no initrd (vpsFree.cz), run on real directories as root."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "modules" / "early-bind.bash"

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("mountpoint") is None, reason="mountpoint not found"),
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, check=False)


def is_mountpoint(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)], check=False).returncode == 0


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path.resolve()
    yield root
    target = root / "var/lib/nixos"
    while is_mountpoint(target):
        subprocess.run(["umount", str(target)], check=True)


def test_binds_the_persisted_copy_and_is_idempotent(tree: Path) -> None:
    source, target = tree / "persistent/var/lib/nixos", tree / "var/lib/nixos"
    result = run(str(source), str(target))
    assert result.returncode == 0, result.stderr
    assert is_mountpoint(target)
    assert source.is_dir() and oct(source.stat().st_mode & 0o777) == "0o755"
    # What the users script writes lands in persistPath.
    (target / "uid-map").write_text("{}")
    assert (source / "uid-map").read_text() == "{}"
    # The next activation (a switch) finds it bound and binds nothing more.
    again = run(str(source), str(target))
    assert again.returncode == 0, again.stderr
    mounts = Path("/proc/self/mountinfo").read_text().split("\n")
    assert sum(1 for line in mounts if f" {target} " in line) == 1


def test_refuses_a_symlink_on_the_way(tree: Path) -> None:
    (tree / "elsewhere").mkdir()
    (tree / "persistent").mkdir()
    os.symlink(tree / "elsewhere", tree / "persistent/var")
    result = run(str(tree / "persistent/var/lib/nixos"), str(tree / "var/lib/nixos"))
    assert result.returncode == 1
    assert "goes through a symlink" in result.stderr
    assert not is_mountpoint(tree / "var/lib/nixos")
    assert list((tree / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("args", [(), ("/a",), ("a", "/b"), ("/a", "b"), ("/a", "/b", "/c")])
def test_bad_arguments_are_a_usage_error(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("early-bind: usage:")
