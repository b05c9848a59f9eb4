"""install / mount / unmount / passwd with every command mocked: exact argv, dry-run, refusals."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_subprocess import FakeProcess

from blankslate import disk, hostkeys, install, layout, nix, passwd, plan, plansource, process
from blankslate.errors import BlankslateError

from ..support.mounts import FINDMNT as FINDMNT_ALL
from ..support.plans import boot_plan_data


@pytest.fixture
def example() -> plan.Plan:
    return plansource.default()


@pytest.fixture(autouse=True)
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "state" / "mounted.json"
    monkeypatch.setattr(layout, "STATE_FILE", path)
    yield path


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(process, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(layout, "can_mount_esp", lambda: True)


@pytest.mark.parametrize(
    ("device", "first", "third"),
    [
        ("/dev/vda", "/dev/vda1", "/dev/vda3"),
        ("/dev/sda", "/dev/sda1", "/dev/sda3"),
        ("/dev/nvme0n1", "/dev/nvme0n1p1", "/dev/nvme0n1p3"),
        ("/dev/mmcblk0", "/dev/mmcblk0p1", "/dev/mmcblk0p3"),
        ("/dev/loop7", "/dev/loop7p1", "/dev/loop7p3"),
        ("/dev/disk/by-id/ata-X_123", "/dev/disk/by-id/ata-X_123-part1", None),
    ],
)
def test_partition_names(device: str, first: str, third: str | None) -> None:
    assert disk.partition_path(device, 1) == first
    if third:
        assert disk.partition_path(device, 3) == third


def test_partitions_without_swap(example: plan.Plan) -> None:
    data = example.to_json()
    del data["disk"]["partitions"][1]  # as Nix leaves it out for a zero swapSize
    parts = layout.partitions(plan.from_json(data), "/dev/sda")
    assert (parts.of("vfat"), parts.swap, parts.main) == ("/dev/sda1", None, "/dev/sda2")
    assert parts.source("/dev/disk/by-label/nixos") == "/dev/sda2"
    assert parts.source("rpool/nix") == "rpool/nix"


def test_builders_exact_argv(example: plan.Plan) -> None:
    assert example.disk is not None
    partitions = [
        disk.GptPartition(part.size_bytes, part.type, part.name) for part in example.disk.partitions
    ]
    gpt = disk.sgdisk_layout("/dev/vda", partitions)
    assert gpt == [
        "sgdisk", "--clear",
        "--new=1:0:+1048576K", "--typecode=1:ef00", "--change-name=1:ESP",
        "--new=2:0:+8388608K", "--typecode=2:8200", "--change-name=2:swap",
        "--new=3:0:0", "--typecode=3:8300", "--change-name=3:nixos",
        "/dev/vda",
    ]  # fmt: skip
    assert disk.mkfs_vfat("/dev/vda1", label="BOOT") == [
        "mkfs.vfat", "-F", "32", "-n", "BOOT", "/dev/vda1"
    ]  # fmt: skip
    assert disk.mkswap("/dev/vda2", label="swap") == ["mkswap", "--label", "swap", "/dev/vda2"]
    assert disk.losetup_attach(Path("/i/a b.img")) == [
        "losetup", "--find", "--partscan", "--show", "/i/a b.img"
    ]  # fmt: skip
    assert hostkeys.ssh_keygen(Path("/mnt/k"), "ed25519", "root@h") == [
        "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@h", "-f", "/mnt/k"
    ]  # fmt: skip
    assert hostkeys.host_key_command(example, Path("/mnt/persist/etc/ssh/ssh_host_rsa_key")) == [
        "ssh-keygen", "-q", "-t", "rsa", "-b", "4096", "-N", "", "-C", "root@example",
        "-f", "/mnt/persist/etc/ssh/ssh_host_rsa_key",
    ]  # fmt: skip
    assert nix.nixos_install(Path("/mnt"), ".", "web") == [
        "nixos-install", "--root", "/mnt", "--flake", ".#web", "--no-root-passwd"
    ]  # fmt: skip
    assert passwd.mkpasswd("yescrypt") == ["mkpasswd", "--method=yescrypt", "--stdin"]


def test_planned_mounts_parents_first(example: plan.Plan) -> None:
    mounts = layout.planned_mounts(example, layout.partitions(example, "/dev/vda"))
    targets = [mount.target for mount in mounts]
    assert targets[0] == "/"
    assert targets.index("/var/log") > targets.index("/")
    root = mounts[0]
    assert (root.source, root.fstype, root.options) == (
        "/dev/vda3", "btrfs", ("subvol=root", "compress=zstd", "noatime")
    )  # fmt: skip
    assert ("/boot", "/dev/vda1", "vfat") in [(m.target, m.source, m.fstype) for m in mounts]


def _lsblk(fp: FakeProcess, device: str, row: dict[str, object]) -> None:
    fp.register(disk.lsblk(device), stdout=json.dumps({"blockdevices": [row]}))


def _fake_block_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk, "check_block_device", lambda path: None)
    monkeypatch.setattr(disk, "SYS_BLOCK", Path("/nonexistent/sys/class/block"))
    monkeypatch.setattr(disk, "held_exclusively", lambda path: False)


def test_partition_given_as_disk_is_refused(
    fp: FakeProcess, example: plan.Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_block_device(monkeypatch)
    _lsblk(fp, "/dev/vda1", {"path": "/dev/vda1", "type": "part", "size": 1 << 40})
    with pytest.raises(BlankslateError, match=r"^/dev/vda1 is a part, not a whole disk"):
        install.check_device(example, "/dev/vda1", wipe=False)


def test_mounted_disk_is_refused(
    fp: FakeProcess, example: plan.Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_block_device(monkeypatch)
    child = {"path": "/dev/vda3", "type": "part", "size": 1 << 39, "mountpoints": ["/srv"]}
    _lsblk(
        fp, "/dev/vda", {"path": "/dev/vda", "type": "disk", "size": 1 << 40, "children": [child]}
    )
    with pytest.raises(BlankslateError, match=r"/dev/vda is in use \(/srv\)"):
        install.check_device(example, "/dev/vda", wipe=False)


def test_disk_held_by_device_mapper_is_refused(
    fp: FakeProcess, example: plan.Plan, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No mountpoint, no signature, but a dm target sits on the partition: never write."""
    _fake_block_device(monkeypatch)
    sys_block = tmp_path / "sys"
    (sys_block / "vda3/holders/dm-0").mkdir(parents=True)
    (sys_block / "dm-0/dm").mkdir(parents=True)
    (sys_block / "dm-0/dm/name").write_text("crypted\n")
    monkeypatch.setattr(disk, "SYS_BLOCK", sys_block)
    child = {"path": "/dev/vda3", "type": "part", "size": 1 << 39}
    _lsblk(
        fp, "/dev/vda", {"path": "/dev/vda", "type": "disk", "size": 1 << 40, "children": [child]}
    )
    with pytest.raises(
        BlankslateError, match=r"^/dev/vda is in use \(/dev/vda3 held by dm-0 \(crypted\)\)"
    ):
        install.check_device(example, "/dev/vda", wipe=True)


def test_disk_opened_exclusively_is_refused(
    fp: FakeProcess, example: plan.Plan, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A member of a mounted multi-device btrfs, an md array, a VM's disk: O_EXCL says EBUSY."""
    monkeypatch.setattr(disk, "check_block_device", lambda path: None)
    monkeypatch.setattr(disk, "SYS_BLOCK", tmp_path)  # no holders
    opened: list[tuple[str, int]] = []

    def fake_open(path: str, flags: int, *args: object) -> int:
        opened.append((path, flags))
        raise OSError(errno.EBUSY, "Device or resource busy", path)

    monkeypatch.setattr(os, "open", fake_open)
    _lsblk(fp, "/dev/vdb", {"path": "/dev/vdb", "type": "disk", "size": 1 << 40})
    with pytest.raises(
        BlankslateError, match=r"^/dev/vdb is in use \(/dev/vdb opened exclusively by another"
    ):
        install.check_device(example, "/dev/vdb", wipe=True)
    assert opened == [("/dev/vdb", os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)]


def test_small_disk_is_refused(
    fp: FakeProcess, example: plan.Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_block_device(monkeypatch)
    _lsblk(fp, "/dev/vda", {"path": "/dev/vda", "type": "disk", "size": 10 << 30})
    with pytest.raises(BlankslateError, match=r"too small: 10240 MiB, the plan needs 13312 MiB"):
        install.check_device(example, "/dev/vda", wipe=False)


def test_disk_with_data_needs_wipe(
    fp: FakeProcess, example: plan.Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_block_device(monkeypatch)
    for _ in range(2):
        _lsblk(fp, "/dev/sda", {"path": "/dev/sda", "type": "disk", "size": 1 << 40})
    signature = {"signatures": [{"device": "sda", "type": "gpt"}]}
    fp.register(disk.wipefs_probe("/dev/sda"), stdout=json.dumps(signature), occurrences=2)
    with pytest.raises(
        BlankslateError, match=r"holds data \(gpt on /dev/sda\); add --wipe .*mount"
    ):
        install.check_device(example, "/dev/sda", wipe=False)
    install.check_device(example, "/dev/sda", wipe=True)


def test_missing_device() -> None:
    with pytest.raises(BlankslateError, match=r"^/dev/nope: no such device$"):
        disk.probe("/dev/nope")


def test_plan_without_disk_is_refused(example: plan.Plan) -> None:
    data = {**example.to_json(), "rollback": "none", "disk": None, "btrfs": None}
    with pytest.raises(BlankslateError, match="has no disk section"):
        install.install(plan.from_json(data), install.InstallOptions(image=Path("/tmp/x.img")))


def test_non_root_is_refused(example: plan.Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(BlankslateError, match="run as root"):
        install.install(example, install.InstallOptions(image=Path("/tmp/x.img")))


def test_missing_tool_is_refused(
    example: plan.Plan, as_root: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "which", lambda name: None if name == "sgdisk" else "/bin/x")
    with pytest.raises(BlankslateError, match="missing tool: sgdisk"):
        install.install(example, install.InstallOptions(image=Path("/tmp/x.img")))


def test_image_in_missing_directory(fp: FakeProcess, example: plan.Plan, as_root: None) -> None:
    fp.register(FINDMNT_ALL, stdout='{"filesystems": []}')
    options = install.InstallOptions(
        image=Path("/no/such/dir/x.img"), root=Path("/tmp/target"), passwords=False
    )
    with pytest.raises(BlankslateError, match=r"directory /no/such/dir does not exist"):
        install.install(example, options)


def test_dry_run_on_a_new_image_changes_nothing(
    fp: FakeProcess, example: plan.Plan, as_root: None, tmp_path: Path, state_file: Path
) -> None:
    fp.register(FINDMNT_ALL, stdout='{"filesystems": []}')
    image = tmp_path / "disk image.img"
    target = tmp_path / "target"
    summary = install.install(
        example,
        install.InstallOptions(image=image, root=target, nixos_install=False, dry_run=True),
    )
    assert not image.exists() and not target.exists() and not state_file.exists()
    assert summary.device == install.DRY_RUN_LOOP
    assert [m.target for m in summary.mounts] == [m.mount_point for m in example.mounts]
    assert len(fp.calls) == 1  # only the read-only findmnt probe ran


def test_dry_run_on_an_existing_image_runs_the_checks_on_a_read_only_probe(
    fp: FakeProcess,
    example: plan.Plan,
    as_root: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the real run refuses (data without --wipe), the dry run refuses too."""
    _fake_block_device(monkeypatch)
    image = tmp_path / "disk.img"
    image.write_bytes(b"")
    fp.register(FINDMNT_ALL, stdout='{"filesystems": []}')
    fp.register(disk.losetup_find(image), stdout="")
    fp.register(disk.losetup_attach_readonly(image), stdout="/dev/loop9\n")
    _lsblk(fp, "/dev/loop9", {"path": "/dev/loop9", "type": "loop", "size": 1 << 40})
    signature = {"signatures": [{"device": "loop9", "type": "btrfs"}]}
    fp.register(disk.wipefs_probe("/dev/loop9"), stdout=json.dumps(signature))
    fp.register(disk.losetup_detach("/dev/loop9"))
    options = install.InstallOptions(
        image=image, root=tmp_path / "t", passwords=False, dry_run=True
    )
    with pytest.raises(BlankslateError, match=r"^/dev/loop9 already holds data \(btrfs on"):
        install.install(example, options)
    assert disk.losetup_attach_readonly(image) == [
        "losetup", "--find", "--read-only", "--partscan", "--show", str(image)
    ]  # fmt: skip
    assert list(fp.calls)[-1] == ["losetup", "--detach", "/dev/loop9"]


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_new_image_too_small_is_refused_before_it_is_made(
    dry_run: bool, fp: FakeProcess, example: plan.Plan, as_root: None, tmp_path: Path
) -> None:
    fp.register(FINDMNT_ALL, stdout='{"filesystems": []}')
    image = tmp_path / "small.img"
    options = install.InstallOptions(
        image=image, image_size="10G", root=tmp_path / "t", passwords=False, dry_run=dry_run
    )
    with pytest.raises(BlankslateError, match=r"^--image-size 10G is too small: .* 13312 MiB"):
        install.install(example, options)
    assert not image.exists()


def test_typed_confirmation_must_match(monkeypatch: pytest.MonkeyPatch) -> None:
    from blankslate import ui

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("sys.stdin.readline", lambda: "/dev/vdb\n")
    with pytest.raises(BlankslateError, match="you typed '/dev/vdb', not '/dev/vda'; nothing"):
        ui.confirm_by_typing("/dev/vda", "Type /dev/vda: ")
    monkeypatch.setattr("sys.stdin.readline", lambda: "/dev/vda\n")
    ui.confirm_by_typing("/dev/vda", "Type /dev/vda: ")


def test_no_terminal_means_no_consent(monkeypatch: pytest.MonkeyPatch) -> None:
    from blankslate import ui

    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(BlankslateError, match="no terminal to confirm on; nothing written"):
        ui.confirm_by_typing("/dev/vda", "")


@pytest.mark.root
def test_passwd_hashes_via_stdin_and_writes_0600(
    fp: FakeProcess, example: plan.Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(os, "fchown", lambda fd, uid, gid: None)
    monkeypatch.setattr("sys.stdin.readline", lambda: "correct horse\n")
    fp.register(
        passwd.mkpasswd("yescrypt"),
        stdout="$y$j9T$AesRXvEZFH9m11FlIetcd/$vdHXKBQUDpFrS6IftMMy.FlHEnk8I98tromf8rcv2m9\n",
    )
    (tmp_path / "persist").mkdir()
    rows = [
        {"target": f"{tmp_path}/persist", "source": "/dev/vda3", "fstype": "btrfs", "options": ""}
    ]
    fp.register(
        FINDMNT_ALL,
        stdout=json.dumps({"filesystems": rows}),
    )
    target = passwd.target_path(example, "admin", tmp_path, None)
    passwd.set_password(example, "admin", target, method="yescrypt", from_stdin=True)
    assert target == tmp_path / "persist/passwords/admin"
    assert (
        target.read_text()
        == "$y$j9T$AesRXvEZFH9m11FlIetcd/$vdHXKBQUDpFrS6IftMMy.FlHEnk8I98tromf8rcv2m9\n"
    )
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.parent.stat().st_mode & 0o777 == 0o700
    assert fp.calls[-1] == passwd.mkpasswd("yescrypt")  # the password is not in argv
    assert [p.name for p in target.parent.iterdir()] == ["admin"]  # no temporary file left


def test_a_mistyped_password_is_asked_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in the repeat asks again, as passwd(1) does, instead of ending the command."""
    answers = iter(["s3cret", "s3cert", "s3cret", "s3cret"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert passwd.read_password(from_stdin=False) == "s3cret"
    assert "do not match; again" in capsys.readouterr().err


def test_extra_files_without_a_terminal_names_what_it_has(
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Not the --stdin extra-files does not have: --no-passwords, then passwd --output."""
    monkeypatch.setattr(os, "isatty", lambda fd: False)
    data = json.loads(plansource.default_text())
    data["users"][0]["authorizedKeys"] = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ3 me@laptop"]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(data))
    assert run_cli("extra-files", str(tmp_path / "tree"), "--plan", str(plan_file)) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: no terminal to ask for passwords: add --no-passwords")
    assert "passwd USER --output FILE --stdin" in err and not (tmp_path / "tree").exists()


def test_passwd_refusals(
    fp: FakeProcess, example: plan.Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(BlankslateError, match="user 'mallory' is not in the plan"):
        passwd.target_path(example, "mallory", tmp_path, None)
    monkeypatch.setattr("sys.stdin.readline", lambda: "\n")
    with pytest.raises(BlankslateError, match="empty password refused; nothing written"):
        passwd.set_password(example, "admin", tmp_path / "f", method="yescrypt", from_stdin=True)
    answers = iter(["one", "two"] * 3)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    with pytest.raises(BlankslateError, match="did not match 3 times; nothing written"):
        passwd.set_password(example, "admin", tmp_path / "f", method="yescrypt", from_stdin=False)
    assert not (tmp_path / "f").exists()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(BlankslateError, match="run as root"):
        passwd.set_password(example, "admin", tmp_path / "f", method="yescrypt", from_stdin=True)


def _row(target: str, source: str, fstype: str = "btrfs") -> dict[str, str]:
    return {"target": target, "source": source, "fstype": fstype, "options": "rw"}


@pytest.fixture
def image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An image attached to /dev/loop3 as sysfs tells it (a fake /sys/class/block)."""
    path = tmp_path / "disk.img"
    path.write_bytes(b"")
    sys_block = tmp_path / "sys"
    (sys_block / "loop3/loop").mkdir(parents=True)
    (sys_block / "loop3/loop/backing_file").write_text(f"{path}\n")
    monkeypatch.setattr(disk, "SYS_BLOCK", sys_block)
    return path


def _record_install(target: Path, image: Path) -> None:
    layout.remember(target, loop=layout.LoopRecord.of("/dev/loop3", image), swap=None)
    for where, source in (
        ("", "/dev/loop3p3"),
        ("/nix", "/dev/loop3p3"),
        ("/var/log", "/dev/loop3p3"),
    ):
        layout.remember_mount(target, layout.MountRecord(f"{target}{where}", source, "btrfs"))
    layout.remember_swap(target, "/dev/vda2")


@pytest.mark.root
def test_unmount_deepest_first_then_swap_and_loop(
    fp: FakeProcess, tmp_path: Path, image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "mnt"
    _record_install(target, image)
    rows = [
        _row("/", "/dev/vda", "ext4"),
        _row(str(target), "/dev/loop3p3[/root]"),
        _row(f"{target}/var/log", "/dev/loop3p3[/log]"),
        _row(f"{target}/nix", "/dev/loop3p3[/nix]"),
        _row(f"{target}-other", "/dev/x"),
    ]
    fp.register(FINDMNT_ALL, stdout=json.dumps({"filesystems": rows}))
    for path in (f"{target}/var/log", f"{target}/nix", str(target)):
        fp.register(["umount", "--", path])
    fp.register(["swapoff", "/dev/vda2"])
    fp.register(["losetup", "--detach", "/dev/loop3"])
    monkeypatch.setattr(disk, "active_swaps", lambda: ["/dev/vda2"])
    assert install.unmount(target) == [f"{target}/var/log", f"{target}/nix", str(target)]
    assert list(fp.calls)[-2:] == [["swapoff", "/dev/vda2"], ["losetup", "--detach", "/dev/loop3"]]
    assert layout.recorded(target) is None


@pytest.mark.root
def test_the_record_names_sources_and_the_loops_backing_file(
    tmp_path: Path, image: Path, state_file: Path
) -> None:
    target = tmp_path / "mnt"
    _record_install(target, image)
    info = image.stat()
    entry = json.loads(state_file.read_text())[str(target)]
    assert entry["loop"] == {
        "device": "/dev/loop3", "backing_file": str(image),
        "st_dev": info.st_dev, "st_ino": info.st_ino,
    }  # fmt: skip
    assert entry["mounts"][1] == {
        "target": f"{target}/nix",
        "source": "/dev/loop3p3",
        "fstype": "btrfs",
        "pending": False,  # made: no longer only recorded before its mount command
    }
    assert entry["swap"] == "/dev/vda2"
    lock = state_file.with_name("mounted.lock")
    assert lock.exists() and lock.stat().st_mode & 0o777 == 0o600


@pytest.mark.root
def test_a_stale_record_never_detaches_a_reused_loop_device(
    fp: FakeProcess, tmp_path: Path, image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Loop numbers are reused: /dev/loop3 now backs another image; its mounts are not ours."""
    target = tmp_path / "mnt"
    _record_install(target, image)
    (disk.SYS_BLOCK / "loop3/loop/backing_file").write_text("/srv/vm/other.img\n")
    rows = [_row(str(target), "/dev/loop3p3[/root]")]
    fp.register(FINDMNT_ALL, stdout=json.dumps({"filesystems": rows}))
    assert install.unmount(target) == []
    assert list(fp.calls) == [FINDMNT_ALL]  # neither umount nor losetup --detach
    err = capsys.readouterr().err
    assert "warning: /dev/loop3 now backs /srv/vm/other.img" in err
    assert f"warning: {target} is on /dev/loop3, not the recorded image: left alone" in err


@pytest.mark.root
def test_a_replaced_image_is_not_the_recorded_one(
    fp: FakeProcess, tmp_path: Path, image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mnt"
    _record_install(target, image)
    (tmp_path / "new.img").write_bytes(b"new")
    os.replace(tmp_path / "new.img", image)  # same path, another file (made first: a new inode)
    fp.register(FINDMNT_ALL, stdout=json.dumps({"filesystems": []}))
    assert install.unmount(target) == []
    err = capsys.readouterr().err
    assert "no longer mounted" in err and f"not the recorded {image}" in err
    assert layout.recorded(target) is None


@pytest.mark.root
def test_unmount_leaves_what_it_did_not_mount(fp: FakeProcess, tmp_path: Path, image: Path) -> None:
    """Someone else's mount below the layout: refused before anything is unmounted."""
    target = tmp_path / "mnt"
    _record_install(target, image)
    rows = [
        _row(str(target), "/dev/loop3p3[/root]"),
        _row(f"{target}/nix", "/dev/loop3p3[/nix]"),
        _row(f"{target}/srv/data", "/dev/sdb1", "ext4"),
    ]
    fp.register(FINDMNT_ALL, stdout=json.dumps({"filesystems": rows}))
    with pytest.raises(
        BlankslateError,
        match=rf"^{target}/srv/data is mounted below {target} and blankslate did not",
    ):
        install.unmount(target)
    assert list(fp.calls) == [FINDMNT_ALL]
    assert layout.recorded(target) is not None


@pytest.mark.root
def test_unmount_refuses_root_and_what_it_has_no_record_of(tmp_path: Path) -> None:
    with pytest.raises(BlankslateError, match=r"^refusing to unmount /"):
        install.unmount(Path("/"))
    with pytest.raises(BlankslateError, match=rf"^nothing recorded at {tmp_path}/else: "):
        install.unmount(tmp_path / "else")


@pytest.fixture
def zfs_plan(host_plan_data: Any) -> plan.Plan:
    return plan.from_json(host_plan_data("zfs"))


def test_zfs_layout_commands(fp: FakeProcess, zfs_plan: plan.Plan) -> None:
    parts = layout.partitions(zfs_plan, "/dev/nvme0n1")
    expected = [
        ["mkfs.vfat", "-F", "32", "-n", "BOOT", "/dev/nvme0n1p1"],
        ["mkswap", "--label", "swap", "/dev/nvme0n1p2"],
        ["zpool", "create", "-f", "-o", "ashift=12", "-O", "compression=zstd",
         "-O", "acltype=posixacl", "-O", "xattr=sa", "-O", "mountpoint=legacy",
         "rpool", "/dev/nvme0n1p3"],
        ["zfs", "create", "-p", "rpool/local/root"],
        ["zfs", "create", "-p", "rpool/local/nix"],
        ["zfs", "create", "-p", "rpool/safe/persist"],
        ["zfs", "create", "-p", "rpool/safe/log"],
        ["zfs", "create", "-p", "rpool/safe/home"],
        ["zfs", "snapshot", "rpool/local/root@blank"],
    ]  # fmt: skip
    for command in expected:
        fp.register(command)
    layout.create_filesystems(zfs_plan, parts, dry_run=False)
    layout.create_volumes(zfs_plan, parts, dry_run=False)
    assert list(fp.calls) == expected
    mounts = layout.planned_mounts(zfs_plan, parts)
    assert [(m.source, m.target, m.fstype) for m in mounts] == [
        ("rpool/local/root", "/", "zfs"),
        ("/dev/nvme0n1p1", "/boot", "vfat"),
        ("rpool/safe/home", "/home", "zfs"),
        ("rpool/local/nix", "/nix", "zfs"),
        ("rpool/safe/persist", "/persist", "zfs"),
        ("rpool/safe/log", "/var/log", "zfs"),
    ]


def test_zfs_mount_names_what_is_missing(fp: FakeProcess, zfs_plan: plan.Plan) -> None:
    parts = layout.partitions(zfs_plan, "/dev/vda")
    for name in ("rpool/local/root", "rpool/local/nix", "rpool/safe/log", "rpool/safe/home"):
        fp.register(["zfs", "list", "-H", "-o", "name", name], stdout=name)
    fp.register(["zfs", "list", "-H", "-o", "name", "rpool/safe/persist"], returncode=1)
    blank = ["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "rpool/local/root@blank"]
    fp.register(blank, returncode=1)
    assert layout.missing_volumes(zfs_plan, parts) == [
        "rpool/safe/persist",
        "rpool/local/root@blank",
    ]


def test_tmpfs_root_is_mounted_first_and_has_no_blank(host_plan_data: Any) -> None:
    tmpfs_plan = plan.from_json(host_plan_data("tmpfs"))
    mounts = layout.planned_mounts(tmpfs_plan, layout.partitions(tmpfs_plan, "/dev/vda"))
    assert (mounts[0].source, mounts[0].target, mounts[0].fstype) == ("tmpfs", "/", "tmpfs")
    assert mounts[0].options == ("mode=755", "size=2G")
    assert all(m.options[:1] != ("subvol=root",) for m in mounts)


def test_a_temporary_mount_is_undone_whatever_ends_it(fp: FakeProcess) -> None:
    """Ctrl-C in the body; umount busy: a lazy unmount, and never a delete into the mount."""
    from blankslate import mounts

    fp.register(["mount", "-t", "btrfs", "-o", "subvolid=5,rw", "--", "/dev/vda3", fp.any()])
    fp.register(["umount", "--", fp.any()], returncode=32, stderr="target is busy")
    fp.register(["umount", "-l", "--", fp.any()])
    with pytest.raises(KeyboardInterrupt), mounts.top_level("/dev/vda3", readonly=False) as top:
        raise KeyboardInterrupt
    assert fp.calls[-1] == ["umount", "-l", "--", str(top)]
    assert not top.exists()


# --- GRUB goes to the disk that was laid out ---------------------------------------------------


def boot_plan(boot: str, device: str | None = "/dev/vda") -> plan.Plan:
    """The example host's plan booted by `boot`, as Nix evaluates it (tests/plans/bios.json,
    hybrid.json), on disk `device`."""
    data = boot_plan_data(boot)
    data["disk"]["device"] = device
    return plan.from_json(data)


@pytest.mark.parametrize(
    ("boot", "layout"),
    [
        ("bios", [("bios", "ef02"), ("boot", "8300"), ("swap", "8200"), ("nixos", "8300")]),
        ("hybrid", [("bios", "ef02"), ("ESP", "ef00"), ("swap", "8200"), ("nixos", "8300")]),
    ],
)
def test_the_boot_plans_here_are_the_ones_nix_evaluates(
    boot: str, layout: list[tuple[str, str]]
) -> None:
    """A bios disk boots from a plain /boot partition (8300), not an ESP: the plans these tests
    install are tests/plans/<boot>.json, which tests/nix/test_plan_fixtures.py proves."""
    planned = boot_plan(boot)
    assert planned.disk is not None
    assert [(p.name, p.type) for p in planned.disk.partitions] == layout
    fixture = Path(__file__).resolve().parents[1] / "plans" / f"{boot}.json"
    assert planned.to_json() == plan.from_json(json.loads(fixture.read_text())).to_json()


@pytest.mark.parametrize("dry_run", [True, False])
@pytest.mark.parametrize("boot", ["bios", "hybrid"])
def test_a_bios_plan_refuses_another_disk_before_anything(
    boot: str, dry_run: bool, fp: FakeProcess, tmp_path: Path
) -> None:
    """nixos-install would put GRUB on the plan's /dev/vda while the layout went to /dev/sdb."""
    options = install.InstallOptions(
        disk="/dev/sdb", root=tmp_path / "t", passwords=False, dry_run=dry_run
    )
    with pytest.raises(BlankslateError) as raised:
        install.install(boot_plan(boot), options)
    assert str(raised.value) == (
        "--disk /dev/sdb is not the plan's disk.device /dev/vda, where nixos-install puts GRUB "
        f"(disk.boot = {boot!r}): set blankslate.disk.device to this disk, or give that one"
    )
    assert list(fp.calls) == []  # not even a probe
    assert not (tmp_path / "t").exists()


def test_a_bios_plan_takes_its_disk_by_any_link(tmp_path: Path) -> None:
    """/dev/disk/by-id/... and the kernel's name are the same disk; another disk is not."""
    (tmp_path / "sda").touch()
    (tmp_path / "sdb").touch()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "ata-DISK_1").symlink_to("../sda")
    named, linked = str(tmp_path / "sda"), str(by_id / "ata-DISK_1")
    for planned, given in ((named, linked), (linked, named), (linked, linked)):
        install.check_boot_disk(boot_plan("bios", planned), install.InstallOptions(disk=given))
    with pytest.raises(BlankslateError, match=rf"^--disk {tmp_path}/sdb is not the plan's disk"):
        install.check_boot_disk(
            boot_plan("hybrid", linked), install.InstallOptions(disk=str(tmp_path / "sdb"))
        )
    with pytest.raises(BlankslateError, match=rf"disk.device {linked} \({named}\), where"):
        install.check_boot_disk(boot_plan("bios", linked), install.InstallOptions(disk="/dev/x"))
    with pytest.raises(BlankslateError, match=r"the plan has no disk.device, so install cannot"):
        install.check_boot_disk(boot_plan("bios", None), install.InstallOptions(disk="/dev/x"))
    # uefi: GRUB (if any) goes to the ESP of the disk laid out; an image needs no match
    install.check_boot_disk(boot_plan("uefi"), install.InstallOptions(disk="/dev/sdb"))
    install.check_boot_disk(boot_plan("bios"), install.InstallOptions(image=tmp_path / "i.img"))


@pytest.mark.parametrize(
    ("boot", "bootloader"), [("bios", False), ("hybrid", False), ("uefi", True)]
)
def test_an_image_of_a_bios_plan_gets_no_boot_loader_here(
    boot: str,
    bootloader: bool,
    fp: FakeProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(process, "which", lambda name: f"/usr/bin/{name}")
    seeded: list[Path] = []
    monkeypatch.setattr(install, "seed_installed", lambda p, root, dry_run: seeded.append(root))
    options = install.InstallOptions(
        image=tmp_path / "vm.img",
        root=Path("/mnt"),
        source=plansource.PlanSource(
            host="web", flake=str(tmp_path)
        ),  # no hosts/web: no hardware.nix
    )
    command = [
        "nixos-install", "--root", "/mnt", "--flake", f"{tmp_path}#web", "--no-root-passwd",
        *([] if bootloader else ["--no-bootloader"]),
    ]  # fmt: skip
    fp.register(command)
    summary = install.Summary("/dev/loop3")
    install.finish(boot_plan(boot), options, summary)
    assert list(fp.calls) == [command]
    assert seeded == [Path("/mnt")]
    later = [step for step in summary.next_steps if "NIXOS_INSTALL_BOOTLOADER=1" in step]
    if bootloader:
        assert later == [] and "--no-bootloader" not in capsys.readouterr().err
        return
    assert later == [
        "on the target, with this image written to /dev/vda and mounted on /mnt (`blankslate "
        "mount --disk /dev/vda --root /mnt`): `nixos-enter --root /mnt -c "
        "'NIXOS_INSTALL_BOOTLOADER=1 /nix/var/nix/profiles/system/bin/switch-to-configuration "
        "boot'` installs GRUB (nixos-install's own last step)"
    ]
    assert "GRUB would go to /dev/vda here, so nixos-install runs with --no-bootloader" in (
        capsys.readouterr().err.replace("\n", " ")
    )


# --- the first build sees hardware.nix; install seeds what nixos-install wrote --------------------


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "hosts/web").mkdir(parents=True)
    monkeypatch.setattr(process, "which", lambda name: f"/usr/bin/{name}")
    return tmp_path


HARDWARE = "hosts/web/hardware.nix"


@pytest.mark.parametrize("dry_run", [True, False])
def test_an_untracked_hardware_config_is_added_with_intent_to_add(
    dry_run: bool, fp: FakeProcess, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fp.register(nix.nixos_generate_config(Path("/mnt")), stdout="{ }\n")
    fp.register(install.git_toplevel(checkout), stdout=f"{checkout}\n")
    fp.register(install.git_ls_files(checkout, HARDWARE), stdout="")
    fp.register(install.git_add_intent(checkout, HARDWARE))
    assert install.write_hardware_config(str(checkout), "web", Path("/mnt"), dry_run=dry_run) == (
        HARDWARE
    )
    install.show_to_flake(checkout, HARDWARE, dry_run=dry_run)
    assert install.git_add_intent(checkout, HARDWARE) == [
        "git", "-C", str(checkout), "add", "--intent-to-add", "--", "hosts/web/hardware.nix"
    ]  # fmt: skip
    ran = [install.git_toplevel(checkout), install.git_ls_files(checkout, HARDWARE)]
    if dry_run:
        assert list(fp.calls) == ran  # the probes run, the writes do not
        assert not (checkout / HARDWARE).exists()
    else:
        assert list(fp.calls) == [nix.nixos_generate_config(Path("/mnt")), *ran, fp.calls[-1]]
        assert fp.calls[-1] == install.git_add_intent(checkout, HARDWARE)
        assert (checkout / HARDWARE).read_text() == "{ }\n"
    assert "Added hosts/web/hardware.nix to git with --intent-to-add" in capsys.readouterr().err


def test_a_tracked_or_plain_hardware_config_is_left_alone(
    fp: FakeProcess, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (checkout / HARDWARE).write_text("{ }\n")  # there already: not generated again
    assert install.write_hardware_config(str(checkout), "web", Path("/mnt"), dry_run=False) == (
        HARDWARE
    )
    fp.register(install.git_toplevel(checkout), stdout=f"{checkout}\n")
    fp.register(install.git_ls_files(checkout, HARDWARE), stdout=f"{HARDWARE}\n")
    install.show_to_flake(checkout, HARDWARE, dry_run=False)
    assert "is tracked by git: the build sees it" in capsys.readouterr().err
    fp.register(
        install.git_toplevel(checkout), returncode=128, stderr="fatal: not a git repository\n"
    )
    install.show_to_flake(checkout, HARDWARE, dry_run=False)  # a path: flake sees every file
    assert list(fp.calls)[-1] == install.git_toplevel(checkout)


def test_a_checkout_git_cannot_read_is_one_line(fp: FakeProcess, checkout: Path) -> None:
    fp.register(
        install.git_toplevel(checkout),
        returncode=128,
        stderr=f"fatal: detected dubious ownership in repository at '{checkout}'\nTo add...\n",
    )
    with pytest.raises(BlankslateError) as raised:
        install.show_to_flake(checkout, HARDWARE, dry_run=False)
    assert str(raised.value) == (
        f"git cannot read {checkout}, so the build may not see {HARDWARE}: "
        f"fatal: detected dubious ownership in repository at '{checkout}'"
    )


def test_install_dry_run_only_lists_what_it_would_seed(
    fp: FakeProcess, checkout: Path, capsys: pytest.CaptureFixture[str], example: plan.Plan
) -> None:
    (checkout / HARDWARE).write_text("{ }\n")
    fp.register(install.git_toplevel(checkout), stdout=f"{checkout}\n")
    fp.register(install.git_ls_files(checkout, HARDWARE), stdout=f"{HARDWARE}\n")
    options = install.InstallOptions(
        image=checkout / "vm.img",
        root=checkout / "mnt",
        dry_run=True,
        source=plansource.PlanSource(host="web", flake=str(checkout)),
    )
    install.finish(example, options, install.Summary(install.DRY_RUN_LOOP))
    err = capsys.readouterr().err.replace("\n", " ")
    assert (
        f"After nixos-install, would copy into {checkout}/mnt/persist what it wrote under the "
        "persisted paths (/etc/machine-id, /var/lib/blankslate, /var/lib/dhcpcd, "
        "/var/lib/nixos, /var/lib/systemd)." in err
    )
    assert not (checkout / "mnt").exists()
    assert list(fp.calls)[-1] == install.git_ls_files(checkout, HARDWARE)  # nothing else ran


def test_unmount_as_another_user_is_the_one_run_as_root_line(
    monkeypatch: pytest.MonkeyPatch, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a lock error on /run/blankslate: the same line every root-only command gives."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert run_cli("unmount", "--root", "/tmp/nowhere") == 1
    assert (
        capsys.readouterr().err.strip().splitlines()[-1]
        == "error: run as root (unmounting needs it)"
    )
