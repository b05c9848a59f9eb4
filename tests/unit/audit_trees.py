"""Reports of generated roots, for the tests of the streamed renderings (test_stream.py).

`generated_report(seed, count)` classifies a generated root (tuples as a scan gives them) with
the default plan's rules, a few ignore rules and an /etc/.clean: every status, hidden entries,
collapsed directories, names that sort between a directory and what it holds ("/a.b" between
"/a" and "/a/b"), names with newlines and bytes that are not UTF-8, and entries too deep to
list. The same seed gives the same report, so `golden/stream-*` holds what the renderings
gave for one of them before they streamed.
"""

from __future__ import annotations

import random

from blankslate import classify, plansource
from blankslate.bounds import Beyond
from blankslate.ignore_rules import Rule
from blankslate.scan import RawTuple

TOPS = ("/srv", "/srv.old", "/a", "/a-b", "/a.b", "/var", "/home", "/tmp", "/etc", "/persist")
NAMES = ("x", "y", "cache", "a", "a.b", "a-b", "f\nnl", "caf\u00e9", "b\udcffad", "z" * 20)
IGNORE = (
    Rule("/srv/cache/**", "rebuilt", "test"),
    Rule("**/*.tmp", "scratch", "test"),
    Rule("/var/cache", "caches", "test"),
)
CLEAN = "hosts\nssh/ssh_config\n"


def generated_raw(rng: random.Random, count: int) -> list[RawTuple]:
    """About `count` entries below TOPS, every directory above an entry listed too."""
    found: dict[str, RawTuple] = {}

    def add_dirs(path: str) -> None:
        head = path.rpartition("/")[0]
        while head and head not in found:
            kind = "subvolume" if rng.random() < 0.02 else "dir"
            found[head] = (head, kind, 0, None)
            head = head.rpartition("/")[0]

    persisted = ("/var/lib/nixos", "/var/log", "/home/alice", "/etc/ssh/ssh_host_ed25519_key")
    while len(found) < count:
        top = rng.choice(TOPS) if rng.random() < 0.9 else rng.choice(persisted)
        depth = rng.randint(0, 4)
        path = top + "".join(f"/{rng.choice(NAMES)}{rng.randint(0, 3)}" for _ in range(depth))
        if rng.random() < 0.05:
            path += ".tmp"
        add_dirs(path)
        if path in found:
            continue
        roll = rng.random()
        if roll < 0.7:
            found[path] = (path, "file", rng.randint(0, 5000), None)
        elif roll < 0.8:
            target = rng.choice(["/nix/store/abc-x", "/etc/static" + path[4:], "../rel"])
            found[path] = (path, "symlink", len(target.encode("utf-8", "surrogateescape")), target)
        elif roll < 0.85:
            found[path] = (path, "other", 0, None)
        else:
            found[path] = (path, "dir", 0, None)
    for top in ("/etc", "/var", "/var/lib"):
        found.setdefault(top, (top, "dir", 0, None))
    raw = list(found.values())
    rng.shuffle(raw)  # as a tree search gives them: not by path
    return raw


def generated_report(seed: int, count: int, *, old_root: str | None = None) -> classify.Report:
    rng = random.Random(seed)
    raw = generated_raw(rng, count)
    rules = classify.rules_for(plansource.default(), IGNORE, CLEAN)
    beyond: Beyond = {"/srv/x1": [3, 120], "/var/log/deep": [2, 10], "/srv/cache1": [1, 1]}
    deeper = classify.classify_deeper(beyond, rules)
    problems = ["cannot read /srv/locked: Permission denied"] if seed % 2 else []
    return classify.Report(
        "walk", classify.classify(raw, rules), problems=problems, old_root=old_root, deeper=deeper
    )
