"""Every .nix file of the repository parses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

NIX_FILES = sorted(
    path
    for path in REPO.rglob("*.nix")
    if ".git" not in path.relative_to(REPO).parts and path.is_file()
)


def test_there_are_nix_files() -> None:
    names = {path.relative_to(REPO).as_posix() for path in NIX_FILES}
    assert {"flake.nix", "default.nix", "modules/default.nix", "hosts/example/default.nix"} <= names


@pytest.mark.nix
@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_parses(nix_instantiate: str, path: Path) -> None:
    result = subprocess.run(
        [nix_instantiate, "--parse", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
