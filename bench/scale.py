#!/usr/bin/env python3
"""Time and peak memory of `blankslate diff` on a root of 1,000,000 entries, in every output
format, and its speed against the find-new pipeline on a root of 100,000 files.

Run by hand as root (not a test; the tests assert that the writers' memory does not grow with
the entries, not times):

    sudo python3 bench/scale.py [--entries 1000000] [--files 100000] [--repeat 3]
                                [--scripts DIR ...]

On a sparse image attached to a loop device it lays out the subvolumes, fills root with
--entries entries (files of 0 to 199 bytes, 100 to a directory, a symlink every 1,000, as
bench/diff.py does), and runs `python3 -m blankslate diff --device DEV` in each format
(`--format json`, `--format yaml`, text, text `--full`, and json `--full`), then
`diff --suggest` (text and json, with the symlinks ignored so that about a tenth of the files
are suggested one by one; --only-suggest: these alone), --repeat times each after one
warm-up, printing the median wall time and the largest peak RSS of the child (wait4's
ru_maxrss of that process alone), against the goal (<= 3 s, <= 200 MB).
Then, on a second image with --files files, the median of --repeat rounds of each format and
of the find-new pipeline of bench/diff.py, taking turns, and their ratio (goal >= 10x).

--scripts (repeatable) names the package directories to run (default: this checkout's), so
that one run compares an older checkout's numbers with this one's on the same roots. Their
bytecode is compiled first, as an installed package's is.
The machine's load weighs on every number: run it on an otherwise idle machine.
Everything it mounts or attaches is removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from common import REPO, Image, blankslate_env, btrfs_image, default_plan, measured, sh
from diff import PIPELINE, populate, timed_together

FORMATS = {
    "json": ["--format", "json"],
    "yaml": ["--format", "yaml"],
    "text": [],
    "text --full": ["--full"],
    "json --full": ["--format", "json", "--full"],
}
# `diff --suggest` on the same root, with the symlinks ignored (`**/link *`): one directory
# in ten then holds an entry that is not lost, so its 100 files are suggested one by one
# (about 100,000 at 1,000,000 entries; a group shows its first 500 and counts the rest).
SUGGEST = {
    "suggest": ["--suggest"],
    "suggest json": ["--suggest", "--format", "json"],
}
SUGGEST_IGNORE = "ignore:\n  - pattern: '**/link *'\n    reason: bench\n"
# The goals: 3 s, 200 MB (decimal: 190.7 MiB), 10 times the pipeline's speed.
GOAL_SECONDS, GOAL_MB, GOAL_RATIO = 3.0, 200.0, 10.0


def diff_args(image: Image, plan_file: Path, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "blankslate", "--quiet", "diff",
        "--plan", str(plan_file), "--device", image.device, *extra,
    ]  # fmt: skip


def env_for(scripts: Path) -> dict[str, str]:
    return {**blankslate_env(), "PYTHONPATH": str(scripts)}


def compiled(scripts: Path) -> None:
    """Bytecode for every module, as an installed package has it: otherwise each run under
    PYTHONDONTWRITEBYTECODE (or with a read-only checkout) compiles what changed again."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(scripts)], check=True)


def filled(image: Image, count: int) -> Path:
    print(f"populating {count} files ...", file=sys.stderr, flush=True)
    populate(image.top / "root", count)
    sh("btrfs", "filesystem", "sync", image.top)
    plan_file = image.work / "plan.json"
    plan_file.write_text(json.dumps(default_plan(image.work)))
    return plan_file


def at_scale(
    image: Image, plan_file: Path, scripts: list[Path], repeat: int, only_suggest: bool = False
) -> None:
    """Each checkout in each format (and `diff --suggest`): median wall time and peak RSS."""
    ignore_file = image.work / "suggest-ignore.yaml"
    ignore_file.write_text(SUGGEST_IGNORE)
    suggest = {name: [*extra, "--ignore-file", str(ignore_file)] for name, extra in SUGGEST.items()}
    formats = suggest if only_suggest else {**FORMATS, **suggest}
    for directory in scripts:
        env = env_for(directory)
        summary = subprocess.run(
            diff_args(image, plan_file, ["--format", "json"]),
            capture_output=True, text=True, check=True, cwd=image.work, env=env,
        ).stdout  # fmt: skip
        seen = json.loads(summary)["summary"]
        print(f"{directory}: blankslate sees {sum(seen.values())} entries: {seen}")
        for name, extra in formats.items():
            args = diff_args(image, plan_file, extra)
            measured(args, cwd=image.work, env=env)  # warm
            runs = [measured(args, cwd=image.work, env=env) for _ in range(repeat)]
            if any(run.status != 0 for run in runs):
                raise SystemExit(f"{name}: exit status {[run.status for run in runs]}")
            seconds = statistics.median(run.seconds for run in runs)
            peak = max(run.peak_mib for run in runs)
            print(
                f"  {name:<12} {seconds:6.2f} s (goal <= {GOAL_SECONDS:.0f} s)  "
                f"{peak:7.1f} MiB = {peak * 2**20 / 1e6:5.1f} MB peak RSS "
                f"(goal <= {GOAL_MB:.0f} MB)"
            )


def against_pipeline(image: Image, plan_file: Path, scripts: list[Path], repeat: int) -> None:
    """Each checkout in each format, taking turns with the find-new pipeline."""
    runs: dict[str, Callable[[], None]] = {}
    for index, directory in enumerate(scripts):
        env = env_for(directory)
        for name, extra in FORMATS.items():
            args = diff_args(image, plan_file, extra)

            def run(args: list[str] = args, env: dict[str, str] = env) -> None:
                subprocess.run(args, stdout=subprocess.DEVNULL, check=True, cwd=image.work, env=env)

            runs[f"{index}:{name}"] = run

    def pipeline() -> None:
        subprocess.run(
            ["bash", "-c", PIPELINE, "pipeline", str(image.top)],
            stdout=subprocess.DEVNULL,
            check=True,
        )

    results = timed_together({**runs, "pipeline": pipeline}, repeat)
    print(f"  pipeline     {results['pipeline'] * 1000:8.0f} ms")
    for index, directory in enumerate(scripts):
        print(f"{directory}:")
        for name in FORMATS:
            seconds = results[f"{index}:{name}"]
            print(
                f"  {name:<12} {seconds * 1000:8.0f} ms  pipeline / blankslate = "
                f"{results['pipeline'] / seconds:5.1f}x (goal >= {GOAL_RATIO:.0f}x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scripts", type=Path, action="append")
    parser.add_argument(
        "--only-suggest", action="store_true", help="at scale, time `diff --suggest` only"
    )
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (loop devices, mount)")
    scripts = [path.resolve() for path in options.scripts or [REPO / "scripts"]]
    for directory in scripts:
        compiled(directory)
    size = f"{max(4, options.entries // 100_000 * 2)}G"
    with btrfs_image("scale", size) as image:
        plan_file = filled(image, options.entries)
        print(f"== {options.entries} entries: wall time and peak RSS, median of {options.repeat}")
        at_scale(image, plan_file, scripts, options.repeat, options.only_suggest)
    if options.files:
        with btrfs_image("scale-pipeline", "8G") as image:
            plan_file = filled(image, options.files)
            print(f"== {options.files} files: against the find-new pipeline")
            against_pipeline(image, plan_file, scripts, options.repeat)


if __name__ == "__main__":
    main()
