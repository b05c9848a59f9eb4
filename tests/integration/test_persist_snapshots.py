"""modules/snapshots/btrfs-persist-snapshot.bash on a real btrfs filesystem.

The script runs as the unit blankslate-persist-snapshot runs it (`bash script DEVICE persist
persist_snapshots KEEP`), with TMPDIR in tmp_path so the temporary mount of a killed run can
be found and removed as the unit's own mount namespace (PrivateMounts) would drop it. The
fault injection is the rollback's (conftest's `shims`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "modules" / "snapshots" / "btrfs-persist-snapshot.bash"
PREFIX = "blankslate-persist-snapshot: "
NAME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(\.[1-9]\d*)?$")
SNAPSHOTS = "persist_snapshots"


def argv(device: str, keep: int | str, *args: str) -> list[str]:
    return ["bash", str(SCRIPT), *(args or (device, "persist", SNAPSHOTS, str(keep)))]


def snapshot(
    device: str, keep: int | str, run_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    run_dir.mkdir(exist_ok=True)
    return subprocess.run(
        argv(device, keep, *args),
        env={**os.environ, "TMPDIR": str(run_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def ours(top: Path) -> list[str]:
    """Our snapshots (subvolumes named by the script), oldest first by creation."""
    directory = top / SNAPSHOTS
    if not directory.exists():
        return []
    names = [
        n
        for n in os.listdir(directory)
        if NAME_RE.match(n) and os.stat(directory / n).st_ino == 256
    ]
    return sorted(names, key=lambda n: _id(directory / n))


def _id(path: Path) -> int:
    out = subprocess.run(
        ["btrfs", "subvolume", "show", path], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Subvolume ID:\s*(\d+)", out)
    assert match, out
    return int(match[1])


def fill_persist(top: Path) -> None:
    (top / "persist" / "etc" / "ssh").mkdir(parents=True)
    (top / "persist" / "etc" / "ssh" / "ssh_host_ed25519_key").write_bytes(os.urandom(411))
    (top / "persist" / "big").write_bytes(os.urandom(1 << 20))
    (top / "persist" / "odd\nname dir").mkdir()
    os.setxattr(top / "persist" / "big", "user.kept", b"yes")


# (device, top-level mount, run dir): what the `persist` fixture yields
Persist = tuple[str, Path, Path]


@pytest.fixture
def persist(helpers: ModuleType, layout: Any, tmp_path: Path) -> Iterator[Persist]:
    """(device, top-level mount, run dir) with data in persist."""
    with helpers.mount_top_level(layout.device) as top:
        fill_persist(top)
        yield layout.device, top, tmp_path / "run"


def assert_clean(helpers: ModuleType, run_dir: Path, device: str) -> None:
    assert helpers.mounts_under(run_dir) == []
    assert list(run_dir.iterdir()) == []
    assert len(helpers.mounts_of(device)) == 1  # the test's own


def test_snapshot_is_a_read_only_copy_of_persist(helpers: ModuleType, persist: Persist) -> None:
    device, top, run_dir = persist
    manifest = helpers.tree_manifest(top / "persist")
    proc = snapshot(device, 3, run_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (name,) = ours(top)
    taken = top / SNAPSHOTS / name
    info = helpers.subvolume_info(taken)
    assert info["Flags"] == "readonly"
    assert info["Parent UUID"] == helpers.subvolume_info(top / "persist")["UUID"]
    assert helpers.tree_manifest(taken) == manifest
    assert os.getxattr(taken / "big", "user.kept") == b"yes"
    lines = proc.stdout.splitlines()
    assert f"{PREFIX}created subvolume {SNAPSHOTS}" in lines
    assert f"{PREFIX}snapshot of persist taken: {SNAPSHOTS}/{name}" in lines
    assert lines[-1] == f"{PREFIX}done"
    assert helpers.tree_manifest(top / "persist") == manifest
    assert_clean(helpers, run_dir, device)


def test_prune_keeps_the_newest_by_creation(helpers: ModuleType, persist: Persist) -> None:
    device, top, run_dir = persist
    for _ in range(5):  # within a second or two: ".N" suffixes
        assert snapshot(device, 3, run_dir).returncode == 0
    kept = ours(top)
    assert len(kept) == 3
    # an entry that is not ours, and one named like ours that is no subvolume, stay
    (top / SNAPSHOTS / "by-hand").mkdir()
    (top / SNAPSHOTS / "2000-01-01T00:00:00Z").mkdir()
    proc = snapshot(device, 3, run_dir)
    assert proc.returncode == 0, proc.stderr
    after = ours(top)
    assert len(after) == 3
    assert after[:2] == kept[1:]  # the oldest went, the two newer stayed, and a new one
    assert f"{PREFIX}deleted {SNAPSHOTS}/{kept[0]}" in proc.stdout.splitlines()
    assert f"{PREFIX}left {SNAPSHOTS}/2000-01-01T00:00:00Z alone: not a subvolume" in proc.stdout
    assert (top / SNAPSHOTS / "by-hand").is_dir()
    assert_clean(helpers, run_dir, device)


def test_keep_zero_takes_none_and_deletes_every_one(helpers: ModuleType, persist: Persist) -> None:
    device, top, run_dir = persist
    for _ in range(3):
        assert snapshot(device, 5, run_dir).returncode == 0
    helpers.run(["btrfs", "subvolume", "create", top / SNAPSHOTS / "mine"])
    proc = snapshot(device, 0, run_dir)
    assert proc.returncode == 0, proc.stderr
    assert ours(top) == []
    assert "snapshot of persist taken" not in proc.stdout
    assert sorted(os.listdir(top / SNAPSHOTS)) == ["mine"]  # not ours: untouched
    assert_clean(helpers, run_dir, device)


def test_missing_persist_changes_nothing(helpers: ModuleType, persist: Persist) -> None:
    device, top, run_dir = persist
    proc = snapshot(device, 3, run_dir, device, "nothere", SNAPSHOTS, "3")
    assert proc.returncode == 1
    assert "persist subvolume nothere not found" in proc.stderr
    assert "nothing changed" in proc.stderr
    assert not (top / SNAPSHOTS).exists()
    assert_clean(helpers, run_dir, device)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("persist", SNAPSHOTS, "3"), 2, "usage:"),
        (("DEVICE", "persist", "persist/inner", "3"), 1, "must be distinct and not nested"),
        (("DEVICE", "persist", "../x", "3"), 1, "empty, '.' or '..' component"),
        (("DEVICE", "persist", SNAPSHOTS, "-1"), 1, "KEEP must be a non-negative integer"),
        (("DEVICE", "persist", SNAPSHOTS, "1234567"), 1, "KEEP must be a non-negative integer"),
        (("/dev/null", "persist", SNAPSHOTS, "3"), 1, "DEVICE is not a block device"),
    ],
)
def test_bad_arguments_touch_nothing(
    helpers: ModuleType, persist: Persist, args: tuple[str, ...], code: int, message: str
) -> None:
    device, top, run_dir = persist
    args = tuple(device if arg == "DEVICE" else arg for arg in args)
    proc = snapshot(device, 3, run_dir, *args)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert not (top / SNAPSHOTS).exists()
    assert not run_dir.exists() or list(run_dir.iterdir()) == []


def test_a_name_in_the_future_stops_pruning(
    helpers: ModuleType, persist: Persist, tmp_path: Path
) -> None:
    """A snapshot named in the future (an earlier run's clock at 2099) stops pruning, and
    the warning names it; the snapshot just taken is there."""
    device, top, run_dir = persist
    assert snapshot(device, 2, run_dir).returncode == 0
    helpers.run(
        [
            "btrfs",
            "subvolume",
            "snapshot",
            "-r",
            top / "persist",
            top / SNAPSHOTS / "2099-01-01T00:00:00Z",
        ]
    )
    proc = snapshot(device, 1, run_dir)
    assert proc.returncode == 0, proc.stderr
    assert "the clock looks wrong" in proc.stderr
    assert f"{SNAPSHOTS}/2099-01-01T00:00:00Z" in proc.stderr
    assert len(ours(top)) == 3  # nothing pruned


# --------------------------------------------------------------------------- fault injection


def start_killable(
    device: str, keep: int, run_dir: Path, shims: Any, kill_at: int, mode: str
) -> tuple[int, str, str]:
    run_dir.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "TMPDIR": str(run_dir),
        "PATH": f"{shims.bindir}:{os.environ['PATH']}",
        **shims.arm(kill_at, mode),
    }
    proc = subprocess.Popen(
        argv(device, keep),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def reboot_cleanup(helpers: ModuleType, run_dir: Path) -> None:
    """What the end of the unit's mount namespace does for a killed run."""
    helpers.unmount_all_under(run_dir)
    for leftover in run_dir.iterdir():
        os.rmdir(leftover)  # an empty mount point, never content


def check_after_rerun(
    helpers: ModuleType,
    top: Path,
    keep: int,
    manifest: dict[str, tuple[object, ...]],
    uuid: str,
    label: str,
) -> None:
    assert helpers.tree_manifest(top / "persist") == manifest, f"{label}: persist changed"
    assert helpers.subvolume_info(top / "persist")["UUID"] == uuid, label
    names = ours(top)
    assert sorted(os.listdir(top / SNAPSHOTS)) == sorted(names), f"{label}: {names}"
    if keep == 0:
        assert names == [], label
        return
    assert 1 <= len(names) <= keep, f"{label}: {names}"
    for name in names:  # every snapshot left is whole and read-only
        info = helpers.subvolume_info(top / SNAPSHOTS / name)
        assert info["Flags"] == "readonly", label
        assert helpers.tree_manifest(top / SNAPSHOTS / name) == manifest, label


@pytest.mark.parametrize("keep", [2, 0])
def test_sigkill_at_every_step_then_rerun(
    helpers: ModuleType, persist: Persist, shims: Any, keep: int
) -> None:
    device, top, run_dir = persist
    manifest = helpers.tree_manifest(top / "persist")
    uuid = helpers.subvolume_info(top / "persist")["UUID"]

    def prepare() -> None:
        # two old snapshots to prune, so every deletion step is reached
        for _ in range(2):
            assert snapshot(device, 5, run_dir).returncode == 0

    prepare()
    rc, out, err = start_killable(device, keep, run_dir, shims, 0, "none")
    assert rc == 0, err
    total = shims.calls()
    trace = "\n".join(shims.trace())
    assert "btrfs" in trace and "mount" in trace and "sync" in trace
    assert total >= 8
    check_after_rerun(helpers, top, keep, manifest, uuid, "calibration")

    killed = 0
    for kill_at in range(1, total + 1):
        for mode in ("before", "after"):
            label = f"keep={keep} kill {mode} call {kill_at}/{total}"
            prepare()
            rc, out, err = start_killable(device, keep, run_dir, shims, kill_at, mode)
            assert rc == -signal.SIGKILL, f"{label}: not killed (rc {rc})\n{out}\n{err}"
            killed += 1
            reboot_cleanup(helpers, run_dir)
            assert helpers.tree_manifest(top / "persist") == manifest, label
            proc = snapshot(device, keep, run_dir)
            assert proc.returncode == 0, f"{label}: rerun failed\n{proc.stdout}\n{proc.stderr}"
            check_after_rerun(helpers, top, keep, manifest, uuid, label)
            assert_clean(helpers, run_dir, device)
    assert killed == 2 * total
