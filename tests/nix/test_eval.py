"""Evaluation of the modules and hosts: <nixpkgs/lib>, the real impermanence module,
and a model of the NixOS options our modules set, with nixpkgs' own definitions on them
(nixos-model.nix, no freeform catch-all)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from ..conftest import skip_nix_tier

pytestmark = pytest.mark.nix

REPO = Path(__file__).resolve().parents[2]
HOSTS = sorted(path.name for path in (REPO / "hosts").iterdir() if path.is_dir())
PLAN = "config.blankslate.plan"
UNIT = "config.boot.initrd.systemd.services"
ROLLBACK_UNIT = f"{UNIT}.blankslate-rollback"
PRUNE_UNIT = "config.systemd.services.blankslate-prune-old-roots"


def failed(host_eval: Any, host: str, extra: str = "") -> list[str]:
    messages: list[str] = host_eval(host, "failedAssertions", extra)
    return messages


# --- the plan ------------------------------------------------------------------------
# (each golden plan fixture is its evaluation: test_plan_fixtures.py)


def test_non_flake_entry_point_gives_the_same_plan_and_keeps_etc_nixos(
    nix_eval: Any, repo: Path
) -> None:
    if (repo / "pins.nix").exists():
        pytest.skip("pins.nix present: default.nix would fetch impermanence")
    expr = (
        'let inherit (import ./tests/nix/eval.nix { host = "example"; viaDefaultNix = true; }) '
        "config; in config.blankslate.plan"
    )
    default = json.loads((REPO / "scripts/blankslate/default-plan.json").read_text())
    evaluated = nix_eval(expr)
    # configuration.nix and pins.nix live in /etc/nixos there: it is persisted.
    directories = evaluated["persistence"]["directories"]
    assert directories[0]["directory"] == "/etc/nixos"
    evaluated["persistence"]["directories"] = directories[1:]
    assert evaluated == default


@pytest.mark.parametrize("host", HOSTS)
def test_hosts_pass_their_assertions(host_eval: Any, host: str) -> None:
    assert failed(host_eval, host) == []


@pytest.mark.parametrize("host", HOSTS)
def test_plan_json_in_etc_is_the_plan(host_eval: Any, host: str) -> None:
    text = host_eval(host, 'config.environment.etc."blankslate/plan.json".text')
    assert json.loads(text) == host_eval(host, PLAN)


def test_audit_ignore_file_is_installed_only_when_set(host_eval: Any, tmp_path: Path) -> None:
    """Not the checkout's own hosts/example/audit.yaml (README's `ignore` step writes one
    there): the option is set to nothing, then to a file of the test's."""
    names = "builtins.attrNames config.environment.etc"
    unset = "{ blankslate.audit.ignoreFile = lib.mkForce null; }"
    assert "blankslate/audit.yaml" not in host_eval("example", names, unset)
    rules = tmp_path / "audit.yaml"
    rules.write_text("ignore: []\n")
    extra = f"{{ blankslate.audit.ignoreFile = lib.mkForce {rules}; }}"
    source = host_eval(
        "example", 'toString config.environment.etc."blankslate/audit.yaml".source', extra
    )
    assert source == str(rules)


@pytest.mark.parametrize("host", HOSTS)
def test_plan_shape(host_eval: Any, host: str) -> None:
    plan = host_eval(host, PLAN)
    assert list(plan) == sorted(
        [
            "version",
            "hostName",
            "rollback",
            "persistPath",
            "disk",
            "mounts",
            "btrfs",
            "zfs",
            "tmpfs",
            "persistence",
            "users",
            "sshHostKeys",
            "audit",
            "persistSnapshots",
            "disko",
            "units",
        ]
    )
    assert plan["version"] == 2
    assert plan["hostName"] == host
    assert [u["name"] for u in plan["users"]] == sorted(u["name"] for u in plan["users"])
    for user in plan["users"]:
        assert user["hashedPasswordFile"] == f"{plan['persistPath']}/passwords/{user['name']}"
    assert plan["sshHostKeys"] == [f"{plan['persistPath']}/etc/ssh/ssh_host_ed25519_key"]
    assert set(plan["persistence"]) == {"roots", "directories", "files"}
    for directory in plan["persistence"]["directories"]:
        assert set(directory) == {"directory", "user", "group", "mode", "root", "parents"}
    for file in plan["persistence"]["files"]:
        assert set(file) == {"file", "root", "method", "parents"}


def test_users_sorted_and_passwords_under_persist_path(host_eval: Any) -> None:
    extra = (
        "{ blankslate.users.zoe = { }; "
        'blankslate.users.bob.authorizedKeys = [ "ssh-ed25519 AAAA bob" ]; }'
    )
    users = host_eval("example", f"{PLAN}.users", extra)
    keys = {"admin": [PLACEHOLDER_KEY], "bob": ["ssh-ed25519 AAAA bob"], "zoe": []}
    assert users == [
        {
            "name": name,
            "hashedPasswordFile": f"/persist/passwords/{name}",
            "authorizedKeys": keys[name],
        }
        for name in ("admin", "bob", "zoe")
    ]


PLACEHOLDER_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderReplaceMeWithYourOwnPublicKey0 admin@example"
)


def test_no_admin_key_fails_evaluation_and_the_placeholder_warns(host_eval: Any) -> None:
    """Root login is off and admins log in by key: no key at all is an error; the example's
    placeholder only a warning, so that the example hosts evaluate as templates."""
    no_key = "{ blankslate.users.admin.authorizedKeys = lib.mkForce [ ]; }"
    assert host_eval("example", "failedAssertions", no_key) == [
        "blankslate: no admin has an SSH key, so nobody could log in: set "
        "blankslate.users.admin.authorizedKeys"
    ]
    warnings = host_eval("example", "config.warnings")
    assert any("only the example's placeholder key" in warning for warning in warnings)
    own = '{ blankslate.users.admin.authorizedKeys = lib.mkForce [ "ssh-ed25519 AAAA me" ]; }'
    assert not any(
        "placeholder" in warning for warning in host_eval("example", "config.warnings", own)
    )


# --- filesystems ---------------------------------------------------------------------


# utils.fsNeededForBoot (nixos/lib/utils.nix): what the initrd mounts.
BOOT_PATHS = {
    "/",
    "/nix",
    "/nix/store",
    "/var",
    "/var/log",
    "/var/lib",
    "/var/lib/nixos",
    "/etc",
    "/usr",
}


@pytest.mark.parametrize("host", HOSTS)
def test_filesystems_are_the_plans_mount_table(host_eval: Any, host: str) -> None:
    """Every mount keeps its subvol= and options next to nixpkgs' x-initrd.mount."""
    plan = host_eval(host, PLAN)
    file_systems = host_eval(host, "config.fileSystems")
    assert set(file_systems) == {m["mountPoint"] for m in plan["mounts"]}
    for mount in plan["mounts"]:
        fs = file_systems[mount["mountPoint"]]
        assert (fs["device"], fs["fsType"], fs["neededForBoot"]) == (
            mount["device"],
            mount["fsType"],
            mount["neededForBoot"],
        )
        in_initrd = mount["neededForBoot"] or mount["mountPoint"] in BOOT_PATHS
        assert ("x-initrd.mount" in fs["options"]) == in_initrd
        ours = [option for option in fs["options"] if option != "x-initrd.mount"]
        # No options of ours: nixpkgs' default ["defaults"], unless x-initrd.mount replaced it.
        assert ours == (mount["options"] or ([] if in_initrd else ["defaults"]))


def test_example_mounts_subvolumes_not_the_top_level(host_eval: Any) -> None:
    """The regression a real evaluation found: mkDefault options lost every subvol=."""
    file_systems = host_eval("example", "config.fileSystems")
    for mount_point, subvolume in (("/", "root"), ("/nix", "nix"), ("/persist", "persist")):
        options = file_systems[mount_point]["options"]
        assert f"subvol={subvolume}" in options and "compress=zstd" in options
        assert "x-initrd.mount" in options


@pytest.mark.parametrize("host", HOSTS)
def test_swap_devices_are_the_plans_swap_partitions(host_eval: Any, host: str) -> None:
    plan = host_eval(host, PLAN)
    partitions = plan["disk"]["partitions"] if plan["disk"] else []
    swaps = [
        {"device": p["device"], "options": ["defaults"]}
        for p in partitions
        if p["format"] == "swap"
    ]
    assert host_eval(host, "config.swapDevices") == swaps


@pytest.mark.parametrize("size", ["0", "0G", "0GiB"])
def test_no_swap_when_swap_size_is_zero(host_eval: Any, size: str) -> None:
    extra = f'{{ blankslate.disk.swapSize = lib.mkForce "{size}"; }}'
    assert host_eval("example", "config.swapDevices", extra) == []
    formats = host_eval("example", f"map (p: p.format) {PLAN}.disk.partitions", extra)
    assert formats == ["vfat", "btrfs"]


SUBVOLUME_LINES = [
    f"/dev/disk/by-label/nixos {target} btrfs "
    f"x-initrd.mount,subvol={name},compress=zstd,noatime 0 0"
    for target, name in (
        ("/home", "home"),
        ("/nix", "nix"),
        ("/persist", "persist"),
        ("/var/log", "log"),
    )
]
INITRD_FSTAB = {
    "example": [
        "/dev/disk/by-label/nixos / btrfs x-initrd.mount,subvol=root,compress=zstd,noatime 0 0",
        *SUBVOLUME_LINES,
    ],
    "tmpfs": ["tmpfs / tmpfs x-initrd.mount,mode=755,size=2G 0 0", *SUBVOLUME_LINES],
    "zfs": [
        "rpool/local/root / zfs x-initrd.mount 0 0",
        "rpool/safe/home /home zfs x-initrd.mount 0 0",
        "rpool/local/nix /nix zfs x-initrd.mount 0 0",
        "rpool/safe/persist /persist zfs x-initrd.mount 0 0",
        "rpool/safe/log /var/log zfs x-initrd.mount 0 0",
    ],
    "vpsfree": [],
}


@pytest.mark.parametrize("host", HOSTS)
def test_initrd_fstab_lines(host_eval: Any, host: str) -> None:
    assert host_eval(host, "config.system.build.initrdFstab") == INITRD_FSTAB[host]


def test_filesystem_scalars_can_be_overridden(host_eval: Any) -> None:
    extra = '{ fileSystems."/".device = "/dev/mapper/root"; }'
    assert host_eval("example", 'config.fileSystems."/".device', extra) == "/dev/mapper/root"
    forced = '{ fileSystems."/".options = lib.mkForce [ "subvol=other" ]; }'
    assert host_eval("example", 'config.fileSystems."/".options', forced) == ["subvol=other"]


def test_older_impermanence_defining_filesystems_does_not_recurse(host_eval: Any) -> None:
    """impermanence before September 2025 defined fileSystems from the persistence lists."""
    extra = (
        "{ fileSystems = lib.listToAttrs (map (d: lib.nameValuePair d.dirPath "
        '{ device = "/persist${d.dirPath}"; fsType = "none"; options = [ "bind" ]; }) '
        'config.environment.persistence."/persist".directories); }'
    )
    directories = "map (d: d.directory) config.blankslate.plan.persistence.directories"
    expr = f"builtins.attrNames config.fileSystems ++ {directories}"
    names = host_eval("example", expr, extra)
    assert "/var/lib/nixos" in names


def test_vpsfree_leaves_the_filesystems_to_the_platform(host_eval: Any) -> None:
    plan = host_eval("vpsfree", PLAN)
    assert plan["rollback"] == "none"
    assert plan["persistPath"] == "/persistent"
    assert plan["disk"] is None and plan["btrfs"] is None and plan["zfs"] is None
    file_systems = host_eval("vpsfree", "config.fileSystems")
    assert "/" not in file_systems and "/nix" not in file_systems
    assert "blankslate-rollback" not in host_eval("vpsfree", f"{UNIT} or {{ }}")


def test_zfs_datasets_are_legacy_zfs_mounts(host_eval: Any) -> None:
    plan = host_eval("zfs", PLAN)
    file_systems = host_eval("zfs", "config.fileSystems")
    devices = {fs["device"] for fs in file_systems.values() if fs["fsType"] == "zfs"}
    assert devices == {f"{plan['zfs']['pool']}/{name}" for name in plan["zfs"]["datasets"]}
    assert file_systems["/persist"]["neededForBoot"] is True


def test_tmpfs_root(host_eval: Any) -> None:
    file_systems = host_eval("tmpfs", "config.fileSystems")
    root = file_systems["/"]
    assert (root["device"], root["fsType"]) == ("tmpfs", "tmpfs")
    assert root["options"] == ["x-initrd.mount", "mode=755", "size=2G"]
    assert file_systems["/nix"]["neededForBoot"] is True
    assert file_systems["/persist"]["neededForBoot"] is True
    assert "subvol=nix" in file_systems["/nix"]["options"]
    btrfs = host_eval("tmpfs", PLAN)["btrfs"]
    assert btrfs["rootSubvolume"] is None and btrfs["blankSnapshot"] is None
    assert btrfs["oldRoots"] is None
    assert "root" not in btrfs["subvolumes"]
    assert "blankslate-rollback" not in host_eval("tmpfs", f"{UNIT} or {{ }}")


# --- persistence through the real impermanence module ------------------------------


def test_environment_persistence_comes_from_impermanence(host_eval: Any, nix_paths: Any) -> None:
    declared = host_eval("example", "options.environment.persistence.declarations")
    assert str(nix_paths["impermanence"] / "nixos.nix") in declared
    persistence = 'config.environment.persistence."/persist"'
    assert host_eval("example", f"{persistence}.hideMounts") is True
    # dirPath and persistentStoragePath are computed by impermanence's submodule.
    directories = host_eval(
        "example",
        f"map (d: {{ inherit (d) dirPath persistentStoragePath mode; }}) {persistence}.directories",
    )
    assert directories == [
        {"dirPath": path, "persistentStoragePath": "/persist", "mode": mode}
        for path, mode in (
            ("/var/lib/blankslate", "0700"),  # the scheduled audit's reports
            ("/var/lib/nixos", "0755"),
            ("/var/lib/systemd", "0755"),
            ("/var/lib/dhcpcd", "0755"),  # nixpkgs' dhcpcd runs by default (networking.useDHCP)
        )
    ]
    files = host_eval("example", f"map (f: f.filePath) {persistence}.files")
    assert files == ["/etc/machine-id"]


def test_impermanence_generates_its_mounts(host_eval: Any) -> None:
    where = host_eval("example", "map (m: m.where) config.systemd.mounts")
    assert where == ["/var/lib/blankslate", "/var/lib/nixos", "/var/lib/systemd", "/var/lib/dhcpcd"]
    # /var/lib/nixos is needed for boot: impermanence bind-mounts it in the initrd.
    initrd = host_eval("example", "map (m: m.where) config.boot.initrd.systemd.mounts")
    assert initrd == ["/sysroot/var/lib/nixos"]


def test_persisted_entries_are_coerced_and_deduplicated(host_eval: Any) -> None:
    extra = (
        '{ blankslate.persistence.directories = [ { directory = "/srv"; mode = "0700"; } '
        '"/var/lib/nixos" ]; blankslate.persistence.files = [ "/etc/adjtime" ]; }'
    )
    persistence = host_eval("example", "config.blankslate.plan.persistence", extra)
    directories = persistence["directories"]
    owners = [(d["directory"], d["user"], d["group"], d["mode"]) for d in directories]
    assert owners == [
        ("/srv", "root", "root", "0700"),
        ("/var/lib/blankslate", "root", "root", "0700"),
        ("/var/lib/dhcpcd", "dhcpcd", "dhcpcd", "0755"),
        ("/var/lib/nixos", "root", "root", "0755"),
        ("/var/lib/systemd", "root", "root", "0755"),
    ]
    assert [f["file"] for f in persistence["files"]] == ["/etc/adjtime", "/etc/machine-id"]


def test_var_log_persisted_only_without_its_own_filesystem(host_eval: Any) -> None:
    dirs = "map (d: d.directory) config.blankslate.plan.persistence.directories"
    assert "/var/log" not in host_eval("example", dirs)
    assert "/var/log" in host_eval("vpsfree", dirs)


def test_vpsfree_persists_at_least_the_seed_list(host_eval: Any) -> None:
    hide = host_eval("vpsfree", 'config.environment.persistence."/persistent".hideMounts')
    dirs = host_eval(
        "vpsfree", 'map (d: d.directory) config.environment.persistence."/persistent".directories'
    )
    files = host_eval(
        "vpsfree", 'map (f: f.file) config.environment.persistence."/persistent".files'
    )
    assert hide is True
    assert {"/etc/nixos", "/var/log", "/var/lib/nixos"} <= set(dirs)
    assert len(dirs) == len(set(dirs)), "duplicates would trip impermanence's assertion"
    assert "/etc/machine-id" in files


# --- rollback units ------------------------------------------------------------------


def exec_start(unit: dict[str, Any]) -> list[str]:
    """The unit's command; it runs on the initrd's own /bin, with no PATH of its own, and
    bash by its store path: /bin/bash is there only while initrdBin holds bash."""
    assert unit["path"] == [] and unit["script"] == "" and "PATH" not in unit["environment"]
    command = shlex.split(unit["serviceConfig"]["ExecStart"])
    assert command[0].startswith("/nix/store/") and command[0].endswith("-bash/bin/bash")
    return command


INITRD_UNITS = [
    ("example", "blankslate-rollback"),
    ("zfs", "blankslate-rollback"),
    ("tmpfs", "blankslate-record"),
]


@pytest.mark.parametrize(("host", "name"), INITRD_UNITS)
def test_initrd_units_run_store_paths_the_initrd_holds(
    host_eval: Any, host: str, name: str
) -> None:
    """bash and the script the unit runs are store paths in boot.initrd.systemd.storePaths,
    so an initrd without bash in /bin (initrdBin) still runs the rollback."""
    unit = host_eval(host, f"config.boot.initrd.systemd.services.{name}")
    command = exec_start(unit)
    store_paths = host_eval(
        host, "map (p: toString p.source) config.boot.initrd.systemd.storePaths"
    )
    assert command[0] in store_paths
    script_dir = command[1].rsplit("/", 1)[0]
    assert script_dir in store_paths
    # without bashInteractive in initrdBin (an initrd with no shell in /bin), the same
    without = "{ boot.initrd.systemd.initrdBin = lib.mkForce [ ]; }"
    again = exec_start(host_eval(host, f"config.boot.initrd.systemd.services.{name}", without))
    assert again == command
    assert command[0] in host_eval(
        host, "map (p: toString p.source) config.boot.initrd.systemd.storePaths", without
    )


@pytest.mark.parametrize("host", ["example", "zfs"])
def test_rollback_unit_programs_are_in_the_initrd_bin(host_eval: Any, host: str) -> None:
    """bash from initrdBin; btrfs, find (example) or zfs (zfs) from initrdBin or extraBin."""
    packages = host_eval(host, "map (p: p.pname) config.boot.initrd.systemd.initrdBin")
    extra = host_eval(host, "builtins.attrNames config.boot.initrd.systemd.extraBin")
    assert {"bashInteractive", "coreutils"} <= set(packages)
    assert {"mount", "umount"} <= set(extra)
    if host == "example":
        assert {"btrfs-progs", "findutils"} <= set(packages)
    else:
        assert {"zfs", "zpool"} <= set(extra)
        assert host_eval(host, "config.boot.zfs.devNodes") == "/dev/disk/by-partuuid"


def test_btrfs_rollback_unit(host_eval: Any) -> None:
    unit = host_eval("example", ROLLBACK_UNIT)
    device = "dev-disk-by\\x2dlabel-nixos.device"
    assert unit["wantedBy"] == ["initrd.target"]
    assert unit["requires"] == [device]
    assert device in unit["after"] and "local-fs-pre.target" in unit["after"]
    assert "initrd-root-device.target" not in unit["after"] + unit["requires"]
    assert unit["before"] == ["sysroot.mount"]
    assert unit["unitConfig"]["DefaultDependencies"] == "no"
    assert unit["serviceConfig"]["Type"] == "oneshot"
    command = exec_start(unit)
    assert command[1].startswith("/nix/store/") and command[1].endswith("/btrfs-rollback.bash")
    # the initrd prunes within pruneBudget (5 s by default); no quota by default
    assert command[2:] == [
        "--prune-budget",
        "5",
        "/dev/disk/by-label/nixos",
        "root",
        "root-blank",
        "old_roots",
        "30",
        "3",
        "30",
    ]
    store_paths = host_eval(
        "example", "map (p: toString p.source) config.boot.initrd.systemd.storePaths"
    )
    # the script travels into the initrd with its unit, beside the library it sources
    scripts = command[1].removesuffix("/btrfs-rollback.bash")
    assert scripts in store_paths
    assert host_eval("example", "config.boot.initrd.systemd.enable") is True
    assert "btrfs" in host_eval("example", "config.boot.initrd.supportedFilesystems")


def test_btrfs_rollback_waits_for_cryptsetup_and_escapes_the_label(host_eval: Any) -> None:
    extra = (
        '{ blankslate.btrfs.cryptsetupName = "cryptroot"; '
        'blankslate.disk.label = lib.mkForce "my-root"; }'
    )
    unit = host_eval("example", ROLLBACK_UNIT, extra)
    device = "dev-disk-by\\x2dlabel-my\\x2droot.device"
    assert unit["requires"] == [device, "systemd-cryptsetup@cryptroot.service"]
    assert "systemd-cryptsetup@cryptroot.service" in unit["after"]
    assert device in unit["after"]


def test_btrfs_rollback_budget_and_root_quota_options(host_eval: Any) -> None:
    extra = '{ blankslate.btrfs.oldRoots.pruneBudget = 0; blankslate.btrfs.rootQuota = "20G"; }'
    command = exec_start(host_eval("example", ROLLBACK_UNIT, extra))
    assert command[2:6] == ["--prune-budget", "0", "--root-quota", "20G"]
    assert command[6:] == [
        "/dev/disk/by-label/nixos",
        "root",
        "root-blank",
        "old_roots",
        "30",
        "3",
        "30",
    ]
    # the stage-2 run has no budget; the quota makes it rescan inconsistent quota data
    prune = shlex.split(host_eval("example", PRUNE_UNIT, extra)["serviceConfig"]["ExecStart"])
    assert prune[2:5] == ["--prune-only", "--root-quota", "20G"]
    assert prune[5:] == command[6:]


def rollback_exec_start_with(extra: str) -> str:
    """The example host's rollback ExecStart with EXTRA (a Nix module) added."""
    return (
        'let e = import ./tests/nix/eval.nix { host = "example"; '
        f"extraModules = [ ({extra}) ]; }}; in e.{ROLLBACK_UNIT}.serviceConfig.ExecStart"
    )


@pytest.mark.parametrize("quota", ["0", "20GiB", "1.5G", "-1", "20 G", "", "20g"])
def test_root_quota_rejects_what_the_script_refuses(nix_run: Any, quota: str) -> None:
    result = nix_run(rollback_exec_start_with(f'{{ blankslate.btrfs.rootQuota = "{quota}"; }}'))
    assert result.returncode != 0
    assert "blankslate.btrfs.rootQuota' is not of type" in result.stderr


def test_btrfs_prune_unit_finishes_what_the_initrd_left(host_eval: Any) -> None:
    """Stage 2: the same script, --prune-only, the same rules, after time-sync.target, at
    the lowest CPU and I/O priority, and not a oneshot the end of the boot waits for."""
    unit = host_eval("example", PRUNE_UNIT)
    command = shlex.split(unit["serviceConfig"]["ExecStart"])
    initrd = exec_start(host_eval("example", ROLLBACK_UNIT))
    assert command[0] == initrd[0]  # the same bash, by its store path
    assert command[1] == initrd[1]  # the very script the initrd runs
    assert command[2:] == ["--prune-only", *initrd[4:]]
    assert unit["wantedBy"] == ["multi-user.target"]
    assert {"time-sync.target", "local-fs.target"} <= set(unit["after"])
    config = unit["serviceConfig"]
    assert config["Type"] == "exec"
    assert config["Nice"] == 19 and config["IOSchedulingClass"] == "idle"
    assert config["PrivateMounts"] is True
    tools = {path.split("-", 1)[1] for path in unit["path"]}
    assert {"coreutils", "util-linux", "btrfs-progs", "findutils"} <= tools


@pytest.mark.parametrize("host", ["tmpfs", "zfs", "vpsfree"])
def test_no_prune_unit_without_the_btrfs_rollback(host_eval: Any, host: str) -> None:
    names = host_eval(host, "builtins.attrNames config.systemd.services")
    assert "blankslate-prune-old-roots" not in names


def test_scripted_initrd_runs_after_resume(host_eval: Any) -> None:
    extra = "{ boot.initrd.systemd.enable = lib.mkForce false; }"
    commands = host_eval("example", "config.boot.initrd.postResumeCommands", extra)
    words = shlex.split(commands)
    assert words[:2] == ["bash", "-c"]
    # The scripted initrd has no store paths: the script itself travels inline.
    assert words[2] == (
        (REPO / "modules/rollback/kept.bash").read_text()
        + "\n"
        + (REPO / "modules/rollback/record.bash").read_text()
        + "\n"
        + (REPO / "modules/rollback/btrfs-rollback.bash").read_text()
    )
    assert words[3:] == [
        "btrfs-rollback.bash",
        "--prune-budget",
        "5",
        "/dev/disk/by-label/nixos",
        "root",
        "root-blank",
        "old_roots",
        "30",
        "3",
        "30",
    ]
    assert "postDeviceCommands" not in host_eval(
        "example", "builtins.attrNames config.boot.initrd", extra
    )


def test_zfs_rollback_unit(host_eval: Any) -> None:
    unit = host_eval("zfs", ROLLBACK_UNIT)
    assert unit["wantedBy"] == ["initrd.target"]
    assert "zfs-import-rpool.service" in unit["after"]
    assert "zfs-import-rpool.service" in unit["requires"]
    assert unit["before"] == ["sysroot.mount"]
    assert unit["unitConfig"]["DefaultDependencies"] == "no"
    assert unit["serviceConfig"]["Type"] == "oneshot"
    assert exec_start(unit)[2:] == ["rpool/local/root", "blank"]
    files = host_eval("zfs", "map (f: f.file) config.blankslate.plan.persistence.files")
    assert "/etc/zfs/zpool.cache" in files


# --- assertions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "extra", "expected"),
    [
        (
            "example",
            '{ blankslate.btrfs.blankSnapshot = lib.mkForce "root"; }',
            'btrfs.blankSnapshot "root" and btrfs.rootSubvolume "root" are the same or nested',
        ),
        (
            "example",
            '{ fileSystems."/persist".neededForBoot = lib.mkForce false; }',
            "persistPath /persist must be on its own filesystem with neededForBoot",
        ),
        (
            "example",
            '{ blankslate.persistPath = lib.mkForce "/state"; }',
            "persistPath /state must be on its own filesystem",
        ),
        (
            "example",
            '{ blankslate.persistence.directories = [ "/" ]; }',
            '"/" cannot be persisted whole',
        ),
        (
            "zfs",
            "{ networking.hostId = lib.mkForce null; }",
            'rollback "zfs" needs networking.hostId',
        ),
        (
            "vpsfree",
            "{ blankslate.platform.mountsPersistPath = lib.mkForce false; }",
            'with rollback "none", declare fileSystems."/persistent"',
        ),
        (
            "tmpfs",
            '{ blankslate.btrfs.subvolumes = [ { name = "root"; mountpoint = "/"; } ]; }',
            "remove the btrfs subvolume mounted on /",
        ),
    ],
    ids=[
        "blank-is-root",
        "persist-not-needed-for-boot",
        "persist-on-root",
        "root-persisted",
        "zfs-without-host-id",
        "none-without-persist-mount",
        "tmpfs-with-root-subvolume",
    ],
)
def test_assertions_fire(host_eval: Any, host: str, extra: str, expected: str) -> None:
    messages = failed(host_eval, host, extra)
    assert any(expected in message for message in messages), messages


# --- hardening -----------------------------------------------------------------------


def test_sshd_and_users(host_eval: Any) -> None:
    openssh = host_eval("example", "config.services.openssh")
    assert openssh["enable"] is True
    assert openssh["settings"] == {
        "PasswordAuthentication": False,
        "KbdInteractiveAuthentication": False,
        "PermitRootLogin": "no",
        "X11Forwarding": False,
        "AllowAgentForwarding": False,
        "AllowStreamLocalForwarding": False,
        "AuthenticationMethods": "publickey",
    }
    assert openssh["hostKeys"] == [
        {"type": "ed25519", "path": "/persist/etc/ssh/ssh_host_ed25519_key"}
    ]
    users = host_eval("example", "config.users")
    assert users["mutableUsers"] is False
    admin = users["users"]["admin"]
    assert admin["isNormalUser"] is True
    assert admin["extraGroups"] == ["wheel"]
    assert admin["hashedPasswordFile"] == "/persist/passwords/admin"
    assert len(admin["openssh"]["authorizedKeys"]["keys"]) == 1
    sudo = host_eval("example", "config.security.sudo")
    assert sudo == {"enable": True, "extraConfig": "Defaults lecture = never", "extraRules": []}
    assert host_eval("example", "config.networking.firewall.enable") is True


def test_hardening_defaults_can_be_overridden(host_eval: Any) -> None:
    extra = (
        '{ services.openssh.settings.PermitRootLogin = "prohibit-password"; '
        "users.mutableUsers = true; }"
    )
    assert host_eval("example", "config.services.openssh.settings.PermitRootLogin", extra) == (
        "prohibit-password"
    )
    assert host_eval("example", "config.users.mutableUsers", extra) is True


def test_disabled_module_sets_nothing(host_eval: Any) -> None:
    extra = "{ blankslate.enable = lib.mkForce false; }"
    config = host_eval("example", 'builtins.removeAttrs config [ "blankslate" ]', extra)
    assert config["fileSystems"] == {} and config["swapDevices"] == []
    assert config["services"]["openssh"]["enable"] is False
    assert config["environment"]["persistence"] == {} and config["environment"]["etc"] == {}
    assert config["boot"]["initrd"]["systemd"]["services"] == {}


# --- colmena hive and flake outputs --------------------------------------------------


def test_colmena_hive(nix_eval: Any) -> None:
    hive = (
        "import ./hive.nix { lib = import <nixpkgs/lib>; "
        'pkgs = throw "no nixpkgs here"; modules = [ ]; }'
    )
    assert nix_eval(f"builtins.attrNames ({hive})") == sorted([*HOSTS, "meta"])
    # colmena's own option (its nixos module declares deployment.targetHost, a nullable string).
    colmena = (
        "{ options.deployment.targetHost = "
        "lib.mkOption { type = lib.types.nullOr lib.types.str; }; "
        "options.deployment.targetUser = "
        'lib.mkOption { type = lib.types.nullOr lib.types.str; default = "root"; }; }'
    )
    node = (
        "(import ./tests/nix/eval.nix { extraModules = [ "
        f"({{ lib, ... }}: {colmena}) ({hive}).example {{0}} ]; }})"
    )
    target = "config.deployment.targetHost"
    assert nix_eval(node.replace("{0}", "") + f".{target}") == "example"
    override = '{ blankslate.deployment.targetHost = "203.0.113.7"; }'
    assert nix_eval(node.replace("{0}", override) + f".{target}") == "203.0.113.7"
    assert nix_eval(node.replace("{0}", "") + ".config.blankslate.plan.hostName") == "example"
    user = "config.deployment.targetUser"
    assert nix_eval(node.replace("{0}", "") + f".{user}") == "root"  # colmena's default
    deploy = '{ blankslate.ssh.deploy.user = "deploy"; }'
    assert nix_eval(node.replace("{0}", deploy) + f".{user}") == "deploy"


OWN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ3Yr8QJ5wxBcz0ZNrqGdM1JW6rnWOvK2ykXf6wzM1c me@laptop"


@pytest.mark.parametrize("host", HOSTS)
def test_deploy_is_off_by_default_root_by_key_or_a_user_of_its_own(
    host: str, host_eval: Any
) -> None:
    """blankslate.ssh.deploy: nobody by default; "root" by key only; a named user by key,
    with sudo without a password and trusted by the Nix daemon."""
    view = """{
      root = config.services.openssh.settings.PermitRootLogin;
      rootKeys = config.users.users.root.openssh.authorizedKeys.keys;
      users = builtins.attrNames config.users.users;
      sudo = config.security.sudo.extraRules;
      trusted = config.nix.settings.trusted-users;
      inherit failedAssertions;
    }"""
    off = host_eval(host, view)
    assert (off["root"], off["rootKeys"], off["sudo"]) == ("no", [], [])
    assert off["trusted"] == ["root"] and "deploy" not in off["users"]

    as_root = host_eval(host, view, '{ blankslate.ssh.deploy.user = "root"; }')
    assert as_root["root"] == "prohibit-password"
    assert as_root["rootKeys"] == host_eval(host, "config.blankslate.users.admin.authorizedKeys")
    assert as_root["failedAssertions"] == []

    extra = f'{{ blankslate.ssh.deploy = {{ user = "deploy"; authorizedKeys = [ "{OWN}" ]; }}; }}'
    as_user = host_eval(host, view, extra)
    assert as_user["root"] == "no" and "deploy" in as_user["users"]
    assert as_user["trusted"] == ["root", "deploy"]  # nixpkgs' root kept: a list, merged
    (rule,) = as_user["sudo"]
    assert rule["users"] == ["deploy"]
    assert rule["commands"] == [{"command": "ALL", "options": ["NOPASSWD"]}]
    keys = host_eval(host, "config.users.users.deploy.openssh.authorizedKeys.keys", extra)
    assert keys == [OWN]
    assert as_user["failedAssertions"] == []


def test_deploy_user_must_not_be_an_admin(host_eval: Any) -> None:
    failed = host_eval("example", "failedAssertions", '{ blankslate.ssh.deploy.user = "admin"; }')
    assert any("is an admin too" in message for message in failed)


FAKE_INPUTS = """
let
  lib = import <nixpkgs/lib>;
  flake = import ./flake.nix;
  impermanence = {
    outPath = <impermanence>;
    nixosModules.impermanence = import <impermanence/nixos.nix>;
  };
  disko = { nixosModules.disko = import ./tests/nix/disko-module.nix; };
  nixpkgs = {
    inherit lib;
    outPath = throw "no nixpkgs here";
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (_: { });
  };
  outputs = flake.outputs { self = outputs; inherit nixpkgs impermanence disko; };
in
"""


def test_flake_outputs(nix_eval: Any) -> None:
    summary = nix_eval(
        FAKE_INPUTS
        + """{
          top = builtins.attrNames outputs;
          hosts = builtins.attrNames outputs.nixosConfigurations;
          colmena = builtins.attrNames outputs.colmena;
          apps = builtins.mapAttrs (_: builtins.attrNames) outputs.apps;
          packages = builtins.mapAttrs (_: builtins.attrNames) outputs.packages;
          follows = flake.inputs.impermanence.inputs.nixpkgs.follows;
          imports = builtins.length outputs.nixosModules.default.imports;
        }"""
    )
    assert {
        "nixosModules",
        "nixosConfigurations",
        "packages",
        "apps",
        "checks",
        "formatter",
        "colmena",
    } <= set(summary["top"])
    assert summary["hosts"] == HOSTS
    assert summary["colmena"] == sorted([*HOSTS, "meta"])
    for system in ("x86_64-linux", "aarch64-linux"):
        assert summary["apps"][system] == sorted(
            ["default", "install", "diff", "seed", "passwd", "mount"]
        )
        assert summary["packages"][system] == ["default"]
    assert summary["follows"] == "nixpkgs"
    assert summary["imports"] == 2


def test_flake_lock_pins(nix_paths: Any) -> None:
    lock = json.loads((REPO / "flake.lock").read_text())
    nodes = lock["nodes"]
    assert nodes["root"]["inputs"] == {
        "disko": "disko",
        "impermanence": "impermanence",
        "nixpkgs": "nixpkgs",
    }
    assert nodes["disko"]["inputs"]["nixpkgs"] == ["nixpkgs"]
    assert nodes["impermanence"]["inputs"]["nixpkgs"] == ["nixpkgs"]
    assert nodes["home-manager"]["inputs"]["nixpkgs"] == ["impermanence", "nixpkgs"]
    upstream_path = nix_paths["impermanence"] / "flake.lock"
    if not upstream_path.exists():
        skip_nix_tier("<impermanence> has no flake.lock to compare with")
    upstream = json.loads(upstream_path.read_text())["nodes"]
    if upstream["home-manager"]["locked"] != nodes["home-manager"]["locked"]:
        skip_nix_tier("<impermanence> is another revision than the locked one")
    # The nixpkgs pin is impermanence's own.
    assert nodes["nixpkgs"]["locked"] == upstream["nixpkgs"]["locked"]


VM_NODE = """
let
  test = import ./tests/vm/rollback.nix {
    pkgs = { testers.runNixOSTest = test: test; };
    blankslateModule = { };
  };
  # qemu-vm.nix's options that the node sets (nixos/modules/virtualisation/qemu-vm.nix).
  qemuVm = { lib, ... }: {
    options.virtualisation.useDefaultFilesystems = lib.mkOption { type = lib.types.bool; };
    options.virtualisation.fileSystems = lib.mkOption { type = lib.types.attrsOf lib.types.attrs; };
  };
in
import ./tests/nix/eval.nix { extraModules = [ qemuVm test.nodes.machine ]; }
"""


def test_vm_test_node_evaluates(nix_eval: Any) -> None:
    """The VM test cannot run here; its node still evaluates, with the plan's btrfs mounts."""
    node = f"({VM_NODE})"
    assert nix_eval(f"{node}.failedAssertions") == []
    file_systems = nix_eval(f"{node}.config.virtualisation.fileSystems")
    assert sorted(file_systems) == ["/", "/persist", "/var/log"]
    assert file_systems["/"]["options"] == ["subvol=root", "compress=zstd", "noatime"]
    unit = nix_eval(f"{node}.config.boot.initrd.systemd.services.blankslate-test-format")
    assert unit["before"] == ["blankslate-rollback.service"]
    assert "btrfs subvolume snapshot -r" in unit["script"]


# --- keepMax and the boot record ---------------------------------------------------------


def test_keep_max_null_drops_the_seventh_argument(host_eval: Any) -> None:
    extra = "{ blankslate.btrfs.oldRoots.keepMax = null; }"
    initrd = exec_start(host_eval("example", ROLLBACK_UNIT, extra))
    assert initrd[-2:] == ["30", "3"] and len(initrd) == 10
    prune = shlex.split(host_eval("example", PRUNE_UNIT, extra)["serviceConfig"]["ExecStart"])
    assert prune[-2:] == ["30", "3"]
    assert host_eval("example", PLAN, extra)["btrfs"]["oldRoots"]["keepMax"] is None


def test_keep_max_reaches_both_runs_and_the_plan(host_eval: Any) -> None:
    extra = "{ blankslate.btrfs.oldRoots.keepMax = 7; }"
    initrd = exec_start(host_eval("example", ROLLBACK_UNIT, extra))
    prune = shlex.split(host_eval("example", PRUNE_UNIT, extra)["serviceConfig"]["ExecStart"])
    assert initrd[-3:] == prune[-3:] == ["30", "3", "7"]
    assert host_eval("example", PLAN, extra)["btrfs"]["oldRoots"]["keepMax"] == 7


@pytest.mark.parametrize("value", ["0", "1000000", "(-1)", '"3"'])
def test_keep_max_rejects_what_the_script_refuses(nix_run: Any, value: str) -> None:
    extra = f"{{ blankslate.btrfs.oldRoots.keepMax = {value}; }}"
    result = nix_run(rollback_exec_start_with(extra))
    assert result.returncode != 0
    assert "blankslate.btrfs.oldRoots.keepMax' is not of type" in result.stderr


RECORD_UNIT = f"{UNIT}.blankslate-record"
NONE_WITH_INITRD = "{ boot.isContainer = lib.mkForce false; }"


@pytest.mark.parametrize(("host", "extra", "args"), [
    ("tmpfs", "", ["tmpfs", "/sysroot"]),
    ("vpsfree", NONE_WITH_INITRD, ["none"]),
])  # fmt: skip
def test_record_unit_runs_once_root_is_mounted(
    host_eval: Any, host: str, extra: str, args: list[str]
) -> None:
    unit = host_eval(host, RECORD_UNIT, extra)
    assert unit["wantedBy"] == ["initrd.target"]
    assert unit["after"] == ["sysroot.mount"]
    assert {"initrd-root-fs.target", "initrd-fs.target"} <= set(unit["before"])
    assert unit["unitConfig"]["DefaultDependencies"] == "no"
    assert unit["serviceConfig"]["Type"] == "oneshot"
    command = exec_start(unit)
    assert command[1].endswith("/record-root.bash")
    assert command[2:] == args
    store_paths = host_eval(
        host, "map (p: toString p.source) config.boot.initrd.systemd.storePaths", extra
    )
    assert command[0] in store_paths and command[1].rsplit("/", 1)[0] in store_paths


def test_no_record_step_without_an_initrd(host_eval: Any) -> None:
    """vpsFree runs as a container, without an initrd: nothing records (the reader takes a
    missing record on kind none as skipped)."""
    assert host_eval("vpsfree", "config.boot.initrd.enable") is False
    names = host_eval("vpsfree", f"builtins.attrNames {UNIT}")
    assert "blankslate-record" not in names
    assert "record-root.bash" not in host_eval("vpsfree", "config.boot.initrd.postMountCommands")


@pytest.mark.parametrize(("host", "extra", "args"), [
    ("tmpfs", "", ["tmpfs", "/mnt-root"]),
    ("vpsfree", NONE_WITH_INITRD, ["none"]),
])  # fmt: skip
def test_scripted_initrd_records_after_mounting(
    host_eval: Any, host: str, extra: str, args: list[str]
) -> None:
    scripted = "{ boot.initrd.systemd.enable = lib.mkForce false; }"
    both = f"lib.mkMerge [ {scripted} {extra or '{ }'} ]"
    words = shlex.split(host_eval(host, "config.boot.initrd.postMountCommands", both))
    text = (
        (REPO / "modules/rollback/record.bash").read_text()
        + "\n"
        + (REPO / "modules/rollback/record-root.bash").read_text()
    )
    # among the other modules' commands (impermanence's mounts), ours, whole
    (i,) = [i for i in range(len(words) - 2) if words[i : i + 3] == ["bash", "-c", text]]
    assert words[i + 3 : i + 4 + len(args)] == ["record-root.bash", *args]
    assert "bash/bin/bash" in host_eval(host, "config.boot.initrd.extraUtilsCommands", both)


def test_zfs_scripted_initrd_carries_the_record_library(host_eval: Any) -> None:
    extra = "{ boot.initrd.systemd.enable = lib.mkForce false; }"
    words = shlex.split(host_eval("zfs", "config.boot.initrd.postResumeCommands", extra))
    text = (
        (REPO / "modules/rollback/record.bash").read_text()
        + "\n"
        + (REPO / "modules/rollback/zfs-rollback.bash").read_text()
    )
    # after the name rules' assignments (rules.json), ours, whole
    (i,) = [i for i in range(len(words) - 2) if words[i : i + 3] == ["bash", "-c", text]]
    assert words[i + 3 :] == ["zfs-rollback.bash", "rpool/local/root", "blank"]
