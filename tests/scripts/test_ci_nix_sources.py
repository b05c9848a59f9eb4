""".ci/nix-sources makes the Nix tier's lookup paths resolvable from a folder of snapshots, and
the Nix tier fails instead of skipping under CI=true (tests/conftest.py's skip_nix_tier)."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from ..conftest import skip_nix_tier

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "nix-sources"


def snapshot(folder: Path, name: str, files: dict[str, str]) -> None:
    """folder/NAME.tar.gz holding FILES (relative path -> text), as `git archive` makes it."""
    tree = folder / f"{name}-tree"
    for relative, text in files.items():
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        (tree / relative).write_text(text)
    with tarfile.open(folder / f"{name}.tar.gz", "w:gz") as archive:
        for path in tree.rglob("*"):
            archive.add(path, arcname=str(path.relative_to(tree)), recursive=False)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_snapshots_become_one_nix_path_line_keeping_other_names(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    snapshot(sources, "nixpkgs-lib", {"lib/default.nix": "{ }"})
    snapshot(sources, "impermanence", {"nixos.nix": "{ }"})
    snapshot(sources, "impermanence-2025-01", {"nixos.nix": "{ }"})
    conf = tmp_path / "nix.conf"
    conf.write_text("sandbox = false\nnix-path = other=/elsewhere nixpkgs=/old # by hand\n")
    unpack = tmp_path / "unpacked"

    result = run("--sources", str(sources), "--conf", str(conf), "--unpack", str(unpack))

    assert result.returncode == 0, result.stderr
    lines = conf.read_text().splitlines()
    assert lines[0] == "sandbox = false"
    nix_path = [line for line in lines if line.startswith("nix-path")]
    assert len(nix_path) == 1
    entries = nix_path[0].split("#")[0].split("=", 1)[1].split()
    assert entries == [
        "other=/elsewhere",
        f"nixpkgs={unpack}/nixpkgs",
        f"impermanence={unpack}/impermanence",
        f"impermanence-2025-01={unpack}/impermanence-2025-01",
    ]
    assert (unpack / "nixpkgs/lib/default.nix").read_text() == "{ }"
    assert (unpack / "impermanence-2025-01/nixos.nix").is_file()


def test_a_missing_folder_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    conf = tmp_path / "nix.conf"
    conf.write_text("nix-path = nixpkgs=/old\n")
    result = run("--sources", str(tmp_path / "none"), "--conf", str(conf))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"nix-sources: no folder {tmp_path / 'none'}"]
    assert conf.read_text() == "nix-path = nixpkgs=/old\n"


def test_the_nix_tier_fails_instead_of_skipping_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: the Nix tier must run"):
        skip_nix_tier("<disko> not found")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="<disko> not found"):
        skip_nix_tier("<disko> not found")
