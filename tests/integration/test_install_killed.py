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
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

from ..support.loops import attached_loops, detach_loops
from ..support.runner import quiet_blankslate as blankslate

SHIM = """#!/bin/bash
# Only the mounts below $KILL_UNDER count (the layout's, or install's own scratch mounts).
[[ ${@: -1} == "$KILL_UNDER"* ]] || exec "$REAL_MOUNT" "$@"
n=$(( $(cat "$KILL_COUNTER" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$KILL_COUNTER"
if [[ $KILL_WHEN == before && $n == "$KILL_AT" ]]; then kill -9 "$PPID"; exit 137; fi
"$REAL_MOUNT" "$@"
status=$?
if [[ $KILL_WHEN == after && $n == "$KILL_AT" ]]; then kill -9 "$PPID"; fi
exit $status
"""


def scratch_mounts(loops: list[str]) -> list[str]:
    """blankslate's own temporary mounts (blankslate.<pid>.* in the temporary directory) of
    these loop devices (other tests may run beside this one)."""
    table = subprocess.run(
        ["findmnt", "--raw", "--noheadings", "--output", "TARGET,SOURCE"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    prefix = f"{tempfile.gettempdir()}/blankslate."
    return [
        target
        for target, source in (line.split(" ", 1) for line in table.splitlines())
        if target.startswith(prefix) and any(source.startswith(loop) for loop in loops)
    ]


@pytest.mark.parametrize(
    ("where", "when", "at"),
    [
        ("layout", "after", 1),
        ("layout", "after", 3),
        ("layout", "after", 5),
        ("layout", "before", 2),
        ("scratch", "after", 1),  # its temporary mount of the top level, to make subvolumes
    ],
    ids=str,
)
def test_an_install_killed_at_a_mount_leaves_nothing_after_unmount(
    where: str, when: str, at: int, tmp_path: Path, helpers: ModuleType
) -> None:
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
        "KILL_UNDER": str(root) if where == "layout" else f"{tempfile.gettempdir()}/blankslate.",
    }
    try:
        killed = blankslate(
            "install", "--image", str(image), "--root", str(root), "--yes",
            "--no-passwords", "--no-nixos-install", env=env,
        )  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        made = helpers.mounts_under(root)
        if where == "layout":
            assert len(made) == (at if when == "after" else at - 1)
        else:
            assert made == [] and scratch_mounts(attached_loops(image)) != []
        loops = attached_loops(image)

        taken_down = blankslate("unmount", "--root", str(root))
        assert taken_down.returncode == 0, taken_down.stderr
        assert helpers.mounts_under(root) == []
        assert scratch_mounts(loops) == []
        assert attached_loops(image) == []
    finally:
        helpers.unmount_all_under(root)
        for scratch in scratch_mounts(attached_loops(image)):
            helpers.unmount(scratch)
        detach_loops(image)
