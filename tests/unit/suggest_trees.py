"""Suggestions of generated roots, for the golden test of the streamed `diff --suggest`
(test_suggest_stream.py).

`documents(seed, count)` groups the lost entries of `audit_trees.generated_report(seed,
count)` with the plan of tests/plans/suggest.json and an observation made up from each path
(some owners, some modes, some entries gone since the scan), and renders the Nix text and the
JSON. The same seed gives the same documents, so `golden/suggest-*` holds what they were
before the grouping streamed. Run as a script with the package to capture (PYTHONPATH) to
write them again: python -m tests.unit.suggest_trees DIRECTORY
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

from blankslate import plan, suggest
from blankslate.classify import EntryTuple

from .audit_trees import generated_report

PLAN = Path(__file__).resolve().parents[1] / "plans" / "suggest.json"
NAMES = {0: "root", 990: "web", 1000: "alice", 100: "users", 991: "www"}
# (seed, count): small enough that no group holds more entries than a group shows.
CASES = ((7, 400), (8, 400), (11, 150), (12, 300), (13, 600))
EXTRA: tuple[EntryTuple, ...] = (
    ("/home/alice", "dir", 0, "lost", ""),
    ("/home/alice/.bash_history", "file", 3, "lost", ""),
    ("/home/alice/.cache", "dir", 0, "lost", ""),
    ("/home/alice/.cache/x", "file", 0, "lost", ""),
    ("/home/bob", "dir", 0, "lost", ""),
    ("/root/.viminfo", "file", 0, "lost", ""),
    ("/var/lib/app", "symlink", 0, "lost", ""),
    ("/var/lib/private/app", "dir", 0, "lost", ""),
    ("/var/lib/private/app/db", "file", 0, "lost", ""),
    ("/var/lib/web", "dir", 0, "lost", ""),
    ("/var/lib/web-uploads", "dir", 0, "lost", ""),
    ("/var/lib/web-uploads/a b", "file", 0, "lost", ""),
    ("/var/lib/web/s", "dir", 0, "persisted", "x"),
    ("/var/cache/private/app", "dir", 0, "lost", ""),
)


def entries(seed: int, count: int) -> list[EntryTuple]:
    report = generated_report(seed, count)
    known = {entry[0] for entry in report.entries}
    return sorted([*report.entries, *(e for e in EXTRA if e[0] not in known)])


def observe(path: str) -> tuple[int, int, int] | None:
    """An owner and mode made up from the path; None (gone) for one path in 23."""
    crc = zlib.crc32(path.encode("utf-8", "surrogateescape"))
    if crc % 23 == 0:
        return None
    ids = (0, 990, 1000, 4242)
    return ids[crc % 4], ids[(crc >> 4) % 4], 0o40000 | (0o700, 0o750, 0o755, 0o1777)[crc % 4]


def name(number: int) -> str:
    return NAMES.get(number, str(number))


def documents(seed: int, count: int) -> dict[str, str]:
    the_plan = plan.from_json(json.loads(PLAN.read_text()))
    found = suggest.group(entries(seed, count), the_plan, observe, name, name)
    return {
        "nix": suggest.render_nix(found),
        "json": json.dumps(suggest.to_json(found), indent=2) + "\n",
    }


def main(directory: str) -> None:
    for seed, count in CASES:
        for suffix, text in documents(seed, count).items():
            path = Path(directory) / f"suggest-{seed}.{suffix}"
            path.write_bytes(text.encode("utf-8", "surrogateescape"))


if __name__ == "__main__":
    main(sys.argv[1])
