#!/usr/bin/env python3
"""Time and memory of `blankslate diff` on what a user can make deep: a chain of directories
with 250-character names (by default 3,000 deep, 750 KB of path at the bottom) in the root.

Run by hand as root (not a test; the tests assert the bounded sizes, not times):

    sudo python3 bench/deep.py [--depth 3000]

It lays out the subvolumes on a sparse image attached to a loop device, makes the chain in
root from held directory descriptors, and runs `diff --format json` through the tree search,
then `diff --root` (the walk), each once, printing the wall time, the peak memory of the
child (ru_maxrss) and the size of the report. Before #28 the same chain cost 24 s, 6.1 GB and
a 1.1 GB report. Everything it mounts or attaches is removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import blankslate_env, btrfs_image, default_plan, sh


def chain(base: Path, depth: int) -> None:
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)


def timed(args: list[str], cwd: Path) -> tuple[float, int, int]:
    """Seconds, peak memory of the child in MiB, bytes of its output."""
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-m", "blankslate", "diff", *args],
        cwd=cwd, capture_output=True, check=False, env=blankslate_env(),
    )  # fmt: skip
    elapsed = time.monotonic() - started
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) // 1024
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr.decode(errors="replace")[-2000:])
    return elapsed, peak, len(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=3000)
    options = parser.parse_args()
    with btrfs_image("deep", "2G") as image:
        work, device, top = image.work, image.device, image.top
        (top / "root" / "srv").mkdir()
        chain(top / "root" / "srv", options.depth)
        sh("btrfs", "filesystem", "sync", top)
        plan = work / "plan.json"
        plan.write_text(json.dumps(default_plan(work)))
        runs = {
            "tree search": ["--plan", str(plan), "--device", device, "--format", "json"],
            "walk": ["--plan", str(plan), "--root", str(top / "root"), "--format", "json"],
        }
        for label, args in runs.items():
            seconds, peak, size = timed(args, work)
            print(f"{label:<12} {seconds:6.2f} s  {peak:6d} MiB  report {size} bytes")


if __name__ == "__main__":
    main()
