#!/usr/bin/env python3
"""Speed of `blankslate seed` on a 1 GiB persisted directory, against `cp -a --reflink=never`.

Run by hand as root (not a test):

    sudo python3 bench/seed.py [--size-mib 1024] [--repeat 3]

On a sparse image attached to a loop device it creates subvolumes root and persist, mounts
them as the live tree and persistPath, writes --size-mib of random data in 64 MiB files into
/var/lib/big on the live tree, and times the median of --repeat runs of:

- blankslate: `python3 -m blankslate seed --yes` of /var/lib/big (reflinks: same btrfs);
- cp: `cp -a --reflink=never` of the same directory into persistPath;

each followed by `sync -f` so the data really is on the disk, and each copy removed before
the next run. Goal: blankslate >= 10x faster. Everything it mounts or attaches is removed at the
end, whatever happens.
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
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (loop devices, mount)")

    size_gib = max(4, 3 * args.size_mib // 1024 + 2)
    with btrfs_image("seed", f"{size_gib}G", ("root", "persist"), blank=False) as image:
        work, device = image.work, image.device
        live, persist = work / "live", work / "persist"
        live.mkdir()
        persist.mkdir()
        sh("mount", "-o", "subvol=root", device, live)
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
        sh("sync", "-f", live)

        plan = default_plan(work)
        plan["persistPath"] = str(persist)
        plan["users"] = [{"name": "admin", "hashedPasswordFile": f"{persist}/passwords/admin"}]
        plan["sshHostKeys"] = [f"{persist}/etc/ssh/ssh_host_ed25519_key"]
        plan["persistence"] = {"directories": [{"directory": "/var/lib/big"}], "files": []}
        plan_file = work / "plan.json"
        plan_file.write_text(json.dumps(plan))
        env = blankslate_env()

        def reset() -> None:
            shutil.rmtree(persist / "var", ignore_errors=True)
            shutil.rmtree(persist / "cp-copy", ignore_errors=True)
            sh("sync", "-f", persist)

        def seed() -> None:
            subprocess.run(
                [sys.executable, "-m", "blankslate", "--quiet", "seed", "--plan", str(plan_file),
                 "--root", str(live), "--yes"],
                stdout=subprocess.DEVNULL, check=True, cwd=work, env=env,
            )  # fmt: skip
            sh("sync", "-f", persist)

        def cp() -> None:
            sh("cp", "-a", "--reflink=never", big, persist / "cp-copy")
            sh("sync", "-f", persist)

        results = {
            "blankslate": timed(seed, reset, args.repeat),
            "cp": timed(cp, reset, args.repeat),
        }
        for name, seconds in results.items():
            print(f"{name:<11} {seconds * 1000:8.0f} ms")
        print(f"cp / blankslate = {results['cp'] / results['blankslate']:.1f}x (goal >= 10x)")


if __name__ == "__main__":
    main()
