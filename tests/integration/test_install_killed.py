"""`install` killed (SIGKILL) right before or right after one of its mounts: `unmount` then
takes down everything it mounted and detaches the image, and nothing stays behind.

A stand-in `mount` first on PATH runs the real one and kills its caller at the Nth mount below the
target root, the
way the rollback tests inject SIGKILL around each external command."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SHIM = """#!/bin/bash
# Only the mounts of the layout below the target root count (not install's own scratch mounts).
[[ ${@: -1} == "$KILL_UNDER"* ]] || exec "$REAL_MOUNT" "$@"
n=$(( $(cat "$KILL_COUNTER" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$KILL_COUNTER"
if [[ $KILL_WHEN == before && $n == "$KILL_AT" ]]; then kill -9 "$PPID"; exit 137; fi
"$REAL_MOUNT" "$@"
status=$?
if [[ $KILL_WHEN == after && $n == "$KILL_AT" ]]; then kill -9 "$PPID"; fi
exit $status
"""


def blankslate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blankslate", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def attached_loops(image: Path) -> list[str]:
    found = subprocess.run(
        ["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.split()


@pytest.mark.parametrize(
    ("when", "at"), [("after", 1), ("after", 3), ("after", 5), ("before", 2)], ids=str
)
def test_an_install_killed_at_a_mount_leaves_nothing_after_unmount(
    when: str, at: int, tmp_path: Path, helpers
) -> None:  # type: ignore[no-untyped-def]
    real_mount = shutil.which("mount")
    assert real_mount is not None
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "mount").write_text(SHIM)
    (shims / "mount").chmod(0o755)
    image, root = tmp_path / "disk.img", tmp_path / "target"
    env = {
        **os.environ,
        "PATH": f"{shims}:{os.environ['PATH']}",
        "REAL_MOUNT": real_mount,
        "KILL_COUNTER": str(tmp_path / "counter"),
        "KILL_WHEN": when,
        "KILL_AT": str(at),
        "KILL_UNDER": str(root),
    }
    try:
        killed = blankslate(
            "install", "--image", str(image), "--root", str(root), "--yes",
            "--no-passwords", "--no-nixos-install", env=env,
        )  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        made = helpers.mounts_under(root)
        assert len(made) == (at if when == "after" else at - 1)

        taken_down = blankslate("unmount", "--root", str(root))
        assert taken_down.returncode == 0, taken_down.stderr
        assert helpers.mounts_under(root) == []
        assert attached_loops(image) == []
    finally:
        helpers.unmount_all_under(root)
        for loop in attached_loops(image):
            subprocess.run(["losetup", "--detach", loop], check=False)
