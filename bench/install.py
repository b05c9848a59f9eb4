"""Seconds per step of `blankslate install` on a 20 GiB sparse image (run by hand, as root).

    python3 bench/install.py [--runs 3]

Goal: the whole layout in <= 5 s on a 2-core machine (nixos-install is not part of it). It prints
each step's time, the total, and the total's ratio to that goal, each measured in this run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

GOAL_SECONDS = 5.0
STEP = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")
DONE = re.compile(r"^\s+ok \((\d+\.\d+)s\)$")


def blankslate(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "blankslate", "--quiet", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def one_install(workdir: Path) -> tuple[list[tuple[str, float]], float]:
    image, mountpoint = workdir / "bench.img", workdir / "root"
    started = os.times().elapsed
    try:
        result = blankslate(
            "install", "--image", str(image), "--root", str(mountpoint),
            "--yes", "--no-passwords", "--no-nixos-install",
        )  # fmt: skip
        total = os.times().elapsed - started
        if result.returncode != 0:
            raise SystemExit(f"install failed:\n{result.stderr}")
    finally:
        blankslate("unmount", "--root", str(mountpoint))
        image.unlink(missing_ok=True)
    steps: list[tuple[str, float]] = []
    title = ""
    for line in result.stderr.splitlines():
        if match := STEP.match(line):
            title = match.group(3)
        elif (match := DONE.match(line)) and title:
            steps.append((title, float(match.group(1))))
    return steps, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    if os.geteuid() != 0:
        raise SystemExit("run as root (loop devices, mkfs, mount)")
    per_step: dict[str, list[float]] = {}
    totals = []
    with tempfile.TemporaryDirectory(prefix="blankslate-bench.") as directory:
        for _ in range(runs):
            steps, total = one_install(Path(directory))
            totals.append(total)
            for title, seconds in steps:
                per_step.setdefault(title, []).append(seconds)
    for title, seconds in per_step.items():
        print(f"{statistics.median(seconds):7.2f} s  {title}")
    total = statistics.median(totals)
    print(f"{total:7.2f} s  total, median of {runs} (process start-up included)")
    print(f"ratio to the {GOAL_SECONDS:.0f} s goal: {total / GOAL_SECONDS:.2f} (<= 1.00 meets it)")


if __name__ == "__main__":
    main()
