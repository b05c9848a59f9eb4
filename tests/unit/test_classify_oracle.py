"""`classify.classify` against a plain entry-by-entry statement of its rules, on random roots."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from blankslate import classify, plan, plansource
from blankslate.classify import EntryTuple, Rules
from blankslate.ignore_rules import Rule
from blankslate.scan import RawTuple

NAMES = (
    "etc",
    "static",
    "var",
    "lib",
    "srv",
    "cache",
    "nixos",
    "a",
    "a-b",
    "a.b",
    "x\udcff",
    "ssh",
)


def reference(raw: list[RawTuple], rules: Rules) -> list[EntryTuple]:
    """The rules of `classify`, one entry at a time, in the order its docstring gives them."""
    by_path = {entry[0]: entry for entry in raw}

    def hidden_by(path: str) -> str | None:
        # The outermost persisted path or mountpoint strictly above the path hides it.
        parts = path.split("/")
        for depth in range(2, len(parts)):
            head = "/".join(parts[:depth])
            if head in rules.covers:
                return rules.covers[head]
        return None

    statuses: dict[str, tuple[classify.Status, str]] = {}
    for path, kind, size, target in raw:
        cover = hidden_by(path)
        if cover is None and kind == "file" and size > 0 and path in rules.covers:
            cover = rules.covers[path]  # a bind-mounted placeholder that holds data
        if cover is not None:
            statuses[path] = ("lost", f"hidden under {cover}")
        elif path in rules.persisted:
            statuses[path] = ("persisted", rules.persisted[path])
        elif path in rules.managed:
            statuses[path] = ("managed", rules.managed[path])
        elif target is not None and (
            target.startswith("/nix/store/")
            if path == "/etc/static"
            else path.startswith("/etc/") and target == "/etc/static/" + path[len("/etc/") :]
        ):
            # Only the links the etc activation places; a link elsewhere into the store is
            # a user's (#28).
            statuses[path] = ("managed", classify.MANAGED_LINK_REASON)
        elif path in rules.clean:
            statuses[path] = ("managed", classify.CLEAN_REASON)
        elif path in rules.persisted_parents:
            statuses[path] = ("managed", "parent of a persisted path")
        else:
            rule = rules.ignore.match(path)
            statuses[path] = (
                ("lost", "") if rule is None else ("ignored", f"{rule.reason} [{rule.pattern}]")
            )

    def children(path: str) -> list[str]:
        return [other for other in by_path if other.rpartition("/")[0] == path]

    def is_lost(path: str) -> bool:
        if statuses[path][0] != "lost":
            return False
        if by_path[path][1] != "dir" or not children(path):
            return True
        return any(is_lost(child) for child in children(path))

    result = []
    for path, kind, size, _target in sorted(raw):
        status, reason = statuses[path]
        if status == "lost" and not is_lost(path):
            status, reason = "managed", classify.DIRECTORY_OF_KEPT_ENTRIES
        result.append((path, kind, size, status, reason))
    return result


def random_root(seed: int) -> list[RawTuple]:
    chooser = random.Random(seed)
    entries: dict[str, RawTuple] = {}
    directories = [""]
    for _ in range(chooser.randint(1, 60)):
        parent = chooser.choice(directories)
        path = f"{parent}/{chooser.choice(NAMES)}"
        if path in entries:
            continue
        kind = chooser.choice(("file", "dir", "dir", "symlink", "subvolume", "other"))
        placed = "/etc/static" + path.removeprefix("/etc")  # what the etc activation links
        choices = ("/nix/store/x", "/srv", "/etc/static", placed)
        target = chooser.choice(choices) if kind == "symlink" else None
        size = chooser.choice((0, len(path))) if kind == "file" else len(path)
        entries[path] = (path, kind, size, target)
        if kind in ("dir", "subvolume"):
            directories.append(path)
    shuffled = list(entries.values())
    chooser.shuffle(shuffled)
    return shuffled


PLANS = Path(__file__).resolve().parents[1] / "plans"
KINDS = ("btrfs", "zfs", "tmpfs", "none")


def plan_data(kind: str) -> dict[str, Any]:
    """A plan of each rollback kind: the default (btrfs), or one of tests/plans."""
    if kind == "btrfs":
        return plansource.default().to_json()
    name = {"zfs": "zfs", "tmpfs": "tmpfs", "none": "vpsfree"}[kind]
    data: dict[str, Any] = json.loads((PLANS / f"{name}.json").read_text())
    return data


def random_rules(seed: int) -> Rules:
    chooser = random.Random(seed)
    data = plan_data(KINDS[seed % len(KINDS)])
    data["persistence"]["directories"] = [
        {"directory": f"/{chooser.choice(NAMES)}/{chooser.choice(NAMES)}"} for _ in range(3)
    ] + [{"directory": f"/{chooser.choice(NAMES)}"}]
    data["persistence"]["files"] = [{"file": f"/{chooser.choice(NAMES)}/{chooser.choice(NAMES)}"}]
    patterns = ["/srv/cache/**", "/a*", "**/nixos", f"/{chooser.choice(NAMES)}", "/etc/a?b"]
    ignore = [Rule(pattern, "test", "test") for pattern in chooser.sample(patterns, 3)]
    rules = classify.rules_for(plan.from_json(data), ignore, etc_clean="ssh\na.b\n")
    if chooser.random() < 0.5:  # a walk beneath the live mounts
        classify.add_live_mounts(rules, [f"/{chooser.choice(NAMES)}/{chooser.choice(NAMES)}"])
    return rules


@pytest.mark.parametrize("seed", range(300))
def test_classify_agrees_with_the_plain_statement(seed: int) -> None:
    raw, rules = random_root(seed), random_rules(seed)
    assert classify.classify(raw, rules) == reference(raw, rules)
