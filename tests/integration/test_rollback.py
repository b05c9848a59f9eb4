"""A simulated boot cycle: modules/rollback/btrfs-rollback.bash on a real btrfs filesystem.

The script runs as the initrd unit runs it (`bash script DEVICE root root-blank old_roots
KEEP_DAYS KEEP_NEWEST`), without the unit's --prune-budget unless a test is about it (the
positional arguments alone reset and prune completely); the only other difference is TMPDIR,
which points into tmp_path so that the temporary mount of a killed run can be found and removed
"as a reboot would". --prune-only is the stage-2 unit's run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "modules" / "rollback" / "btrfs-rollback.bash"
STAMP = "%Y-%m-%dT%H:%M:%SZ"
STAMP_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)(\.[1-9]\d*)?$")
PREFIX = "blankslate-rollback: "
TMP_NAME = "root.blankslate-new"

# names that break line-based parsing and naive quoting
WEIRD = ["with space", "new\nline", "tab\there", "-dash", "*glob?", "ünï €", "trailing "]


# --------------------------------------------------------------------------- helpers


def stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime(STAMP)


def record_dir(run_dir: Path) -> Path:
    """Where the script writes its boot record in the tests (BLANKSLATE_RECORD_DIR), never
    the machine's own /run/blankslate; beside run_dir, which must be left empty."""
    return run_dir.parent / "record"


def script_env(run_dir: Path, extra_path: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["TMPDIR"] = str(run_dir)
    env["BLANKSLATE_RECORD_DIR"] = str(record_dir(run_dir))
    if extra_path is not None:
        env["PATH"] = f"{extra_path}:{env['PATH']}"
    return env


def rollback(
    device: str, keep_days: int | str, run_dir: Path, *args: str, keep_newest: int = 0, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run the script to completion; returns the CompletedProcess."""
    run_dir.mkdir(exist_ok=True)
    argv = ["bash", str(SCRIPT), device, "root", "root-blank", "old_roots", str(keep_days)]
    argv.append(str(keep_newest))
    if args:
        argv = ["bash", str(SCRIPT), *args]
    return subprocess.run(
        argv,
        env=script_env(run_dir, kw.get("extra_path")),
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_rollback(
    device: str,
    keep_days: int,
    run_dir: Path,
    extra_path: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start the script in its own session/process group (so it can be SIGKILLed whole,
    and a shim's `kill -KILL 0` never reaches pytest)."""
    run_dir.mkdir(exist_ok=True)
    return subprocess.Popen(
        ["bash", str(SCRIPT), device, "root", "root-blank", "old_roots", str(keep_days), "0"],
        env={**script_env(run_dir, extra_path), **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def reboot_cleanup(helpers: ModuleType, run_dir: Path) -> None:
    """What a reboot does for a killed run: its temporary mount and directory are gone."""
    helpers.unmount_all_under(run_dir)
    for leftover in run_dir.iterdir():
        # rmdir, not rmtree: a leftover must be an empty mount point, never content
        os.rmdir(leftover)


def assert_clean_exit(helpers: ModuleType, run_dir: Path, device: str) -> None:
    assert helpers.mounts_under(run_dir) == []
    assert list(run_dir.iterdir()) == []
    # only the test's own top-level mount remains
    assert len(helpers.mounts_of(device)) == 1


def mksubvol(helpers: ModuleType, path: Path) -> None:
    helpers.run(["btrfs", "subvolume", "create", path])


FAKE_DATE = """#!/bin/bash
# a clock stopped at {epoch}: `date` without -d reads it; `date -d ...` converts as usual
for arg in "$@"; do
  case $arg in -d | -d* | --date | --date=*) exec {real} "$@" ;; esac
done
exec {real} -d @{epoch} "$@"
"""


def fake_clock(tmp_path: Path, now: datetime) -> Path:
    """A PATH directory whose `date` tells the script it is `now`."""
    bindir = tmp_path / f"clock-{int(now.timestamp())}"
    bindir.mkdir()
    real = shutil.which("date")
    assert real
    path = bindir / "date"
    path.write_text(FAKE_DATE.format(epoch=int(now.timestamp()), real=real))
    path.chmod(0o755)
    return bindir


def make_deep_subvolume(where: Path) -> None:
    """What any user can do in a directory they may write: a subvolume (holding another one,
    and made read-only) below directories nested deeper than PATH_MAX. From then on,
    `btrfs subvolume list` fails (ENAMETOOLONG) for the whole filesystem."""
    fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(25):  # 25 * 201 bytes > PATH_MAX (4096)
            os.mkdir("d" * 200, dir_fd=fd)
            deeper = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = deeper
        for argv in (
            ["btrfs", "subvolume", "create", "deep"],
            ["btrfs", "subvolume", "create", "deep/inner"],
            ["btrfs", "property", "set", "-ts", "deep", "ro", "true"],
        ):
            subprocess.run(
                argv,
                check=True,
                capture_output=True,
                pass_fds=(fd,),
                preexec_fn=lambda: os.fchdir(fd),
            )
    finally:
        os.close(fd)
    proc = subprocess.run(["btrfs", "subvolume", "list", where], capture_output=True, text=True)
    assert proc.returncode != 0 and "File name too long" in proc.stderr


def delete_tree(helpers: ModuleType, top: Path, rel: str) -> None:
    """Test-side deletion of a subvolume and its nested ones (deepest first)."""
    base = top / rel
    nested = sorted(helpers.subvolumes_under(base), key=lambda p: p.count("/"), reverse=True)
    for sub in nested:
        helpers.run(["btrfs", "property", "set", "-ts", base / sub, "ro", "false"])
    helpers.run(["btrfs", "property", "set", "-ts", base, "ro", "false"])
    for sub in nested:
        helpers.run(["btrfs", "subvolume", "delete", base / sub])
    helpers.run(["btrfs", "subvolume", "delete", base])


def populate_root(helpers: ModuleType, root: Path) -> None:
    """State a running system leaves in /: files, empty files and directories, symlinks,
    odd names, nested subvolumes three deep (one read-only), a large sparse file."""
    (root / "etc").mkdir()
    (root / "etc" / "machine-id").write_text("0123456789abcdef\n")
    (root / "etc" / "empty").write_bytes(b"")
    (root / "var" / "lib" / "empty-dir").mkdir(parents=True)
    (root / "tmp").mkdir(mode=0o1777)
    (root / "bin").symlink_to("/nix/store/xyz-bash/bin")
    (root / "etc" / "relative-link").symlink_to("machine-id")
    (root / "dangling").symlink_to("does/not/exist")
    for name in WEIRD:
        d = root / "weird" / name
        d.mkdir(parents=True)
        (d / name).write_bytes(os.urandom(257))
    with open(root / "sparse.img", "wb") as f:
        f.truncate(64 << 20)
        f.write(b"head")
    # nested subvolumes: var/lib/machines/<a b>/<c\nd>/<e f>
    (root / "var" / "lib" / "machines").mkdir(parents=True)
    level1 = root / "var" / "lib" / "machines" / "con tainer"
    level2 = level1 / "nested\nsub"
    level3 = level2 / "deep est"
    mksubvol(helpers, level1)
    (level1 / "file in 1").write_bytes(os.urandom(4096))
    mksubvol(helpers, level2)
    (level2 / "dir").mkdir()
    (level2 / "dir" / "file in 2").write_bytes(os.urandom(100))
    mksubvol(helpers, level3)
    (level3 / "file\nin 3").write_bytes(os.urandom(10))
    # a read-only subvolume holding a nested one: pruning must make it writable first
    ro = root / "snapshots" / "ro one"
    ro.parent.mkdir()
    mksubvol(helpers, ro)
    mksubvol(helpers, ro / "inner")
    (ro / "inner" / "x").write_text("x")
    helpers.run(["btrfs", "property", "set", "-ts", ro, "ro", "true"])


def populate_persistent(top: Path) -> None:
    (top / "persist" / "etc" / "ssh").mkdir(parents=True)
    (top / "persist" / "etc" / "ssh" / "ssh_host_ed25519_key").write_bytes(os.urandom(411))
    (top / "persist" / "passwords").mkdir()
    (top / "persist" / "passwords" / "admin").write_text("$6$salt$hash\n")
    (top / "persist" / "big").write_bytes(os.urandom(3 << 20))
    (top / "persist" / "odd\nname dir").mkdir()
    (top / "persist" / "odd\nname dir" / "empty").write_bytes(b"")
    (top / "nix" / "store" / "abc-hello" / "bin").mkdir(parents=True)
    (top / "nix" / "store" / "abc-hello" / "bin" / "hello").write_bytes(os.urandom(100_000))
    (top / "nix" / "var").symlink_to("store")
    (top / "log" / "journal").mkdir()
    (top / "log" / "journal" / "system.journal").write_bytes(os.urandom(1 << 20))
    (top / "home" / "admin").mkdir()


class Baseline:
    """What must never change: the persistent subvolumes and the blank snapshot."""

    def __init__(self, helpers: ModuleType, top: Path) -> None:
        self.helpers = helpers
        self.top = top
        self.manifests = {
            n: helpers.tree_manifest(top / n) for n in ("persist", "nix", "log", "home")
        }
        # commit (data and the relatime updates of that first read) so Generation is stable
        os.sync()
        self.infos = {
            n: helpers.subvolume_info(top / n)
            for n in ("persist", "nix", "log", "home", "root-blank")
        }
        assert self.manifests["persist"], (
            "persist must hold data for the comparison to mean something"
        )

    def check(self, blank: bool = True) -> None:
        h, top = self.helpers, self.top
        for name, manifest in self.manifests.items():
            assert h.tree_manifest(top / name) == manifest, f"{name} changed"
        os.sync()
        for name, info in self.infos.items():
            if name == "root-blank" and not blank:  # the test deleted it on purpose
                continue
            now = h.subvolume_info(top / name)
            # snapshotting the blank bumps its generation; nothing else may move
            keys = ("UUID", "Subvolume ID", "Flags") + (
                () if name == "root-blank" else ("Generation",)
            )
            for key in keys:
                assert now[key] == info[key], f"{name}: {key} changed"
        if blank:
            assert self.infos["root-blank"]["Flags"] == "readonly"
            assert os.listdir(top / "root-blank") == []


def assert_fresh_root(helpers: ModuleType, top: Path, baseline: Baseline) -> None:
    root = top / "root"
    assert helpers.is_subvolume(root)
    assert os.listdir(root) == []
    info = helpers.subvolume_info(root)
    assert info["Flags"] == "-", "the new root must be writable"
    assert info["Parent UUID"] == baseline.infos["root-blank"]["UUID"], (
        "root is not a snapshot of the blank"
    )
    assert sorted(os.listdir(top)) == sorted(
        ["root", "root-blank", "nix", "persist", "log", "home", "old_roots"]
    )
    outside = {s for s in helpers.subvolumes_under(top) if not s.startswith("old_roots/")}
    assert outside == {"root", "root-blank", "nix", "persist", "log", "home", "old_roots"}
    assert helpers.is_subvolume(top / "old_roots")
    baseline.check()


def old_root_names(top: Path) -> set[str]:
    return {n for n in os.listdir(top / "old_roots") if STAMP_RE.match(n)}


# (device, top-level mount, run dir, baseline): what the `system` fixture yields
System = tuple[str, Path, Path, Baseline]


@pytest.fixture
def system(helpers: ModuleType, layout: Any, tmp_path: Path) -> Iterator[System]:
    """A filesystem as after a few days of uptime: populated root, persist, nix, log.
    Yields (device, top-level mount, run dir, baseline)."""
    with helpers.mount_top_level(layout.device) as top:
        populate_persistent(top)
        populate_root(helpers, top / "root")
        baseline = Baseline(helpers, top)
        yield layout.device, top, tmp_path / "run", baseline


# --------------------------------------------------------------------------- boot cycle


def test_boot_cycle_resets_root_and_keeps_old_root(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    before = helpers.tree_manifest(top / "root")
    root_uuid = helpers.subvolume_info(top / "root")["UUID"]
    assert sum(1 for v in before.values() if v[0] == "dir" and v[2]) == 5  # nested subvolumes

    t0 = datetime.now(UTC).replace(microsecond=0)
    proc = rollback(device, 30, run_dir)
    t1 = datetime.now(UTC)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""

    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)

    (name,) = os.listdir(top / "old_roots")
    when = datetime.strptime(name, STAMP).replace(tzinfo=UTC)
    assert t0 <= when <= t1
    old = top / "old_roots" / name
    assert helpers.subvolume_info(old)["UUID"] == root_uuid, (
        "the old root must be moved, not copied"
    )
    assert helpers.tree_manifest(old) == before
    assert helpers.subvolume_info(old / "snapshots" / "ro one")["Flags"] == "readonly"

    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith(PREFIX) for line in lines)
    assert f"{PREFIX}moved root to old_roots/{name}" in lines
    assert f"{PREFIX}created subvolume old_roots" in lines
    assert f"{PREFIX}created root from root-blank" in lines

    # the next boot: new state, second cycle keeps both old roots
    (top / "root" / "etc").mkdir()
    (top / "root" / "etc" / "new").write_text("day 2")
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stderr
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)
    names = old_root_names(top)
    assert len(names) == 2 and name in names
    assert helpers.tree_manifest(top / "old_roots" / name) == before
    (second,) = names - {name}
    assert (top / "old_roots" / second / "etc" / "new").read_text() == "day 2"


def test_same_second_gets_a_suffix(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    # two real runs within one second: start right after a second boundary
    for _attempt in range(5):
        time.sleep(1 - time.time() % 1 + 0.01)
        before = set(os.listdir(top / "old_roots")) if (top / "old_roots").exists() else set()
        first = rollback(device, 30, run_dir)
        second = rollback(device, 30, run_dir)
        assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
        new = sorted(set(os.listdir(top / "old_roots")) - before)
        assert len(new) == 2
        stamps = [STAMP_RE.match(n) for n in new]
        bases = {stamp.group(1) for stamp in stamps if stamp}
        assert len(stamps) == 2 and all(stamps)
        if len(bases) == 1:
            (base,) = bases
            assert new == [base, base + ".1"]
            break
    else:
        pytest.fail("could not run the script twice within one second in 5 attempts")
    assert_fresh_root(helpers, top, baseline)

    # taken names with .1 and .2 already there (pre-created around "now"): next is .3
    now = datetime.now(UTC)
    for s in range(-1, 10):
        base = stamp(now + timedelta(seconds=s))
        for suffix in ("", ".1", ".2"):
            if not (top / "old_roots" / (base + suffix)).exists():
                (top / "old_roots" / (base + suffix)).mkdir()
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stderr
    (moved,) = re.findall(r"moved root to old_roots/(\S+)", proc.stdout)
    assert moved.endswith(".3")
    assert helpers.is_subvolume(top / "old_roots" / moved)
    assert_fresh_root(helpers, top, baseline)


def test_keep_days_zero_keeps_nothing(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    # a first boot with a long retention, then more state, then KEEP_DAYS=0
    assert rollback(device, 30, run_dir).returncode == 0
    populate_root(helpers, top / "root")
    (top / "old_roots" / "not a stamp").mkdir()
    proc = rollback(device, 0, run_dir)
    assert proc.returncode == 0, proc.stderr
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)
    assert os.listdir(top / "old_roots") == ["not a stamp"]
    assert helpers.subvolumes_under(top / "old_roots") == set()
    assert sum("deleted nested subvolume" in line for line in proc.stdout.splitlines()) == 10
    # the nested subvolumes' names were logged on one line each, quoted
    assert all(line.startswith(PREFIX) for line in proc.stdout.splitlines())


def test_pruning_by_name(helpers: ModuleType, system: System, tmp_path: Path) -> None:
    device, top, run_dir, baseline = system
    # the clock 400 days ahead: the roots made below were all created long "ago", so only
    # their names decide (the creation-time check is test_clock_set_back_...)
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(days=400)
    clock = fake_clock(tmp_path, now)
    old_roots = top / "old_roots"
    mksubvol(helpers, old_roots)

    def old(delta: timedelta, suffix: str = "") -> str:
        name = stamp(now - delta) + suffix
        mksubvol(helpers, old_roots / name)
        (old_roots / name / "etc").mkdir()
        (old_roots / name / "etc" / "f").write_text(name)
        return name

    expired = {
        old(timedelta(days=400)),
        old(timedelta(days=40)),
        old(timedelta(days=31), ".1"),
        old(timedelta(days=30, hours=1)),
    }
    # an expired root with nested subvolumes three deep and a read-only one
    deep = old(timedelta(days=35))
    expired.add(deep)
    populate_root(helpers, old_roots / deep / "etc")
    kept = {
        old(timedelta(days=29)),
        old(timedelta(days=1)),
        old(timedelta(days=1), ".7"),
    }
    untouched_dirs = [
        "keep me",
        "2020-01-01",
        "2020-01-01T00:00:00Z.x",
        "2020-13-01T00:00:00Z",
        "2020-01-01T00:00:00",
        "x2020-01-01T00:00:00Z",
        "2020-01-01T00:00:00Z\n",
    ]
    for d in untouched_dirs:
        mksubvol(helpers, old_roots / d)
    plain = stamp(now - timedelta(days=50))
    (old_roots / plain).mkdir()  # expired name, but not a subvolume: left alone
    (old_roots / plain / "data").write_text("mine")
    afile = stamp(now - timedelta(days=60))
    (old_roots / afile).write_text("a file")

    proc = rollback(device, 30, run_dir, extra_path=clock)
    assert proc.returncode == 0, proc.stderr
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)

    (moved,) = re.findall(r"moved root to old_roots/(\S+)", proc.stdout)
    remaining = set(os.listdir(old_roots))
    assert remaining == kept | {moved, plain, afile, *untouched_dirs}
    assert expired.isdisjoint(remaining)
    for name in kept:
        assert (old_roots / name / "etc" / "f").read_text() == name
    assert (old_roots / plain / "data").read_text() == "mine"
    assert (old_roots / afile).read_text() == "a file"
    for name in expired:
        assert f"{PREFIX}deleted old_roots/{name}" in proc.stdout.splitlines()
    # everything below old_roots that is still a subvolume belongs to a kept entry
    for sub in helpers.subvolumes_under(old_roots):
        assert sub.split("/")[0] in kept | {moved, *untouched_dirs}


def test_missing_blank_changes_nothing(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    helpers.run(["btrfs", "subvolume", "delete", top / "root-blank"])
    before = helpers.tree_manifest(top / "root")
    info = helpers.subvolume_info(top / "root")
    listing = sorted(os.listdir(top))

    proc = rollback(device, 0, run_dir)
    assert proc.returncode != 0
    assert "blank snapshot root-blank not found" in proc.stderr
    assert "nothing changed" in proc.stderr
    assert sorted(os.listdir(top)) == listing
    assert not (top / "old_roots").exists()
    assert helpers.subvolume_info(top / "root")["UUID"] == info["UUID"]
    assert helpers.tree_manifest(top / "root") == before
    assert_clean_exit(helpers, run_dir, device)
    baseline.check(blank=False)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "usage:"),
        (("root", "root-blank", "old_roots", "0", "0"), 2, "usage:"),
        (("DEV", "root", "root-blank", "old_roots", "0"), 2, "usage:"),
        (("DEV", "root", "root-blank", "old_roots", "0", "0", "1", "x"), 2, "usage:"),
        (("DEV", "root", "root-blank", "old_roots", "0", "0", "x"), 1, "KEEP_MAX"),
        (("DEV", "root", "root-blank", "old_roots", "0", "0", "0"), 1, "KEEP_MAX"),
        (("DEV", "root", "root-blank", "old_roots", "0", "0", "-1"), 1, "KEEP_MAX"),
        (("DEV", "root", "root-blank", "old_roots", "0", "0", "1234567"), 1, "KEEP_MAX"),
        (("DEV", "root", "root-blank", "old_roots", "0", "0", ""), 1, "KEEP_MAX"),
        (("DEV", "root", "root-blank", "old_roots", "-1", "0"), 1, "KEEP_DAYS"),
        (("DEV", "root", "root-blank", "old_roots", "3.5", "0"), 1, "KEEP_DAYS"),
        (("DEV", "root", "root-blank", "old_roots", "", "0"), 1, "KEEP_DAYS"),
        (("DEV", "root", "root-blank", "old_roots", "1", "-1"), 1, "KEEP_NEWEST"),
        (("DEV", "root", "root-blank", "old_roots", "1", "1e3"), 1, "KEEP_NEWEST"),
        (("DEV", "root", "root-blank", "old_roots", "1", "1234567"), 1, "KEEP_NEWEST"),
        (("DEV", "root", "root-blank", "old_roots", "1", ""), 1, "KEEP_NEWEST"),
        (("DEV", "/root", "root-blank", "old_roots", "1", "0"), 1, "ROOT_SUBVOLUME"),
        (("DEV", "root", "../root-blank", "old_roots", "1", "0"), 1, "BLANK_SNAPSHOT"),
        (("DEV", "root", "root-blank", "old_roots/", "1", "0"), 1, "OLD_ROOTS_SUBVOLUME"),
        (("DEV", "root", "root-blank", "a//b", "1", "0"), 1, "OLD_ROOTS_SUBVOLUME"),
        (("DEV", "root", "root-blank", "", "1", "0"), 1, "OLD_ROOTS_SUBVOLUME"),
        (("DEV", "root", "root-blank", "root/old", "1", "0"), 1, "within"),
        (("DEV", "root", "root", "old_roots", "1", "0"), 1, "distinct"),
        (("/dev/null", "root", "root-blank", "old_roots", "1", "0"), 1, "not a block device"),
    ],
)
def test_bad_arguments_touch_nothing(
    helpers: ModuleType, system: System, args: tuple[str, ...], code: int, message: str
) -> None:
    device, top, run_dir, baseline = system
    args = tuple(device if a == "DEV" else a for a in args)
    before = helpers.tree_manifest(top / "root")
    proc = (
        rollback(device, 0, run_dir, *args)
        if args
        else subprocess.run(
            ["bash", str(SCRIPT)], capture_output=True, text=True, env=script_env(run_dir)
        )
    )
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert helpers.tree_manifest(top / "root") == before
    assert not (top / "old_roots").exists()
    if run_dir.exists():
        assert_clean_exit(helpers, run_dir, device)
    baseline.check()


# --------------------------------------------------------------------------- interrupted states


def test_resumes_when_root_was_already_moved(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    mksubvol(helpers, top / "old_roots")
    helpers.run(["mv", "-T", top / "root", top / "old_roots" / "2000-01-01T00:00:00Z"])
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stderr
    assert "no root (an interrupted run moved it already)" in proc.stdout
    assert_fresh_root(helpers, top, baseline)
    # its name says 2000, but btrfs created it within the last 30 days: kept
    assert old_root_names(top) == {"2000-01-01T00:00:00Z"}
    assert (
        f"{PREFIX}kept old_roots/2000-01-01T00:00:00Z: named as older than 30 days" in proc.stdout
    )


@pytest.mark.parametrize("root_present", [False, True])
def test_leftover_temporary_snapshot_is_replaced(
    helpers: ModuleType, system: System, root_present: bool
) -> None:
    device, top, run_dir, baseline = system
    helpers.run(["btrfs", "subvolume", "snapshot", top / "root-blank", top / TMP_NAME])
    (top / TMP_NAME / "garbage").write_text("must not survive")
    mksubvol(helpers, top / TMP_NAME / "nested")
    if not root_present:
        mksubvol(helpers, top / "old_roots")
        helpers.run(["mv", "-T", top / "root", top / "old_roots" / stamp(datetime.now(UTC))])
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stderr
    assert f"{PREFIX}found {TMP_NAME} left by an interrupted run" in proc.stdout
    assert_fresh_root(helpers, top, baseline)
    assert len(old_root_names(top)) == 1


def test_foreign_temporary_name_is_not_deleted(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    (top / TMP_NAME).mkdir()
    (top / TMP_NAME / "data").write_text("not ours")
    proc = rollback(device, 30, run_dir)
    assert proc.returncode != 0
    assert "nothing changed" in proc.stderr
    assert (top / TMP_NAME / "data").read_text() == "not ours"
    assert helpers.subvolume_info(top / "root")["Parent UUID"] == "-"  # the old root, untouched
    assert_clean_exit(helpers, run_dir, device)
    baseline.check()


# --------------------------------------------------------------------------- users, clocks, space


def test_deep_subvolume_made_by_a_user_does_not_stop_pruning(
    helpers: ModuleType, system: System
) -> None:
    device, top, run_dir, baseline = system
    make_deep_subvolume(top / "root")
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stderr
    (moved,) = old_root_names(top)
    # the user does it again in the fresh root, and an expired-by-config old root waits
    make_deep_subvolume(top / "root")
    mksubvol(helpers, top / "old_roots" / stamp(datetime.now(UTC) - timedelta(days=1)))
    proc = rollback(device, 0, run_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)
    assert os.listdir(top / "old_roots") == []
    assert f"{PREFIX}deleted old_roots/{moved}" in proc.stdout.splitlines()
    # 5 made by populate_root, 2 at depth in each of the two roots
    assert sum("deleted nested subvolume" in line for line in proc.stdout.splitlines()) == 9
    assert all(line.startswith(PREFIX) for line in proc.stdout.splitlines())


def test_an_old_root_that_cannot_be_deleted_is_skipped(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    now = datetime.now(UTC)
    mksubvol(helpers, top / "old_roots")
    names = [stamp(now - timedelta(days=d)) for d in (3, 2, 1)]
    for name in names:
        mksubvol(helpers, top / "old_roots" / name)
    # the kernel refuses to delete the default subvolume: the oldest one
    stuck = top / "old_roots" / names[0]
    subvol_id = helpers.subvolume_info(stuck)["Subvolume ID"]
    helpers.run(["btrfs", "subvolume", "set-default", subvol_id, top])
    try:
        proc = rollback(device, 0, run_dir)
    finally:
        helpers.run(["btrfs", "subvolume", "set-default", "5", top])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)
    assert os.listdir(top / "old_roots") == [names[0]]
    assert f"could not delete old_roots/{names[0]}" in proc.stderr
    assert (
        proc.stdout.splitlines()[-1]
        == f"{PREFIX}done (some old roots could not be deleted, see above)"
    )


def test_clock_in_the_future_keeps_the_newest_old_roots(
    helpers: ModuleType, system: System, tmp_path: Path
) -> None:
    device, top, run_dir, baseline = system
    real = []
    for _ in range(4):
        proc = rollback(device, 30, run_dir, keep_newest=3)
        assert proc.returncode == 0, proc.stderr
        real += re.findall(r"moved root to old_roots/(\S+)", proc.stdout)
    assert len(real) == 4 and old_root_names(top) == set(real)
    # one boot with the clock at 2099
    clock = fake_clock(tmp_path, datetime(2099, 1, 1, tzinfo=UTC))
    proc = rollback(device, 30, run_dir, keep_newest=3, extra_path=clock)
    assert proc.returncode == 0, proc.stderr
    (future,) = re.findall(r"moved root to old_roots/(\S+)", proc.stdout)
    assert future.startswith("2099-01-01T")
    # the three newest by creation are kept, whatever their names say
    assert old_root_names(top) == {future, real[3], real[2]}
    assert_fresh_root(helpers, top, baseline)
    # back at the right time: the clock looks wrong, nothing is pruned, the root is reset
    proc = rollback(device, 0, run_dir, keep_newest=0)
    assert proc.returncode == 0, proc.stderr
    assert "the clock looks wrong" in proc.stderr
    (latest,) = re.findall(r"moved root to old_roots/(\S+)", proc.stdout)
    assert old_root_names(top) == {future, real[3], real[2], latest}
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)


def test_clock_set_back_does_not_get_the_newest_old_root_pruned(
    helpers: ModuleType, system: System, tmp_path: Path
) -> None:
    device, top, run_dir, baseline = system
    assert rollback(device, 30, run_dir).returncode == 0
    (first,) = old_root_names(top)
    (top / "root" / "day 2").write_text("made while the clock said 1970")
    clock = fake_clock(tmp_path, datetime(1970, 1, 2, tzinfo=UTC))
    proc = rollback(device, 30, run_dir, extra_path=clock)
    assert proc.returncode == 0, proc.stderr
    assert "the clock looks wrong" in proc.stderr  # 1970 is before the newest name
    (past,) = re.findall(r"moved root to old_roots/(\S+)", proc.stdout)
    assert past.startswith("1970-01-02T")
    # the clock is right again; KEEP_NEWEST=0, so only the creation time can keep it
    proc = rollback(device, 30, run_dir, keep_newest=0)
    assert proc.returncode == 0, proc.stderr
    assert f"{PREFIX}kept old_roots/{past}: named as older than 30 days" in proc.stdout
    assert {first, past} < old_root_names(top)
    assert (top / "old_roots" / past / "day 2").exists()
    assert_fresh_root(helpers, top, baseline)


def test_newest_is_by_creation_not_by_name(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    now = datetime.now(UTC)
    mksubvol(helpers, top / "old_roots")
    # created in this order; the names say the opposite
    created = [stamp(now - timedelta(days=d)) for d in (1, 10, 20)]
    for name in created:
        mksubvol(helpers, top / "old_roots" / name)
    proc = rollback(device, 0, run_dir, keep_newest=2)
    assert proc.returncode == 0, proc.stderr
    (moved,) = re.findall(r"moved root to old_roots/(\S+)", proc.stdout)
    # the moved root has the newest name, but btrfs created it first (with the layout)
    assert old_root_names(top) == {created[1], created[2]}
    assert f"{PREFIX}deleted old_roots/{moved}" in proc.stdout.splitlines()
    assert_fresh_root(helpers, top, baseline)


def test_read_only_root_and_old_roots_are_made_writable(
    helpers: ModuleType, system: System
) -> None:
    device, top, run_dir, baseline = system
    mksubvol(helpers, top / "old_roots")
    root_uuid = helpers.subvolume_info(top / "root")["UUID"]
    for name in ("root", "old_roots"):
        helpers.run(["btrfs", "property", "set", "-ts", top / name, "ro", "true"])
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{PREFIX}made root writable (it was read-only)" in proc.stdout
    assert f"{PREFIX}made old_roots writable (it was read-only)" in proc.stdout
    (moved,) = old_root_names(top)
    assert helpers.subvolume_info(top / "old_roots" / moved)["UUID"] == root_uuid
    assert helpers.subvolume_info(top / "old_roots")["Flags"] == "-"
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)


def test_full_filesystem_prunes_then_resets(helpers: ModuleType, tmp_path: Path) -> None:
    image = tmp_path / f"{helpers.IMAGE_PREFIX}full.img"
    run_dir = tmp_path / "run"
    with helpers.loop_device(image, "256MiB") as device:
        helpers.run(["mkfs.btrfs", "-q", "-f", "--mixed", "-L", "nixos", device])
        helpers.make_layout(device)
        with helpers.mount_top_level(device) as top:
            # the clock 400 days ahead, so the old root made now counts as created long ago
            now = datetime.now(UTC) + timedelta(days=400)
            clock = fake_clock(tmp_path, now)
            expired = stamp(now - timedelta(days=100))
            mksubvol(helpers, top / "old_roots")
            mksubvol(helpers, top / "old_roots" / expired)
            with open(top / "old_roots" / expired / "big", "wb") as f:
                f.write(os.urandom(96 << 20))
            # fill the filesystem from the root, data then metadata
            with contextlib.suppress(OSError), open(top / "root" / "fill", "wb") as f:
                while True:
                    f.write(os.urandom(1 << 20))
            with contextlib.suppress(OSError):
                for i in range(100_000):
                    (top / "root" / f"f{i}").write_bytes(b"x" * 2000)
            os.sync()
            probe = helpers.run(
                ["btrfs", "subvolume", "snapshot", top / "root-blank", top / "probe"], check=False
            )
            assert "No space left on device" in probe.stderr, "the filesystem is not full"

            proc = rollback(device, 30, run_dir, extra_path=clock)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "the filesystem is full" in proc.stderr
            assert f"{PREFIX}deleted old_roots/{expired}" in proc.stdout.splitlines()
            (moved,) = old_root_names(top)
            assert (top / "old_roots" / moved / "fill").exists()
            assert helpers.is_subvolume(top / "root") and os.listdir(top / "root") == []
            assert helpers.subvolume_info(top / "root")["Flags"] == "-"
            assert helpers.mounts_under(run_dir) == [] and list(run_dir.iterdir()) == []


def fill_filesystem(helpers: ModuleType, top: Path, where: Path) -> None:
    """What any user can do from /tmp: fill the filesystem, data then metadata."""
    with contextlib.suppress(OSError), open(where / "fill", "wb") as f:
        while True:
            f.write(os.urandom(1 << 20))
    with contextlib.suppress(OSError):
        for i in range(100_000):
            (where / f"f{i}").write_bytes(b"x" * 2000)
    os.sync()
    probe = helpers.run(
        ["btrfs", "subvolume", "snapshot", top / "root-blank", top / "probe"], check=False
    )
    assert "No space left on device" in probe.stderr, "the filesystem is not full"


@pytest.mark.parametrize("big_old_root", [False, True])
def test_full_filesystem_with_nothing_expired_still_resets(
    helpers: ModuleType, tmp_path: Path, big_old_root: bool
) -> None:
    """A user fills the filesystem from /tmp; no old root has expired. The reset gives up, in
    order and logged: the expired old roots (none), the old roots beyond the newest, then
    keeping this root as an old root; the root is reset whatever the user wrote."""
    image = tmp_path / f"{helpers.IMAGE_PREFIX}full.img"
    run_dir = tmp_path / "run"
    with helpers.loop_device(image, "256MiB") as device:
        helpers.run(["mkfs.btrfs", "-q", "-f", "--mixed", "-L", "nixos", device])
        helpers.make_layout(device)
        with helpers.mount_top_level(device) as top:
            now = datetime.now(UTC)
            mksubvol(helpers, top / "old_roots")
            # two recent old roots (nothing expires at 30 days); the older one may be big
            older, newest = stamp(now - timedelta(days=2)), stamp(now - timedelta(days=1))
            mksubvol(helpers, top / "old_roots" / older)
            mksubvol(helpers, top / "old_roots" / newest)
            if big_old_root:
                with open(top / "old_roots" / older / "big", "wb") as f:
                    f.write(os.urandom(96 << 20))
            (top / "root" / "tmp").mkdir()
            mksubvol(helpers, top / "root" / "tmp" / "nested")
            fill_filesystem(helpers, top, top / "root" / "tmp")

            proc = rollback(device, 30, run_dir, keep_newest=3)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            out = proc.stdout.splitlines()
            err = proc.stderr
            assert "the filesystem is full" in err
            assert f"{PREFIX}giving up the expired old roots" in out
            assert f"{PREFIX}giving up the old roots beyond the newest" in out
            assert f"{PREFIX}deleted old_roots/{older}" in out
            assert (top / "old_roots" / newest).is_dir()
            assert helpers.is_subvolume(top / "root") and os.listdir(top / "root") == []
            assert helpers.subvolume_info(top / "root")["Flags"] == "-"
            assert helpers.mounts_under(run_dir) == [] and list(run_dir.iterdir()) == []
            if big_old_root:
                # deleting the big old root was enough: this root is kept as an old root
                assert f"{PREFIX}giving up keeping root as an old root" not in out
                assert set(os.listdir(top / "old_roots")) == {newest, *old_root_names(top)}
                (moved,) = old_root_names(top) - {newest}
                assert (top / "old_roots" / moved / "tmp" / "fill").exists()
            else:
                assert f"{PREFIX}giving up keeping root as an old root" in out
                assert f"{PREFIX}deleted root" in out
                assert os.listdir(top / "old_roots") == [newest]
            # the next boot, with space again, is a normal one
            proc = rollback(device, 30, run_dir, keep_newest=3)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "the filesystem is full" not in proc.stderr


ENOSPC_SNAPSHOT = """#!/bin/bash
# btrfs, but `subvolume snapshot` fails with ENOSPC its first {times} times
if [[ $1 == subvolume && $2 == snapshot ]]; then
  n=$(cat {count} 2>/dev/null || echo 0)
  echo $((n + 1)) >{count}
  if ((n < {times})); then
    echo "ERROR: cannot snapshot '$3': No space left on device" >&2
    exit 1
  fi
fi
exec {real} "$@"
"""


def test_full_filesystem_at_the_snapshot_gives_up_in_order(
    helpers: ModuleType, system: System, tmp_path: Path
) -> None:
    """ENOSPC after the root was moved: the expired old root goes first, then the ones
    beyond the newest (this boot's root and the one before it are kept), then this boot's
    old root itself; the newest old root of an earlier boot is never given up before it."""
    device, top, run_dir, baseline = system
    # the clock 400 days ahead, so that the old roots made now count as created long ago
    now = datetime.now(UTC) + timedelta(days=400)
    bindir = fake_clock(tmp_path, now)
    mksubvol(helpers, top / "old_roots")
    expired, older, newest = (stamp(now - timedelta(days=d)) for d in (40, 3, 1))
    for name in (expired, older, newest):
        mksubvol(helpers, top / "old_roots" / name)
    real = shutil.which("btrfs")
    assert real
    shim = ENOSPC_SNAPSHOT.format(times=3, count=tmp_path / "count", real=real)
    (bindir / "btrfs").write_text(shim)
    (bindir / "btrfs").chmod(0o755)
    proc = rollback(device, 30, run_dir, keep_newest=0, extra_path=bindir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = [line.removeprefix(PREFIX) for line in proc.stdout.splitlines()]
    (moved,) = {line.split("/", 1)[1] for line in out if line.startswith("moved root to ")}
    steps = [line for line in out if line.startswith(("giving up", "deleted old_roots/", "waited"))]
    assert steps == [
        "giving up the expired old roots",
        f"deleted old_roots/{expired}",
        "waited for the space of the deleted subvolumes",
        "giving up the old roots beyond the newest",
        f"deleted old_roots/{older}",
        "waited for the space of the deleted subvolumes",
        "giving up keeping root as an old root",
        f"deleted old_roots/{moved}",
        "waited for the space of the deleted subvolumes",
    ]
    assert proc.stderr.count("the filesystem is full") == 1
    assert os.listdir(top / "old_roots") == [newest]
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)


# --------------------------------------------------------------------------- the time budget


def nested_tree(helpers: ModuleType, base: Path, count: int) -> None:
    """What any user can do in /tmp: subvolumes, here `count` nested two levels deep."""
    (base / "tmp").mkdir(exist_ok=True)
    for i in range(count):
        mksubvol(helpers, base / "tmp" / f"user-s{i}")
        if i % 2:
            mksubvol(helpers, base / "tmp" / f"user-s{i}" / "inner")


def prune_only(
    device: str, run_dir: Path, keep_days: int = 0, keep_newest: int = 0, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """The stage-2 run: the same script, the same rules, no reset."""
    argv = ["--prune-only", device, "root", "root-blank", "old_roots", str(keep_days)]
    return rollback(device, keep_days, run_dir, *argv, str(keep_newest), **kw)


def test_budget_zero_prunes_nothing_and_the_stage_2_run_finishes(
    helpers: ModuleType, system: System
) -> None:
    """Budget 0: the initrd resets the root and prunes nothing; the stage-2 run (--prune-only)
    deletes the expired old roots and every subvolume nested in them, and leaves / alone."""
    device, top, run_dir, baseline = system
    now = datetime.now(UTC)
    mksubvol(helpers, top / "old_roots")
    plain = stamp(now - timedelta(days=3))
    mksubvol(helpers, top / "old_roots" / plain)
    nested_tree(helpers, top / "root", 6)  # 9 nested, plus populate_root's 5
    script = [device, "root", "root-blank", "old_roots", "0", "0"]
    proc = rollback(device, 0, run_dir, "--prune-budget", "0", *script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.splitlines()
    assert_fresh_root(helpers, top, baseline)
    (moved,) = old_root_names(top) - {plain}
    assert set(os.listdir(top / "old_roots")) == {plain, moved}
    assert len(helpers.subvolumes_under(top / "old_roots" / moved)) == 14
    assert f"{PREFIX}pruning stopped: its time budget is used up; 2 expired left for later" in out
    assert not any("deleted" in line for line in out)
    assert out[-1] == f"{PREFIX}done (pruning goes on after the boot)"
    assert_clean_exit(helpers, run_dir, device)

    root_uuid = helpers.subvolume_info(top / "root")["UUID"]
    (top / "root" / "state").write_text("written after the boot")
    proc = prune_only(device, run_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.splitlines()
    assert os.listdir(top / "old_roots") == []
    assert f"{PREFIX}deleted old_roots/{plain}" in out
    assert f"{PREFIX}deleted old_roots/{moved}" in out
    assert sum("deleted nested subvolume" in line for line in out) == 14
    assert out[-1] == f"{PREFIX}pruned (2 deleted)"
    # the running root is not touched
    assert helpers.subvolume_info(top / "root")["UUID"] == root_uuid
    assert (top / "root" / "state").read_text() == "written after the boot"
    assert_clean_exit(helpers, run_dir, device)
    baseline.check(blank=False)


SLOW = """#!/bin/bash
# btrfs, but each `{verb}` takes 1.5 s: longer than the whole budget
if [[ "$1 $2" == "{verb}" ]]; then sleep 1.5; fi
exec {real} "$@"
"""


@pytest.mark.parametrize("verb", ["subvolume delete", "property get"])
def test_budget_stops_inside_a_tree_and_the_stage_2_run_finishes(
    helpers: ModuleType, system: System, tmp_path: Path, verb: str
) -> None:
    """A budget of 1 s where each delete (or each read-only check of the tree's walk) takes
    1.5 s: the initrd run cannot delete the 14 nested subvolumes of the expired old root (it
    stops at the budget, in the walk or between deletes, whatever the machine's speed); the
    stage-2 run, without a budget, deletes what is left."""
    device, top, run_dir, baseline = system
    nested_tree(helpers, top / "root", 6)
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (moved,) = old_root_names(top)
    bindir = tmp_path / "slow"
    bindir.mkdir()
    real = shutil.which("btrfs")
    assert real
    (bindir / "btrfs").write_text(SLOW.format(verb=verb, real=real))
    (bindir / "btrfs").chmod(0o755)
    script = [device, "root", "root-blank", "old_roots", "0", "1"]
    proc = rollback(device, 0, run_dir, "--prune-budget", "1", *script, extra_path=bindir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.splitlines()
    assert_fresh_root(helpers, top, baseline)
    # keep_newest 1 keeps the root just moved; the other one is expired
    assert moved in os.listdir(top / "old_roots")
    assert f"{PREFIX}deleted old_roots/{moved}" not in out
    assert f"{PREFIX}stopped deleting old_roots/{moved}: the time budget is used up" in out
    assert f"{PREFIX}pruning stopped: its time budget is used up; 1 expired left for later" in out
    assert sum("deleted nested subvolume" in line for line in out) < 14
    assert proc.stderr == ""  # a walk cut short is no error
    assert_clean_exit(helpers, run_dir, device)

    proc = prune_only(device, run_dir, keep_newest=1)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.splitlines()
    assert f"{PREFIX}deleted old_roots/{moved}" in out
    assert len(old_root_names(top)) == 1 and moved not in os.listdir(top / "old_roots")
    assert_clean_exit(helpers, run_dir, device)


def test_prune_only_without_old_roots_does_nothing(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    before = helpers.tree_manifest(top / "root")
    proc = prune_only(device, run_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no old roots to prune" in proc.stdout
    assert helpers.tree_manifest(top / "root") == before
    assert not (top / "old_roots").exists()
    assert_clean_exit(helpers, run_dir, device)
    baseline.check()


# --------------------------------------------------------------------------- the root's quota


def enable_simple_quotas(top: Path) -> None:
    """`btrfs quota enable --simple` (btrfs-progs 6.7) by its ioctl, for older btrfs-progs:
    BTRFS_IOC_QUOTA_CTL, _IOWR(0x94, 40, {__u64 cmd; __u64 status}), cmd 4."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, 0xC0109428, struct.pack("QQ", 4, 0))
    except OSError as e:
        pytest.skip(f"no btrfs simple quotas on this kernel ({e.strerror})")
    finally:
        os.close(fd)


def fill(path: Path, mib: int) -> int:
    """Writes up to `mib` MiB into a new file at `path`; returns the errno that stopped it."""
    with pytest.raises(OSError) as caught, open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
            f.flush()
            os.fsync(f.fileno())
    assert caught.value.errno is not None
    return caught.value.errno


def test_root_quota_enables_quotas_when_off(helpers: ModuleType, system: System) -> None:
    """Quotas off: the script enables them (simple ones where btrfs-progs and the kernel have
    them) and limits the new root; the next boot does not enable them again."""
    device, top, run_dir, baseline = system
    script = [device, "root", "root-blank", "old_roots", "30", "3"]
    for boot in range(2):
        proc = rollback(device, 30, run_dir, "--root-quota", "16M", *script)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout.splitlines()
        enabled = [line for line in out if line.startswith(f"{PREFIX}enabled btrfs")]
        assert len(enabled) == (boot == 0), out
        assert any(line.startswith(f"{PREFIX}limited root") for line in out), proc.stderr
        assert_fresh_root(helpers, top, baseline)
        assert_clean_exit(helpers, run_dir, device)
        assert fill(top / "root" / "fill", 64) == errno.EDQUOT


@pytest.mark.parametrize("mode", ["full", "simple"])
def test_root_quota_limits_the_root_not_persist(
    helpers: ModuleType, system: System, mode: str
) -> None:
    """--root-quota: the new root gets the limit before it takes the root's name, and a
    user who fills / gets EDQUOT while /persist still has room. In simple mode the limit is on
    a level-1 qgroup that a subvolume made inside the root joins: the user cannot escape the
    quota with one (in full mode they can, and the journal says so)."""
    device, top, run_dir, baseline = system
    if mode == "simple":
        enable_simple_quotas(top)
    else:
        helpers.run(["btrfs", "quota", "enable", top])
    script = [device, "root", "root-blank", "old_roots", "30", "3"]
    for _boot in range(2):
        proc = rollback(device, 30, run_dir, "--root-quota", "16M", *script)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout.splitlines()
        assert not any("enabled btrfs" in line for line in out)
        root_id = helpers.subvolume_info(top / "root")["Subvolume ID"]
        if mode == "simple":
            limited = (
                f"{PREFIX}limited root and the subvolumes made in it to 16M "
                f"(btrfs simple quota, qgroup 1/{root_id})"
            )
            assert limited in out, proc.stderr
            assert proc.stderr == ""
        else:
            assert f"{PREFIX}limited root to 16M (btrfs quota)" in out, proc.stderr
            assert "a subvolume made inside root is not counted" in proc.stderr
        assert_fresh_root(helpers, top, baseline)
        assert_clean_exit(helpers, run_dir, device)
        os.sync()
        # a subvolume the user makes in /tmp, to escape the quota
        (top / "root" / "tmp").mkdir()
        mksubvol(helpers, top / "root" / "tmp" / "escape")
        if mode == "simple":
            assert fill(top / "root" / "tmp" / "escape" / "fill", 64) == errno.EDQUOT
            assert (top / "root" / "tmp" / "escape" / "fill").stat().st_size <= 16 << 20
        else:
            with open(top / "root" / "tmp" / "escape" / "fill", "wb") as f:
                f.write(os.urandom(32 << 20))
                os.fsync(f.fileno())
        assert fill(top / "root" / "fill", 64) == errno.EDQUOT
        if (top / "root" / "fill").exists():  # in simple mode, the escape took it all
            assert (top / "root" / "fill").stat().st_size <= 16 << 20
    # persist is not limited by the root's quota
    with open(top / "persist" / "big", "wb") as f:
        f.write(os.urandom(32 << 20))
        os.fsync(f.fileno())
    (top / "persist" / "big").unlink()


@pytest.mark.parametrize("size", ["0", "16", "1.5G", "16MiB", "-1", "16m", "", "1" * 17])
def test_root_quota_size_is_checked(helpers: ModuleType, system: System, size: str) -> None:
    device, top, run_dir, baseline = system
    script = [device, "root", "root-blank", "old_roots", "30", "3"]
    proc = rollback(device, 30, run_dir, "--root-quota", size, *script)
    if size == "16":
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 1 and "SIZE must be" in proc.stderr
    assert not (top / "old_roots").exists()
    baseline.check()


INCONSISTENT = """#!/bin/bash
# btrfs, but `qgroup show` warns as btrfs-progs does when quota data is inconsistent, and
# `quota rescan` is recorded
if [[ "$1 $2" == "qgroup show" ]]; then
  {real} "$@" || exit
  echo "WARNING: qgroup data inconsistent, rescan recommended" >&2
  exit 0
fi
if [[ "$1 $2" == "quota rescan" ]]; then echo "$@" >>{log}; fi
exec {real} "$@"
"""


@pytest.mark.parametrize("prune_only_run", [False, True])
def test_root_quota_rescans_inconsistent_quota_data(
    helpers: ModuleType, system: System, tmp_path: Path, prune_only_run: bool
) -> None:
    """A qgroup limit holds only while the quota data is consistent (btrfs-qgroup(8)):
    both runs with --root-quota start a rescan when `qgroup show` says it is not."""
    device, top, run_dir, baseline = system
    script = [device, "root", "root-blank", "old_roots", "30", "3"]
    proc = rollback(device, 30, run_dir, "--root-quota", "16M", *script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "started a rescan" not in proc.stdout
    bindir = tmp_path / "inconsistent"
    bindir.mkdir()
    real = shutil.which("btrfs")
    assert real
    log = tmp_path / "rescans"
    (bindir / "btrfs").write_text(INCONSISTENT.format(real=real, log=log))
    (bindir / "btrfs").chmod(0o755)
    first = ["--prune-only"] if prune_only_run else []
    argv = [*first, "--root-quota", "16M", *script]
    proc = rollback(device, 30, run_dir, *argv, extra_path=bindir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    started = (
        "btrfs quota data was inconsistent (the root's quota does not hold then): started a rescan"
    )
    assert f"{PREFIX}{started}" in proc.stdout.splitlines()
    assert len(log.read_text().splitlines()) == 1
    assert_clean_exit(helpers, run_dir, device)
    helpers.run(["btrfs", "quota", "rescan", "-w", top])
    baseline.check()


# --------------------------------------------------------------------------- fault injection


def run_with_kill(
    device: str, keep: int, run_dir: Path, shims: Any, kill_at: int, mode: str
) -> tuple[int, str, str, int]:
    """The rollback through the fault-injection shims (conftest's `shims`)."""
    env = shims.arm(kill_at, mode)
    proc = start_rollback(device, keep, run_dir, extra_path=shims.bindir, extra_env=env)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err, shims.calls()


class Cycle:
    """One boot cycle under test: populate the root, interrupt the script, "reboot",
    run it again and check every invariant."""

    def __init__(
        self,
        helpers: ModuleType,
        device: str,
        top: Path,
        run_dir: Path,
        baseline: Baseline,
        first_boot: bool = False,
    ) -> None:
        self.h, self.device, self.top, self.run_dir, self.baseline = (
            helpers,
            device,
            top,
            run_dir,
            baseline,
        )
        # first_boot: every round starts without old_roots (the script creates it)
        self.first_boot = first_boot

    def prepare(self) -> None:
        if not os.listdir(self.top / "root"):  # the system fixture filled the first one
            populate_root(self.h, self.top / "root")
        old = self.top / "old_roots"
        if self.first_boot and old.exists():
            assert os.listdir(old) == []
            self.h.run(["btrfs", "subvolume", "delete", old])
        if not self.first_boot and not old.exists():
            mksubvol(self.h, old)
        self.root_manifest = self.h.tree_manifest(self.top / "root")
        self.root_uuid = self.h.subvolume_info(self.top / "root")["UUID"]
        old = self.top / "old_roots"
        self.before = set(os.listdir(old)) if old.exists() else set()

    def recover_and_check(self, keep: int, label: str) -> None:
        h, top = self.h, self.top
        reboot_cleanup(h, self.run_dir)
        # between the kill and the rerun nothing persistent may have changed
        self.baseline.check()
        proc = rollback(self.device, keep, self.run_dir)
        assert proc.returncode == 0, f"{label}: rerun failed\n{proc.stdout}\n{proc.stderr}"
        assert_fresh_root(h, top, self.baseline)
        assert_clean_exit(h, self.run_dir, self.device)
        assert not (top / TMP_NAME).exists()
        new = set(os.listdir(top / "old_roots")) - self.before
        if keep == 0:
            assert old_root_names(top) == set(), label
            assert h.subvolumes_under(top / "old_roots") == set(), label
            return
        # the interrupted root survived whole, exactly once, under old_roots
        owners = [
            n for n in new if h.subvolume_info(top / "old_roots" / n)["UUID"] == self.root_uuid
        ]
        assert len(owners) == 1, f"{label}: old root found {len(owners)} times among {new}"
        assert h.tree_manifest(top / "old_roots" / owners[0]) == self.root_manifest, label
        # any other new old root is an untouched blank (the killed run had finished)
        for n in new - set(owners):
            assert os.listdir(top / "old_roots" / n) == [], label
            info = h.subvolume_info(top / "old_roots" / n)
            assert info["Parent UUID"] == self.baseline.infos["root-blank"]["UUID"], label
        assert len(new) <= 2, label
        for n in new:  # keep the filesystem small for the next round
            delete_tree(h, top, f"old_roots/{n}")


@pytest.mark.parametrize("first_boot", [False, True], ids=["steady", "first-boot"])
@pytest.mark.parametrize("keep", [30, 0])
def test_sigkill_at_every_step_then_rerun(
    helpers: ModuleType, system: System, shims: Any, keep: int, first_boot: bool
) -> None:
    device, top, run_dir, baseline = system
    cycle = Cycle(helpers, device, top, run_dir, baseline, first_boot)

    # calibration: a full run through the shims counts the steps
    cycle.prepare()
    rc, out, err, total = run_with_kill(device, keep, run_dir, shims, 0, "none")
    assert rc == 0, err
    trace = "\n".join(shims.trace())
    assert "btrfs" in trace and " mv" in trace and "mount" in trace
    assert total >= 10
    cycle.recover_and_check(keep, "calibration")

    killed = 0
    for kill_at in range(1, total + 1):
        for mode in ("before", "after"):
            label = f"keep={keep} kill {mode} call {kill_at}/{total}"
            cycle.prepare()
            rc, out, err, calls = run_with_kill(device, keep, run_dir, shims, kill_at, mode)
            assert rc == -signal.SIGKILL, f"{label}: not killed (rc {rc})\n{out}\n{err}"
            trace = shims.trace()
            # find -execdir runs wrapped commands itself: killed after find, they count too
            nested = mode == "after" and trace[kill_at - 1] == f"{kill_at} find"
            assert calls == kill_at or (nested and calls > kill_at), label
            killed += 1
            cycle.recover_and_check(keep, label)
    assert killed == 2 * total


def test_sigkill_at_random_moments_then_rerun(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    cycle = Cycle(helpers, device, top, run_dir, baseline)
    rng = random.Random(20261121)

    cycle.prepare()
    t = time.monotonic()
    assert rollback(device, 0, run_dir).returncode == 0
    duration = time.monotonic() - t
    cycle.recover_and_check(0, "timing run")

    outcomes = {"killed": 0, "finished": 0}
    for i in range(24):
        keep = rng.choice([0, 30])
        delay = rng.uniform(0, duration * 1.1)
        cycle.prepare()
        proc = start_rollback(device, keep, run_dir)
        time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=120)
        assert proc.returncode in (0, -signal.SIGKILL)
        outcomes["killed" if proc.returncode else "finished"] += 1
        cycle.recover_and_check(keep, f"random kill {i} after {delay * 1000:.0f} ms (keep={keep})")
    assert outcomes["killed"] >= 12, outcomes


def test_runs_inline_as_the_scripted_initrd_runs_it(helpers: ModuleType, system: System) -> None:
    """`bash -c '<kept.bash><btrfs-rollback.bash>' btrfs-rollback.bash ARGS`, as
    lib.nix's inlineBashWith writes it into postResumeCommands: no file to source. The boot
    record is written too."""
    device, top, run_dir, baseline = system
    libs = "".join((SCRIPT.parent / n).read_text() + "\n" for n in ("kept.bash", "record.bash"))
    text = libs + SCRIPT.read_text()
    run_dir.mkdir(exist_ok=True)
    proc = subprocess.run(
        ["bash", "-c", text, "btrfs-rollback.bash", "--prune-budget", "5", "--root-quota", "1G",
         device, "root", "root-blank", "old_roots", "30", "3"],
        env=script_env(run_dir),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(old_root_names(top)) == 1
    assert f"{PREFIX}limited root to 1G (btrfs quota)" in proc.stdout.splitlines()
    (moved,) = old_root_names(top)
    assert read_record(run_dir)["old_root"] == moved
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)


# --------------------------------------------------------------------------- the boot record

RECORD_KEYS = ["kind", "outcome", "reason", "old_root", "time"]


def read_record(run_dir: Path) -> dict[str, str]:
    """The boot record, checked for its exact form: the five keys in order, one line each,
    the file 0644 in a 0755 directory."""
    directory = record_dir(run_dir)
    assert stat_mode(directory) == 0o755
    path = directory / "reset"
    assert not path.is_symlink() and stat_mode(path) == 0o644
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", "the record ends with a newline"
    pairs = [line.split("=", 1) for line in lines[:-1]]
    assert [key for key, _ in pairs] == RECORD_KEYS
    record = dict(pairs)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["time"])
    assert [p.name for p in directory.iterdir()] == ["reset"], "no temporary file is left"
    return record


def stat_mode(path: Path) -> int:
    return os.lstat(path).st_mode & 0o7777


def test_record_says_reset_and_names_the_old_root(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, baseline = system
    t0 = datetime.now(UTC).replace(microsecond=0)
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stderr
    (moved,) = old_root_names(top)
    record = read_record(run_dir)
    assert record == {
        "kind": "btrfs",
        "outcome": "reset",
        "reason": "",
        "old_root": moved,
        "time": record["time"],
    }
    assert t0 <= datetime.strptime(record["time"], STAMP).replace(tzinfo=UTC)
    # a second boot replaces the record (rename over it) and names its own old root
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stderr
    (second,) = old_root_names(top) - {moved}
    assert read_record(run_dir)["old_root"] == second
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)


def test_record_has_no_old_root_when_pruning_deleted_it(
    helpers: ModuleType, system: System
) -> None:
    device, top, run_dir, _baseline = system
    proc = rollback(device, 0, run_dir, keep_newest=0)
    assert proc.returncode == 0, proc.stderr
    assert old_root_names(top) == set()
    record = read_record(run_dir)
    assert (record["outcome"], record["old_root"]) == ("reset", "")


def test_record_says_failed_when_the_blank_snapshot_is_missing(
    helpers: ModuleType, system: System
) -> None:
    device, top, run_dir, _baseline = system
    helpers.run(["btrfs", "subvolume", "delete", top / "root-blank"])
    proc = rollback(device, 0, run_dir)
    assert proc.returncode == 1
    record = read_record(run_dir)
    assert record["kind"] == "btrfs" and record["outcome"] == "failed"
    assert record["reason"] == "blank snapshot root-blank not found on " + device + (
        "; nothing changed"
    )
    assert record["old_root"] == ""
    assert_clean_exit(helpers, run_dir, device)


FAILING = """#!/bin/bash
# {name}, but `{name} {match}...` fails as a broken kernel or tool would
if [[ " $* " == *" {match} "* ]]; then
  echo "{name}: {message}" >&2
  exit 32
fi
exec {real} "$@"
"""


@pytest.mark.parametrize(
    ("name", "match", "message", "reason"),
    [
        # the top level cannot be mounted: the ERR trap's message is the reason
        ("mount", "subvolid=5", "wrong fs type", "`mount -t btrfs -o subvolid=5 -- "),
        # the snapshot of the blank fails (not ENOSPC), after the root was moved
        ("btrfs", "snapshot", "Input/output error", "btrfs failed; root is not reset"),
    ],
)
def test_record_says_failed_on_an_injected_fault(
    helpers: ModuleType,
    system: System,
    tmp_path: Path,
    name: str,
    match: str,
    message: str,
    reason: str,
) -> None:
    device, top, run_dir, _baseline = system
    bindir = tmp_path / "faults"
    bindir.mkdir()
    real = shutil.which(name)
    assert real
    (bindir / name).write_text(FAILING.format(name=name, match=match, message=message, real=real))
    (bindir / name).chmod(0o755)
    proc = rollback(device, 30, run_dir, extra_path=bindir)
    assert proc.returncode != 0
    record = read_record(run_dir)
    assert record["kind"] == "btrfs" and record["outcome"] == "failed", record
    assert reason in record["reason"]
    assert "\n" not in record["reason"]
    if name == "btrfs":
        # the root was moved before the failure: the record names it
        (moved,) = old_root_names(top)
        assert record["old_root"] == moved
        assert "root is not reset" in proc.stderr
    helpers.unmount_all_under(run_dir)
    for leftover in run_dir.iterdir():
        os.rmdir(leftover)


def test_record_says_failed_when_killed_by_a_signal(
    helpers: ModuleType, system: System, tmp_path: Path
) -> None:
    """SIGTERM (a unit's timeout) in the middle of the run: the EXIT trap still records."""
    device, _top, run_dir, _baseline = system
    bindir = tmp_path / "slow"
    bindir.mkdir()
    real = shutil.which("btrfs")
    slow = "{ touch " + str(tmp_path / "started") + "; sleep 30; }"
    (bindir / "btrfs").write_text(
        f'#!/bin/bash\n[[ $2 != snapshot ]] || {slow}\nexec {real} "$@"\n'
    )
    (bindir / "btrfs").chmod(0o755)
    proc = start_rollback(device, 30, run_dir, extra_path=bindir)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    # as systemd stops a unit: SIGTERM to every process of it
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    record = read_record(run_dir)
    assert record["outcome"] == "failed"
    helpers.unmount_all_under(run_dir)
    for leftover in run_dir.iterdir():
        os.rmdir(leftover)


def test_prune_only_writes_no_record(helpers: ModuleType, system: System) -> None:
    device, top, run_dir, _baseline = system
    mksubvol(helpers, top / "old_roots")
    mksubvol(helpers, top / "old_roots" / stamp(datetime.now(UTC) - timedelta(days=90)))
    proc = prune_only(device, run_dir, keep_days=0)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert old_root_names(top) == set()
    assert not record_dir(run_dir).exists()


def test_a_link_planted_at_the_record_is_replaced_not_followed(
    helpers: ModuleType, system: System, tmp_path: Path
) -> None:
    device, _top, run_dir, _baseline = system
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    directory = record_dir(run_dir)
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    (directory / "reset").symlink_to(victim)
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "precious\n"
    assert read_record(run_dir)["outcome"] == "reset"


def test_a_link_planted_at_the_record_directory_is_not_followed(
    helpers: ModuleType, system: System, tmp_path: Path
) -> None:
    """The directory is a link: nothing is written through it, the reset still succeeds
    (exit 0) and the journal says the record could not be written."""
    device, top, run_dir, baseline = system
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    record_dir(run_dir).symlink_to(elsewhere)
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stderr
    assert list(elsewhere.iterdir()) == []
    assert "warning: could not record the outcome (reset)" in proc.stderr
    assert "not a directory (a symbolic link is not followed)" in proc.stderr
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)


def test_a_record_directory_others_may_write_is_refused(
    helpers: ModuleType, system: System
) -> None:
    device, _top, run_dir, _baseline = system
    directory = record_dir(run_dir)
    directory.mkdir()
    directory.chmod(0o777)
    proc = rollback(device, 30, run_dir)
    assert proc.returncode == 0, proc.stderr
    assert "writable by no one else" in proc.stderr
    assert list(directory.iterdir()) == []


# --------------------------------------------------------------------------- KEEP_MAX


def subvolume_ids(helpers: ModuleType, top: Path) -> dict[str, int]:
    return {
        name: int(helpers.subvolume_info(top / "old_roots" / name)["Subvolume ID"])
        for name in old_root_names(top)
    }


def test_keep_max_bounds_old_roots_with_a_1970_clock(
    helpers: ModuleType, system: System, tmp_path: Path
) -> None:
    """A machine without a hardware clock boots at 1970 every time: its names never pass
    the newest, so keepDays prunes nothing; KEEP_MAX=3 keeps the 3 newest by subvolume ID."""
    device, top, run_dir, baseline = system
    # an earlier boot with a right clock left a newer name than any 1970 one
    assert rollback(device, 30, run_dir).returncode == 0
    clock = fake_clock(tmp_path, datetime(1970, 1, 1, 0, 0, 7, tzinfo=UTC))
    seen: set[int] = set()  # subvolume IDs: btrfs never reuses one (names are reused)
    for boot in range(10):
        (top / "root" / f"boot {boot}").write_text("written during the boot\n")
        args = (device, "root", "root-blank", "old_roots", "30", "1", "3")
        proc = rollback(device, 30, run_dir, *args, extra_path=clock)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        if boot == 0:  # the right clock's name is the newest: keepDays prunes nothing
            assert "the clock looks wrong" in proc.stderr
        (moved,) = re.findall(r"moved root to old_roots/(\S+)", proc.stdout)
        assert moved.startswith("1970-01-01T00:00:07Z")
        ids = subvolume_ids(helpers, top)
        seen |= set(ids.values())
        assert len(ids) <= 3, f"boot {boot}: {sorted(ids)}"
        assert set(ids.values()) == set(sorted(seen)[-3:]), f"boot {boot}"
        assert read_record(run_dir)["old_root"] == moved
    assert len(seen) == 11
    # the kept ones are the last three boots' roots, with what those boots wrote
    kept = sorted(subvolume_ids(helpers, top).items(), key=lambda kv: kv[1])
    for (name, _), boot in zip(kept, (7, 8, 9), strict=True):
        assert (top / "old_roots" / name / f"boot {boot}").exists()
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)


def test_keep_max_applies_in_the_stage_2_prune(
    helpers: ModuleType, system: System, tmp_path: Path
) -> None:
    device, top, run_dir, _baseline = system
    mksubvol(helpers, top / "old_roots")
    now = datetime.now(UTC)
    # created oldest first; the names say the opposite (a clock that went back)
    names = [stamp(now - timedelta(hours=h)) for h in (1, 2, 3, 4, 5)]
    for name in names:
        mksubvol(helpers, top / "old_roots" / name)
    clock = fake_clock(tmp_path, datetime(1970, 1, 1, tzinfo=UTC))
    argv = ["--prune-only", device, "root", "root-blank", "old_roots", "30", "0", "2"]
    proc = rollback(device, 30, run_dir, *argv, extra_path=clock)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert old_root_names(top) == set(names[-2:])
    assert "beyond the 2 newest (KEEP_MAX)" in proc.stdout
    assert not record_dir(run_dir).exists()
    assert_clean_exit(helpers, run_dir, device)


def test_six_arguments_keep_every_old_root_a_wrong_clock_protects(
    helpers: ModuleType, system: System, tmp_path: Path
) -> None:
    """Without KEEP_MAX (the 6-argument form, as before): a 1970 clock prunes nothing."""
    device, top, run_dir, _baseline = system
    assert rollback(device, 30, run_dir).returncode == 0
    clock = fake_clock(tmp_path, datetime(1970, 1, 1, tzinfo=UTC))
    for _ in range(4):
        proc = rollback(device, 0, run_dir, keep_newest=0, extra_path=clock)
        assert proc.returncode == 0, proc.stderr
    assert len(old_root_names(top)) == 5


BUSYBOX_UMOUNT = """#!/bin/bash
# busybox's umount (the scripted initrd's): -l, no --lazy; the first plain umount is busy
for arg; do
  [[ $arg != --lazy ]] || {{ echo "umount: unrecognized option '--lazy'" >&2; exit 1; }}
done
if [[ $1 != -l && ! -e {state} ]]; then
  touch {state}
  echo "umount: {{$*}}: target is busy" >&2
  exit 32
fi
exec {real} "$@"
"""


def test_a_busy_top_level_is_detached_with_busybox_umount(
    helpers: ModuleType, system: System, tmp_path: Path
) -> None:
    """The fallback of a busy unmount is `umount -l`, which busybox has (not --lazy)."""
    device, top, run_dir, baseline = system
    bindir = tmp_path / "busybox"
    bindir.mkdir()
    real = shutil.which("umount")
    assert real
    shim = BUSYBOX_UMOUNT.format(state=tmp_path / "busy-once", real=real)
    (bindir / "umount").write_text(shim)
    (bindir / "umount").chmod(0o755)
    proc = rollback(device, 30, run_dir, extra_path=bindir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "target is busy" in proc.stderr
    assert_fresh_root(helpers, top, baseline)
    assert_clean_exit(helpers, run_dir, device)
