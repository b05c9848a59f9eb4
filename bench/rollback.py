#!/usr/bin/env python3
"""Boot cost of modules/rollback/btrfs-rollback.bash: empty root vs. a big root.

Run by hand as root (not a test):

    sudo python3 bench/rollback.py [--files 100000] [--repeat 5]

On a sparse image attached to a loop device it times the script (KEEP_DAYS=30, the boot
path: move + snapshot, nothing old enough to prune) on an empty root and on a root holding
--files files plus nested subvolumes three deep, and prints the milliseconds of each (median
of --repeat runs, page cache dropped and everything committed before each) and their ratio;
the goal is a ratio <= 1.5. It also prints, for information, the cost of pruning all those
old roots at once (KEEP_DAYS=0), which walks the trees holding nested subvolumes.
Everything it mounts or attaches is removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import btrfs_image, sh

SCRIPT = Path(__file__).resolve().parents[1] / "modules" / "rollback" / "btrfs-rollback.bash"


def cold_cache() -> None:
    """Everything committed, background writeback settled, page cache dropped: as at boot."""
    os.sync()
    time.sleep(2)
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def time_rollback(device: str, keep_days: int, run_dir: Path) -> float:
    cold_cache()
    env = {**os.environ, "TMPDIR": str(run_dir)}
    t = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(SCRIPT), device, "root", "root-blank", "old_roots", str(keep_days), "0"],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = (time.perf_counter() - t) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"rollback failed:\n{proc.stdout}{proc.stderr}")
    return elapsed


def populate(root: Path, files: int) -> None:
    per_dir = 1000
    payload = b"x" * 100
    for i in range(files):
        d = root / "var" / "lib" / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        with open(d / f"file {i}", "wb") as f:
            f.write(payload)
    level = root / "var" / "lib" / "machines"
    level.mkdir(parents=True)
    for name in ("one", "two\nlevels", "three deep"):
        level = level / name
        sh("btrfs", "subvolume", "create", level)
        for j in range(100):
            (level / f"f{j}").write_bytes(payload)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--image-size", default="8G")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/rollback.py: run as root (loop devices, mount)", file=sys.stderr)
        return 2

    with btrfs_image("rollback", args.image_size) as image:
        device, top, run_dir = image.device, image.top, image.work / "run"
        run_dir.mkdir()
        time_rollback(device, 30, run_dir)  # warm-up: creates old_roots
        # interleaved, so that drift (background work, caches) hits both cases alike
        empty, big = [], []
        for _ in range(args.repeat):
            empty.append(time_rollback(device, 30, run_dir))
            t = time.perf_counter()
            populate(top / "root", args.files)
            fill = time.perf_counter() - t
            big.append(time_rollback(device, 30, run_dir))
            print(f"  (filled the root with {args.files} files in {fill:.1f} s)")
        prune = time_rollback(device, 0, run_dir)

        e, b = statistics.median(empty), statistics.median(big)
        print(f"empty root:            {e:8.1f} ms  (runs: {', '.join(f'{x:.1f}' for x in empty)})")
        print(
            f"root with {args.files} files + 3 nested subvolumes:"
            f" {b:8.1f} ms  (runs: {', '.join(f'{x:.1f}' for x in big)})"
        )
        print(f"ratio big/empty:       {b / e:8.2f}  (goal <= 1.5)")
        n_old = args.repeat * 2 + 1  # warm-up, empty and big runs
        print(f"pruning all {n_old} old roots (KEEP_DAYS=0): {prune:8.1f} ms (off the boot path)")
        return 0 if b / e <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
