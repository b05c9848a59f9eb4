"""`blankslate roots` and `blankslate recover` against fake old-root trees and faked commands."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_subprocess import FakeProcess
from pytest_subprocess.fake_popen import FakePopen

from blankslate import copy, mounts, oldroots, plan, plansource, snapshots
from blankslate.errors import BlankslateError

from ..support.mounts import FINDMNT as FINDMNT_PERSIST
from ..support.mounts import findmnt_json
from ..support.plans import btrfs_storage, with_kind

DEVICE = "/dev/vda3"
NEWEST = "2026-11-20T08:00:00Z.1"
MIDDLE = "2026-11-20T08:00:00Z"
OLDEST = "2026-10-01T23:59:59Z"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    # The CLI points logging at the captured stderr of its test; later tests must not use it.
    handlers = logging.getLogger().handlers[:]
    yield
    logging.getLogger().handlers[:] = handlers


@pytest.fixture
def persist(tmp_path: Path) -> Path:
    directory = tmp_path / "persist"
    directory.mkdir()
    return directory


@pytest.fixture
def the_plan(persist: Path) -> plan.Plan:
    """The built-in plan (old roots in "old_roots"), persisting into a temporary directory."""
    default = plansource.default()
    # Each path kept in persistPath, whatever it is.
    kept = default.persistence
    persistence = plan.Persistence(
        directories=tuple(dataclasses.replace(d, root=None) for d in kept.directories),
        files=tuple(dataclasses.replace(f, root=None) for f in kept.files),
    )
    return dataclasses.replace(
        default,
        persist_path=str(persist),
        persistence=persistence,
        users=(plan.User("admin", f"{persist}/passwords/admin"),),
        ssh_host_keys=(f"{persist}/etc/ssh/ssh_host_ed25519_key",),
    )


@pytest.fixture
def top(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake top level with three timestamped old roots and a hand-made snapshot; the
    top-level mount yields it instead of running mount/umount (their argv is tested apart)."""
    top = tmp_path / "top"
    for name in (OLDEST, MIDDLE, NEWEST, "before-upgrade"):
        (top / "old_roots" / name).mkdir(parents=True)
    (top / "old_roots" / "stray-file").write_text("not a root\n")
    mounted_devices: list[str] = []

    @contextlib.contextmanager
    def fake_top_level(device: str, *, readonly: bool = True) -> Iterator[Path]:
        assert readonly
        mounted_devices.append(device)
        yield top

    monkeypatch.setattr(mounts, "top_level", fake_top_level)
    return top


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def expect_copy(fp: FakeProcess) -> Iterator[Callable[[Path, Path], None]]:
    """Register the archive copy of a source to a target; each must have run once at the end."""
    expected: list[tuple[list[str | Any], Path]] = []

    def expect(source: Path, target: Path) -> None:
        # cp reads the source through /proc/<pid>/fd/<held fd> (-H for a file) and is given
        # the copy's place through /proc/<pid>/fd/<held directory>: any names.
        follow = not source.is_dir() and not source.is_symlink()
        # a pattern: fp.any() stands for the last two arguments
        argv: list[Any] = [
            *copy.cp_archive("", target, follow_source=follow)[:-2],
            fp.any(min=2, max=2),
        ]

        def run(process: FakePopen) -> None:
            read = str(process.args[-2])
            assert read.startswith(f"/proc/{os.getpid()}/fd/"), read
            if follow or source.is_dir():
                assert os.path.realpath(read.removesuffix("/.")) == str(source.resolve())
            place = Path(str(process.args[-1]))
            if source.is_dir():
                shutil.copytree(source, place, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(source, place)

        fp.register(argv, callback=run)
        expected.append((argv, target))

    yield expect
    for argv, target in expected:
        runs = sum(1 for other, _ in expected if repr(other) == repr(argv))  # same pattern
        assert fp.call_count(argv) == runs, f"expected {runs} runs of {argv}"
        assert os.path.lexists(target), f"{target} was not copied into place"


# ------------------------------------------------------------------------------ names, order


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("2026-11-20T08:00:00Z", (datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC), 0)),
        ("2026-11-20T08:00:00Z.12", (datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC), 12)),
        ("2026-13-20T08:00:00Z", None),
        ("2026-11-20T08:00:00", None),
        ("2026-11-20T08:00:00Z.", None),
        ("before-upgrade", None),
    ],
)
def test_parse_root_name(name: str, parsed: tuple[datetime, int] | None) -> None:
    assert snapshots.parse_name(name) == parsed


def test_list_roots_newest_first_unknown_names_last(top: Path) -> None:
    listed = oldroots.list_roots(top, "old_roots")
    assert [root.name for root in listed] == [NEWEST, MIDDLE, OLDEST, "before-upgrade"]
    assert listed[-1].time is None
    assert listed[0].path == top / "old_roots" / NEWEST


def test_list_roots_without_the_subvolume(tmp_path: Path) -> None:
    with pytest.raises(BlankslateError, match="no old roots: there is no 'old_roots' subvolume"):
        oldroots.list_roots(tmp_path, "old_roots")


def test_format_table() -> None:
    now = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
    roots = [
        snapshots.Snapshot(MIDDLE, Path("x"), datetime(2026, 11, 20, 8, tzinfo=UTC), 0),
        snapshots.Snapshot(
            "x", Path("y"), None, 0, snapshots.Sizes(referenced=3 * 1024**3, exclusive=1536)
        ),
    ]
    assert snapshots.format_table(roots, now).splitlines() == [
        "NAME                  TIME (UTC)           AGE  REFERENCED  EXCLUSIVE",
        "2026-11-20T08:00:00Z  2026-11-20 08:00:00  2d   -           -",
        "x                     unknown time         -    3.0 GiB     1.5 KiB",
    ]


# ------------------------------------------------------------------------------ roots, real argv


def register_findmnt_persist(fp: FakeProcess, persist_path: str) -> None:
    fp.register(
        mounts.findmnt_cmd(target=persist_path),
        stdout=findmnt_json(
            (
                persist_path,
                f"{DEVICE}[/persist]",
                "btrfs",
                "rw,noatime,compress=zstd:3,subvol=/persist",
            )
        ),
    )


def populate_on_mount(process: FakePopen) -> None:
    """What the mounted top level would show: the old roots subvolume with two roots."""
    mountpoint = Path(str(process.args[-1]))
    (mountpoint / "old_roots" / MIDDLE).mkdir(parents=True)
    (mountpoint / "old_roots" / OLDEST).mkdir()


def test_roots_mounts_read_only_and_unmounts(fp: FakeProcess, the_plan: plan.Plan) -> None:
    register_findmnt_persist(fp, the_plan.persist_path)
    mount = fp.register(
        ["mount", "-t", "btrfs", "-o", "subvolid=5,ro", "--", DEVICE, fp.any(min=1, max=1)],
        callback=populate_on_mount,
    )
    fp.register(["btrfs", "qgroup", "show", "--raw", fp.any(min=1, max=1)], returncode=1)
    fp.register(["umount", "--", fp.any(min=1, max=1)])

    listed = oldroots.roots(the_plan)

    assert [root.to_json() for root in listed] == [
        {"name": MIDDLE, "time": MIDDLE, "referencedBytes": None, "exclusiveBytes": None},
        {"name": OLDEST, "time": OLDEST, "referencedBytes": None, "exclusiveBytes": None},
    ]
    mountpoint = mount.calls[0].args[-1]
    assert fp.calls[-1] == ["umount", "--", mountpoint]
    assert not os.path.exists(mountpoint)  # the private directory is gone too


def test_roots_before_the_first_boot_are_none(fp: FakeProcess, the_plan: plan.Plan) -> None:
    """No old roots subvolume yet (the rollback has not run): an empty list, not an error;
    the top level is unmounted again."""
    fp.register(["mount", "-t", "btrfs", "-o", "subvolid=5,ro", "--", "/dev/vdb", fp.any()])
    fp.register(["umount", "--", fp.any(min=1, max=1)])
    assert oldroots.roots(the_plan, "/dev/vdb") == []
    assert fp.call_count(["umount", "--", fp.any()]) == 1


def test_roots_json_prints_an_empty_list_before_the_first_boot(
    fp: FakeProcess,
    the_plan: plan.Plan,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(the_plan.to_json()))
    fp.register(["mount", "-t", "btrfs", "-o", "subvolid=5,ro", "--", "/dev/vdb", fp.any()])
    fp.register(["umount", "--", fp.any(min=1, max=1)])
    assert run_cli("roots", "--plan", str(plan_file), "--device", "/dev/vdb", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_roots_sizes_from_quota_groups(fp: FakeProcess, the_plan: plan.Plan, top: Path) -> None:
    fp.register(
        ["btrfs", "qgroup", "show", "--raw", str(top)],
        stdout=(
            "Qgroupid    Referenced    Exclusive   Path \n"
            "--------    ----------    ---------   ---- \n"
            "0/5              16384        16384   <toplevel>\n"
            "0/260        123456789         4096   old_roots/2026-11-20T08:00:00Z.1\n"
            "0/261             8192         8192   old_roots/before-upgrade\n"
        ),
    )
    fp.register(
        ["btrfs", "subvolume", "list", str(top)],
        stdout=(
            "ID 256 gen 9 top level 5 path root\n"
            "ID 260 gen 12 top level 258 path old_roots/2026-11-20T08:00:00Z.1\n"
            "ID 261 gen 13 top level 258 path old_roots/before-upgrade\n"
        ),
    )
    by_name = {root.name: root.sizes for root in oldroots.roots(the_plan, DEVICE)}
    assert by_name[NEWEST] == snapshots.Sizes(123456789, 4096)
    assert by_name["before-upgrade"] == snapshots.Sizes(8192, 8192)
    assert by_name[MIDDLE] is None


def test_roots_needs_a_btrfs_rollback(fp: FakeProcess, the_plan: plan.Plan) -> None:
    tmpfs_plan = with_kind(the_plan, "tmpfs")
    with pytest.raises(
        BlankslateError, match=r"rollback 'btrfs' \(this plan's rollback is 'tmpfs'"
    ):
        oldroots.roots(tmpfs_plan, DEVICE)


# ------------------------------------------------------------------------------ recover


def test_copy_argv_keeps_metadata() -> None:
    assert copy.cp_archive(Path("/top/old_roots/r/etc/x"), Path("/persist/etc/x")) == [
        "cp",
        "--archive",
        "--reflink=auto",
        "--no-target-directory",
        "--",
        "/top/old_roots/r/etc/x",
        "/persist/etc/x",
    ]


@pytest.mark.root
def test_recover_takes_the_newest_root_holding_the_path(
    fp: FakeProcess,
    expect_copy: Callable[[Path, Path], None],
    the_plan: plan.Plan,
    top: Path,
    tmp_path: Path,
) -> None:
    write(top / "old_roots" / OLDEST / "root/notes.txt", "oldest\n")
    source = write(top / "old_roots" / MIDDLE / "root/notes.txt", "middle\n")
    (top / "old_roots" / NEWEST / "root").mkdir()  # the newest root lacks the file
    target = tmp_path / "rescued" / "deeper" / "notes.txt"
    expect_copy(source, target)

    done = oldroots.recover(the_plan, "/root/notes.txt", to=target.parent, device=DEVICE)

    assert done == oldroots.Recovered("/root/notes.txt", "old root", MIDDLE, target)
    assert target.parent.is_dir()  # missing parents were created for cp


def test_recover_from_a_named_root(
    fp: FakeProcess,
    expect_copy: Callable[[Path, Path], None],
    the_plan: plan.Plan,
    top: Path,
    tmp_path: Path,
) -> None:
    source = write(top / "old_roots" / OLDEST / "etc/app.conf", "old\n")
    write(top / "old_roots" / NEWEST / "etc/app.conf", "new\n")
    expect_copy(source, tmp_path / "app.conf")

    done = oldroots.recover(
        the_plan, "/etc//app.conf", from_root=OLDEST, to=tmp_path, device=DEVICE
    )

    assert (done.source, done.path) == (OLDEST, "/etc/app.conf")


def test_recover_reaches_hand_made_snapshots_last(
    fp: FakeProcess,
    expect_copy: Callable[[Path, Path], None],
    the_plan: plan.Plan,
    top: Path,
    tmp_path: Path,
) -> None:
    source = write(top / "old_roots" / "before-upgrade" / "srv/data", "x\n")
    expect_copy(source, tmp_path / "data")
    done = oldroots.recover(the_plan, "/srv/data", to=tmp_path, device=DEVICE)
    assert done.source == "before-upgrade"


@pytest.mark.root
def test_recover_persisted_path_goes_back_to_persist(
    fp: FakeProcess,
    expect_copy: Callable[[Path, Path], None],
    the_plan: plan.Plan,
    top: Path,
    persist: Path,
) -> None:
    persist_mounted_from(fp, Path(the_plan.persist_path), DEVICE)
    # The newest root only has impermanence's empty mountpoint: the data is in an older one.
    (top / "old_roots" / NEWEST / "var/lib/nixos").mkdir(parents=True)
    source = write(top / "old_roots" / MIDDLE / "var/lib/nixos/uid-map", "{}\n").parent
    # impermanence created the persisted directory empty: filling it overwrites nothing.
    (persist / "var/lib/nixos").mkdir(parents=True)
    expect_copy(source, persist / "var/lib/nixos")

    done = oldroots.recover(the_plan, "/var/lib/nixos", device=DEVICE)

    assert (done.source, done.target) == (MIDDLE, persist / "var/lib/nixos")


@pytest.mark.root
def test_recover_goes_back_into_the_root_that_keeps_the_path(
    fp: FakeProcess,
    expect_copy: Callable[[Path, Path], None],
    the_plan: plan.Plan,
    top: Path,
    persist: Path,
) -> None:
    persist_mounted_from(fp, persist, DEVICE)
    cache = persist / "cache"
    persistence = plan.Persistence(
        directories=(
            plan.PersistedDirectory("/var/cache"),
            plan.PersistedDirectory("/var/cache/app", root=str(cache)),
        ),
        files=(),
    )
    rooted = dataclasses.replace(the_plan, persistence=persistence)
    source = write(top / "old_roots" / NEWEST / "var/cache/app/db", "rows\n")
    expect_copy(source, cache / "var/cache/app/db")

    done = oldroots.recover(rooted, "/var/cache/app/db", device=DEVICE)

    # The deepest persisted directory is the one mounted over the path.
    assert done.target == cache / "var/cache/app/db"
    assert (cache / "var/cache/app").is_dir()


@pytest.mark.root
def test_recover_persisted_file_and_path_inside_persisted_directory(
    fp: FakeProcess,
    expect_copy: Callable[[Path, Path], None],
    the_plan: plan.Plan,
    top: Path,
    persist: Path,
) -> None:
    persist_mounted_from(fp, Path(the_plan.persist_path), DEVICE)
    machine_id = write(top / "old_roots" / NEWEST / "etc/machine-id", "abc\n")
    inside = write(top / "old_roots" / NEWEST / "var/lib/systemd/timers/x.timer", "t\n")
    expect_copy(machine_id, persist / "etc/machine-id")
    expect_copy(inside, persist / "var/lib/systemd/timers/x.timer")

    oldroots.recover(the_plan, "/etc/machine-id", device=DEVICE)
    oldroots.recover(the_plan, "/var/lib/systemd/timers/x.timer", device=DEVICE)

    assert (persist / "var/lib/systemd/timers").is_dir()


@pytest.mark.root
def test_recover_skips_symlink_into_persist(
    fp: FakeProcess,
    expect_copy: Callable[[Path, Path], None],
    the_plan: plan.Plan,
    top: Path,
    persist: Path,
) -> None:
    persist_mounted_from(fp, Path(the_plan.persist_path), DEVICE)
    (top / "old_roots" / NEWEST / "etc").mkdir(parents=True)
    (top / "old_roots" / NEWEST / "etc/machine-id").symlink_to(f"{persist}/etc/machine-id")
    source = write(top / "old_roots" / OLDEST / "etc/machine-id", "abc\n")
    expect_copy(source, persist / "etc/machine-id")
    assert oldroots.recover(the_plan, "/etc/machine-id", device=DEVICE).source == OLDEST


def test_recover_not_persisted_needs_to(fp: FakeProcess, the_plan: plan.Plan, top: Path) -> None:
    write(top / "old_roots" / NEWEST / "root/notes.txt", "x\n")
    with pytest.raises(BlankslateError, match=r"is not persisted.*give --to DIR"):
        oldroots.recover(the_plan, "/root/notes.txt", device=DEVICE)


def test_recover_never_overwrites(
    fp: FakeProcess, the_plan: plan.Plan, top: Path, tmp_path: Path, persist: Path
) -> None:
    persist_mounted_from(fp, Path(the_plan.persist_path), DEVICE)
    write(top / "old_roots" / NEWEST / "etc/machine-id", "old\n")
    write(persist / "etc/machine-id", "live\n")
    write(tmp_path / "out" / "machine-id", "mine\n")
    (top / "old_roots" / NEWEST / "var/lib/nixos").mkdir(parents=True)
    write(top / "old_roots" / MIDDLE / "var/lib/nixos/uid-map", "{}\n")
    write(persist / "var/lib/nixos/gid-map", "{}\n")  # not empty: refused

    with pytest.raises(BlankslateError, match=r"already exists .*recover never overwrites"):
        oldroots.recover(the_plan, "/etc/machine-id", device=DEVICE)
    with pytest.raises(BlankslateError, match="already exists"):
        oldroots.recover(the_plan, "/etc/machine-id", to=tmp_path / "out", device=DEVICE)
    with pytest.raises(BlankslateError, match="already exists"):
        oldroots.recover(the_plan, "/var/lib/nixos", device=DEVICE)
    assert (persist / "etc/machine-id").read_text() == "live\n"


def test_recover_refuses_a_symlink_out_of_the_old_root(
    fp: FakeProcess, the_plan: plan.Plan, top: Path, tmp_path: Path
) -> None:
    outside = write(tmp_path / "live-system" / "secret", "live\n").parent
    (top / "old_roots" / NEWEST / "etc").symlink_to(outside)
    with pytest.raises(BlankslateError, match="goes through a symlink leading out of it"):
        oldroots.recover(the_plan, "/etc/secret", to=tmp_path / "out", device=DEVICE)


@pytest.mark.parametrize(
    ("path", "options", "complaint"),
    [
        ("etc/passwd", {}, "'etc/passwd' is not an absolute path"),
        ("/", {}, "cannot recover / as a whole"),
        ("/etc/nothing", {"to": Path("/tmp/x")}, "/etc/nothing is not in any of the 4 old roots"),
        ("/etc/nothing", {"to": Path("/tmp/x"), "from_root": OLDEST}, f"not in old root {OLDEST}"),
        (
            "/etc/x",
            {"to": Path("/tmp/x"), "from_root": "2020-01-01T00:00:00Z"},
            "no old root named",
        ),
    ],
)
def test_recover_errors(
    fp: FakeProcess,
    the_plan: plan.Plan,
    top: Path,
    path: str,
    options: dict[str, str | Path],
    complaint: str,
) -> None:
    with pytest.raises(BlankslateError) as raised:
        oldroots.recover(the_plan, path, device=DEVICE, **options)  # type: ignore[arg-type]
    assert complaint in str(raised.value)


def test_recover_with_no_old_roots(fp: FakeProcess, the_plan: plan.Plan, top: Path) -> None:
    persist_mounted_from(fp, Path(the_plan.persist_path), DEVICE)
    for entry in (top / "old_roots").iterdir():
        if entry.is_dir():
            entry.rmdir()
    with pytest.raises(BlankslateError, match="no old roots: 'old_roots' is empty"):
        oldroots.recover(the_plan, "/etc/machine-id", device=DEVICE)


def test_recover_needs_a_btrfs_rollback(fp: FakeProcess, the_plan: plan.Plan) -> None:
    with pytest.raises(BlankslateError, match="rollback 'btrfs'"):
        oldroots.recover(with_kind(the_plan, "none"), "/etc/x", to=Path("/x"))


# ------------------------------------------------------------------------------ CLI


def plan_file(the_plan: plan.Plan, tmp_path: Path) -> str:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(the_plan.to_json()))
    return str(path)


def test_cli_roots_json(
    fp: FakeProcess,
    the_plan: plan.Plan,
    top: Path,
    tmp_path: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fp.register(["btrfs", "qgroup", "show", "--raw", str(top)], returncode=1)
    arguments = ["roots", "--json", "--plan", plan_file(the_plan, tmp_path), "--device", DEVICE]
    assert run_cli("-q", *arguments) == 0
    assert [entry["name"] for entry in json.loads(capsys.readouterr().out)] == [
        NEWEST,
        MIDDLE,
        OLDEST,
        "before-upgrade",
    ]


def test_cli_recover_error_is_one_line(
    fp: FakeProcess,
    the_plan: plan.Plan,
    top: Path,
    tmp_path: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    arguments = ["recover", "/root/x", "--plan", plan_file(the_plan, tmp_path), "--device", DEVICE]
    assert run_cli("-q", *arguments) == 1
    assert capsys.readouterr().err == (
        f"error: /root/x is not persisted, so it has no place in {the_plan.persist_path} "
        "(give --to DIR to copy it into DIR)\n"
    )


# ------------------------------------------------------------------------------ safe writes


def persist_mounted_from(fp: FakeProcess, persist: Path, device: str | None) -> None:
    rows = [{"target": "/", "source": "/dev/vda3[/root]", "fstype": "btrfs", "options": "rw"}]
    if device is not None:
        rows.append(
            {
                "target": str(persist),
                "source": f"{device}[/persist]",
                "fstype": "btrfs",
                "options": "rw",
            }
        )
    fp.register(
        [*FINDMNT_PERSIST, "--mountpoint", str(persist)],
        stdout=json.dumps({"filesystems": rows[1:]}),
        returncode=0 if device else 1,
        occurrences=4,
    )
    fp.register(FINDMNT_PERSIST, stdout=json.dumps({"filesystems": rows}), occurrences=4)


def test_recover_never_writes_through_a_symlink_in_persist(
    fp: FakeProcess, the_plan: plan.Plan, top: Path, persist: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (persist / "var").mkdir()
    (persist / "var/lib").symlink_to(victim)
    write(top / "old_roots" / NEWEST / "var/lib/nixos/uid-map", "{}\n")
    persist_mounted_from(fp, persist, DEVICE)
    fp.register(["cp", fp.any()])
    with pytest.raises(BlankslateError, match=f"{persist}/var/lib is a symlink"):
        oldroots.recover(the_plan, "/var/lib/nixos/uid-map", device=DEVICE)
    assert list(victim.iterdir()) == []


@pytest.mark.parametrize(
    ("mounted_from", "complaint"),
    [
        (None, "persistPath {persist} is not mounted (mount it, or give --to DIR)"),
        ("/dev/vdb3", "persistPath {persist} is on /dev/vdb3, not on /dev/vda3"),
    ],
)
def test_recover_into_persist_needs_it_mounted_from_the_device(
    fp: FakeProcess,
    the_plan: plan.Plan,
    top: Path,
    persist: Path,
    mounted_from: str | None,
    complaint: str,
) -> None:
    write(top / "old_roots" / NEWEST / "etc/machine-id", "abc\n")
    persist_mounted_from(fp, persist, mounted_from)
    fp.register(["cp", fp.any()])
    with pytest.raises(BlankslateError) as raised:
        oldroots.recover(the_plan, "/etc/machine-id", device=DEVICE)
    assert complaint.format(persist=persist) in str(raised.value)
    assert list(persist.iterdir()) == []


def test_retention_names_keep_max(the_plan: plan.Plan) -> None:
    assert oldroots.retention(the_plan, 4) == (
        "4 old roots kept; each boot keeps at most 30 (keepMax), the 3 newest whatever their "
        "age (keepNewest), the others for 30 days (keepDays)"
    )
    storage = btrfs_storage(the_plan)
    unbounded = dataclasses.replace(
        the_plan,
        storage=dataclasses.replace(
            storage, old_roots=dataclasses.replace(storage.old_roots, keep_max=None)
        ),
    )
    line = oldroots.retention(unbounded, 1)
    assert line is not None and line.startswith("1 old root kept; each boot keeps no bound")
    assert oldroots.retention(with_kind(the_plan, "zfs"), 1) is None
