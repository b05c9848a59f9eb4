"""Loop devices of an image file (integration tier, root only): which are attached, and the
take-down every test that installs onto an image runs, even on failure."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Protocol

from .runner import quiet_blankslate


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
