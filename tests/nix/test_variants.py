"""Every example host in the variants a real configuration meets (issue #22): a host that
names its GRUB disk itself, the user's own impermanence import next to the flake's modules,
an older impermanence pin, and users' persisted home paths; and the nixpkgs definitions
these needed in the model (grub.nix's duplicate-device check, kernel.nix's initrd drivers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import besides_placeholder, lookup_path

pytestmark = pytest.mark.nix

REPO = Path(__file__).resolve().parents[2]
HOSTS = sorted(path.name for path in (REPO / "hosts").iterdir() if path.is_dir())
PLAN = "config.blankslate.plan"
OLD_IMPERMANENCE = "impermanence-2025-01"
DECLARATIONS = "(builtins.length options.environment.persistence.declarations)"

# A user's own paths under the home (what the home warning recommends).
HOME_PATHS = (
    "{ blankslate.users.admin.persist = { "
    'directories = [ ".local/share/app" { directory = ".ssh"; mode = "0700"; } ]; '
    'files = [ ".bash_history" ]; }; }'
)


def evaluated(attr: str, **arguments: str) -> str:
    """EXPR over tests/nix/eval.nix called with ARGUMENTS (Nix expressions)."""
    call = " ".join(f"{name} = {value};" for name, value in arguments.items())
    return (
        f"let e = import ./tests/nix/eval.nix {{ {call} }}; "
        f"inherit (e) config options failedAssertions; in {attr}"
    )


def old_impermanence() -> str:
    """<impermanence-2025-01> (4b3e914, 2025-01-25), skipping (failing in CI) without it."""
    lookup_path(OLD_IMPERMANENCE)
    return f"<{OLD_IMPERMANENCE}>"


# --- GRUB: the disk once (item 3) -----------------------------------------------------------


@pytest.mark.parametrize("boot", ["bios", "hybrid"])
def test_host_naming_the_grub_disk_itself_gets_it_once(host_eval: Any, boot: str) -> None:
    """A VPS configuration's own boot.loader.grub.device, the same disk as the plan's."""
    extra = f'{{ blankslate.disk.boot = "{boot}"; boot.loader.grub.device = "/dev/vda"; }}'
    result = host_eval(
        "example", "{ inherit failedAssertions; inherit (config.boot.loader.grub) devices; }", extra
    )
    assert result == {"failedAssertions": [], "devices": ["/dev/vda"]}


def test_host_grub_device_replaces_the_plans(host_eval: Any) -> None:
    extra = '{ blankslate.disk.boot = "bios"; boot.loader.grub.device = "/dev/disk/by-id/ata-X"; }'
    devices = host_eval("example", "config.boot.loader.grub.devices", extra)
    assert devices == ["/dev/disk/by-id/ata-X"]
    assert host_eval("example", "failedAssertions", extra) == []


@pytest.mark.parametrize("boot", ["bios", "hybrid"])
def test_grub_installs_on_the_plans_disk(host_eval: Any, boot: str) -> None:
    extra = f'{{ blankslate.disk.boot = "{boot}"; }}'
    grub = host_eval(
        "example", "{ inherit (config.boot.loader.grub) device devices mirroredBoots; }", extra
    )
    assert grub == {
        "device": "/dev/vda",
        "devices": ["/dev/vda"],
        "mirroredBoots": [{"path": "/boot", "devices": ["/dev/vda"]}],
    }
    assert host_eval("example", "failedAssertions", extra) == []


def test_model_refuses_a_disk_listed_twice_without_efi(host_eval: Any) -> None:
    """grub.nix's check, as the model mirrors it: a host's devices list naming the plan's disk."""
    extra = '{ blankslate.disk.boot = "bios"; boot.loader.grub.devices = [ "/dev/vda" ]; }'
    assert "You cannot have duplicated devices in mirroredBoots" in host_eval(
        "example", "failedAssertions", extra
    )
    # With efiSupport grub.nix does not count them ("hybrid").
    hybrid = '{ blankslate.disk.boot = "hybrid"; boot.loader.grub.devices = [ "/dev/vda" ]; }'
    assert host_eval("example", "failedAssertions", hybrid) == []


# --- the initrd's drivers (item 9: kernel.nix) ------------------------------------------------


def test_default_initrd_drivers_have_no_virtio(host_eval: Any) -> None:
    """What the first boot of a VM gets without hardware.nix: nixpkgs' defaults, no virtio."""
    modules = host_eval("example", "config.boot.initrd.availableKernelModules")
    assert {"ahci", "nvme", "sd_mod", "rtc_cmos"} <= set(modules)
    assert not [m for m in modules if m.startswith("virtio")]
    hardware = '{ boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" "ahci" ]; }'
    with_hardware = host_eval("example", "config.boot.initrd.availableKernelModules", hardware)
    assert {"virtio_pci", "virtio_blk"} <= set(with_hardware)
    assert with_hardware.count("ahci") == 1


# --- the user's own impermanence import (item 4) ----------------------------------------------


def test_flake_default_module_alone(nix_eval: Any) -> None:
    """nixosModules.default brings impermanence: every host evaluates with nothing else."""
    for host in HOSTS:
        expr = evaluated(f"[ failedAssertions {PLAN} ]", host=json.dumps(host), viaFlake="true")
        messages, plan = nix_eval(expr)
        assert messages == [] and plan == nix_eval(evaluated(PLAN, host=json.dumps(host)))


def test_flake_blankslate_module_next_to_the_users_impermanence(nix_eval: Any) -> None:
    """nixosModules.blankslate next to impermanence.nixosModules.impermanence (the function
    value impermanence's flake exports), as most impermanence users import it."""
    for host in HOSTS:
        expr = evaluated(
            f"[ failedAssertions {PLAN} {DECLARATIONS} ]",
            host=json.dumps(host),
            viaFlake="true",
            flakeModule='"blankslate"',
            extraModules="[ (import <impermanence/nixos.nix>) ]",
        )
        messages, plan, declarations = nix_eval(expr)
        assert messages == [] and declarations == 1
        assert plan == nix_eval(evaluated(PLAN, host=json.dumps(host)))


# What impermanence makes of the persistence lists: the same whichever way it is imported.
IMPERMANENCE_OUTPUT = (
    "{ inherit failedAssertions; plan = config.blankslate.plan; "
    "inherit (config) fileSystems warnings; "
    "mounts = config.systemd.mounts; initrdMounts = config.boot.initrd.systemd.mounts; "
    "services = builtins.attrNames config.systemd.services; "
    "activation = config.system.activationScripts; "
    "persistence = builtins.attrNames config.environment.persistence; }"
)
# The user's own paths: a home path of blankslate's option, a root and a directory of
# impermanence's option, and a mkDefault of blankslate's replaced.
USERS_OWN = (
    '{ blankslate.users.admin.persist.directories = [ ".ssh" ]; '
    'environment.persistence."/persist/cache".directories = [ "/var/cache/app" ]; '
    "environment.persistence.${config.blankslate.persistPath} = "
    '{ directories = [ "/srv" ]; hideMounts = false; }; }'
)


@pytest.mark.parametrize("impermanence", ["<impermanence>", "old"])
@pytest.mark.parametrize("host", HOSTS)
def test_flake_default_module_with_or_without_the_users_import(
    nix_eval: Any, host: str, impermanence: str
) -> None:
    """nixosModules.default alone, and next to impermanence.nixosModules.impermanence (the
    function value impermanence's flake exports, which the module system cannot tell from
    ours), or next to impermanence's nixos.nix imported by path, give what that file imported
    directly gives."""
    source = old_impermanence() if impermanence == "old" else impermanence
    users_import = f"(import {source[:-1]}/nixos.nix>)"
    own = f"({{ config, ... }}: {USERS_OWN})"
    direct = nix_eval(
        evaluated(
            IMPERMANENCE_OUTPUT,
            host=json.dumps(host),
            impermanence=source,
            extraModules=f"[ {own} ]",
        )
    )
    assert direct["failedAssertions"] == []
    assert direct["persistence"] == sorted(["/persist/cache", direct["plan"]["persistPath"]])
    # Alone; next to the function value; next to the file imported by path.
    for extra in (f"[ {own} ]", f"[ {users_import} {own} ]", f"[ {source[:-1]}/nixos.nix> {own} ]"):
        through_flake = nix_eval(
            evaluated(
                IMPERMANENCE_OUTPUT,
                host=json.dumps(host),
                impermanence=source,
                viaFlake="true",
                extraModules=extra,
            )
        )
        assert through_flake == direct


def test_flake_default_module_runs_impermanences_assertions(nix_eval: Any) -> None:
    """Alone, nixosModules.default runs impermanence's checks too (here: a home path on a
    /home that is not neededForBoot)."""
    extra = (
        '[ ({ lib, ... }: { fileSystems."/home".neededForBoot = lib.mkForce false; '
        'blankslate.users.admin.persist.directories = [ ".ssh" ]; }) ]'
    )
    messages = nix_eval(
        evaluated("failedAssertions", host='"example"', viaFlake="true", extraModules=extra)
    )
    assert any("neededForBoot" in m and "/home" in m for m in messages), messages


def test_flake_modules_have_a_file(nix_eval: Any) -> None:
    outputs = "(import ./tests/nix/flake-outputs.nix { })"
    files = nix_eval(
        f"let o = {outputs}; in [ o.nixosModules.default._file "
        "(o.nixosModules.blankslate { lib = import <nixpkgs/lib>; pkgs = { }; })._file "
        "o.nixosModules.disko._file ]"
    )
    assert [f.rsplit("/", 1)[-1] for f in files] == [
        "flake.nix#nixosModules.default",
        "flake.nix#nixosModules.blankslate",
        "flake.nix#nixosModules.disko",
    ]


# --- impermanence 2025-01 (item 5) ------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_hosts_evaluate_with_impermanence_2025_01(nix_eval: Any, host: str) -> None:
    old = old_impermanence()
    expr = evaluated(
        f"[ failedAssertions {PLAN} ]",
        host=json.dumps(host),
        impermanence=old,
        extraModules=f"[ {HOME_PATHS} ]",
    )
    messages, plan = nix_eval(expr)
    assert messages == []
    # The same plan as with today's impermanence; files without `method` are "auto".
    today = nix_eval(evaluated(PLAN, host=json.dumps(host), extraModules=f"[ {HOME_PATHS} ]"))
    assert plan == today
    assert {f["method"] for f in plan["persistence"]["files"]} == {"auto"}


def test_flake_modules_with_impermanence_2025_01(nix_eval: Any) -> None:
    old = old_impermanence()
    for module, extra in (
        ("default", "[ ]"),
        ("blankslate", f"[ (import {old[:-1]}/nixos.nix>) ]"),
    ):
        expr = evaluated(
            "failedAssertions",
            host='"example"',
            viaFlake="true",
            impermanence=old,
            flakeModule=json.dumps(module),
            extraModules=extra,
        )
        assert nix_eval(expr) == []


# --- users' home paths (item 6) ---------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_users_home_paths_evaluate_on_every_host(host_eval: Any, host: str) -> None:
    """impermanence asserts that a persisted home path's filesystem is neededForBoot."""
    assert host_eval(host, "failedAssertions", HOME_PATHS) == []
    directories = host_eval(
        host, f"map (d: d.directory) {PLAN}.persistence.directories", HOME_PATHS
    )
    assert {"/home/admin/.local/share/app", "/home/admin/.ssh"} <= set(directories)
    assert besides_placeholder(host_eval(host, "config.warnings", HOME_PATHS)) == []


@pytest.mark.parametrize("host", [h for h in HOSTS if h != "vpsfree"])
def test_home_is_mounted_in_the_initrd(host_eval: Any, host: str) -> None:
    """NixOS creates a new user's home in the activation script, before stage 2 mounts the
    rest (nixpkgs#6481): /home is in the initrd's fstab, so the home lands on /home. The tmpfs
    host lists its subvolumes without neededForBoot and the zfs host its datasets: the
    defaults (lib.nix's bootMountpoints) decide."""
    home = host_eval(host, 'config.fileSystems."/home"')
    assert home["neededForBoot"] is True and "x-initrd.mount" in home["options"]
    fstab = host_eval(host, "config.system.build.initrdFstab")
    assert [line for line in fstab if line.split()[1] == "/home"]


def test_home_filesystem_mounted_late_warns(host_eval: Any) -> None:
    extra = '{ fileSystems."/home".neededForBoot = lib.mkForce false; }'
    warnings = host_eval("example", "config.warnings", extra)
    assert any("/home/admin is on /home" in w and "nixpkgs#6481" in w for w in warnings)
