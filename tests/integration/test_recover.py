"""`blankslate roots` and `recover` against a real btrfs filesystem on a loop device.

The old roots are made as the rollback makes them: the root subvolume, with data written into
it, is moved to `old_roots/<UTC time>` and a fresh root is snapshotted from the blank. Every
mount these tests make is undone by the fixtures of conftest.py, even when a test fails.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from blankslate import oldroots, plan, plansource
from blankslate.errors import BlankslateError

OLDER = "2026-11-19T07:00:00Z"
NEWER = "2026-11-20T08:00:00Z"
STATE = "var/lib/app/state.db"
MTIME_NS = 1_700_000_000_123_456_789
XATTR = ("user.blankslate", b"kept")


def boot_cycle(helpers: ModuleType, top: Path, layout: Any, name: str) -> None:
    """What one rollback does: move the root to old_roots/NAME, fresh root from the blank."""
    helpers.run(["mv", top / layout.root, top / layout.old_roots / name])
    helpers.run(["btrfs", "subvolume", "snapshot", top / layout.blank, top / layout.root])


def write_state(root: Path) -> Path:
    """The file to recover, with owner, mode, mtime and an xattr that cp must keep."""
    state = root / STATE
    state.parent.mkdir(parents=True)
    os.chmod(state.parent, 0o750)
    os.chown(state.parent, 1234, 5678)
    state.write_bytes(b"precious state\n")
    os.chown(state, 1234, 5678)
    os.chmod(state, 0o640)
    os.setxattr(state, *XATTR)
    os.utime(state, ns=(MTIME_NS, MTIME_NS))
    return state


@pytest.fixture
def old_roots(helpers: ModuleType, layout: Any) -> Iterator[Any]:
    """Two boots: the older root held the state file; the newer one has only an empty
    mountpoint directory for it (as impermanence leaves once the path is persisted)."""
    with helpers.mount_top_level(layout.device) as top:
        helpers.run(["btrfs", "subvolume", "create", top / layout.old_roots])
        write_state(top / layout.root)
        boot_cycle(helpers, top, layout, OLDER)
        (top / layout.root / "var/lib/app").mkdir(parents=True)
        boot_cycle(helpers, top, layout, NEWER)
    yield layout


@pytest.fixture
def persist_mount(helpers: ModuleType, old_roots: Any) -> Iterator[Path]:
    with helpers.mounted(old_roots.device, ("subvol=persist",)) as persist:
        yield persist


def app_plan(persist: Path | str) -> plan.Plan:
    persistence = plan.Persistence(directories=(plan.PersistedDirectory("/var/lib/app"),), files=())
    return dataclasses.replace(
        plansource.default(),
        persist_path=str(persist),
        persistence=persistence,
        users=(plan.User("admin", f"{persist}/passwords/admin"),),
        ssh_host_keys=(f"{persist}/etc/ssh/ssh_host_ed25519_key",),
    )


def assert_same_metadata(copied: Path) -> None:
    info = copied.lstat()
    assert copied.read_bytes() == b"precious state\n"
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 1234, 5678)
    assert info.st_mtime_ns == MTIME_NS
    assert os.getxattr(copied, XATTR[0]) == XATTR[1]


def test_roots_lists_real_old_roots(helpers: ModuleType, old_roots: Any) -> None:
    listed = oldroots.roots(app_plan("/persist"), old_roots.device)
    assert [(root.name, root.sizes) for root in listed] == [(NEWER, None), (OLDER, None)]
    assert helpers.mounts_of(old_roots.device) == []  # the private top-level mount is gone


def test_roots_sizes_with_quotas_on(helpers: ModuleType, old_roots: Any) -> None:
    with helpers.mount_top_level(old_roots.device) as top:
        helpers.run(["btrfs", "quota", "enable", top])
        helpers.run(["btrfs", "quota", "rescan", "-w", top])
    listed = oldroots.roots(app_plan("/persist"), old_roots.device)
    older = {root.name: root.sizes for root in listed}[OLDER]
    assert older is not None
    assert older.referenced >= len(b"precious state\n")


def test_recover_to_a_directory_keeps_metadata(
    helpers: ModuleType, old_roots: Any, tmp_path: Path
) -> None:
    done = oldroots.recover(
        app_plan("/persist"), f"/{STATE}", to=tmp_path / "out", device=old_roots.device
    )

    assert done == oldroots.Recovered(f"/{STATE}", "old root", OLDER, tmp_path / "out" / "state.db")
    assert_same_metadata(done.target)
    assert helpers.mounts_of(old_roots.device) == []


def test_recover_persisted_directory_into_persist(
    helpers: ModuleType, old_roots: Any, persist_mount: Path
) -> None:
    # impermanence created the persisted directory, empty, after the path was persisted.
    (persist_mount / "var/lib/app").mkdir(parents=True)

    done = oldroots.recover(app_plan(persist_mount), "/var/lib/app", device=old_roots.device)

    assert (done.source, done.target) == (OLDER, persist_mount / "var/lib/app")
    assert_same_metadata(persist_mount / STATE)
    directory = (persist_mount / "var/lib/app").lstat()
    assert (stat.S_IMODE(directory.st_mode), directory.st_uid) == (0o750, 1234)
    # The old roots were only read: the newer one still holds just its empty directory.
    with helpers.mount_top_level(old_roots.device) as top:
        assert list((top / old_roots.old_roots / NEWER / "var/lib/app").iterdir()) == []


def test_recover_never_overwrites(helpers: ModuleType, old_roots: Any, persist_mount: Path) -> None:
    live = persist_mount / STATE
    live.parent.mkdir(parents=True)
    live.write_text("live data\n")

    with pytest.raises(BlankslateError, match="already exists"):
        oldroots.recover(app_plan(persist_mount), f"/{STATE}", device=old_roots.device)

    assert live.read_text() == "live data\n"


def test_recover_path_in_no_root(helpers: ModuleType, old_roots: Any, tmp_path: Path) -> None:
    with pytest.raises(BlankslateError, match="/etc/nothing is not in any of the 2 old roots"):
        oldroots.recover(app_plan("/persist"), "/etc/nothing", to=tmp_path, device=old_roots.device)
    assert helpers.mounts_of(old_roots.device) == []  # unmounted after the error too


def test_recover_never_writes_through_a_symlink_in_persist(
    helpers: ModuleType, old_roots: Any, persist_mount: Path, tmp_path: Path
) -> None:
    # A user who owns persist/var points var/lib somewhere root would never write.
    victim = tmp_path / "victim"
    victim.mkdir()
    (persist_mount / "var").mkdir()
    os.chown(persist_mount / "var", 1000, 1000)
    (persist_mount / "var/lib").symlink_to(victim)

    with pytest.raises(BlankslateError, match=r"var/lib is a symlink"):
        oldroots.recover(app_plan(persist_mount), f"/{STATE}", device=old_roots.device)

    assert list(victim.iterdir()) == []
    assert helpers.mounts_of(old_roots.device) == [str(persist_mount)]


def test_recover_into_persist_needs_it_mounted_from_the_device(
    helpers: ModuleType, old_roots: Any, persist_mount: Path, tmp_path: Path
) -> None:
    not_mounted = tmp_path / "persist"
    not_mounted.mkdir()
    with pytest.raises(BlankslateError, match=rf"persistPath {not_mounted} is not mounted"):
        oldroots.recover(app_plan(not_mounted), f"/{STATE}", device=old_roots.device)
    assert list(not_mounted.iterdir()) == []
    # Another disk's old roots never go into the persistPath of this one.
    with pytest.raises(BlankslateError, match=rf"is on {old_roots.device}, not on /dev/zero"):
        oldroots.recover(app_plan(persist_mount), f"/{STATE}", device="/dev/zero")
    assert list(persist_mount.iterdir()) == []
    assert helpers.mounts_of(old_roots.device) == [str(persist_mount)]


def test_newest_root_is_the_last_created_whatever_its_name(helpers: Any, layout: Any) -> None:
    """A boot with the clock at 2099 named one root 2099; the root made after it is newer."""
    from blankslate import oldroots

    with helpers.mount_top_level(layout.device) as top:
        helpers.run(["btrfs", "subvolume", "create", top / "old_roots"])
        for name in ("2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z", "2026-01-02T00:00:00Z"):
            helpers.run(["btrfs", "subvolume", "create", top / "old_roots" / name])
        names = [root.name for root in oldroots.list_roots(top, "old_roots")]
    assert names == ["2026-01-02T00:00:00Z", "2099-01-01T00:00:00Z", "2026-01-01T00:00:00Z"]


def test_recover_never_follows_a_users_symlink_in_the_old_root(
    helpers: ModuleType, layout: Any, tmp_path: Path
) -> None:
    """alice's ~/.config -> ../../root in the old root: recovering her .config/vault must not
    copy root's /root/vault out of it, where she reads it (a link that stays inside the old
    root was followed)."""
    with helpers.mount_top_level(layout.device) as top:
        helpers.run(["btrfs", "subvolume", "create", top / layout.old_roots])
        old = top / layout.root
        (old / "root/vault").mkdir(parents=True)
        os.chmod(old / "root", 0o700)
        (old / "root/vault/secret").write_text("root's secret\n")
        (old / "home/alice").mkdir(parents=True)
        (old / "home/alice/.config").symlink_to("../../root")
        os.chown(old / "home/alice/.config", 4242, 4242, follow_symlinks=False)
        boot_cycle(helpers, top, layout, OLDER)
    out = tmp_path / "out"

    with pytest.raises(BlankslateError, match=r"home/alice/\.config is a symlink"):
        oldroots.recover(
            app_plan("/persist"), "/home/alice/.config/vault", to=out, device=layout.device
        )

    assert not (out / "vault").exists()
    assert helpers.mounts_of(layout.device) == []
