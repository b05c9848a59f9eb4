"""Where a path lies: the one place for containment and normalisation.

Paths here are absolute strings as the plan and the kernel's mount table write them ("/var/lib",
never "/var/lib/"); `normalise` makes a user's path so. Containment is by whole components:
"/persistent" is not under "/persist".
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path


def normalise(path: str) -> str:
    """An absolute path without `.`, `..`, doubled or trailing slashes: "/var//lib/./x/" ->
    "/var/lib/x". `..` is resolved textually, as the plan's paths are meant."""
    normal = posixpath.normpath(path)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")  # normpath keeps a leading "//" (POSIX allows it)
    return normal


def is_under(parent: str, path: str, *, strictly: bool = False) -> bool:
    """Whether `path` is `parent` (unless `strictly`) or lies below it; "/" holds every path."""
    parent = parent.rstrip("/")
    if path.rstrip("/") == parent or (not parent and path == "/"):
        return not strictly
    return path.startswith(parent + "/")


def nested(first: str, second: str) -> bool:
    """Whether one of the two lies under the other (or they are the same)."""
    return is_under(first, second) or is_under(second, first)


def inside(root: Path, path: str) -> Path:
    """The absolute `path` of the system whose root is `root` (nixos-install's --root), as
    seen from here: inside(Path("/mnt"), "/persist") -> /mnt/persist."""
    return root / path.lstrip("/")


def resolves_under(path: Path | str, directory: Path | str) -> bool:
    """Whether `path`, its symlinks resolved, stays in `directory` (resolved too)."""
    return is_under(os.path.realpath(directory), os.path.realpath(path))
