#!/usr/bin/env python3
"""Speed of `blankslate diff` in every output format on a root of 100,000 files.

Run by hand as root (not a test):

    sudo python3 bench/diff.py [--files 100000] [--repeat 5]

On a sparse image attached to a loop device it lays out subvolumes root, root-blank (the
read-only blank) and persist, fills root with --files files (and a few symlinks), and times,
page cache warm, the median of --repeat rounds (each round runs each command once, in turn) of:

- blankslate in each output format: `python3 -m blankslate diff --device DEV` with
  `--format json`, `--format yaml`, text (the default, trees of lost entries collapsed) and
  text `--full` (every entry a line); interpreter start-up, top-level mount and unmount
  included;
- pipeline: the classic find-new script, written here from its description: `btrfs subvolume
  find-new` since the blank's generation, keep the path column, sort, de-duplicate, then drop
  symlinks and directories with a per-path test;
- floor: `find ROOT -printf` of type, size and path, the cost of reading the metadata at all.

Goals: blankslate >= 5x faster than the pipeline in every format, and <= 3x the floor.
Everything it mounts or attaches is removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import blankslate_env, btrfs_image, default_plan, sh

PIPELINE = r"""
set -o nounset -o pipefail
top=$1
old=$(btrfs subvolume find-new "$top/root-blank" 9999999)
old=${old#transid marker was }
btrfs subvolume find-new "$top/root" "$old" |
  sed '$d' |
  cut -f17- -d' ' |
  sort |
  uniq |
  while read -r path; do
    if [ -L "$top/root/$path" ]; then
      :
    elif [ -d "$top/root/$path" ]; then
      :
    else
      printf '%s\n' "$path"
    fi
  done
"""


def populate(root: Path, files: int) -> None:
    per_dir = 100
    for i in range(files):
        directory = root / "srv" / f"d{i // 10000:02d}" / f"e{i // per_dir:05d}"
        if i % per_dir == 0:
            directory.mkdir(parents=True)
        with open(directory / f"file {i}", "wb") as handle:
            handle.write(b"x" * (i % 200))
        if i % 1000 == 0:
            (directory / f"link {i}").symlink_to(f"/nix/store/{i:032d}-x")


def timed_together(runs: dict[str, Callable[[], None]], repeat: int) -> dict[str, float]:
    """The median time of each run. The runs take turns, one of each per round, so that a
    machine that gets slower or faster meanwhile weighs on all of them alike."""
    for run in runs.values():
        run()  # warm the page cache and the dentry cache
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (loop devices, mount)")

    with btrfs_image("diff", "8G") as image:
        work, device, top = image.work, image.device, image.top
        print(f"populating {args.files} files ...", file=sys.stderr)
        populate(top / "root", args.files)
        sh("btrfs", "filesystem", "sync", top)

        plan_file = work / "plan.json"
        plan_file.write_text(json.dumps(default_plan(work)))
        env = blankslate_env()
        base_args = [
            sys.executable,
            "-m",
            "blankslate",
            "--quiet",
            "diff",
            "--plan",
            str(plan_file),
            "--device",
            device,
        ]
        formats = {
            "json": ["--format", "json"],
            "yaml": ["--format", "yaml"],
            "text": [],
            "text --full": ["--full"],
        }

        def blankslate(extra: list[str]) -> Callable[[], None]:
            def run() -> None:
                subprocess.run(
                    [*base_args, *extra], stdout=subprocess.DEVNULL, check=True, cwd=work, env=env
                )

            return run

        def pipeline() -> None:
            subprocess.run(
                ["bash", "-c", PIPELINE, "pipeline", str(top)],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        def floor() -> None:
            subprocess.run(
                ["find", str(top / "root"), "-printf", "%y %s %p\\n"],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        document = json.loads(
            subprocess.run(
                [*base_args, "--format", "json"],
                capture_output=True,
                text=True,
                check=True,
                cwd=work,
                env=env,
            ).stdout
        )
        seen = sum(document["summary"].values())  # the listing collapses what is all lost
        print(f"blankslate sees {seen} entries: {document['summary']}")

        runs = {name: blankslate(extra) for name, extra in formats.items()}
        results = timed_together({**runs, "pipeline": pipeline, "floor": floor}, args.repeat)
        for name, seconds in results.items():
            print(f"{name:<12} {seconds * 1000:8.0f} ms")
        for name in formats:
            speedup = results["pipeline"] / results[name]
            over_floor = results[name] / results["floor"]
            print(
                f"{name:<12} pipeline / blankslate = {speedup:5.1f}x (goal >= 5x), "
                f"blankslate / floor = {over_floor:4.1f}x (goal <= 3x)"
            )


if __name__ == "__main__":
    main()
