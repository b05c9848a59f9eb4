"""`blankslate seed` between two subvolumes of a real btrfs filesystem."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from blankslate import plansource

from ..support.plans import write_plan_json
from ..support.runner import blankslate


@pytest.fixture
def live_and_persist(
    layout: Any, helpers: ModuleType, tmp_path: Path
) -> Iterator[tuple[Path, Path]]:
    """The root subvolume on tmp/live and the persist subvolume on tmp/persist."""
    with helpers.live_and_persist(layout.device, tmp_path) as trees:
        yield trees
    assert helpers.mounts_of(layout.device) == []


def write_plan(tmp_path: Path, persist: Path, directories: list[str], files: list[str]) -> Path:
    data = json.loads(plansource.default_text())
    # seed --root: the plan names persistPath as the system under --root sees it
    persist_path = "/" + persist.name
    data["persistPath"] = persist_path
    data["users"] = [{"name": "admin", "hashedPasswordFile": f"{persist_path}/passwords/admin"}]
    data["sshHostKeys"] = [f"{persist_path}/etc/ssh/ssh_host_ed25519_key"]
    data["persistence"] = {
        "directories": [{"directory": d} for d in directories],
        "files": [{"file": f} for f in files],
    }
    return write_plan_json(tmp_path, data)


def metadata(path: Path) -> tuple[object, ...]:
    info = os.lstat(path)
    xattrs = {
        name: os.getxattr(path, name, follow_symlinks=False)
        for name in sorted(os.listxattr(path, follow_symlinks=False))
    }
    return (info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns, info.st_size, xattrs)


def physical_extents(path: Path) -> list[str]:
    """Physical offsets of a file's extents, from FIEMAP via `filefrag -v`."""
    output = subprocess.run(
        ["filefrag", "-v", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return re.findall(r"^\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.", output, re.M)


def build_live_tree(live: Path) -> Path:
    app = live / "var/lib/app"
    app.mkdir(parents=True)
    os.chmod(live / "var", 0o755)
    os.chmod(live / "var/lib", 0o711)
    os.chown(live / "var/lib", 0, 100)
    data = app / "data.bin"
    data.write_bytes(os.urandom(4 << 20))
    os.setxattr(data, "user.origin", b"seed-test")
    (app / "link").symlink_to("data.bin")
    (app / "sub").mkdir()
    (app / "sub/empty").touch()
    for path in (app, data, app / "sub", app / "sub/empty"):
        os.chown(path, 1234, 2345)
    os.chmod(app, 0o750)
    os.chmod(data, 0o640)
    subprocess.run(["setfacl", "-m", "u:4321:r--", str(data)], check=True)
    os.utime(data, ns=(1_000_000_000_000_000_000, 1_100_000_000_000_000_000))
    os.utime(app / "sub", ns=(1_200_000_000_000_000_000, 1_200_000_000_000_000_000))
    os.utime(app, ns=(1_300_000_000_000_000_000, 1_300_000_000_000_000_000))
    subprocess.run(["sync"], check=True)
    return app


@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (acl package)")
@pytest.mark.skipif(shutil.which("filefrag") is None, reason="needs filefrag (e2fsprogs)")
def test_seed_keeps_metadata_shares_extents_and_refuses_a_conflict(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    live, persist = live_and_persist
    app = build_live_tree(live)
    (live / "srv/conflict").mkdir(parents=True)
    (live / "srv/conflict/live-data").write_text("live")
    (persist / "srv").mkdir()
    (persist / "srv/conflict").write_text("already here")
    plan_file = write_plan(tmp_path, persist, ["/var/lib/app", "/srv/conflict"], [])

    result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")

    assert result.returncode == 1, result.stderr
    assert "error: some paths were skipped" in result.stderr
    assert f"conflict  directory  /srv/conflict  ({persist}/srv/conflict exists as a file" in (
        result.stdout
    )
    assert (persist / "srv/conflict").read_text() == "already here"
    copy = persist / "var/lib/app"
    for relative in (".", "data.bin", "link", "sub", "sub/empty"):
        assert metadata(copy / relative) == metadata(app / relative), relative
    acl = ["getfacl", "--omit-header", "--numeric"]
    assert (
        subprocess.run([*acl, str(copy / "data.bin")], capture_output=True, text=True).stdout
        == subprocess.run([*acl, str(app / "data.bin")], capture_output=True, text=True).stdout
    )
    assert (
        "user:4321:r--"
        in subprocess.run([*acl, str(copy / "data.bin")], capture_output=True, text=True).stdout
    )
    subprocess.run(["sync"], check=True)
    extents = physical_extents(copy / "data.bin")
    assert extents and extents == physical_extents(app / "data.bin")
    # Missing parents take the live parents' owner and mode.
    assert (os.stat(persist / "var/lib").st_mode & 0o7777, os.stat(persist / "var/lib").st_gid) == (
        0o711,
        100,
    )
    assert list(persist.glob("**/*.blankslate-partial")) == []
    assert "next: nixos-rebuild boot" in result.stdout


def test_seed_dry_run_changes_nothing(live_and_persist: tuple[Path, Path], tmp_path: Path) -> None:
    live, persist = live_and_persist
    (live / "etc").mkdir()
    (live / "etc/machine-id").write_text("0123\n")
    plan_file = write_plan(tmp_path, persist, [], ["/etc/machine-id"])
    result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would run: cp --archive" in result.stderr
    assert f"would run: btrfs subvolume snapshot -r {live} {live}/.blankslate-seed." in (
        result.stderr
    )
    assert list(persist.iterdir()) == []
    assert list(live.glob(".blankslate-seed.*")) == []


def test_seed_needs_persist_mounted(tmp_path: Path, live_and_persist: tuple[Path, Path]) -> None:
    live, _ = live_and_persist
    not_mounted = live / "not-mounted"
    not_mounted.mkdir()
    plan_file = write_plan(tmp_path, not_mounted, ["/var/lib/app"], [])
    result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")
    assert result.returncode == 1
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith(f"error: persistPath {not_mounted} is not mounted")


def test_seed_never_writes_through_a_users_symlink(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    """alice owns persist/home/alice and points .ssh at root's: seed refuses, dry run too."""
    live, persist = live_and_persist
    victim = tmp_path / "root-ssh"
    victim.mkdir()
    (live / "home/alice/.ssh").mkdir(parents=True)
    (live / "home/alice/.ssh/authorized_keys").write_text("ssh-ed25519 alice\n")
    (persist / "home/alice").mkdir(parents=True)
    os.chown(persist / "home/alice", 1000, 1000)
    (persist / "home/alice/.ssh").symlink_to(victim)
    os.chown(persist / "home/alice/.ssh", 1000, 1000, follow_symlinks=False)
    plan_file = write_plan(tmp_path, persist, [], ["/home/alice/.ssh/authorized_keys"])
    refusal = f"{persist}/home/alice/.ssh is a symlink: left as is (never written through)"

    dry = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--dry-run")
    result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")

    assert dry.returncode == 1, dry.stderr
    assert refusal in dry.stdout
    assert result.returncode == 1, result.stderr
    assert refusal in result.stdout
    assert "copied 0 paths" in result.stdout
    assert list(victim.iterdir()) == []


def test_seed_fills_an_empty_persistent_directory_in_place(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    """impermanence's activation (a switch, nixos-install) makes /persist/var/lib/app empty
    before anything is in it: seed fills it, keeping its inode (a bind mount may show it), and
    a persistent directory that holds anything is left as is."""
    live, persist = live_and_persist
    (live / "var/lib/app/db").mkdir(parents=True)
    (live / "var/lib/app/db/data").write_text("rows\n")
    (live / "var/lib/kept").mkdir(parents=True)
    (live / "var/lib/kept/new").write_text("new\n")
    empty = persist / "var/lib/app"
    empty.mkdir(parents=True)
    (persist / "var/lib/kept").mkdir()
    (persist / "var/lib/kept/old").write_text("old\n")
    inode = empty.stat().st_ino
    plan_file = write_plan(tmp_path, persist, ["/var/lib/app", "/var/lib/kept"], [])

    listed = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert "fill" in listed.stdout and list(empty.iterdir()) == []

    done = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")
    assert done.returncode == 0, done.stderr
    assert (empty / "db/data").read_text() == "rows\n"
    assert empty.stat().st_ino == inode
    assert sorted(p.name for p in (persist / "var/lib/kept").iterdir()) == ["old"]


# --- the source side: nothing a user plants or swaps in the live tree is followed -----------

ALICE = 4242  # the attacking user (no account needed: a uid the test switches to)


def alice_owns(*paths: Path) -> None:
    for path in paths:
        os.chown(path, ALICE, ALICE, follow_symlinks=False)


NAMES = [f"secret-{number}" for number in range(100)]
SECRET = "root's secret\n"


def root_only_vault(live: Path, names: list[str] = NAMES) -> Path:
    """live/root/vault: root's files, mode 0700 on the way; alice must never read them. She
    knows their names and gives her own files the same ones."""
    vault = live / "root/vault"
    vault.mkdir(parents=True)
    os.chmod(live / "root", 0o700)
    for name in names:
        (vault / name).write_text(SECRET)
        os.chmod(vault / name, 0o644)
    return vault


def alices_files(directory: Path, names: list[str] = NAMES) -> None:
    directory.mkdir(parents=True)
    for name in names:
        (directory / name).write_text("alice's\n")
        alice_owns(directory / name)
    alice_owns(directory)


def leaked(persist: Path) -> list[Path]:
    """Files in persist that hold root's secret."""
    return [
        path
        for path in persist.rglob("*")
        if path.is_file() and not path.is_symlink() and path.read_text() == SECRET
    ]


def test_seed_never_follows_a_users_symlink_on_the_way_to_the_source(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    """Attack 1: alice's ~/.config -> ../../root, and /home/alice/.config/vault persisted: seed
    must not copy root's /root/vault into persist, where alice reads it."""
    live, persist = live_and_persist
    root_only_vault(live)
    home = live / "home/alice"
    home.mkdir(parents=True)
    (home / ".config").symlink_to("../../root")
    alice_owns(home, home / ".config")
    plan_file = write_plan(tmp_path, persist, ["/home/alice/.config/vault"], [])

    result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")

    assert leaked(persist) == [], result.stdout
    assert result.returncode == 1, result.stderr
    assert f"{live}/home/alice/.config is a symlink" in result.stdout


def swap_loop(
    directory: Path, pairs: list[tuple[str, str]], seconds: float, pause: float = 0.0
) -> int:
    """A child process of uid ALICE exchanging each pair of names (a directory and a symlink)
    with renameat2(RENAME_EXCHANGE) in a loop, for at most `seconds` and 2 million swaps,
    sleeping `pause` seconds after each."""
    import ctypes

    pid = os.fork()
    if pid:
        return pid
    try:  # pragma: no cover - the child
        os.chdir(directory)  # before dropping root: the test's temporary directory is 0700
        os.setgid(ALICE)
        os.setuid(ALICE)
        libc = ctypes.CDLL(None, use_errno=True)
        at_fdcwd, rename_exchange = -100, 2
        import time

        deadline = time.monotonic() + seconds
        count = 0
        while time.monotonic() < deadline and count < 2_000_000:
            for first, second in pairs:
                libc.renameat2(at_fdcwd, first.encode(), at_fdcwd, second.encode(), rename_exchange)
                count += 1
                if pause:
                    time.sleep(pause)
    finally:
        os._exit(0)


def stop(pid: int) -> None:
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_seed_never_follows_a_directory_swapped_for_a_symlink_during_the_copy(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    """Attack 2: inside her persisted home, alice exchanges directories and symlinks to root's
    vault while cp walks them; cp must never read the vault."""
    live, persist = live_and_persist
    vault = root_only_vault(live)
    home = live / "home/alice"
    alices_files(home / "dir")
    (home / "link").symlink_to(os.path.relpath(vault, home))
    alice_owns(home, home / "link")
    # from /home: a process whose working directory is the copied home would make seed refuse
    pairs = [("alice/dir", "alice/link")]
    plan_file = write_plan(tmp_path, persist, ["/home/alice"], [])

    results = []
    for _attempt in range(3):
        swapper = swap_loop(home.parent, pairs, seconds=60)
        try:
            results.append(
                blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")
            )
        finally:
            stop(swapper)
        assert leaked(persist) == [], results[-1].stdout
        subprocess.run(["rm", "-rf", "--one-file-system", str(persist / "home")], check=True)
    assert any(result.returncode == 0 for result in results), results[-1].stderr
    # read from a read-only snapshot of the root, deleted afterwards
    assert f"$ btrfs subvolume snapshot -r {live} {live}/.blankslate-seed." in results[-1].stderr
    assert list(live.glob(".blankslate-seed.*")) == []


def test_seed_never_follows_the_persisted_directory_swapped_for_a_symlink(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    """Attack 2 on the persisted directory itself: /home/alice/app is exchanged with a
    symlink to root's vault while seed looks at it and copies it."""
    live, persist = live_and_persist
    vault = root_only_vault(live)
    home = live / "home/alice"
    alices_files(home / "app")
    (home / "app-link").symlink_to(os.path.relpath(vault, home))
    alice_owns(home, home / "app-link")
    plan_file = write_plan(tmp_path, persist, ["/home/alice/app"], [])

    for _attempt in range(10):
        swapper = swap_loop(home, [("app", "app-link")], seconds=60)
        try:
            result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")
        finally:
            stop(swapper)
        assert leaked(persist) == [], result.stdout
        subprocess.run(["rm", "-rf", "--one-file-system", str(persist / "home")], check=True)


def test_seed_reads_a_nested_subvolume_live_not_from_the_snapshot(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    """A snapshot shows a nested subvolume as an empty directory: a path holding one (docker's
    and machinectl's subvolumes below /var/lib) is read from the live tree, so nothing is lost;
    the other paths still come from the snapshot."""
    live, persist = live_and_persist
    (live / "var/lib").mkdir(parents=True)
    subprocess.run(
        ["btrfs", "subvolume", "create", str(live / "var/lib/machines")],
        check=True,
        capture_output=True,
    )
    (live / "var/lib/machines/box").write_text("container\n")
    (live / "etc").mkdir()
    (live / "etc/machine-id").write_text("0123\n")
    plan_file = write_plan(tmp_path, persist, ["/var/lib"], ["/etc/machine-id"])
    try:
        result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")
        assert result.returncode == 0, result.stderr
        assert (persist / "var/lib/machines/box").read_text() == "container\n"
        assert (persist / "etc/machine-id").read_text() == "0123\n"
        assert "$ btrfs subvolume snapshot -r" in result.stderr
        assert list(live.glob(".blankslate-seed.*")) == []
    finally:
        subprocess.run(
            ["btrfs", "subvolume", "delete", str(live / "var/lib/machines")],
            check=False,
            capture_output=True,
        )


def test_ctrl_c_during_the_copy_deletes_the_snapshot(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    import signal
    import time

    live, persist = live_and_persist
    big = live / "srv/big"
    big.mkdir(parents=True)
    for number in range(3000):
        (big / f"f{number}").write_text("x")
    plan_file = write_plan(tmp_path, persist, ["/srv/big"], [])
    seeding = subprocess.Popen(
        [sys.executable, "-m", "blankslate", "seed", "--plan", str(plan_file), "--root",
         str(live), "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(live.glob(".blankslate-seed.*/root")) and time.monotonic() < deadline:
        time.sleep(0.005)
    seeding.send_signal(signal.SIGINT)
    _out, err = seeding.communicate(timeout=120)
    assert seeding.returncode != 0, err
    assert list(live.glob(".blankslate-seed.*")) == [], err
    listing = subprocess.run(
        ["btrfs", "subvolume", "list", "-o", str(live)], capture_output=True, text=True
    )
    assert ".blankslate-seed" not in listing.stdout
    assert not (persist / "srv/big").exists()


def test_seed_refuses_a_path_a_running_process_holds_open(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    """A live database (here a process holding its file open) is not copied while it runs,
    unless --live; /proc is read for real."""
    live, persist = live_and_persist
    (live / "var/lib/db").mkdir(parents=True)
    (live / "var/lib/db/data").write_text("rows\n")
    plan_file = write_plan(tmp_path, persist, ["/var/lib/db"], [])
    with open(live / "var/lib/db/data") as held_open:
        database = subprocess.Popen(["sleep", "120"], stdin=held_open)
    try:
        refused = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")
        copied = blankslate(
            "seed", "--plan", str(plan_file), "--root", str(live), "--yes", "--live"
        )
    finally:
        database.kill()
        database.wait()
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1].startswith(
        f"error: in use while seed would copy it: pid {database.pid} (sleep) has "
        f"{live}/var/lib/db/data open"
    )
    assert copied.returncode == 0, copied.stderr
    assert (persist / "var/lib/db/data").read_text() == "rows\n"


# --- a root with no snapshot (tmpfs, ZFS, none): the copy reads through held fds ------------

TMPFS_PLAN = Path(__file__).parents[1] / "plans/tmpfs.json"


@pytest.fixture
def tmpfs_live_and_persist(
    layout: Any, helpers: ModuleType, tmp_path: Path
) -> Iterator[tuple[Path, Path]]:
    """A tmpfs on tmp/live as the live root (a plain directory tree, no btrfs subvolume: no
    snapshot can hold it) and the persist subvolume on live/persist."""
    live = tmp_path / "live"
    live.mkdir()
    with helpers.mounted("tmpfs", ("mode=755", "size=256m"), target=live, fstype="tmpfs"):
        persist = live / "persist"
        persist.mkdir()
        with helpers.mounted(layout.device, ("subvol=persist",), target=persist):
            yield live, persist
    assert helpers.mounts_of(layout.device) == []
    assert helpers.mounts_under(tmp_path) == []


def write_tmpfs_plan(
    tmp_path: Path, persist: Path, directories: list[str], files: tuple[str, ...] = ()
) -> Path:
    """tests/plans/tmpfs.json with `directories` persisted (owners as on the live tree)."""
    data = json.loads(TMPFS_PLAN.read_text())
    persist_path = "/" + persist.name
    data["persistPath"] = persist_path
    data["users"] = [{"name": "admin", "hashedPasswordFile": f"{persist_path}/passwords/admin"}]
    data["sshHostKeys"] = [f"{persist_path}/etc/ssh/ssh_host_ed25519_key"]
    data["persistence"] = {
        "directories": [{"directory": d} for d in directories],
        "files": [{"file": f} for f in files],
        "roots": [persist_path],
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    return path


def test_seed_on_a_root_without_snapshot_never_follows_a_directory_swapped_for_a_symlink(
    tmpfs_live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    """Attack 2 where no snapshot holds the root (tmpfs): alice exchanges a directory of her
    persisted home and a symlink to root's vault in a loop while seed copies her home. The
    copy reads through held fds and never follows the link, in any of 30 runs."""
    live, persist = tmpfs_live_and_persist
    # one file each: cp refuses a file whose lstat and open disagree, or a name listed in one
    # directory and looked up in the other, but not one read through the link both times
    vault = root_only_vault(live, NAMES[:1])
    home = live / "home/alice"
    alices_files(home / "dir", NAMES[:1])
    (home / "link").symlink_to(os.path.relpath(vault, home))
    alice_owns(home, home / "link")
    plan_file = write_tmpfs_plan(tmp_path, persist, ["/home/alice"])

    results = []
    for _attempt in range(30):
        # a swap every ~0.1 ms: cp notices one in the middle of a file, not one before it
        swapper = swap_loop(home.parent, [("alice/dir", "alice/link")], seconds=60, pause=0.00005)
        try:
            results.append(
                blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")
            )
        finally:
            stop(swapper)
        assert leaked(persist) == [], f"run {len(results)} leaked: {results[-1].stderr}"
        subprocess.run(["rm", "-rf", "--one-file-system", str(persist / "home")], check=True)
    assert all(result.returncode == 0 for result in results), results[-1].stderr
    assert "btrfs subvolume snapshot" not in results[-1].stderr


def test_seed_on_a_root_without_snapshot_never_follows_a_users_symlink_on_the_way(
    tmpfs_live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    """Attack 1 on tmpfs: ~/.config -> ../../root and /home/alice/.config/vault persisted."""
    live, persist = tmpfs_live_and_persist
    root_only_vault(live)
    home = live / "home/alice"
    home.mkdir(parents=True)
    (home / ".config").symlink_to("../../root")
    alice_owns(home, home / ".config")
    plan_file = write_tmpfs_plan(tmp_path, persist, ["/home/alice/.config/vault"])

    result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")

    assert leaked(persist) == [], result.stdout
    assert result.returncode == 1, result.stderr
    assert f"{live}/home/alice/.config is a symlink" in result.stdout


ODD_NAMES = ["with space", "new\nline", "tab\there", "-dash", "\udcff\udcfe-not-utf8", "é"]


def build_odd_tree(app: Path) -> None:
    """Owners, modes, times, an ACL, an xattr, symlinks, a hard link, a fifo, a sparse file
    and names that are hard to copy."""
    (app / "sub/deeper").mkdir(parents=True)
    for number, name in enumerate(ODD_NAMES):
        (app / "sub" / name).write_text(f"{number}\n")
        os.chown(app / "sub" / name, 1000 + number, 100 + number)
        os.chmod(app / "sub" / name, 0o600 + number)
    (app / "sub" / ODD_NAMES[1]).rename(app / "sub/deeper" / ODD_NAMES[1])
    (app / "secret").write_text("only root\n")
    os.chmod(app / "secret", 0o400)
    (app / "setgid-dir").mkdir()
    os.chmod(app / "setgid-dir", 0o2750)
    os.chown(app / "setgid-dir", 1000, 100)
    (app / "tool").write_text("#!/bin/sh\n")
    os.chown(app / "tool", 1000, 100)
    os.chmod(app / "tool", 0o4755)
    (app / "relative-link").symlink_to("sub/with space")
    (app / "absolute-link").symlink_to("/root/vault")
    (app / "dangling").symlink_to("nowhere")
    os.chown(app / "relative-link", 1000, 100, follow_symlinks=False)
    os.link(app / "secret", app / "sub/hard-link")
    os.mkfifo(app / "fifo", 0o640)
    with open(app / "sparse", "wb") as sparse:
        sparse.truncate(64 << 20)
        sparse.seek(32 << 20)
        sparse.write(b"middle")
    os.setxattr(app / "secret", "user.note", b"kept")
    if shutil.which("setfacl"):
        subprocess.run(["setfacl", "-m", "u:4321:r", str(app / "sub/with space")], check=True)
    os.utime(app / "sub", ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    os.utime(app / "dangling", ns=(1, 1_400_000_000_000_000_000), follow_symlinks=False)
    os.chown(app, 1000, 100)
    os.chmod(app, 0o750)


def tree_metadata(top: Path) -> dict[bytes, tuple[object, ...]]:
    """Every entry below `top`: type, mode, owner, mtime, size, link target, xattrs (ACLs
    included), and which entries are one inode."""
    found: dict[bytes, tuple[object, ...]] = {}
    inodes: dict[int, bytes] = {}
    for directory, names, files in sorted(os.walk(os.fsencode(top))):
        for name in sorted([*names, *files]):
            path = os.path.join(directory, name)
            info = os.lstat(path)
            relative = os.path.relpath(path, os.fsencode(top))
            link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else b""
            xattrs = {
                key: os.getxattr(path, key, follow_symlinks=False)
                for key in sorted(os.listxattr(path, follow_symlinks=False))
            }
            linked = info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode)
            same = inodes.setdefault(info.st_ino, relative) if linked else b""
            size = info.st_size if not stat.S_ISDIR(info.st_mode) else 0
            found[relative] = (
                info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns, size, link, xattrs,
                same,
            )  # fmt: skip
    return found


def test_seed_on_a_root_without_snapshot_keeps_owners_modes_links_and_odd_names(
    tmpfs_live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    live, persist = tmpfs_live_and_persist
    app = live / "var/lib/app"
    app.mkdir(parents=True)
    build_odd_tree(app)
    (live / "var/lib/filled").mkdir()
    build_odd_tree(live / "var/lib/filled")
    (persist / "var/lib/filled").mkdir(parents=True)  # empty: filled in place
    (live / "etc").mkdir()
    (live / "etc/machine-id").write_text("0123\n")
    os.chmod(live / "etc/machine-id", 0o444)
    os.setxattr(live / "etc/machine-id", "user.origin", b"installer")
    plan_file = write_tmpfs_plan(
        tmp_path, persist, ["/var/lib/app", "/var/lib/filled"], ("/etc/machine-id",)
    )

    result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")

    assert result.returncode == 0, result.stderr
    for name in ("app", "filled"):
        copy, original = persist / "var/lib" / name, live / "var/lib" / name
        assert tree_metadata(copy) == tree_metadata(original), name
        top, source = os.lstat(copy), os.lstat(original)
        assert (top.st_mode, top.st_uid, top.st_gid) == (source.st_mode, 1000, 100)
        assert (copy / "sparse").read_bytes()[32 << 20 :][:6] == b"middle"
        assert os.stat(copy / "sparse").st_blocks * 512 < 8 << 20  # holes stay holes
    assert metadata(persist / "etc/machine-id") == metadata(live / "etc/machine-id")
    assert (persist / "etc/machine-id").read_text() == "0123\n"
    assert list(persist.glob("**/*.blankslate-partial")) == []
    assert "vanished" not in result.stderr


def test_seed_on_a_root_without_snapshot_warns_about_entries_that_vanish(
    tmpfs_live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    """Directories and symlinks made and removed in a loop while seed copies: one that
    vanishes between the listing and its copy is one warning line, never a traceback, and
    the rest is copied."""
    live, persist = tmpfs_live_and_persist
    churn = live / "srv/churn"
    churn.mkdir(parents=True)
    for number in range(3000):
        (churn / f"kept{number}").write_text("x")
    plan_file = write_tmpfs_plan(tmp_path, persist, ["/srv/churn"])
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: no open fd under the path, only names
        try:
            while True:
                for number in range(200):
                    with contextlib.suppress(OSError):
                        os.mkdir(churn / f"d{number}")
                        os.symlink("kept0", churn / f"l{number}")
                for number in range(200):
                    with contextlib.suppress(OSError):
                        os.rmdir(churn / f"d{number}")
                        os.unlink(churn / f"l{number}")
        finally:
            os._exit(0)
    try:
        results = [
            blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")
            for _attempt in range(3)
            if not subprocess.run(["rm", "-rf", str(persist / "srv")], check=True).returncode
        ]
    finally:
        stop(pid)
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        warnings = [line for line in result.stderr.splitlines() if "vanished" in line]
        pattern = r".*/srv/churn/[dl]\d+ vanished while it was copied: not copied"
        assert all(re.fullmatch(pattern, line) for line in warnings), warnings
        assert len(list((persist / "srv/churn").glob("kept*"))) == 3000
