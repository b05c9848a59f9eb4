"""disko: `blankslate disko`'s expression and blankslate.disko.enable, evaluated with disko's real
types (<disko/lib>); the boot loader each disk.boot sets, and the assertion against layouts that
cannot boot. Skipped with the reason when <disko> is not on the Nix search path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blankslate import disko
from blankslate import plan as plan_module

from ..support.plans import bios_partition
from .conftest import REPO, lookup_path

HOSTS = sorted(path.name for path in (REPO / "hosts").iterdir() if path.is_dir())
DISK_HOSTS = [host for host in HOSTS if host != "vpsfree"]
BOOT_MODES = ["uefi", "bios", "hybrid"]


@pytest.fixture(scope="session")
def disko_lib(nix_paths: dict[str, Path]) -> Path:
    return lookup_path("disko")


def evaluated(host: str, extra: str = "") -> str:
    modules = f"[ ({{ lib, ... }}: {extra}) ]" if extra else "[ ]"
    return (
        f"(import ./tests/nix/eval.nix {{ host = {json.dumps(host)}; extraModules = {modules}; }})"
    )


def python_expression(host_eval: Any, host: str, extra: str = "") -> str:
    """`blankslate disko` for the host's evaluated plan, written to a file Nix can import."""
    data = host_eval(host, "config.blankslate.plan", extra)
    return disko.expression(plan_module.from_json(data))


def nix_renderer(host: str, extra: str = "") -> str:
    """modules/disko/devices.nix, the one renderer, applied to the host's plan."""
    e = evaluated(host, extra)
    return (
        f"(import ./modules/disko/devices.nix {{ inherit ({e}) lib; }} "
        f"{e}.config.blankslate.plan {e}.config.blankslate.disk.device)"
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "disko.nix"
    path.write_text(text)
    return path


@pytest.mark.parametrize("host", DISK_HOSTS)
@pytest.mark.parametrize("boot", BOOT_MODES)
def test_the_plan_carries_the_tree_and_blankslate_disko_prints_it(
    host_eval: Any, nix_eval: Any, tmp_path: Path, host: str, boot: str, disko_lib: Path
) -> None:
    """The plan's `disko` is devices.nix's value for the host; `blankslate disko`'s text,
    imported by Nix, is that value again (through JSON and the Nix printer), and with --disk
    only the device differs."""
    extra = f'{{ blankslate.disk.boot = "{boot}"; }}'
    plan = host_eval(host, "config.blankslate.plan", extra)
    assert nix_eval(
        f"{evaluated(host, extra)}.config.blankslate.plan.disko == {nix_renderer(host, extra)}"
    )
    file = write(tmp_path, python_expression(host_eval, host, extra))
    assert nix_eval(f"(import {file}).disko.devices") == plan["disko"]
    other = write(tmp_path, disko.expression(plan_module.from_json(plan), "/dev/sdz"))
    devices = nix_eval(f"(import {other}).disko.devices")
    assert devices["disk"]["main"].pop("device") == "/dev/sdz"
    assert plan["disko"]["disk"]["main"].pop("device") == "/dev/vda"
    assert devices == plan["disko"]


@pytest.mark.parametrize("boot", BOOT_MODES)
def test_disko_partitions_keep_the_plans_order_and_names(host_eval: Any, boot: str) -> None:
    extra = f'{{ blankslate.disk.boot = "{boot}"; }}'
    plan = host_eval("example", "config.blankslate.plan", extra)
    partitions = plan["disko"]["disk"]["main"]["content"]["partitions"]
    listed = sorted(partitions.items(), key=lambda item: item[1]["priority"])
    expected = [(p["name"], p["type"].upper()) for p in plan["disk"]["partitions"]]
    assert [(name, p["label"], p["type"]) for name, p in listed] == [
        (name, name, code) for name, code in expected
    ]
    assert [p["priority"] for _, p in listed] == list(range(1, len(expected) + 1))
    if boot != "uefi":
        assert "content" not in partitions["bios"]


UNITS = {"K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1GiB", "1G"),
        ("8GiB", "8G"),
        ("512M", "512M"),
        ("1MiB", "1M"),
        ("2T", "2T"),
        ("1536", "1K"),
        ("4096B", "4K"),
        ("3KB", "3K"),
    ],
)
def test_sizes_become_sgdisk_sizes_as_install_makes_them(
    host_eval: Any, size: str, expected: str
) -> None:
    """devices.nix's size in sgdisk's units is install's `+<bytes // 1024>K`."""
    extra = f'{{ blankslate.disk.swapSize = lib.mkForce "{size}"; }}'
    partitions = host_eval(
        "example", "config.blankslate.plan.disko.disk.main.content.partitions", extra
    )
    rendered = partitions["swap"]["size"]
    assert rendered == expected
    assert int(rendered[:-1]) * UNITS[rendered[-1]] == plan_module.parse_size(size) // 1024


@pytest.mark.parametrize("host", DISK_HOSTS)
@pytest.mark.parametrize("boot", BOOT_MODES)
def test_disko_types_accept_every_host(
    host_eval: Any, nix_eval: Any, tmp_path: Path, host: str, boot: str, disko_lib: Path
) -> None:
    """disko's own evaluation of the expression: its scripts and the NixOS configuration it
    derives, which must be the plan's partitions and mount table."""
    extra = f'{{ blankslate.disk.boot = "{boot}"; }}'
    plan = host_eval(host, "config.blankslate.plan", extra)
    file = write(tmp_path, python_expression(host_eval, host, extra))
    result = nix_eval(
        f"import ./tests/nix/disko-eval.nix {{ devices = (import {file}).disko.devices; }}"
    )
    # Partitions: the plan's, in its order, with its GPT names and type codes.
    partitions = result["partitions"]["main"]
    assert [(p["_index"], p["label"], p["type"]) for p in partitions] == [
        (i, p["name"], p["type"].upper()) for i, p in enumerate(plan["disk"]["partitions"], 1)
    ]
    assert partitions[-1]["size"] == "100%"
    # Mounts: every mount of the plan, with its options (disko puts subvol= last).
    mounts = {m["mountPoint"]: m for m in plan["mounts"]}
    file_systems = result["fileSystems"]
    assert sorted(file_systems) == sorted(mounts)
    for point, fs in file_systems.items():
        assert fs["fsType"] == mounts[point]["fsType"]
        assert sorted(fs.get("options", [])) == sorted(mounts[point]["options"]), point
    # The filesystems carry the plan's labels.
    made_with = {"vfat": "mkfs.vfat \\\n", "swap": "mkswap \\\n", "btrfs": "mkfs.btrfs "}
    label_args = {"vfat": "-F 32 -n {}", "swap": "--label {}", "btrfs": "--label {}"}
    for part in plan["disk"]["partitions"]:
        if part["format"] in label_args:
            assert made_with[part["format"]] in result["_create"]
            assert label_args[part["format"]].format(part["label"]) in result["_create"]
    # GRUB's disk exactly when there is a BIOS boot partition.
    assert result["grubDevices"] == ([] if boot == "uefi" else ["/dev/vda"])
    if plan["btrfs"] and plan["btrfs"]["blankSnapshot"]:
        assert "btrfs subvolume snapshot -r" in result["_create"]
    if plan["zfs"]:
        assert "zfs snapshot rpool/local/root@blank" in result["_create"]


def test_vpsfree_has_no_disk_for_disko(host_eval: Any) -> None:
    data = host_eval("vpsfree", "config.blankslate.plan")
    assert data["disko"] is None
    with pytest.raises(Exception, match="no disk"):
        disko.expression(plan_module.from_json(data))


def test_module_sets_disko_devices_with_disko_imported(host_eval: Any, disko_lib: Path) -> None:
    extra = "{ imports = [ ./tests/nix/disko-module.nix ]; blankslate.disko.enable = true; }"
    extra = extra.replace("./tests", str(REPO / "tests"))
    assert host_eval("example", "failedAssertions", extra) == []
    assert host_eval("example", "config.disko.enableConfig", extra) is False
    devices = "config.disko.devices"
    assert host_eval("example", f"{devices}.disk.main.device", extra) == "/dev/vda"
    # The evaluated type: disko's own scripts are there, the blank hook in them.
    create = host_eval("example", f"{devices}._create", extra)
    assert "blankslate_blank=root-blank" in create
    # blankslate keeps fileSystems (by label), disko adds none.
    assert host_eval("example", 'config.fileSystems."/".device', extra) == (
        "/dev/disk/by-label/nixos"
    )


def test_module_without_disko_sets_nothing_but_says_so(host_eval: Any) -> None:
    assert host_eval("example", "failedAssertions") == []
    failed = host_eval("example", "failedAssertions", "{ blankslate.disko.enable = true; }")
    assert any("disko's NixOS module" in message for message in failed)


def test_module_needs_a_disk_device(host_eval: Any, disko_lib: Path) -> None:
    extra = (
        f"{{ imports = [ {REPO}/tests/nix/disko-module.nix ]; blankslate.disko.enable = true; "
        "blankslate.disk.device = lib.mkForce null; }"
    )
    failed = host_eval("example", "failedAssertions", extra)
    assert any("needs blankslate.disk.device" in message for message in failed)


def test_flake_disko_module(nix_eval: Any, disko_lib: Path) -> None:
    node = (
        "(import ./tests/nix/eval.nix { viaFlake = true; extraModules = [ "
        "(import ./tests/nix/flake-outputs.nix { }).nixosModules.disko ./hosts/example ]; })"
    )
    assert nix_eval(f"{node}.failedAssertions") == []
    assert nix_eval(f"{node}.config.disko.devices.disk.main.content.partitions.ESP.size") == "1G"


# --- boot modes -------------------------------------------------------------------------------

LOADER = "config.boot.loader"


@pytest.mark.parametrize("host", DISK_HOSTS)
@pytest.mark.parametrize(
    ("boot", "expected"),
    [
        (
            "uefi",
            {"systemd-boot": True, "grub": False, "efiSupport": False, "removable": False},
        ),
        ("bios", {"systemd-boot": False, "grub": True, "efiSupport": False, "removable": False}),
        ("hybrid", {"systemd-boot": False, "grub": True, "efiSupport": True, "removable": True}),
    ],
)
def test_each_boot_mode_sets_its_loader(
    host_eval: Any, host: str, boot: str, expected: dict[str, bool]
) -> None:
    extra = f'{{ blankslate.disk.boot = "{boot}"; }}'
    loader = host_eval(host, LOADER, extra)
    assert host_eval(host, "failedAssertions", extra) == []
    assert loader["systemd-boot"]["enable"] is expected["systemd-boot"]
    assert loader["grub"]["enable"] is expected["grub"]
    assert loader["grub"]["efiSupport"] is expected["efiSupport"]
    assert loader["grub"]["efiInstallAsRemovable"] is expected["removable"]
    assert loader["grub"]["devices"] == ([] if boot == "uefi" else ["/dev/vda"])
    # EFI variables are written only by systemd-boot's install; removable GRUB needs none.
    assert loader["efi"]["canTouchEfiVariables"] is (boot == "uefi")
    partitions = host_eval(host, "config.blankslate.plan.disk.partitions", extra)
    types = [p["type"] for p in partitions]
    assert ("ef02" in types) is (boot != "uefi")
    assert ("ef00" in types) is (boot != "bios")
    if boot != "uefi":
        assert partitions[0] == bios_partition()
    # Whatever the numbering, /boot and the main filesystem are found by label.
    mounts = host_eval(host, "config.blankslate.plan.mounts", extra)
    assert next(m for m in mounts if m["mountPoint"] == "/boot")["device"] == (
        "/dev/disk/by-label/BOOT"
    )


@pytest.mark.parametrize(
    ("boot", "extra", "expected"),
    [
        ("bios", "boot.loader.systemd-boot.enable = true;", "which systemd-boot cannot"),
        ("hybrid", "boot.loader.systemd-boot.enable = true;", "which systemd-boot cannot"),
        ("bios", "boot.loader.grub.enable = false;", "needs GRUB installed on the disk"),
        ("bios", "blankslate.disk.device = lib.mkForce null;", "needs GRUB installed on the disk"),
        ("hybrid", "boot.loader.grub.efiSupport = false;", "needs boot.loader.grub.efiSupport"),
        (
            "uefi",
            "boot.loader.systemd-boot.enable = false; boot.loader.grub.enable = true; "
            'boot.loader.grub.devices = [ "/dev/vda" ];',
            "has no BIOS boot partition for GRUB",
        ),
    ],
)
def test_unbootable_combinations_are_refused(
    host_eval: Any, boot: str, extra: str, expected: str
) -> None:
    module = f'{{ blankslate.disk.boot = "{boot}"; {extra} }}'
    failed = host_eval("example", "failedAssertions", module)
    assert any(expected in message for message in failed), failed


def test_uefi_with_grub_for_efi_is_accepted(host_eval: Any) -> None:
    module = (
        "{ boot.loader.systemd-boot.enable = false; boot.loader.grub.enable = true; "
        'boot.loader.grub.efiSupport = true; boot.loader.grub.devices = [ "nodev" ]; }'
    )
    assert host_eval("example", "failedAssertions", module) == []


def test_bad_boot_mode_fails_evaluation(nix_run: Any) -> None:
    result = nix_run(
        evaluated("example", '{ blankslate.disk.boot = "coreboot"; }') + ".config.blankslate.plan"
    )
    assert result.returncode != 0
    assert "blankslate.disk.boot" in result.stderr


def test_partition_names_must_be_unique(host_eval: Any, nix_run: Any) -> None:
    extra = '{ blankslate.disk.boot = "bios"; blankslate.disk.label = lib.mkForce "bios"; }'
    result = nix_run(evaluated("example", extra) + ".config.blankslate.plan")
    assert result.returncode != 0
    assert "partition name" in result.stderr
