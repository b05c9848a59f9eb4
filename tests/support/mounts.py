"""findmnt as blankslate runs it, and fakes of its output for pytest-subprocess: unit tests
register `FINDMNT` with `stdout=findmnt_json(...)`."""

from __future__ import annotations

import json

# The mount table as blankslate reads it (mounts.findmnt_cmd() without a target or source),
# written out here so that a test also checks the argv.
FINDMNT = ["findmnt", "--json", "--list", "--output", "TARGET,SOURCE,FSTYPE,OPTIONS"]

# One mount: its target alone (on /dev/vda3, btrfs), or (target, source), or (target, source,
# fstype), or (target, source, fstype, options); options are "rw" unless given.
Row = str | tuple[str, str] | tuple[str, str, str] | tuple[str, str, str, str]


def mount_row(
    target: str, source: str = "/dev/vda3", fstype: str = "btrfs", options: str = "rw"
) -> dict[str, str]:
    """One row of `findmnt --json` with the columns of FINDMNT."""
    return {"target": target, "source": source, "fstype": fstype, "options": options}


def findmnt_json(*rows: Row) -> str:
    """What `findmnt --json --list` prints for these mounts, in this order (none: an empty
    table)."""
    table = [mount_row(row) if isinstance(row, str) else mount_row(*row) for row in rows]
    return json.dumps({"filesystems": table})
