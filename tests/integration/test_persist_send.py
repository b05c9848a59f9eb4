"""`persist send` and `recover --from-persist` against real btrfs filesystems on loop devices.

The snapshots are taken by the real script (modules/snapshots/btrfs-persist-snapshot.bash);
the streams `send` writes are received with `btrfs receive` into a second filesystem, where
data, owners, modes, xattrs and ACLs must be what the snapshot holds.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from blankslate import persist, plan, plansource
from blankslate.errors import BlankslateError

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "modules" / "snapshots" / "btrfs-persist-snapshot.bash"
SNAPSHOTS = "persist_snapshots"

needs_acl_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("setfattr", "getfattr", "setfacl", "getfacl")),
    reason="setfattr/getfattr/setfacl/getfacl (attr, acl) are not installed",
)


def take_snapshot(helpers: ModuleType, device: str, run_dir: Path) -> None:
    run_dir.mkdir(exist_ok=True)
    helpers.run(
        ["bash", SCRIPT, device, "persist", SNAPSHOTS, "5"],
        env={**os.environ, "TMPDIR": str(run_dir)},
    )


def snapshot_plan(persist_path: Path | str) -> plan.Plan:
    return dataclasses.replace(
        plansource.default(),
        persist_path=str(persist_path),
        users=(plan.User("admin", f"{persist_path}/passwords/admin"),),
        ssh_host_keys=(f"{persist_path}/etc/ssh/ssh_host_ed25519_key",),
        persist_snapshots=plan.PersistSnapshots("hourly", 5, "persist", SNAPSHOTS),
    )


def metadata(helpers: ModuleType, top: Path) -> tuple[Any, str, str]:
    """The tree, its xattrs and its ACLs, as text that compares across filesystems."""
    xattrs = subprocess.run(
        ["getfattr", "-R", "-d", "-m", "^user\\.", "."],
        cwd=top, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    acls = subprocess.run(
        ["getfacl", "-R", "-p", "."], cwd=top, capture_output=True, text=True, check=True
    ).stdout
    owners = {
        str(path.relative_to(top)): (path.lstat().st_uid, path.lstat().st_gid)
        for path in top.rglob("*")
    }
    return (helpers.tree_manifest(top), owners), xattrs, acls


@pytest.fixture
def filled(helpers: ModuleType, layout: Any, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """(device, persist mounted, run dir) with data, xattrs and ACLs in persist."""
    with helpers.mounted(layout.device, ("subvol=persist",)) as mounted:
        (mounted / "etc" / "ssh").mkdir(parents=True)
        key = mounted / "etc" / "ssh" / "ssh_host_ed25519_key"
        key.write_bytes(os.urandom(411))
        key.chmod(0o600)
        (mounted / "var" / "lib" / "app").mkdir(parents=True)
        data = mounted / "var" / "lib" / "app" / "state.db"
        data.write_bytes(os.urandom(200_000))
        os.chown(data, 1234, 5678)
        helpers.run(["setfattr", "-n", "user.origin", "-v", "persist", data])
        helpers.run(["setfacl", "-m", "u:1234:rw,g:5678:r", data])
        helpers.run(["setfacl", "-d", "-m", "u:1234:rwx", mounted / "var" / "lib" / "app"])
        yield layout.device, mounted, tmp_path / "run"


@needs_acl_tools
def test_full_and_incremental_send_received_elsewhere(
    helpers: ModuleType, filled: Any, tmp_path: Path
) -> None:
    device, mounted, run_dir = filled
    the_plan = snapshot_plan(mounted)
    take_snapshot(helpers, device, run_dir)
    full = tmp_path / "out" / "persist-full.btrfs"
    full.parent.mkdir()
    sent = persist.send(the_plan, full, device=device)
    assert sent.parent is None and full.stat().st_size > 200_000
    assert [p.name for p in full.parent.iterdir()] == [full.name]  # no partial file left

    # a change, then a second snapshot sent against the first
    (mounted / "var" / "lib" / "app" / "new.log").write_text("after the first send\n")
    helpers.run(["setfattr", "-n", "user.second", "-v", "yes", mounted / "var/lib/app/new.log"])
    take_snapshot(helpers, device, run_dir)
    incremental = tmp_path / "out" / "persist-incr.btrfs"
    sent_incremental = persist.send(the_plan, incremental, incremental=True, device=device)
    assert sent_incremental.parent == sent.snapshot
    assert incremental.stat().st_size < full.stat().st_size

    with helpers.loop_device(tmp_path / f"{helpers.IMAGE_PREFIX}backup.img", "1GiB") as other:
        helpers.run(["mkfs.btrfs", "-q", "-f", other])
        with helpers.mounted(other, ()) as backup, helpers.mount_top_level(device) as top:
            for stream in (full, incremental):
                with stream.open("rb") as source:
                    received = subprocess.run(
                        ["btrfs", "receive", backup], stdin=source, capture_output=True, text=True
                    )
                assert received.returncode == 0, received.stderr
            for name in (sent.snapshot, sent_incremental.snapshot):
                original = metadata(helpers, top / SNAPSHOTS / name)
                copy = metadata(helpers, backup / name)
                assert copy == original, name
            _, xattrs, acls = metadata(helpers, backup / sent_incremental.snapshot)
            assert 'user.origin="persist"' in xattrs and 'user.second="yes"' in xattrs
            assert "user:1234:rw-" in acls and "default:user:1234:rwx" in acls


def test_send_never_overwrites_and_needs_an_older_snapshot(
    helpers: ModuleType, filled: Any, tmp_path: Path
) -> None:
    device, mounted, run_dir = filled
    the_plan = snapshot_plan(mounted)
    with pytest.raises(BlankslateError, match="no persist snapshots yet"):
        persist.send(the_plan, tmp_path / "x.btrfs", device=device)
    take_snapshot(helpers, device, run_dir)
    existing = tmp_path / "existing.btrfs"
    existing.write_text("keep me")
    with pytest.raises(BlankslateError, match="already exists"):
        persist.send(the_plan, existing, device=device)
    assert existing.read_text() == "keep me"
    planted = tmp_path / "planted.btrfs"
    planted.symlink_to(tmp_path / "victim")
    with pytest.raises(BlankslateError, match="already exists"):
        persist.send(the_plan, planted, device=device)
    assert not (tmp_path / "victim").exists()
    with pytest.raises(BlankslateError, match="needs a snapshot older than"):
        persist.send(the_plan, tmp_path / "i.btrfs", incremental=True, device=device)
    assert not (tmp_path / "i.btrfs").exists()


def test_recover_from_persist_copies_back_without_overwriting(
    helpers: ModuleType, filled: Any
) -> None:
    device, mounted, run_dir = filled
    the_plan = snapshot_plan(mounted)
    take_snapshot(helpers, device, run_dir)
    data = mounted / "var" / "lib" / "app" / "state.db"
    before = data.read_bytes()
    with pytest.raises(BlankslateError, match="already exists"):
        persist.recover_from_persist(the_plan, "latest", str(data), device=device)
    data.unlink()
    dry = persist.recover_from_persist(the_plan, "latest", str(data), device=device, dry_run=True)
    assert dry.target == data and not data.exists()
    done = persist.recover_from_persist(the_plan, "latest", str(data), device=device)
    assert done.target == data and data.read_bytes() == before
    assert (data.stat().st_uid, data.stat().st_gid) == (1234, 5678)
    assert os.getxattr(data, "user.origin") == b"persist"
    assert "user:1234:rw-" in helpers.run(["getfacl", "-p", data]).stdout


def test_recover_from_persist_refuses_a_planted_symlink(
    helpers: ModuleType, filled: Any, tmp_path: Path
) -> None:
    """A user who owns a directory in persistPath swaps it for a link: nothing is written
    through it."""
    device, mounted, run_dir = filled
    the_plan = snapshot_plan(mounted)
    take_snapshot(helpers, device, run_dir)
    app = mounted / "var" / "lib" / "app"
    shutil.rmtree(app)
    outside = tmp_path / "outside"
    outside.mkdir()
    app.symlink_to(outside)
    with pytest.raises(BlankslateError, match="is a symlink"):
        persist.recover_from_persist(the_plan, "latest", f"{mounted}/var/lib/app/state.db",
                                     device=device)  # fmt: skip
    assert list(outside.iterdir()) == []


def test_recover_from_persist_never_reads_through_a_link_inside_the_snapshot(
    helpers: ModuleType, filled: Any
) -> None:
    """When the snapshot was taken, a user's directory was a link to root's files elsewhere in
    persistPath (it stays inside the snapshot); it is a directory again now. Recovering a path
    below it must not copy root's files into that user's directory."""
    device, mounted, run_dir = filled
    the_plan = snapshot_plan(mounted)
    secret = mounted / "etc" / "secretdir"
    secret.mkdir(parents=True)
    (secret / "key").write_text("root's\n")
    users = mounted / "var" / "lib" / "app" / "cfg"
    users.symlink_to("../../../etc")
    take_snapshot(helpers, device, run_dir)
    users.unlink()
    users.mkdir()
    with pytest.raises(BlankslateError, match="symlink"):
        persist.recover_from_persist(
            the_plan, "latest", f"{mounted}/var/lib/app/cfg/secretdir", device=device
        )
    assert list(users.iterdir()) == []
