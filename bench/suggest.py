#!/usr/bin/env python3
"""Time of `diff --suggest`'s grouping alone (`suggest.group`) on reports made up in memory:
no root, no scan, so the grouping's own cost shows, and no root privileges are needed.

    python3 bench/suggest.py [--entries 1000000] [--repeat 3] [--shapes NAME ...]
                             [--scripts DIR ...]

Each shape is a report of about --entries entries, in path order:

- bench: what bench/scale.py's root gives `diff --suggest` (100 files to a directory, one
  directory in ten holding an ignored symlink, so its files are suggested one by one);
- mixed: every directory holds an ignored symlink (each file suggested one by one);
- flat: one lost directory of files, with one persisted entry at its end;
- ignored: one ignored tree, with a lost file before and after it;
- hidden: one tree hidden beneath a mount;
- home: one user's home, its directories whole.

For each shape, each package directory of --scripts (repeatable; default: this checkout's)
groups it in a child process, taking turns, --repeat times; printed are the median time of
each and whether they all printed the same text and JSON (a digest of both). The owners and
modes are made up (no lstat). The machine's load weighs on every number.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PLAN = REPO / "tests" / "plans" / "suggest.json"
LOST = ("lost", "")
IGNORED = ("ignored", "bench [**/link *]")

Entry = tuple[str, str, int, str, str]


def tree(count: int, mixed_every: int) -> list[Entry]:
    """/srv/dNN/eNNNNN/file N, 100 entries to a directory: one in `mixed_every` holds a link
    that is ignored."""
    entries: list[Entry] = [("/srv", "dir", 0, *LOST)]
    for index in range(count // 100):
        directory = f"/srv/d{index // 100:02d}/e{index:05d}"
        if index % 100 == 0:
            entries.append((directory.rpartition("/")[0], "dir", 0, *LOST))
        entries.append((directory, "dir", 0, *LOST))
        entries.extend((f"{directory}/file {n}", "file", 1, *LOST) for n in range(98))
        if index % mixed_every == 0:
            entries.append((f"{directory}/link {index}", "symlink", 0, *IGNORED))
    return entries


def below(top: str, count: int, status: tuple[str, str]) -> list[Entry]:
    """`count` entries below `top`: a directory, then 99 files in it, and so on."""
    return [
        (f"{top}/d{n // 100:05d}", "dir", 0, *status)
        if n % 100 == 0
        else (f"{top}/d{n // 100:05d}/f{n:07d}", "file", 1, *status)
        for n in range(count)
    ]


def hidden_reason(cover: str) -> str:
    from blankslate.classify import hidden_reason as reason

    return reason(cover)


SHAPES: dict[str, Callable[[int], list[Entry]]] = {
    "bench": lambda count: tree(count, 10),
    "mixed": lambda count: tree(count, 1),
    "flat": lambda count: [
        ("/tmp", "dir", 0, *LOST),
        ("/tmp/x", "dir", 0, *LOST),
        *((f"/tmp/x/f{n:07d}", "file", 1, *LOST) for n in range(count)),
        ("/tmp/x/zz", "file", 0, "persisted", "x"),
    ],
    "ignored": lambda count: [
        ("/srv", "dir", 0, *LOST),
        ("/srv/a", "file", 0, *LOST),
        ("/srv/cache", "dir", 0, *IGNORED),
        *below("/srv/cache", count, IGNORED),
        ("/srv/z", "file", 0, *LOST),
    ],
    "hidden": lambda count: [
        ("/var", "dir", 0, "managed", "x"),
        ("/var/lib", "dir", 0, "managed", "x"),
        ("/var/lib/nixos", "dir", 0, "persisted", "x"),
        *below("/var/lib/nixos", count, ("lost", hidden_reason("the bind mount of x"))),
    ],
    "home": lambda count: [
        ("/home", "dir", 0, *LOST),
        ("/home/alice", "dir", 0, *LOST),
        *below("/home/alice", count, LOST),
    ],
}


def child(shape: str, count: int) -> dict[str, Any]:
    """In the child (PYTHONPATH: the package to time): the time of one grouping."""
    import gc

    from blankslate import plan, suggest

    the_plan = plan.from_json(json.loads(PLAN.read_text()))
    entries = sorted(SHAPES[shape](count))
    gc.disable()  # as the audit leaves it for the scan
    start = time.perf_counter()
    found = suggest.group(entries, the_plan, lambda _path: (0, 0, 0o40755), str, str)
    seconds = time.perf_counter() - start
    text = suggest.render_nix(found) + json.dumps(suggest.to_json(found))
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
    return {"entries": len(entries), "seconds": seconds, "digest": digest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument("--scripts", type=Path, action="append", default=[])
    parser.add_argument("--child", choices=sorted(SHAPES), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child is not None:
        print(json.dumps(child(options.child, options.entries)))
        return
    scripts = [path.resolve() for path in options.scripts] or [REPO / "scripts"]
    for shape in options.shapes:
        seconds: dict[Path, list[float]] = {path: [] for path in scripts}
        digests: set[str] = set()
        entries = 0
        for _ in range(options.repeat):
            for path in scripts:
                command = [sys.executable, __file__, "--child", shape]
                command += ["--entries", str(options.entries)]
                environment = {**os.environ, "PYTHONPATH": str(path)}
                printed = subprocess.run(
                    command, env=environment, capture_output=True, text=True, check=True
                ).stdout
                result = json.loads(printed)
                seconds[path].append(result["seconds"])
                digests.add(result["digest"])
                entries = result["entries"]
        times = "  ".join(f"{statistics.median(seconds[path]):.3f} s" for path in scripts)
        same = "same output" if len(digests) == 1 else "OUTPUTS DIFFER"
        print(f"{shape:8} {entries:>9} entries  {times}  ({same})", flush=True)
    if len(scripts) > 1:
        print("columns: " + "  ".join(str(path) for path in scripts))


if __name__ == "__main__":
    main()
