"""Hidden is lost (#23), on real mounts: data written, then a bind mount over it (what
`nixos-rebuild switch` does when a path is newly persisted), is `lost (hidden)` for `diff`,
`seed --hidden` rescues it without touching what persistPath holds, and a SIGKILL leaves no
mount behind. On a tmpfs root (as `rollback = "tmpfs"` has it) and on real btrfs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from blankslate import plansource

from ..conftest import needs_mounted_root
from ..support.plans import write_plan_json
from ..support.runner import blankslate
from .test_seed import NAMES, alice_owns, alices_files, leaked, root_only_vault, stop, swap_loop

pytestmark = needs_mounted_root

REPO = Path(__file__).resolve().parents[2]
VIEW_PREFIX = "blankslate-beneath."


def no_rules(directory: Path) -> Path:
    """An ignore file with no rules (diff reads only a regular file, not /dev/null)."""
    path = directory / "no-rules.yaml"
    path.write_text("ignore: []\n")
    return path


def plan_file(tmp_path: Path, kind: str, directories: list[str]) -> Path:
    """tests/plans/<kind>.json (or the default btrfs plan) with `directories` persisted."""
    if kind == "btrfs":
        data: dict[str, Any] = json.loads(plansource.default_text())
    else:
        data = json.loads((REPO / "tests/plans" / f"{kind}.json").read_text())
    for directory in directories:
        data["persistence"]["directories"].append({"directory": directory, "root": "/persist"})
    return write_plan_json(tmp_path, data)


def our_views(mountinfo: str) -> list[str]:
    return [line for line in mountinfo.splitlines() if VIEW_PREFIX in line]


def host_mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


@pytest.fixture
def tmpfs_root(tmp_path: Path, helpers: ModuleType) -> Iterator[tuple[Path, Path]]:
    """A tmpfs root on tmp/live with its own persist tmpfs on live/persist, and the state
    of a newly persisted /var/lib/foo right after `switch`: the data written on the root,
    then the (nearly empty) persistent copy bind-mounted over it. /etc/machine-id likewise."""
    live = tmp_path / "live"
    live.mkdir()
    helpers.run(["mount", "-t", "tmpfs", "blankslate-test-root", live])
    try:
        (live / "var/lib/foo/sub").mkdir(parents=True)
        (live / "var/lib/foo/db").write_text("hidden data")
        (live / "var/lib/foo/sub/x").write_text("x")
        (live / "var/lib/foo/kept").write_text("an older version")
        (live / "etc").mkdir()
        (live / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
        persist = live / "persist"
        persist.mkdir()
        helpers.run(["mount", "-t", "tmpfs", "blankslate-test-persist", persist])
        (persist / "var/lib/foo").mkdir(parents=True)
        (persist / "var/lib/foo/kept").write_text("what persistPath holds")
        (persist / "etc").mkdir()
        (persist / "etc/machine-id").write_text("fedcba9876543210fedcba9876543210\n")
        helpers.run(["mount", "--bind", persist / "var/lib/foo", live / "var/lib/foo"])
        helpers.run(["mount", "--bind", persist / "etc/machine-id", live / "etc/machine-id"])
        assert sorted(os.listdir(live / "var/lib/foo")) == ["kept"]  # the data is hidden
        yield live, persist
    finally:
        helpers.run(["umount", "-R", live])
    assert [line for line in host_mountinfo().splitlines() if str(live) in line] == []


def test_diff_reports_what_a_bind_mount_hides_on_a_tmpfs_root(
    tmpfs_root: tuple[Path, Path], tmp_path: Path
) -> None:
    live, _persist = tmpfs_root
    plan_path = plan_file(tmp_path, "tmpfs", ["/var/lib/foo"])
    metrics = tmp_path / "metrics/blankslate.prom"
    args = [
        "diff",
        "--plan",
        str(plan_path),
        "--root",
        str(live),
        "--ignore-file",
        str(no_rules(tmp_path)),
    ]
    result = blankslate(*args, "--format", "json", "--full", "--metrics", str(metrics))
    assert result.returncode == 0, result.stderr
    entries = {entry["path"]: entry for entry in json.loads(result.stdout)["entries"]}
    foo = "hidden under the bind mount of /var/lib/foo"
    hidden = {path: entry["reason"] for path, entry in entries.items() if entry.get("hidden")}
    assert hidden == {
        "/etc/machine-id": "hidden under the bind mount of /etc/machine-id",
        "/var/lib/foo/db": foo,
        "/var/lib/foo/kept": foo,
        "/var/lib/foo/sub": foo,
        "/var/lib/foo/sub/x": foo,
    }
    assert all(entries[path]["status"] == "lost" for path in hidden)
    assert entries["/var/lib/foo/db"]["size"] == len("hidden data")  # its own, not the mount's
    assert entries["/var/lib/foo"]["status"] == "persisted"  # the mountpoint itself
    assert entries["/persist"]["status"] == "persisted"
    assert not [path for path in entries if path.startswith("/persist/")]  # not on the root
    assert "blankslate_hidden_entries 5\n" in metrics.read_text()
    text = blankslate(*args, "--fail-on-lost")
    assert text.returncode == 1, text.stderr
    assert "Hidden beneath mounts, lost at the next boot: 5 entries, " in text.stdout
    assert "hidden under the bind mount of /var/lib/foo  (4 entries, " in text.stdout
    assert our_views(host_mountinfo()) == []


def test_seed_hidden_rescues_it_and_leaves_persisted_data_alone(
    tmpfs_root: tuple[Path, Path], tmp_path: Path
) -> None:
    live, persist = tmpfs_root
    plan_path = plan_file(tmp_path, "tmpfs", ["/var/lib/foo"])
    args = ["seed", "--hidden", "--plan", str(plan_path), "--root", str(live)]

    dry = blankslate(*args, "--dry-run")
    assert dry.returncode == 1, dry.stderr  # the conflicts need a look
    assert "Dry run: nothing was changed." in dry.stdout
    assert not (persist / "var/lib/foo/db").exists()

    result = blankslate(*args, "--yes")
    assert result.returncode == 1, result.stderr
    assert "error: some hidden entries were not copied" in result.stderr
    assert (persist / "var/lib/foo/db").read_text() == "hidden data"
    assert (persist / "var/lib/foo/sub/x").read_text() == "x"
    assert (live / "var/lib/foo/db").read_text() == "hidden data"  # seen through the mount now
    # What persistent storage held is untouched; each conflict is one line naming both copies.
    assert (persist / "var/lib/foo/kept").read_text() == "what persistPath holds"
    assert (persist / "etc/machine-id").read_text() == "fedcba9876543210fedcba9876543210\n"
    conflicts = [line for line in result.stdout.splitlines() if line.startswith("conflict")]
    assert len(conflicts) == 2
    assert any(
        "/var/lib/foo/kept" in line and f"{persist}/var/lib/foo/kept" in line for line in conflicts
    )
    assert "copied 2 hidden entries" in result.stdout
    assert list(persist.glob("**/*.blankslate-partial")) == []

    again = blankslate(*args, "--dry-run")
    assert "present   file       /var/lib/foo/db (hidden) = " in again.stdout
    assert our_views(host_mountinfo()) == []


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def wait_for(condition: Any, what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("victim", ["command", "child"])
def test_sigkill_during_diff_leaves_no_mount(
    tmpfs_root: tuple[Path, Path], tmp_path: Path, victim: str
) -> None:
    """The view is mounted in the child's own namespace only, and goes with it: kill the
    command (the child then dies on its closed pipe) or the child, mid-scan."""
    live, _persist = tmpfs_root
    many = live / "srv/many"
    many.mkdir(parents=True)
    for number in range(20000):  # a result much larger than a pipe holds: the child waits
        (many / f"file-{number:05d}").touch()
    plan_path = plan_file(tmp_path, "tmpfs", ["/var/lib/foo"])
    command = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "blankslate",
            "diff",
            "--plan",
            str(plan_path),
            "--root",
            str(live),
            "--format",
            "json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        ours = os.readlink("/proc/self/ns/mnt")

        def forked() -> list[int]:
            """The child once it is in a mount namespace of its own (not a findmnt)."""
            found = []
            for pid in children_of(command.pid):
                try:
                    if os.readlink(f"/proc/{pid}/ns/mnt") != ours:
                        found.append(pid)
                except OSError:
                    continue  # gone already
            return found

        [child] = wait_for(forked, "the forked child")
        os.kill(command.pid, signal.SIGSTOP)  # the child now fills the pipe and waits
        views = wait_for(
            lambda: our_views(Path(f"/proc/{child}/mountinfo").read_text()), "the view mounted"
        )
        assert len(views) == 1 and " ro" in views[0]  # read-only, in the child's namespace
        assert our_views(host_mountinfo()) == []  # and never in ours
        os.kill(command.pid if victim == "command" else child, signal.SIGKILL)
        if victim == "child":
            os.kill(command.pid, signal.SIGCONT)
            assert command.wait(timeout=60) == 1
            stderr = command.stderr.read()  # type: ignore[union-attr]
            assert b"error: looking beneath the mounts of" in stderr
            assert b"failed (killed by signal 9)" in stderr
        wait_for(lambda: not alive(child), "the child to go")
    finally:
        if command.poll() is None:
            command.kill()
        command.wait()
    assert our_views(host_mountinfo()) == []
    for leftover in Path("/tmp").glob(VIEW_PREFIX + "*"):
        assert not os.path.ismount(leftover)
        if victim == "command":
            leftover.rmdir()  # the killed command could not remove its empty directory


def test_diff_and_seed_hidden_on_btrfs(layout: Any, helpers: ModuleType, tmp_path: Path) -> None:
    """The root subvolume as installed on live (persist mounted in it), a path persisted after
    it held data, bind-mounted: diff (the stored root) reports it hidden; seed --hidden copies
    it into the persist subvolume."""
    with helpers.live_and_persist(layout.device, tmp_path) as (live, persist):
        (live / "var/lib/app").mkdir(parents=True)
        (live / "var/lib/app/state.db").write_bytes(b"s" * 4096)
        (persist / "var/lib/app").mkdir(parents=True)
        helpers.run(["mount", "--bind", persist / "var/lib/app", live / "var/lib/app"])
        helpers.run(["btrfs", "filesystem", "sync", live])  # the stored size, for the search
        try:
            plan_path = plan_file(tmp_path, "btrfs", ["/var/lib/app"])
            diff = blankslate("diff", "--plan", str(plan_path), "--device", layout.device,
                              "--format", "json", "--full",
                              "--ignore-file", str(no_rules(tmp_path)))  # fmt: skip
            assert diff.returncode == 0, diff.stderr
            entries = {entry["path"]: entry for entry in json.loads(diff.stdout)["entries"]}
            assert entries["/var/lib/app/state.db"] == {
                "path": "/var/lib/app/state.db",
                "type": "file",
                "size": 4096,
                "status": "lost",
                "reason": "hidden under the bind mount of /var/lib/app",
                "hidden": True,
            }
            seeded = blankslate("seed", "--hidden", "--plan", str(plan_path), "--root",
                                str(live), "--yes")  # fmt: skip
            assert seeded.returncode == 0, seeded.stdout + seeded.stderr
            assert "copied 1 hidden entries" in seeded.stdout
            assert (persist / "var/lib/app/state.db").read_bytes() == b"s" * 4096
        finally:
            helpers.unmount(live / "var/lib/app")
    assert our_views(host_mountinfo()) == []
    assert helpers.mounts_of(layout.device) == []


def test_seed_hidden_never_follows_a_hidden_directory_swapped_for_a_symlink(
    tmp_path: Path, helpers: ModuleType
) -> None:
    """Attack 2 on what a bind mount hides (a tmpfs root: no snapshot): alice's process,
    whose working directory was in her /srv/alice before it was bind-mounted from persistPath,
    exchanges a directory there and a symlink to root's vault in a loop while `seed --hidden`
    copies it from the root seen beneath its mounts. Root's files never reach persistPath."""
    live = tmp_path / "live"
    live.mkdir()
    helpers.run(["mount", "-t", "tmpfs", "blankslate-test-root", live])
    swapper = 0
    try:
        vault = root_only_vault(live, NAMES[:1])
        box = live / "srv/alice/box"
        alices_files(box / "dir", NAMES[:1])
        (box / "link").symlink_to(os.path.relpath(vault, box))
        alice_owns(live / "srv/alice", box, box / "link")
        persist = live / "persist"
        persist.mkdir()
        helpers.run(["mount", "-t", "tmpfs", "blankslate-test-persist", persist])
        (persist / "srv/alice").mkdir(parents=True)
        swapper = swap_loop(box, [("dir", "link")], seconds=120, pause=0.00005)
        time.sleep(0.2)  # the swapper's working directory is the hidden box
        helpers.run(["mount", "--bind", persist / "srv/alice", live / "srv/alice"])
        plan_path = plan_file(tmp_path, "tmpfs", ["/srv/alice"])
        for attempt in range(30):
            result = blankslate(
                "seed", "--hidden", "--plan", str(plan_path), "--root", str(live), "--yes"
            )
            assert leaked(persist) == [], f"run {attempt} leaked: {result.stderr}"
            assert "Traceback" not in result.stderr
            helpers.run(["rm", "-rf", "--one-file-system", persist / "srv/alice/box"])
    finally:
        if swapper:
            stop(swapper)
        helpers.run(["umount", "-R", live])
    assert result.returncode == 0, result.stdout
