"""`blankslate diff`: what lives on / that the next boot will erase.

Three steps, each in its own module so each can be tested alone: `scan` (every entry of the
root as it will be thrown away), `classify` (one status per entry, with a reason) and `render`
(text, JSON, YAML). This module runs them in order for a plan.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from blankslate import mounts, scan
from blankslate.classify import Report, classify, rules_for
from blankslate.errors import BlankslateError
from blankslate.ignore_rules import Rule
from blankslate.plan import Plan


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="surrogateescape")
    except OSError:
        return None


def run_diff(
    plan: Plan,
    *,
    device: str | None = None,
    root: Path | None = None,
    ignore: Sequence[Rule] = (),
) -> Report:
    """Scan by rollback kind (a walk of `root` when given) and classify."""
    with _collector_paused():
        return _scan_and_classify(plan, device, root, ignore)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A scan makes hundreds of thousands of tuples and strings, and no cycles: the cyclic
    garbage collector would only walk them over and over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _scan_and_classify(
    plan: Plan, device: str | None, root: Path | None, ignore: Sequence[Rule]
) -> Report:
    if root is not None or plan.rollback in ("tmpfs", "none"):
        base = str(root if root is not None else Path("/"))
        if not os.path.isdir(base):
            raise BlankslateError(f"{base} is not a directory (check --root)")
        raw, problems = scan.walk(base, skip=scan.mount_targets_below(base), one_filesystem=True)
        etc_clean = _read_text(os.path.join(base, "etc/.clean"))
        method = "walk"
    elif plan.rollback == "zfs":
        raw, problems = scan.scan_zfs(plan)
        etc_clean = _read_text("/etc/.clean")
        method = "zfs"
    else:
        assert plan.btrfs is not None and plan.btrfs.root_subvolume is not None
        if device is None:
            device = mounts.backing_device(plan.persist_path)
        with mounts.top_level(device) as top:
            stored = top / plan.btrfs.root_subvolume
            if not stored.is_dir():
                raise BlankslateError(
                    f"subvolume {plan.btrfs.root_subvolume!r} not found on {device} "
                    "(check --device)"
                )
            raw, problems = scan.scan_stored_root(str(stored))
            etc_clean = _read_text(str(stored / "etc/.clean"))
        method = "btrfs"
    entries = classify(raw, rules_for(plan, ignore, etc_clean))
    return Report(method, entries, problems=problems)
