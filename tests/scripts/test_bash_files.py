"""Every bash file of the repository stops at the first failure, also inside a command
substitution: a script that sets errexit sets inherit_errexit too (bash leaves errexit off
in `$(...)` otherwise, so a failed step there goes on silently)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ERREXIT = re.compile(r"^\s*set -o\b.*\berrexit\b", re.MULTILINE)
INHERIT = re.compile(r"^\s*shopt -s\b.*\binherit_errexit\b", re.MULTILINE)


def bash_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "*.bash", ".ci/run", ".ci/setup", ".ci/nix-sources"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [REPO / name for name in listed]


def test_every_script_that_sets_errexit_inherits_it() -> None:
    files = bash_files()
    assert len(files) >= 10
    lacking = [
        str(path.relative_to(REPO))
        for path in files
        if ERREXIT.search(text := path.read_text())
        and not INHERIT.search(text)
        # kept.bash is a library: its callers' shopt holds for it
        and path.name != "kept.bash"
    ]
    assert lacking == []
