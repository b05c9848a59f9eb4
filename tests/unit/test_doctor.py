"""`blankslate doctor`: each check, its failures, and the command line (every command mocked)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from blankslate import btrfs, doctor, mounts, passwordfile, plan, plansource
from blankslate.errors import BlankslateError

from ..conftest import PARSER_CORPUS
from ..support.mounts import FINDMNT
from ..support.mounts import findmnt_json as findmnt
from ..support.plans import btrfs_storage, write_plan_json

PLAN = plansource.default()
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Real `mkpasswd` output, one per scheme doctor accepts.
GOOD_HASHES = {
    "yescrypt": "$y$j9T$AesRXvEZFH9m11FlIetcd/$vdHXKBQUDpFrS6IftMMy.FlHEnk8I98tromf8rcv2m9",
    "sha-512": "$6$szCEJ9q58G4TlSpQ$IrYut0z1F8LOxc52vRwE9Cs3L90JDAcZjc67M1/IJI88WN8G.5RmJoxFUtP"
    ".jVRtiNyIw0qyssjx83VhWaoLh1",
    "sha-256": "$5$8ZXxurnYRQZasuWr$W4La1EVKCQyiDJiFMi/jvPeY//qS278ztl2VOyEPVHA",
    "bcrypt": "$2b$05$/byBAq/C6A141zsl3PgnUe9y4zlO02Jhjb7mGyBUW0QCbU1zpdoOC",
    "scrypt": "$7$CU..../....vKYfxGlSQ/TwXp3156f2C/$atBq0UR7F9o2CkGqrkRLfXyqvEGpU4h9Ju31mH4dWM4",
    "gost-yescrypt": "$gy$j9T$4iQLB7z0787/V.7.JVYvu0$ECLRyIVkjrFzoksqdJu9/Hx0W5t26/18hp1Lu1k2pK7",
}
BAD_HASHES = {
    "": "is empty",
    "!": "locked password ('!')",
    "*": "locked password ('*')",
    "!" + GOOD_HASHES["yescrypt"]: "locked password",
    "$1$Euyxh8E.$cGH1i6uhs6Qwt2LuHJdM31": "does not hold a password hash",  # md5: weak
    "hunter2": "does not hold a password hash",
    "$y$j9T$salt$short": "does not hold a password hash",
    GOOD_HASHES["sha-512"][:-1]: "does not hold a password hash",
    GOOD_HASHES["bcrypt"] + " ": "does not hold a password hash",
}
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="files must be root's for an ok")


@pytest.fixture(autouse=True)
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)


def context(root: Path, the_plan: plan.Plan = PLAN) -> doctor.Context:
    return doctor.Context(the_plan, root, NOW)


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def statuses(results: list[doctor.Result]) -> list[tuple[str, str]]:
    return [(r.check, r.status) for r in results]


# --- --only and the hash rules -------------------------------------------------------------


def test_only_names_checks_in_their_order() -> None:
    assert doctor.parse_only([]) == doctor.CHECKS
    assert doctor.parse_only(["host-keys,passwords"]) == ("passwords", "host-keys")
    assert doctor.parse_only(["etc", " persist "]) == ("persist", "etc")
    for bad in (["nope"], ["passwords,"], [""], ["passwords\nx"]):
        with pytest.raises(BlankslateError, match="--only: unknown check"):
            doctor.parse_only(bad)


@given(st.lists(st.text(max_size=30), max_size=4))
def test_only_never_raises_anything_else(values: list[str]) -> None:
    try:
        checks = doctor.parse_only(values)
    except BlankslateError as error:
        assert len(str(error).splitlines()) == 1
    else:
        assert checks and set(checks) <= set(doctor.CHECKS)


@pytest.mark.parametrize("scheme", GOOD_HASHES)
def test_hashes_of_every_scheme_pass(scheme: str) -> None:
    assert doctor.hash_problem(GOOD_HASHES[scheme]) is None
    assert doctor.scheme_of(GOOD_HASHES[scheme]) == scheme.removeprefix("gost-")


@pytest.mark.parametrize("line", BAD_HASHES)
def test_locked_empty_weak_and_broken_hashes_fail(line: str) -> None:
    problem = doctor.hash_problem(line)
    assert problem is not None and BAD_HASHES[line] in problem


@given(st.text(max_size=200))
def test_hash_check_takes_any_text(line: str) -> None:
    problem = doctor.hash_problem(line)
    assert (problem is None) == (doctor.scheme_of(line) is not None)


# --- persist -------------------------------------------------------------------------------


def test_persist_mounted_and_needed_for_boot(fp: FakeProcess, tmp_path: Path) -> None:
    fp.register(FINDMNT, stdout=findmnt((f"{tmp_path}/persist", "/dev/loop0p3[/persist]", "btrfs")))
    (result,) = doctor.check_persist(context(tmp_path))
    assert result.status == "ok" and "neededForBoot" in result.message


def test_persist_not_mounted_fails(fp: FakeProcess, tmp_path: Path) -> None:
    fp.register(FINDMNT, stdout=findmnt((str(tmp_path), "/dev/loop0p3[/root]", "btrfs")))
    (result,) = doctor.check_persist(context(tmp_path))
    assert result.status == "fail" and "is not mounted" in result.message


def test_persist_not_mounted_in_the_initrd_fails(
    fp: FakeProcess, tmp_path: Path, host_plan_data: Callable[[str], dict[str, Any]]
) -> None:
    data = host_plan_data("example")
    for mount in data["mounts"]:
        if mount["mountPoint"] == "/persist":
            mount["neededForBoot"] = False
    fp.register(FINDMNT, stdout=findmnt((f"{tmp_path}/persist", "/dev/vda3", "btrfs")))
    (result,) = doctor.check_persist(context(tmp_path, plan.from_json(data)))
    assert result.status == "fail" and "not neededForBoot" in result.message


def test_persist_mounted_by_the_platform(
    fp: FakeProcess, tmp_path: Path, host_plan_data: Callable[[str], dict[str, Any]]
) -> None:
    vpsfree = plan.from_json(host_plan_data("vpsfree"))
    fp.register(FINDMNT, stdout=findmnt((f"{tmp_path}/persistent", "tank/ct/1", "zfs")))
    (result,) = doctor.check_persist(context(tmp_path, vpsfree))
    assert result.status == "ok" and "platform" in result.message


# --- passwords -----------------------------------------------------------------------------


@root_only
def test_password_file_with_a_hash_passes(tmp_path: Path) -> None:
    write(tmp_path / "persist/passwords/admin", GOOD_HASHES["yescrypt"] + "\n")
    (result,) = doctor.check_passwords(context(tmp_path))
    assert result.status == "ok" and "yescrypt" in result.message


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: None, "is missing"),
        (lambda p: write(p, GOOD_HASHES["sha-512"] + "\n", 0o644), "mode 644"),
        (lambda p: write(p, "!\n"), "locked password"),
        (lambda p: write(p, ""), "is empty"),
        (lambda p: write(p, "not a hash\n"), "does not hold a password hash"),
        (lambda p: p.write_bytes(b"\xff\xfe\n"), "does not hold a password hash"),
        (lambda p: p.mkdir(), "is not a regular file"),
        (lambda p: p.symlink_to(write(p.with_name("real"), GOOD_HASHES["yescrypt"])), "symlink"),
        (lambda p: os.mkfifo(p, 0o600), "is not a regular file"),
    ],
)
def test_bad_password_files_fail(
    tmp_path: Path, make: Callable[[Path], object], expected: str
) -> None:
    path = tmp_path / "persist/passwords/admin"
    path.parent.mkdir(parents=True)
    make(path)
    (result,) = doctor.check_passwords(context(tmp_path))
    assert result.status == "fail", result
    assert expected in result.message and "cannot use sudo" in result.message
    assert f"blankslate passwd admin --root {tmp_path}" in result.message


# NixOS's users script removes only the final newline (nixpkgs
# nixos/modules/config/update-users-groups.pl: read_file, chomp) and writes the rest into
# /etc/shadow: a second line or a NUL breaks the admin's entry there.
@root_only
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (GOOD_HASHES["yescrypt"].encode() + b"\n\n", "more than one line"),
        (GOOD_HASHES["yescrypt"].encode() + b"\nx", "more than one line"),
        (GOOD_HASHES["sha-512"].encode() + b"\r\n", "does not hold a password hash"),
        (GOOD_HASHES["yescrypt"].encode() + b"\0\n", "NUL byte"),
        (b"a" * 5000 + b"\n", "larger than 4096 bytes"),
    ],
)
def test_password_files_nixos_would_break_fail(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "persist/passwords/admin"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    path.chmod(0o600)
    (result,) = doctor.check_passwords(context(tmp_path))
    assert result.status == "fail", result
    assert expected in result.message


@root_only
def test_a_hash_without_its_final_newline_passes(tmp_path: Path) -> None:
    write(tmp_path / "persist/passwords/admin", GOOD_HASHES["bcrypt"])
    (result,) = doctor.check_passwords(context(tmp_path))
    assert result.status == "ok" and "bcrypt" in result.message


@settings(max_examples=PARSER_CORPUS, deadline=None)
@given(st.binary(max_size=300))
def test_the_password_file_validator_takes_any_bytes(data: bytes) -> None:
    problem = passwordfile.content_problem(data)
    assert problem is None or len(problem.splitlines()) == 1
    if problem is None:  # what NixOS writes into /etc/shadow is one field of one line
        hashed = passwordfile.hash_of(data)
        assert not set(hashed) & set(b"\n\r\0: ") and hashed.isascii()


@root_only
def test_password_file_of_another_owner_fails(tmp_path: Path) -> None:
    path = write(tmp_path / "persist/passwords/admin", GOOD_HASHES["yescrypt"] + "\n")
    os.chown(path, 1000, 1000)
    (result,) = doctor.check_passwords(context(tmp_path))
    assert result.status == "fail" and "owner uid 1000" in result.message


@root_only
def test_one_line_per_admin(
    tmp_path: Path, host_plan_data: Callable[[str], dict[str, Any]]
) -> None:
    data = host_plan_data("example")
    data["users"].append({"name": "bob", "hashedPasswordFile": "/persist/passwords/bob"})
    write(tmp_path / "persist/passwords/admin", GOOD_HASHES["bcrypt"] + "\n")
    results = list(doctor.check_passwords(context(tmp_path, plan.from_json(data))))
    assert [(r.status, r.message.split(":")[0]) for r in results] == [
        ("ok", "admin"),
        ("fail", "bob"),
    ]


# --- host keys -----------------------------------------------------------------------------


@root_only
def test_host_keys(tmp_path: Path) -> None:
    key = tmp_path / "persist/etc/ssh/ssh_host_ed25519_key"
    assert [r.status for r in doctor.check_host_keys(context(tmp_path))] == ["fail"]
    write(key, "PRIVATE", 0o600)
    (ok,) = doctor.check_host_keys(context(tmp_path))
    assert ok.status == "ok"
    key.chmod(0o644)
    (readable,) = doctor.check_host_keys(context(tmp_path))
    assert readable.status == "fail" and "mode 644" in readable.message


# --- btrfs ---------------------------------------------------------------------------------


@pytest.fixture
def top(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fp: FakeProcess) -> Path:
    """The top level as a plain directory; findmnt shows the layout mounted under tmp_path."""
    top = tmp_path / "top"
    (top / "root-blank").mkdir(parents=True)
    mounted: list[str] = []

    @contextlib.contextmanager
    def fake_top_level(device: str, *, readonly: bool = True) -> Iterator[Path]:
        assert readonly
        mounted.append(device)
        yield top

    monkeypatch.setattr(mounts, "top_level", fake_top_level)
    fp.register(FINDMNT, stdout=findmnt((f"{tmp_path}/root", "/dev/loop7p3[/root]", "btrfs")))
    return top


def btrfs_only(root: Path, only: tuple[str, ...]) -> list[doctor.Result]:
    return doctor.btrfs_checks(context(root), only)


def ro(fp: FakeProcess, top: Path, value: str = "ro=true", returncode: int = 0) -> None:
    fp.register(
        ["btrfs", "property", "get", "-ts", str(top / "root-blank"), "ro"],
        stdout=value + "\n",
        returncode=returncode,
        stderr="ERROR: not a subvolume\n" if returncode else "",
    )


def test_blank_read_only_and_empty_passes(fp: FakeProcess, top: Path) -> None:
    ro(fp, top)
    (result,) = btrfs_only(top.parent / "root", ("blank",))
    assert (result.status, result.message) == (
        "ok",
        "the blank snapshot root-blank is read-only and empty",
    )


def test_writable_blank_fails(fp: FakeProcess, top: Path) -> None:
    ro(fp, top, "ro=false")
    (result,) = btrfs_only(top.parent / "root", ("blank",))
    assert result.status == "fail" and "is writable" in result.message


def test_blank_with_files_fails(fp: FakeProcess, top: Path) -> None:
    (top / "root-blank/etc").mkdir()
    ro(fp, top)
    (result,) = btrfs_only(top.parent / "root", ("blank",))
    assert result.status == "fail" and "holds 1 entries" in result.message


def test_blank_missing_or_not_a_subvolume_fails(fp: FakeProcess, top: Path) -> None:
    ro(fp, top, returncode=1)
    (result,) = btrfs_only(top.parent / "root", ("blank",))
    assert result.status == "fail" and "not a btrfs subvolume" in result.message
    (top / "root-blank").rmdir()
    fp.register(FINDMNT, stdout=findmnt())  # a second run: the plan's main device
    (missing,) = btrfs_only(top.parent / "root", ("blank",))
    assert missing.status == "fail" and "is missing" in missing.message


def test_top_level_that_cannot_be_mounted_fails_its_checks(fp: FakeProcess, tmp_path: Path) -> None:
    fp.register(FINDMNT, stdout=findmnt())
    fp.register(["mount", fp.any()], returncode=32, stderr="mount: no such device\n")
    results = btrfs_only(tmp_path, ("blank", "old-roots"))
    assert statuses(results) == [("blank", "fail"), ("old-roots", "fail")]
    assert "/dev/disk/by-label/nixos" in results[0].message


def test_btrfs_checks_skip_other_rollbacks(
    tmp_path: Path, host_plan_data: Callable[[str], dict[str, Any]]
) -> None:
    vpsfree = plan.from_json(host_plan_data("vpsfree"))
    results = doctor.btrfs_checks(context(tmp_path, vpsfree), doctor.CHECKS)
    assert statuses(results) == [(name, "skipped") for name in ("blank", "root-age", "old-roots")]


def subvolume_show(fp: FakeProcess, name: str, created: str) -> None:
    fp.register(
        ["btrfs", "subvolume", "show", "/"],
        stdout=f"root\n\tName: \t\t\t{name}\n\tUUID: \t\t\tx\n\tCreation time: \t\t{created}\n",
    )


@pytest.fixture
def booted_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> datetime:
    stat_file = tmp_path / "stat"
    boot = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    stat_file.write_text(f"cpu  1 2 3\nbtime {int(boot.timestamp())}\nprocesses 9\n")
    monkeypatch.setattr(doctor, "PROC_STAT", stat_file)
    return boot


def test_root_made_at_this_boot_passes(fp: FakeProcess, booted_at: datetime) -> None:
    subvolume_show(fp, "root", "2026-03-01 12:00:10 +0100")  # 11:00:10 UTC
    result = doctor.check_root_age(context(Path("/")))
    assert result.status == "ok" and "made at this boot" in result.message


def test_root_older_than_the_boot_fails(fp: FakeProcess, booted_at: datetime) -> None:
    subvolume_show(fp, "root", "2026-02-28 09:00:00 +0000")
    result = doctor.check_root_age(context(Path("/")))
    assert result.status == "fail" and "the reset did not run" in result.message


def test_root_of_another_subvolume_fails(fp: FakeProcess, booted_at: datetime) -> None:
    subvolume_show(fp, "old_roots/2026-02-28T09:00:00Z", "2026-03-01 11:00:05 +0000")
    result = doctor.check_root_age(context(Path("/")))
    assert result.status == "fail" and "not the plan's 'root'" in result.message


def test_root_age_is_skipped_under_root(tmp_path: Path) -> None:
    assert doctor.check_root_age(context(tmp_path)).status == "skipped"


def old_root(top: Path, when: datetime) -> None:
    (top / "old_roots" / when.strftime("%Y-%m-%dT%H:%M:%SZ")).mkdir(parents=True)


DU_HEADER = "     Total   Exclusive  Set shared  Filename\n"


def no_quotas(fp: FakeProcess, top: Path, du: str = f"{DU_HEADER}  8192  4096  2048  x\n") -> None:
    """Quotas off: the old roots' space comes from `btrfs filesystem du` of their directory."""
    fp.register(["btrfs", "qgroup", "show", "--raw", str(top)], returncode=1)
    fp.register(["btrfs", "filesystem", "du", "-s", "--raw", str(top / "old_roots")], stdout=du)


def test_old_roots_are_counted(fp: FakeProcess, top: Path) -> None:
    for days in (1, 3, 40):  # 40 days, but one of the newest keepNewest (3): kept
        old_root(top, NOW - timedelta(days=days))
    no_quotas(fp, top)
    (result,) = btrfs_only(top.parent / "root", ("old-roots",))
    assert (result.status, result.message) == (
        "info",
        "3 old roots kept (keepMax 30), newest 1d old, oldest 40d, "
        "6.0 KiB held only by them (btrfs filesystem du)",
    )


def test_one_old_root_is_one_old_root(fp: FakeProcess, top: Path) -> None:
    old_root(top, NOW - timedelta(days=1))
    no_quotas(fp, top)
    (result,) = btrfs_only(top.parent / "root", ("old-roots",))
    assert result.message.startswith("1 old root kept (keepMax 30), ")


def test_old_roots_past_their_keep_days_warn(fp: FakeProcess, top: Path) -> None:
    for days in (1, 2, 3, 35, 50):
        old_root(top, NOW - timedelta(days=days))
    no_quotas(fp, top)
    (result,) = btrfs_only(top.parent / "root", ("old-roots",))
    assert result.status == "warn" and "2 older than keepDays (30)" in result.message


def test_old_roots_sizes_with_quotas(fp: FakeProcess, top: Path) -> None:
    when = NOW - timedelta(days=2)
    old_root(top, when)
    fp.register(["btrfs", "qgroup", "show", "--raw", str(top)], stdout="0/260 4096 2048\n")
    listed = f"ID 260 gen 9 top level 5 path old_roots/{when:%Y-%m-%dT%H:%M:%SZ}\n"
    fp.register(["btrfs", "subvolume", "list", str(top)], stdout=listed)
    (result,) = btrfs_only(top.parent / "root", ("old-roots",))
    assert result.message.endswith("2.0 KiB held only by them (btrfs quota data)")


def with_keep_max(keep_max: int | None) -> plan.Plan:
    storage = btrfs_storage(PLAN)
    rules = dataclasses.replace(storage.old_roots, keep_max=keep_max)
    return dataclasses.replace(PLAN, storage=dataclasses.replace(storage, old_roots=rules))


def test_old_roots_beyond_keep_max_warn(fp: FakeProcess, top: Path) -> None:
    for hours in (1, 2, 3, 4):
        old_root(top, NOW - timedelta(hours=hours))
    no_quotas(fp, top)
    result = doctor.check_old_roots(context(top.parent / "root", with_keep_max(3)), top)
    assert result.status == "warn"
    assert result.message.startswith("4 old roots kept (keepMax 3), ")
    assert "more than keepMax: the pruning did not run" in result.message


@pytest.mark.parametrize(
    ("used", "keep_max", "status", "advice"),
    [
        (26, 30, "warn", "lower keepDays, keepNewest or keepMax"),
        (26, None, "warn", "lower keepDays, keepNewest or set keepMax"),
        (25, 30, "info", ""),
        (5, None, "info", ""),
    ],
)
def test_old_roots_holding_too_much_of_the_disk_warn(
    fp: FakeProcess,
    top: Path,
    monkeypatch: pytest.MonkeyPatch,
    used: int,
    keep_max: int | None,
    status: str,
    advice: str,
) -> None:
    """More than 25% of the filesystem in old roots: a warning saying how it was measured."""
    old_root(top, NOW - timedelta(days=1))
    total = 100 << 30
    monkeypatch.setattr(doctor, "free_space", lambda path: (0, total))
    no_quotas(fp, top, f"{DU_HEADER}{used << 30} {(used - 1) << 30} {1 << 30} {top}/old_roots\n")
    result = doctor.check_old_roots(context(top.parent / "root", with_keep_max(keep_max)), top)
    assert result.status == status, result.message
    assert f"{used}.0 GiB held only by them (btrfs filesystem du)" in result.message
    if status == "warn":
        assert f"{used}% of the filesystem's 100.0 GiB, more than 25%" in result.message
        assert advice in result.message


def test_old_roots_space_unknown_when_du_fails(fp: FakeProcess, top: Path) -> None:
    old_root(top, NOW - timedelta(days=1))
    fp.register(["btrfs", "qgroup", "show", "--raw", str(top)], returncode=1)
    fp.register(["btrfs", "filesystem", "du", "-s", "--raw", str(top / "old_roots")], returncode=1)
    result = doctor.check_old_roots(context(top.parent / "root"), top)
    assert result.status == "info" and "held only" not in result.message


def test_no_old_roots_subvolume(top: Path, tmp_path: Path) -> None:
    (result,) = btrfs_only(tmp_path / "root", ("old-roots",))
    assert result.status == "skipped" and "first boot" in result.message
    booted = doctor.check_old_roots(context(Path("/")), top)
    assert booted.status == "warn" and "has the rollback run" in booted.message


# --- free space and /etc/blankslate --------------------------------------------------------


@pytest.mark.parametrize(
    ("available", "total", "status"),
    [
        (50 << 30, 100 << 30, "ok"),
        (2 << 30, 100 << 30, "fail"),  # 2%: under 5%
        (900 << 20, 10 << 30, "fail"),  # under 1 GiB
        (1 << 30, 20 << 30, "ok"),  # exactly both limits
    ],
)
def test_free_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, available: int, total: int, status: str
) -> None:
    (tmp_path / "persist").mkdir()
    seen: list[Path] = []

    def free(path: Path) -> tuple[int, int]:
        seen.append(path)
        return available, total

    monkeypatch.setattr(doctor, "free_space", free)
    (result,) = doctor.check_free_space(context(tmp_path))
    assert result.status == status, result
    assert seen == [tmp_path / "persist"]


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    live, current = tmp_path / "etc/blankslate", tmp_path / "current/etc/blankslate"
    for directory in (live, current):
        write(directory / "plan.json", '{"version": 2}', 0o644)
    monkeypatch.setattr(doctor, "ETC_DIR", live)
    monkeypatch.setattr(doctor, "CURRENT_ETC_DIR", current)
    return live, current


def etc_result() -> doctor.Result:
    (result,) = doctor.check_etc(context(Path("/")))
    return result


def test_etc_matching_the_running_configuration(etc: tuple[Path, Path]) -> None:
    assert etc_result().status == "ok"


def test_etc_edited_missing_or_extra(etc: tuple[Path, Path]) -> None:
    live, _ = etc
    (live / "plan.json").write_text('{"version": 2, "edited": true}')
    assert (etc_result().status, "plan.json differs" in etc_result().message) == ("fail", True)
    (live / "plan.json").unlink()
    assert "plan.json is missing" in etc_result().message
    write(live / "plan.json", '{"version": 2}')
    write(live / "old.yaml", "x")
    assert etc_result().status == "warn"


def test_etc_skipped_without_a_running_configuration(
    etc: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (result,) = doctor.check_etc(context(tmp_path))
    assert result.status == "skipped" and "--root" in result.message
    monkeypatch.setattr(doctor, "CURRENT_ETC_DIR", tmp_path / "nowhere")
    assert etc_result().status == "skipped"


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    return write_plan_json(tmp_path, PLAN)


@root_only
def test_doctor_only_passwords_json(
    tmp_path: Path, plan_file: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "target"
    write(root / "persist/passwords/admin", GOOD_HASHES["yescrypt"] + "\n")
    args = ("doctor", "--plan", str(plan_file), "--root", str(root), "--only", "passwords")
    assert run_cli(*args, "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["version"] == 1
    assert [c["check"] for c in report["checks"]] == ["passwords"]
    (root / "persist/passwords/admin").unlink()
    assert run_cli(*args) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("fail    passwords  admin: ") and "is missing" in line


def test_doctor_text_is_one_line_per_check(
    fp: FakeProcess,
    tmp_path: Path,
    plan_file: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "line\nbreak"
    root.mkdir()
    fp.register(FINDMNT, stdout=findmnt())
    monkeypatch.setattr(doctor, "free_space", lambda path: (10 << 30, 20 << 30))
    only = "persist,passwords,host-keys,free-space,etc"
    assert run_cli("doctor", "--plan", str(plan_file), "--root", str(root), "--only", only) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["fail", "persist"],
        ["fail", "passwords"],
        ["fail", "host-keys"],
        ["ok", "free-space"],
        ["skipped", "etc"],
    ]
    assert "$'" in lines[0]  # the odd name is quoted, not broken over lines


@pytest.mark.parametrize(
    "args",
    [("--only", "nope"), ("--only", "passwords,\udcff"), ("--root", "/nonexistent/dir")],
)
def test_doctor_bad_input_is_one_error_line(
    plan_file: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
) -> None:
    assert run_cli("doctor", "--plan", str(plan_file), *args) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("plan: ")]
    assert len(err) == 1 and err[0].startswith("error: ")


def test_doctor_needs_root(
    plan_file: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert run_cli("doctor", "--plan", str(plan_file)) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: run as root (password files and the btrfs top level are root's)"
    )


# --- btrfs filesystem du, as check_old_roots reads it ----------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (f"{DU_HEADER}   8388608     8388608           0  m/old\n", (8388608, 8388608, 0)),
        (f"{DU_HEADER}  100  -  -  with spaces in name\n", (100, 0, 0)),
        (DU_HEADER, None),
        ("", None),
        ("ERROR: cannot check space of 'x': Inappropriate ioctl for device\n", None),
        (f"{DU_HEADER}  1.00MiB  1.00MiB  0.00B  x\n", None),  # without --raw
    ],
)
def test_parse_du_summary(text: str, parsed: tuple[int, int, int] | None) -> None:
    assert btrfs.parse_du_summary(text) == parsed


@settings(max_examples=300)
@given(text=st.text())
def test_parse_du_summary_never_raises(text: str) -> None:
    parsed = btrfs.parse_du_summary(text)
    assert parsed is None or (len(parsed) == 3 and min(parsed) >= 0)
