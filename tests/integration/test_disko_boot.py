"""Boot modes, host keys and disko for real: `install --image` in each boot mode (sgdisk -p, a
mount/unmount round trip), `--host-keys-from` keeping the fingerprint, the modes of the
extra-files tree, and disko's own scripts, evaluated from `blankslate disko`, run on a loop
device next to an `install`: the same partitions, labels, subvolumes, blank and mount options."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blankslate import disko, extrafiles, hostkeys, plansource
from blankslate import plan as plan_module
from blankslate.errors import BlankslateError

from ..support.loops import attached_loops, take_down
from ..support.plans import boot_plan_data as plan_data
from ..support.plans import write_plan_json
from ..support.runner import quiet_blankslate as blankslate

REPO = Path(__file__).resolve().parents[2]


def write_plan(tmp_path: Path, boot: str) -> Path:
    return write_plan_json(tmp_path, plan_data(boot), f"plan-{boot}.json")


def sgdisk_rows(image_or_device: str) -> list[tuple[int, int, str, str]]:
    """(number, size in sectors, type code, name) of each partition, from `sgdisk -p`."""
    out = subprocess.run(
        ["sgdisk", "-p", image_or_device], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    started = False
    for line in out.splitlines():
        if line.lstrip().startswith("Number"):
            started = True
            continue
        fields = line.split()
        if started and len(fields) >= 7:
            number, start, end = int(fields[0]), int(fields[1]), int(fields[2])
            rows.append((number, end - start + 1, fields[5], " ".join(fields[6:])))
    return rows


def labels(device: str, count: int) -> list[tuple[str, str]]:
    """(TYPE, LABEL) of partitions 1..count, as blkid reads them from the disk."""
    found = []
    for number in range(1, count + 1):
        probe = subprocess.run(
            ["blkid", "-p", "-o", "export", f"{device}p{number}"],
            capture_output=True,
            text=True,
            check=False,
        )
        values = dict(line.split("=", 1) for line in probe.stdout.splitlines() if "=" in line)
        found.append((values.get("TYPE", ""), values.get("LABEL", "")))
    return found


@pytest.fixture
def cleanup(helpers: Any) -> Iterator[list[tuple[Path, Path]]]:
    """(image, mountpoint) pairs a test made: always unmounted and detached at the end."""
    made: list[tuple[Path, Path]] = []
    yield made
    for image, mountpoint in made:
        take_down(image, mountpoint, helpers)
        assert attached_loops(image) == []


def install(tmp_path: Path, boot: str, cleanup: list[tuple[Path, Path]], *extra: str) -> Any:
    image, mountpoint = tmp_path / f"{boot}.img", tmp_path / f"root-{boot}"
    cleanup.append((image, mountpoint))
    result = blankslate(
        "install", "--plan", str(write_plan(tmp_path, boot)), "--image", str(image),
        "--root", str(mountpoint), "--yes", "--no-passwords", "--no-nixos-install", *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return image, mountpoint, result


EXPECTED_TABLES = {
    "uefi": [("EF00", "ESP"), ("8200", "swap"), ("8300", "nixos")],
    "bios": [("EF02", "bios"), ("8300", "boot"), ("8200", "swap"), ("8300", "nixos")],
    "hybrid": [("EF02", "bios"), ("EF00", "ESP"), ("8200", "swap"), ("8300", "nixos")],
}


@pytest.mark.parametrize("boot", ["uefi", "bios", "hybrid"])
def test_install_in_each_boot_mode(
    tmp_path: Path, boot: str, cleanup: list[tuple[Path, Path]], helpers: Any
) -> None:
    image, mountpoint, _ = install(tmp_path, boot, cleanup)
    rows = sgdisk_rows(str(image))
    assert [(code, name) for _, _, code, name in rows] == EXPECTED_TABLES[boot]
    sizes = {name: size for _, size, _, name in rows}
    if boot != "uefi":
        assert sizes["bios"] == 2048  # 1 MiB in 512-byte sectors
    assert sizes["swap"] == 8 * 2048 * 1024
    # Labels wherever the numbers moved: the BIOS boot partition has no filesystem.
    (loop,) = attached_loops(image)
    found = labels(loop, len(rows))
    expected = [("vfat", "BOOT"), ("swap", "swap"), ("btrfs", "nixos")]
    assert found == ([("", "")] if boot != "uefi" else []) + expected
    # The round trip: unmount, mount again by the plan (the checks find every subvolume).
    assert blankslate("unmount", "--root", str(mountpoint)).returncode == 0
    assert attached_loops(image) == []
    result = blankslate(
        "mount", "--plan", str(write_plan(tmp_path, boot)), "--image", str(image),
        "--root", str(mountpoint),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (mountpoint / "persist/etc/ssh/ssh_host_ed25519_key").is_file()
    assert helpers.mounts_under(mountpoint)
    assert blankslate("unmount", "--root", str(mountpoint)).returncode == 0
    assert helpers.mounts_under(mountpoint) == [] and attached_loops(image) == []


def test_host_keys_from_keeps_the_fingerprint(
    tmp_path: Path, cleanup: list[tuple[Path, Path]], helpers: Any
) -> None:
    old = tmp_path / "old-etc-ssh"
    old.mkdir()
    key = old / "ssh_host_ed25519_key"
    helpers.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "old", "-f", key])
    before = helpers.run(["ssh-keygen", "-l", "-f", f"{key}.pub"]).stdout.split()[1]
    _image, mountpoint, result = install(tmp_path, "uefi", cleanup, "--host-keys-from", str(old))
    placed = mountpoint / "persist/etc/ssh/ssh_host_ed25519_key"
    after = helpers.run(["ssh-keygen", "-l", "-f", f"{placed}.pub"]).stdout.split()[1]
    assert after == before and before in result.stdout
    assert placed.read_bytes() == key.read_bytes()
    assert stat.S_IMODE(placed.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{placed}.pub").stat().st_mode) == 0o644
    recipient = hostkeys.age_recipient(Path(f"{key}.pub").read_text())
    assert recipient is not None and recipient in result.stdout


def test_host_keys_from_a_directory_without_the_key_writes_nothing(tmp_path: Path) -> None:
    image, empty = tmp_path / "none.img", tmp_path / "empty"
    empty.mkdir()
    result = blankslate(
        "install", "--image", str(image), "--root", str(tmp_path / "root"),
        "--yes", "--no-passwords", "--no-nixos-install", "--host-keys-from", str(empty),
    )  # fmt: skip
    assert result.returncode == 1
    assert "ssh_host_ed25519_key does not exist" in result.stderr
    assert not image.exists()  # refused before the image was kept
    assert attached_loops(image) == []


def test_extra_files_tree_modes(tmp_path: Path) -> None:
    plan = plansource.default()
    tree = tmp_path / "tree"
    made = extrafiles.write(plan, tree, host_keys_from=None, hashes={"admin": "$y$j9T$salt$hash"})
    modes = {
        str(path.relative_to(tree)): stat.S_IMODE(path.lstat().st_mode)
        for path in sorted(tree.rglob("*"))
    }
    assert modes == {
        "persist": 0o755,
        "persist/etc": 0o755,
        "persist/etc/ssh": 0o755,
        "persist/etc/ssh/ssh_host_ed25519_key": 0o600,
        "persist/etc/ssh/ssh_host_ed25519_key.pub": 0o644,
        "persist/passwords": 0o700,
        "persist/passwords/admin": 0o600,
    }
    # DIR itself is made 0700 (nixos-anywhere sets the target's / to 0755 after its copy).
    assert stat.S_IMODE(tree.stat().st_mode) == 0o700
    assert all(path.lstat().st_uid == 0 for path in tree.rglob("*"))
    assert (tree / "persist/passwords/admin").read_text() == "$y$j9T$salt$hash\n"
    # The same key from the tree again: same fingerprint.
    again = extrafiles.write(
        plan, tmp_path / "again", host_keys_from=tree / "persist/etc/ssh", hashes={}
    )
    assert again.fingerprints == made.fingerprints


def test_extra_files_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    plan = plansource.default()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tree = tmp_path / "tree"
    tree.mkdir()
    with hostkeys.scratch() as work:
        keys = hostkeys.make_keys(plan, work)
    # Planted after DIR was checked (empty), before the keys go in.
    (tree / "persist").symlink_to(elsewhere)
    with pytest.raises(BlankslateError, match="symlink"):
        hostkeys.write_keys(keys, tree)
    assert list(elsewhere.iterdir()) == []


# --- disko's own scripts against install ------------------------------------------------------


def disko_scripts(devices_file: Path, loop: str, root: Path, boot: str) -> dict[str, str]:
    """disko's _create and _mount for `blankslate disko`'s expression on this loop device:
    partitions named by their nodes (no udev here to make /dev/disk/by-partlabel), and no
    /boot mount where the kernel has no vfat."""
    names = [p["name"] for p in plan_data(boot)["disk"]["partitions"]]
    nodes = " ".join(
        f'{json.dumps(name)}.device = "{loop}p{number}";' for number, name in enumerate(names, 1)
    )
    no_vfat = "vfat" not in Path("/proc/filesystems").read_text()
    esp = next(n for n in names if n in ("ESP", "boot"))
    unmounted = (
        f"{{ disk.main.content.partitions.{esp}.content.mountpoint = lib.mkForce null; }}"
        if no_vfat
        else "{ }"
    )
    expression = (
        "let lib = import <nixpkgs/lib>; r = import ./tests/nix/disko-eval.nix { "
        f"rootMountPoint = {json.dumps(str(root))}; "
        f"devices = (import {devices_file}).disko.devices; extraDevices = [ "
        f"{{ disk.main.content.partitions = {{ {nodes} }}; }} {unmounted} ]; }}; "
        "in { inherit (r) _create _mount; }"
    )
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "--readonly-mode", "-E", expression],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    scripts: dict[str, str] = json.loads(result.stdout)
    return scripts


def findmnt_options(root: Path) -> dict[str, set[str]]:
    """target -> mount options without the ones that name one filesystem (subvolid)."""
    out = subprocess.run(
        ["findmnt", "--json", "--list", "--output", "TARGET,FSTYPE,OPTIONS"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    table = {}
    for row in json.loads(out)["filesystems"]:
        target = row["target"]
        if target == str(root) or target.startswith(f"{root}/"):
            options = {o for o in row["options"].split(",") if not o.startswith("subvolid=")}
            table["/" + target[len(str(root)) :].lstrip("/")] = options | {row["fstype"]}
    return table


@pytest.mark.parametrize("boot", ["uefi", "hybrid"])
def test_disko_makes_the_layout_install_makes(
    tmp_path: Path, boot: str, cleanup: list[tuple[Path, Path]], helpers: Any
) -> None:
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix-instantiate is not installed")
    for name in ("nixpkgs/lib", "disko"):
        found = subprocess.run(["nix-instantiate", "--find-file", name], capture_output=True)
        if found.returncode != 0:
            pytest.skip(f"<{name}> not found on NIX_PATH (.ci/setup makes <disko>)")
    # install's layout, mounted on one root
    image, mountpoint, _ = install(tmp_path, boot, cleanup)
    (install_loop,) = attached_loops(image)
    # disko's, from `blankslate disko`, on another image
    plan = plan_module.from_json(plan_data(boot))  # Nix-proven, the disko tree included
    devices_file = tmp_path / "disko.nix"
    disko_image, disko_root = tmp_path / "disko.img", tmp_path / "disko-root"
    disko_root.mkdir()
    cleanup.append((disko_image, disko_root))
    helpers.run(["truncate", "--size", "20G", disko_image])
    loop = helpers.run(["losetup", "--find", "--partscan", "--show", disko_image]).stdout.strip()
    devices_file.write_text(disko.expression(plan, loop))
    scripts = disko_scripts(devices_file, loop, disko_root, boot)
    # No udev daemon here: udevadm is a no-op, the kernel's devtmpfs makes the nodes.
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "udevadm").write_text("#!/bin/sh\nexit 0\n")
    (stubs / "udevadm").chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "DISKO_SKIP_SWAP": "1"}
    try:
        helpers.run(["bash", "-c", scripts["_create"]], env=env)
        # Idempotent: a second run changes nothing and keeps the blank.
        helpers.run(["bash", "-c", scripts["_create"]], env=env)
        helpers.run(["bash", "-c", scripts["_mount"]], env=env)

        # Partitions: names, codes, sizes (disko aligns the last one's end; its size may differ).
        ours, theirs = sgdisk_rows(str(image)), sgdisk_rows(loop)
        assert [(n, c, name) for n, _, c, name in theirs] == [
            (n, c, name) for n, _, c, name in ours
        ]
        assert [size for _, size, _, _ in theirs[:-1]] == [size for _, size, _, _ in ours[:-1]]
        # Filesystems and their labels.
        assert labels(loop, len(ours)) == labels(install_loop, len(ours))
        # Subvolumes, and the read-only blank of the empty root.
        with helpers.mount_top_level(f"{loop}p{len(ours)}") as top:
            assert helpers.subvolumes_under(top) == {*PLAN_SUBVOLUMES, "root-blank"}
            assert (
                helpers.run(
                    ["btrfs", "property", "get", "-ts", top / "root-blank", "ro"]
                ).stdout.strip()
                == "ro=true"
            )
            assert list((top / "root-blank").iterdir()) == []
        # Mounts: the same targets with the same options.
        assert findmnt_options(disko_root) == findmnt_options(mountpoint)
    finally:
        helpers.unmount_all_under(disko_root)
        subprocess.run(["losetup", "--detach", loop], check=False)


PLAN_SUBVOLUMES = {"root", "nix", "persist", "log", "home"}


def test_blank_hook_refuses_a_root_that_holds_files(tmp_path: Path, helpers: Any) -> None:
    """Run alone as disko runs it ($device set): it keeps an existing blank, and refuses to
    take a blank from a root that is not empty."""
    disko_tree = plansource.default().disko
    assert disko_tree is not None
    partitions = disko_tree["disk"]["main"]["content"]["partitions"]
    hook = partitions["nixos"]["content"]["postCreateHook"]  # as the plan carries it
    assert hook.startswith("blankslate_root=root\nblankslate_blank=root-blank\n")
    with helpers.loop_device(tmp_path / "hook.img", "2G") as device:
        helpers.run(["mkfs.btrfs", "-q", "-f", device])
        with helpers.mount_top_level(device) as top:
            helpers.run(["btrfs", "subvolume", "create", top / "root"])
            (top / "root" / "left-over").write_text("x")
        env = {**os.environ, "device": device}
        refused = helpers.run(["bash", "-c", hook], env=env, check=False)
        assert refused.returncode == 1 and "is not empty" in refused.stderr
        with helpers.mount_top_level(device) as top:
            assert not (top / "root-blank").exists()
            (top / "root" / "left-over").unlink()
        helpers.run(["bash", "-c", hook], env=env)
        kept = helpers.run(["bash", "-c", hook], env=env)
        assert "exists; kept" in kept.stdout
        assert helpers.mounts_of(device) == []
