"""`blankslate install` for real: a sparse image, a loop device, the kernel's btrfs, real tools."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from blankslate import install as install_module
from blankslate import layout, plan, plansource
from blankslate.errors import BlankslateError

from ..support.loops import attached_loops, detach_loops, take_down
from ..support.plans import btrfs_storage
from ..support.runner import quiet_blankslate as blankslate

PLAN = plansource.default()


def mount_table(mountpoint: Path) -> dict[str, tuple[str, str]]:
    """target -> (subvolume, options) for every mount at or below `mountpoint`."""
    found = subprocess.run(
        ["findmnt", "--json", "--list", "--output", "TARGET,SOURCE,OPTIONS"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(found.stdout)["filesystems"]
    table = {}
    for row in rows:
        target = row["target"]
        if target == str(mountpoint) or target.startswith(f"{mountpoint}/"):
            subvolume = row["source"].partition("[")[2].rstrip("]")
            table["/" + target[len(str(mountpoint)) :].lstrip("/")] = (subvolume, row["options"])
    return table


@pytest.fixture
def installed(tmp_path: Path, helpers: ModuleType) -> Iterator[tuple[Path, Path]]:
    """The built-in plan installed on a 20 GiB sparse image; always unmounted and detached."""
    image = tmp_path / "disk image.img"
    mountpoint = tmp_path / "target root"
    try:
        result = blankslate(
            "install", "--image", str(image), "--root", str(mountpoint),
            "--yes", "--no-passwords", "--no-nixos-install",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "SSH host keys" in result.stdout
        yield image, mountpoint
    finally:
        take_down(image, mountpoint, helpers)
        assert attached_loops(image) == []
        assert mount_table(mountpoint) == {}


def test_install_lays_out_the_plan(installed: tuple[Path, Path], helpers: ModuleType) -> None:
    image, mountpoint = installed
    btrfs = btrfs_storage(PLAN)
    (loop,) = attached_loops(image)
    printed = helpers.run(["sgdisk", "--print", loop]).stdout.splitlines()
    rows = [line.split() for line in printed if line.strip()[:1].isdigit()]
    # number, start, end, size, unit, code, name: ESP (EF00 = EFI system partition), swap, main
    assert [(row[0], row[5], row[6]) for row in rows] == [
        ("1", "EF00", "ESP"), ("2", "8200", "swap"), ("3", "8300", "nixos")
    ]  # fmt: skip
    assert "GPT: present" in helpers.run(["gdisk", "-l", loop]).stdout

    listed = helpers.run(["btrfs", "subvolume", "list", str(mountpoint)]).stdout.splitlines()
    assert sorted(line.split()[-1] for line in listed) == sorted(
        [*btrfs.subvolumes, btrfs.blank_snapshot]
    )
    with helpers.mount_top_level(f"{loop}p3") as top:
        blank = top / btrfs.blank_snapshot
        assert helpers.run(["btrfs", "property", "get", "-ts", blank, "ro"]).stdout.strip() == (
            "ro=true"
        )
        assert list(blank.iterdir()) == []

    mounted = mount_table(mountpoint)
    btrfs_mounts = [m for m in PLAN.mounts if m.fs_type == "btrfs"]
    assert len(btrfs_mounts) == len(btrfs.subvolumes)
    for mount in btrfs_mounts:
        subvolume, options = mounted[mount.mount_point]
        assert f"subvol={subvolume.lstrip('/')}" == mount.options[0]
        assert "compress=zstd" in options and "noatime" in options
    key = mountpoint / "persist/etc/ssh/ssh_host_ed25519_key"
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.with_suffix(".pub").read_text().startswith("ssh-ed25519 ")


def test_password_file_holds_a_reproducible_yescrypt_hash(installed: tuple[Path, Path]) -> None:
    _, mountpoint = installed
    result = blankslate(
        "passwd", "admin", "--root", str(mountpoint), "--stdin", stdin="s3cret pw\n"
    )
    assert result.returncode == 0, result.stderr
    path = mountpoint / "persist/passwords/admin"
    assert result.stdout.strip() == f"wrote {path} (yescrypt)"
    assert "$y$" not in result.stdout + result.stderr  # the hash is never printed
    info = path.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 0, 0)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    hashed = path.read_text().strip()
    assert hashed.startswith("$y$")
    setting = hashed.rsplit("$", 1)[0]  # "$y$j9T$<salt>": Debian's mkpasswd wants it whole
    again = subprocess.run(
        ["mkpasswd", "--method=yescrypt", "--stdin", "-S", setting],
        input="s3cret pw\n", capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert again.stdout.strip() == hashed


def test_second_install_onto_the_mounted_image_is_refused(installed: tuple[Path, Path]) -> None:
    image, mountpoint = installed
    marker = mountpoint / "persist/keep-me"
    marker.write_text("precious")
    for extra in ([], ["--wipe"]):
        result = blankslate(
            "install", "--image", str(image), "--root", str(image.parent / "elsewhere"),
            "--yes", "--no-passwords", "--no-nixos-install", *extra,
        )  # fmt: skip
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1].startswith("error: /dev/loop")
        assert "is in use" in result.stderr
    assert marker.read_text() == "precious"
    assert len(attached_loops(image)) == 1


def test_unmount_then_mount_gives_the_same_view(installed: tuple[Path, Path]) -> None:
    image, mountpoint = installed
    (mountpoint / "persist/data").write_text("kept")
    before = mount_table(mountpoint)
    result = blankslate("unmount", "--root", str(mountpoint))
    assert result.returncode == 0, result.stderr
    assert mount_table(mountpoint) == {}
    assert attached_loops(image) == []
    result = blankslate("mount", "--image", str(image), "--root", str(mountpoint))
    assert result.returncode == 0, result.stderr
    assert mount_table(mountpoint) == before
    assert (mountpoint / "persist/data").read_text() == "kept"


def test_install_refuses_an_image_with_data_without_wipe(installed: tuple[Path, Path]) -> None:
    image, mountpoint = installed
    assert blankslate("unmount", "--root", str(mountpoint)).returncode == 0
    result = blankslate(
        "install", "--image", str(image), "--root", str(mountpoint),
        "--yes", "--no-passwords", "--no-nixos-install",
    )  # fmt: skip
    assert result.returncode == 1
    assert "already holds data" in result.stderr and "blankslate mount" in result.stderr
    assert attached_loops(image) == []  # the refused run detached what it attached
    assert os.path.getsize(image) == 20 << 30


def first_bytes(device: str, size: int = 1 << 20) -> bytes:
    with open(device, "rb") as handle:
        return handle.read(size)


@pytest.mark.image_size("20GiB")
def test_install_refuses_a_disk_held_exclusively(loop_image: str, tmp_path: Path) -> None:
    """No signature, nothing mounted, but another program holds it (O_EXCL): nothing written."""
    holder = os.open(loop_image, os.O_RDONLY | os.O_EXCL)
    try:
        result = blankslate(
            "install", "--disk", loop_image, "--root", str(tmp_path / "target"),
            "--yes", "--no-passwords", "--no-nixos-install",
        )  # fmt: skip
    finally:
        os.close(holder)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {loop_image} is in use ({loop_image} opened exclusively by another program); "
        "stop what holds it first"
    )
    assert first_bytes(loop_image) == bytes(1 << 20)  # no partition table written


@pytest.mark.image_size("20GiB")
def test_install_wipe_refuses_a_disk_whose_partition_is_held(
    loop_image: str, tmp_path: Path, helpers: ModuleType
) -> None:
    """--wipe erases data, never a partition something else has open exclusively."""
    helpers.run(["sgdisk", "--new=1:0:+64M", "--new=2:0:0", loop_image])
    helpers.run(["partprobe", loop_image])
    before = first_bytes(loop_image)
    holder = os.open(f"{loop_image}p2", os.O_RDONLY | os.O_EXCL)
    try:
        result = blankslate(
            "install", "--disk", loop_image, "--root", str(tmp_path / "target"),
            "--yes", "--no-passwords", "--no-nixos-install", "--wipe",
        )  # fmt: skip
    finally:
        os.close(holder)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {loop_image} is in use ({loop_image}p2 opened exclusively by another program); "
        "stop what holds it first"
    )
    assert first_bytes(loop_image) == before


def dm_available() -> bool:
    return (
        subprocess.run(["dmsetup", "version"], capture_output=True, check=False).returncode == 0
        if shutil.which("dmsetup")
        else False
    )


@pytest.mark.image_size("20GiB")
def test_install_refuses_a_disk_under_device_mapper(
    loop_image: str, tmp_path: Path, helpers: ModuleType
) -> None:
    if not dm_available():
        pytest.skip("no device-mapper in this kernel (dmsetup version fails)")
    name = f"blankslate-itest-{os.getpid()}-{os.urandom(3).hex()}"
    sectors = helpers.run(["blockdev", "--getsz", loop_image]).stdout.strip()
    helpers.run(
        ["dmsetup", "create", "--noudevsync", name, "--table", f"0 {sectors} linear {loop_image} 0"]
    )
    try:
        result = blankslate(
            "install", "--disk", loop_image, "--root", str(tmp_path / "target"),
            "--yes", "--no-passwords", "--no-nixos-install",
        )  # fmt: skip
    finally:
        helpers.run(["dmsetup", "remove", "--noudevsync", name], check=False)
    assert result.returncode == 1, result.stderr
    assert f"{loop_image} held by dm-" in result.stderr and name in result.stderr
    assert first_bytes(loop_image) == bytes(1 << 20)


@pytest.fixture
def image_with_data(tmp_path: Path, helpers: ModuleType) -> Iterator[Path]:
    """A 20 GiB sparse image holding a btrfs filesystem (no partition table)."""
    image = tmp_path / f"{helpers.IMAGE_PREFIX}data.img"
    helpers.run(["truncate", "-s", "20G", image])
    helpers.run(["mkfs.btrfs", "-q", "-L", "data", image])
    try:
        yield image
    finally:
        detach_loops(image)


def test_dry_run_refuses_an_image_with_data_as_the_real_run_does(
    image_with_data: Path, tmp_path: Path
) -> None:
    before = first_bytes(str(image_with_data), 1 << 17)
    args = [
        "install", "--image", str(image_with_data), "--root", str(tmp_path / "target"),
        "--yes", "--no-passwords", "--no-nixos-install",
    ]  # fmt: skip
    dry = blankslate(*args, "--dry-run")
    real = blankslate(*args)
    assert (dry.returncode, real.returncode) == (1, 1), dry.stdout + dry.stderr
    last = real.stderr.strip().splitlines()[-1]
    assert "already holds data (btrfs on /dev/loop" in last

    def loop_named(line: str) -> str:  # each run attaches the image to whichever loop is free
        return re.sub(r"/dev/loop[0-9]+", "/dev/loopN", line.split(" on /dev/loop")[0])

    assert loop_named(dry.stderr.strip().splitlines()[-1]) == loop_named(last)
    assert attached_loops(image_with_data) == []
    assert first_bytes(str(image_with_data), 1 << 17) == before
    wiped = blankslate(*args, "--dry-run", "--wipe")
    assert wiped.returncode == 0, wiped.stderr
    assert "Dry run: nothing was changed." in wiped.stdout
    assert attached_loops(image_with_data) == []
    assert first_bytes(str(image_with_data), 1 << 17) == before


def test_unmount_leaves_a_mount_it_did_not_make(
    installed: tuple[Path, Path], helpers: ModuleType
) -> None:
    _, mountpoint = installed
    theirs = mountpoint / "home/theirs"
    theirs.mkdir()
    helpers.run(["mount", "-t", "tmpfs", "theirs", theirs])
    try:
        result = blankslate("unmount", "--root", str(mountpoint))
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines()[-1] == (
            f"error: {theirs} is mounted below {mountpoint} and blankslate did not mount it: "
            "unmount it first (nothing was unmounted)"
        )
        assert helpers.mounts_under(theirs) == [str(theirs)]
        assert "/persist" in mount_table(mountpoint)
    finally:
        helpers.unmount(theirs)
    assert blankslate("unmount", "--root", str(mountpoint)).returncode == 0
    assert mount_table(mountpoint) == {}


def test_unmount_refuses_a_mountpoint_it_has_no_record_of(
    tmp_path: Path, helpers: ModuleType
) -> None:
    # (`--root /` is refused in the unit tests only: a regression here would try to
    # unmount every filesystem of the machine.)
    elsewhere = tmp_path / "someone else's"
    elsewhere.mkdir()
    helpers.run(["mount", "-t", "tmpfs", "theirs", elsewhere])
    try:
        result = blankslate("unmount", "--root", str(elsewhere))
        assert result.returncode == 1
        assert result.stderr.startswith(f"error: nothing recorded at {elsewhere}")
        assert helpers.mounts_under(elsewhere) == [str(elsewhere)]
    finally:
        helpers.unmount(elsewhere)


@pytest.fixture
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The in-process runs below keep their record apart from /run/blankslate."""
    path = tmp_path / "state" / "mounted.json"
    monkeypatch.setattr(layout, "STATE_FILE", path)
    return path


def install_in_process(image: Path, mountpoint: Path) -> None:
    from blankslate import install

    options = install.InstallOptions(
        image=image, root=mountpoint, assume_yes=True, passwords=False, nixos_install=False
    )
    install.install(PLAN, options)


def test_a_stale_record_does_not_detach_a_reused_loop_device(
    tmp_path: Path, state_file: Path, helpers: ModuleType
) -> None:
    """The layout went away by hand; its loop number now backs an unrelated image."""
    from blankslate import install

    image, mountpoint = tmp_path / f"{helpers.IMAGE_PREFIX}a.img", tmp_path / "target"
    other = tmp_path / f"{helpers.IMAGE_PREFIX}other.img"
    helpers.run(["truncate", "-s", "64M", other])
    reused = None
    try:
        install_in_process(image, mountpoint)
        (loop,) = attached_loops(image)
        helpers.unmount_all_under(mountpoint)
        helpers.run(["losetup", "--detach", loop])
        helpers.run(["losetup", loop, other])  # the same number, another image
        reused = loop
        install.unmount(mountpoint)
        assert attached_loops(other) == [loop]
    finally:
        helpers.unmount_all_under(mountpoint)
        for name in attached_loops(image) + attached_loops(other):
            subprocess.run(["losetup", "--detach", name], check=False)
    assert reused is not None


def _raise(error: BaseException) -> Callable[..., None]:
    def fail(*args: object, **kwargs: object) -> None:
        raise error

    return fail


FAULTS = {
    # inside the temporary top-level mount of step 3
    "snapshot": ("blankslate.btrfs.subvolume_snapshot", None),
    # step 4, after the first mounts of the layout (the 1st mount_cmd is step 3's top level)
    "third mount": ("blankslate.mounts.mount_cmd", 3),
    # step 5, everything mounted
    "host keys": ("blankslate.install.make_host_keys", None),
}


@pytest.mark.parametrize("error", [KeyboardInterrupt(), BlankslateError("injected")], ids=repr)
@pytest.mark.parametrize("fault", FAULTS)
def test_an_interrupted_install_leaves_nothing_behind(
    fault: str,
    error: BaseException,
    tmp_path: Path,
    state_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    helpers: ModuleType,
) -> None:
    from blankslate import install

    image, mountpoint = tmp_path / f"{helpers.IMAGE_PREFIX}run.img", tmp_path / "target"
    where, nth = FAULTS[fault]
    if nth is None:
        monkeypatch.setattr(where, _raise(error))
    else:
        module, name = where.rsplit(".", 1)
        real = getattr(sys.modules[module], name)
        calls = []

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            if len(calls) == nth:
                raise error
            return real(*args, **kwargs)

        monkeypatch.setattr(where, counted)
    targets: list[install.Target] = []
    real_open = install.open_target

    def open_target(*args: Any, **kwargs: Any) -> Any:
        targets.append(real_open(*args, **kwargs))
        return targets[-1]

    monkeypatch.setattr(install, "open_target", open_target)
    try:
        with pytest.raises(type(error)) as raised:
            install_in_process(image, mountpoint)
        (target,) = targets
        assert helpers.mounts_under(mountpoint) == []
        assert [t for t, s in helpers._mountinfo() if s.startswith(target.device)] == []
        assert not image.exists()
        if isinstance(error, BlankslateError):
            assert f"removed {image}" in str(raised.value)
            assert "\n" not in str(raised.value)
        assert json.loads(state_file.read_text()) == {}
    finally:
        helpers.unmount_all_under(mountpoint)
        for target in targets:
            for mounted in helpers.mounts_of(f"{target.device}p3"):
                helpers.unmount(mounted)
            subprocess.run(["losetup", "--detach", target.device], check=False)


def test_mount_warns_when_install_did_not_finish(
    tmp_path: Path, state_file: Path, monkeypatch: pytest.MonkeyPatch, helpers: ModuleType
) -> None:
    """An image given by the user is kept; `mount` then says the host keys are missing."""
    from blankslate import install

    image, mountpoint = tmp_path / f"{helpers.IMAGE_PREFIX}kept.img", tmp_path / "target"
    helpers.run(["truncate", "-s", "20G", image])
    monkeypatch.setattr(install, "make_host_keys", _raise(BlankslateError("injected")))
    try:
        with pytest.raises(BlankslateError) as raised:
            install_in_process(image, mountpoint)
        assert f"{image} holds a partial layout" in str(raised.value)
        assert image.exists() and attached_loops(image) == []
        result = blankslate("mount", "--image", str(image), "--root", str(mountpoint))
        assert result.returncode == 0, result.stderr
        key = mountpoint / "persist/etc/ssh/ssh_host_ed25519_key"
        assert f"warning: install did not finish: no host key {key}" in result.stderr
        assert "ssh-keygen" in result.stderr and "blankslate install" in result.stderr
    finally:
        take_down(image, mountpoint, helpers)


# --- after nixos-install: the build sees hardware.nix; what it wrote is seeded ----------------

GENERATE_CONFIG = """#!/bin/sh
# stand-in nixos-generate-config: the hardware configuration it would print
echo '{ boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" ]; }'
"""

# A stand-in nixos-install: it records its argv and whether the flake it is given lets the
# build see hosts/example/hardware.nix (a git flake: a path git lists; else any file), then
# writes what the real one writes under persisted paths: the uid map (the activation's "users"
# step), /etc/machine-id, and the empty /persist/var/lib/nixos that impermanence's activation
# makes. $STANDIN_SETUP, when set, runs first (an attack or an earlier copy).
NIXOS_INSTALL = """#!/bin/sh
set -eu
printf '%s\\n' "$*" > "$STANDIN_RECORD/argv"
root= flake=
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root=$2; shift 2 ;;
        --flake) flake=$2; shift 2 ;;
        *) shift ;;
    esac
done
dir=${flake%%#*}
if git -C "$dir" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$dir" ls-files --error-unmatch -- hosts/example/hardware.nix >/dev/null 2>&1 \\
        && seen=visible || seen=invisible
else
    test -f "$dir/hosts/example/hardware.nix" && seen=visible || seen=invisible
fi
echo "$seen" > "$STANDIN_RECORD/hardware"
if [ -n "${STANDIN_SETUP:-}" ]; then sh -c "$STANDIN_SETUP" standin "$root"; fi
mkdir -p "$root/var/lib/nixos" "$root/etc" "$root/persist/var/lib/nixos"
echo '{"root":0,"admin":1000}' > "$root/var/lib/nixos/uid-map"
echo 0123456789abcdef0123456789abcdef > "$root/etc/machine-id"
"""


@pytest.fixture
def stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """nixos-generate-config and nixos-install stand-ins first on PATH; returns where the
    nixos-install stand-in records what it saw."""
    bin_dir, record = tmp_path / "stand-in bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    for name, text in (
        ("nixos-generate-config", GENERATE_CONFIG),
        ("nixos-install", NIXOS_INSTALL),
    ):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_RECORD", str(record))
    if not layout.can_mount_esp():  # no vfat in this kernel: the ESP is left unmounted
        monkeypatch.setattr(install_module, "check_esp_mountable", lambda options: False)
    return record


def flake_checkout(directory: Path, helpers: ModuleType, *, use_git: bool = True) -> Path:
    """A checkout with hosts/example committed and no hardware.nix, as before a first install."""
    host = directory / "hosts/example"
    host.mkdir(parents=True)
    (host / "default.nix").write_text("{ imports = [ ]; }\n")
    (directory / "flake.nix").write_text("{ outputs = _: { }; }\n")
    if use_git:
        git = ["git", "-C", directory, "-c", "user.name=t", "-c", "user.email=t@example.org"]
        helpers.run([*git, "init", "-q"])
        helpers.run([*git, "add", "."])
        helpers.run([*git, "commit", "-q", "-m", "host"])
    return directory


def install_host(image: Path, mountpoint: Path, flake: Path) -> install_module.Summary:
    options = install_module.InstallOptions(
        image=image,
        root=mountpoint,
        assume_yes=True,
        passwords=False,
        source=plansource.PlanSource(host="example", flake=str(flake)),
    )
    return install_module.install(PLAN_WITH_OWN_KEY, options)


def with_own_key(data: dict[str, object]) -> plan.Plan:
    users = data["users"]
    assert isinstance(users, list)
    users[0]["authorizedKeys"] = [OWN_KEY]  # not the example's placeholder: no lockout
    return plan.from_json(data)


OWN_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ3Yr8QJ5wxBcz0ZNrqGdM1JW6rnWOvK2ykXf6wzM1c me@laptop"
)
PLAN_WITH_OWN_KEY = with_own_key(PLAN.to_json())


def test_install_of_a_host_refuses_the_placeholder_key_before_writing(tmp_path: Path) -> None:
    """The system nixos-install would build admits nobody: refused before the image exists."""
    image, mountpoint = tmp_path / "disk.img", tmp_path / "target"
    options = install_module.InstallOptions(
        image=image,
        root=mountpoint,
        assume_yes=True,
        passwords=False,
        source=plansource.PlanSource(host="example", flake=str(tmp_path)),
    )
    with pytest.raises(BlankslateError, match="only SSH key is the example's placeholder"):
        install_module.install(PLAN, options)
    assert not image.exists() and not mountpoint.exists()


@contextlib.contextmanager
def installed_host(tmp_path: Path, helpers: ModuleType) -> Iterator[tuple[Path, Path]]:
    image, mountpoint = tmp_path / f"{helpers.IMAGE_PREFIX}host.img", tmp_path / "target"
    try:
        yield image, mountpoint
    finally:
        take_down(image, mountpoint, helpers)
        assert attached_loops(image) == []


@pytest.mark.parametrize("use_git", [True, False], ids=["git flake", "plain directory"])
def test_the_first_build_sees_the_hardware_configuration(
    use_git: bool,
    tmp_path: Path,
    state_file: Path,
    stand_ins: Path,
    capsys: pytest.CaptureFixture[str],
    helpers: ModuleType,
) -> None:
    flake = flake_checkout(tmp_path / "flake", helpers, use_git=use_git)
    with installed_host(tmp_path, helpers) as (image, mountpoint):
        summary = install_host(image, mountpoint, flake)
        assert (stand_ins / "hardware").read_text().strip() == "visible"
    assert (stand_ins / "argv").read_text().split() == [
        "--root", str(mountpoint), "--flake", f"{flake}#example", "--no-root-passwd"
    ]  # fmt: skip
    assert "virtio_blk" in (flake / "hosts/example/hardware.nix").read_text()
    err = capsys.readouterr().err
    if use_git:
        assert "Added hosts/example/hardware.nix to git with --intent-to-add" in err
        status = helpers.run(["git", "-C", flake, "status", "--porcelain"]).stdout.splitlines()
        assert status == [" A hosts/example/hardware.nix"]  # tracked, nothing staged, no other
    else:
        assert "--intent-to-add" not in err
    assert summary.next_steps[-1] == f"blankslate unmount --root {mountpoint} && reboot"


def test_install_seeds_what_nixos_install_wrote(
    tmp_path: Path,
    state_file: Path,
    stand_ins: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    helpers: ModuleType,
) -> None:
    """The uid map fills the empty directory impermanence made, machine-id is copied; the
    root's copies stay (the first boot's reset takes them, not install)."""
    from blankslate import btrfs

    snapshots: list[list[str]] = []
    real_snapshot = btrfs.subvolume_snapshot

    def recorded(*args: Any, **kwargs: Any) -> Any:
        snapshots.append(real_snapshot(*args, **kwargs))
        return snapshots[-1]

    monkeypatch.setattr(btrfs, "subvolume_snapshot", recorded)
    flake = flake_checkout(tmp_path / "flake", helpers)
    with installed_host(tmp_path, helpers) as (image, mountpoint):
        install_host(image, mountpoint, flake)
        persist = mountpoint / "persist"
        uid_map = persist / "var/lib/nixos/uid-map"
        assert uid_map.read_text() == '{"root":0,"admin":1000}\n'
        assert (persist / "etc/machine-id").read_text().startswith("0123456789abcdef")
        assert (mountpoint / "var/lib/nixos/uid-map").exists()
        assert (mountpoint / "etc/machine-id").exists()
        assert not (persist / "var/lib/systemd").exists()  # nothing there to seed
        # On the persist subvolume, not the root one: it survives the reset.
        assert os.stat(uid_map).st_dev == os.stat(persist).st_dev
        assert os.stat(uid_map).st_dev != os.stat(mountpoint / "var/lib/nixos").st_dev
        assert list(mountpoint.glob(".blankslate-seed.*")) == []  # its snapshot is deleted
    err = capsys.readouterr().err
    # read from a read-only snapshot of the new root, as `seed` reads
    seeding = [argv for argv in snapshots if argv[3] == "-r" and argv[4] == str(mountpoint)]
    assert len(seeding) == 1 and seeding[0][5].startswith(f"{mountpoint}/.blankslate-seed.")
    assert f"fill      directory  {mountpoint}/var/lib/nixos -> {persist}/var/lib/nixos" in err
    assert f"copy      file       {mountpoint}/etc/machine-id -> {persist}/etc/machine-id" in err


def test_install_seeding_keeps_what_persistent_storage_holds(
    tmp_path: Path,
    state_file: Path,
    stand_ins: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    helpers: ModuleType,
) -> None:
    """An earlier machine-id in persistPath is kept, and the two copies are named in one line;
    a symlink planted at persist/var/lib/nixos is never written through."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv(
        "STANDIN_SETUP",
        'mkdir -p "$1/persist/etc" "$1/persist/var/lib" && echo kept > "$1/persist/etc/machine-id"'
        f' && ln -s {elsewhere} "$1/persist/var/lib/nixos"',
    )
    flake = flake_checkout(tmp_path / "flake", helpers)
    with installed_host(tmp_path, helpers) as (image, mountpoint):
        install_host(image, mountpoint, flake)
        persist = mountpoint / "persist"
        assert (persist / "etc/machine-id").read_text() == "kept\n"
        assert (persist / "var/lib/nixos").is_symlink()
        assert list(elsewhere.iterdir()) == []
    lines = capsys.readouterr().err.splitlines()
    machine_id = [line for line in lines if "etc/machine-id" in line and "conflict" in line]
    assert len(machine_id) == 1
    assert f"{mountpoint}/etc/machine-id and {persist}/etc/machine-id differ" in machine_id[0]
    nixos = [line for line in lines if "var/lib/nixos" in line and "conflict" in line]
    assert len(nixos) == 1 and f"{persist}/var/lib/nixos is a symlink" in nixos[0]
