"""Loop devices of an image file (integration tier, root only): which are attached, and the
take-down every test that installs onto an image runs, even on failure."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Protocol

from .runner import quiet_blankslate

# The test run's id: the pid of the process pytest started in, passed on to pytest-xdist's
# workers through the environment (tests/conftest.py sets it before they start).
RUN_VARIABLE = "BLANKSLATE_TEST_RUN"


def run_id() -> str:
    return os.environ.setdefault(RUN_VARIABLE, str(os.getpid()))


def image_prefix() -> str:
    """What every image file of this run starts with, so that the end-of-run check never blames
    the loop devices of another pytest run at the same time."""
    return f"blankslate-itest-{run_id()}-"


def leftover_loops() -> list[str]:
    """The loop devices still attached to an image of this run: "NAME (BACK-FILE)"."""
    listed = subprocess.run(
        ["losetup", "-l", "-n", "--raw", "-O", "NAME,BACK-FILE"],
        capture_output=True,
        text=True,
        check=False,
    )
    leftovers = []
    for line in listed.stdout.splitlines():
        name, _, back = line.partition(" ")
        if image_prefix() in back:
            leftovers.append(f"{name} ({back})")
    return leftovers


class Unmounter(Protocol):
    """What the take-down needs of the integration tier's `helpers` (its conftest module)."""

    def unmount_all_under(self, directory: str | os.PathLike[str]) -> list[str]: ...


def attached_loops(image: Path) -> list[str]:
    """The loop devices `image` is attached to now (none: [])."""
    found = subprocess.run(
        ["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.split()


def detach_loops(image: Path) -> None:
    """Detach every loop device of `image` (a failure to detach is left to the caller's check)."""
    for loop in attached_loops(image):
        subprocess.run(["losetup", "--detach", loop], check=False)


def take_down(image: Path, mountpoint: Path, helpers: Unmounter) -> None:
    """After an install of `image` on `mountpoint`: `blankslate unmount`, then whatever is
    still mounted under `mountpoint`, then the image's loop devices."""
    quiet_blankslate("unmount", "--root", str(mountpoint))
    helpers.unmount_all_under(mountpoint)
    detach_loops(image)
