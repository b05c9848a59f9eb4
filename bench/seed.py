#!/usr/bin/env python3
"""Speed of `blankslate seed` on a 1 GiB persisted directory, against `cp -a --reflink=never`.

Run by hand as root (not a test):

    sudo python3 bench/seed.py [--size-mib 1024] [--repeat 3] [--live btrfs|tmpfs] [--files N]

On a sparse image attached to a loop device it creates subvolumes root and persist, mounts
them as the live tree (`--live tmpfs`: a tmpfs instead, a root no snapshot holds, copied
through held fds) and persistPath (live/persist), writes --size-mib of random data in 64 MiB
files into /var/lib/big on the live tree (and, with --files N, N files of 2 kB in directories
of 100 into /var/lib/small), and times the median of --repeat runs of:

- blankslate: `python3 -m blankslate seed --yes` of each directory (btrfs: from a read-only
  snapshot, reflinks; tmpfs: through held fds);
- cp: `cp -a --reflink=never` of the same directory into persistPath;

each followed by `sync -f` so the data really is on the disk, and each copy removed before
the next run. Goal on btrfs: blankslate >= 10x faster; on tmpfs: no slower than cp by more
than half. Everything it mounts or attaches is removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import blankslate_env, btrfs_image, default_plan, sh

CHUNK = 64 << 20


def timed(run: Callable[[], None], reset: Callable[[], None], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        reset()
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    reset()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--live", choices=("btrfs", "tmpfs"), default="btrfs")
    parser.add_argument("--files", type=int, default=0, help="also N small files")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (loop devices, mount)")

    size_gib = max(4, 3 * args.size_mib // 1024 + 2)
    with btrfs_image("seed", f"{size_gib}G", ("root", "persist"), blank=False) as image:
        work, device = image.work, image.device
        live = work / "live"
        live.mkdir()
        if args.live == "tmpfs":
            sh("mount", "-t", "tmpfs", "-o", f"mode=755,size={size_gib}g", "bench-live", live)
        else:
            sh("mount", "-o", "subvol=root", device, live)
        persist = live / "persist"
        persist.mkdir()
        sh("mount", "-o", "subvol=persist", device, persist)
        big = live / "var/lib/big"
        big.mkdir(parents=True)
        print(f"writing {args.size_mib} MiB ...", file=sys.stderr)
        remaining, index = args.size_mib << 20, 0
        while remaining > 0:
            (big / f"chunk-{index:03d}").write_bytes(os.urandom(min(CHUNK, remaining)))
            remaining -= CHUNK
            index += 1
        os.chown(big, 1000, 100)
        trees = {"big": big}
        if args.files:
            small = live / "var/lib/small"
            for number in range(args.files):
                directory = small / f"d{number // 100}"
                directory.mkdir(parents=True, exist_ok=True)
                (directory / f"f{number}").write_bytes(b"x" * 2048)
            trees["small"] = small
        sh("sync", "-f", live)

        plan = default_plan(work)
        plan["persistPath"] = "/persist"  # as the system under --root sees it
        plan["users"] = [{"name": "admin", "hashedPasswordFile": "/persist/passwords/admin"}]
        plan["sshHostKeys"] = ["/persist/etc/ssh/ssh_host_ed25519_key"]
        env = blankslate_env()

        def reset() -> None:
            shutil.rmtree(persist / "var", ignore_errors=True)
            shutil.rmtree(persist / "cp-copy", ignore_errors=True)
            sh("sync", "-f", persist)

        results: dict[str, float] = {}
        for name, tree in trees.items():
            plan["persistence"] = {
                "directories": [{"directory": f"/var/lib/{tree.name}"}],
                "files": [],
            }
            plan_file = work / "plan.json"
            plan_file.write_text(json.dumps(plan))

            def seed(plan_file: Path = plan_file) -> None:
                subprocess.run(
                    [sys.executable, "-m", "blankslate", "--quiet", "seed", "--plan",
                     str(plan_file), "--root", str(live), "--yes"],
                    stdout=subprocess.DEVNULL, check=True, cwd=work, env=env,
                )  # fmt: skip
                sh("sync", "-f", persist)

            def cp(tree: Path = tree) -> None:
                sh("cp", "-a", "--reflink=never", tree, persist / "cp-copy")
                sh("sync", "-f", persist)

            results[f"{name} blankslate"] = timed(seed, reset, args.repeat)
            results[f"{name} cp"] = timed(cp, reset, args.repeat)
        print(f"live root: {args.live}")
        for name, seconds in results.items():
            print(f"{name:<16} {seconds * 1000:8.0f} ms")
        for name in trees:
            ratio = results[f"{name} cp"] / results[f"{name} blankslate"]
            print(f"{name}: cp / blankslate = {ratio:.2f}x")


if __name__ == "__main__":
    main()
