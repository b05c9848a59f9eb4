"""The bash completion script, sourced in a real bash, completes through the real program.

`blankslate` on PATH is this checkout's package, run by the interpreter of the tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not found")


def complete(tmp_path: Path, *words: str) -> list[str]:
    """COMPREPLY after bash completes the last of `words` (`""`: a new word)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    shim = bindir / "blankslate"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m blankslate "$@"\n')
    shim.chmod(0o755)
    script = subprocess.run(
        [str(shim), "completion", "bash"], capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "blankslate.bash").write_text(script)
    quoted = " ".join(f"'{word}'" for word in words)
    program = f"""
        source {tmp_path / "blankslate.bash"}
        COMP_WORDS=(blankslate {quoted}); COMP_CWORD={len(words)}
        _blankslate_completion blankslate
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        env={"PATH": f"{bindir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_bash_completes_commands_options_and_choices(tmp_path: Path) -> None:
    assert complete(tmp_path, "re") == ["recover"]
    assert complete(tmp_path, "diff", "--fail") == ["--fail-on-lost"]
    assert complete(tmp_path, "diff", "--format", "") == ["text", "json", "yaml"]
    assert complete(tmp_path, "completion", "") == ["bash", "zsh", "fish"]
