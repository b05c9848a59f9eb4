"""Server defaults that lose state on a stock NixOS (issue 24): dhcpcd's state, DynamicUser
services' /var/lib/private, Home Manager's home.persistence, Nix's build directory on a tmpfs
root, and /var/lib/nixos without an initrd (vpsFree.cz)."""

from __future__ import annotations

from typing import Any

from .conftest import besides_placeholder

PERSISTENCE = "config.blankslate.plan.persistence"
WARNINGS = "config.warnings"
DHCPCD_WARNING = "blankslate: service dhcpcd keeps its state in /var/lib/dhcpcd"


def directories(persistence: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["directory"]: entry for entry in persistence["directories"]}


def dhcpcd_entry(host_eval: Any, host: str, extra: str = "") -> dict[str, Any] | None:
    return directories(host_eval(host, PERSISTENCE, extra)).get("/var/lib/dhcpcd")


# --- dhcpcd ------------------------------------------------------------------------------------


def test_the_model_runs_dhcpcd_with_its_state_directory_by_default(host_eval: Any) -> None:
    """nixpkgs' dhcpcd.nix, as the model mirrors it: on with networking.useDHCP's default."""
    service = host_eval("example", "config.systemd.services.dhcpcd.serviceConfig")
    assert service["StateDirectory"] == "dhcpcd"
    assert (service["User"], service["Group"]) == ("dhcpcd", "dhcpcd")


def test_without_the_default_the_state_directory_warning_fires(host_eval: Any) -> None:
    """What every default host printed at every build before: nothing kept /var/lib/dhcpcd."""
    warnings = host_eval("example", WARNINGS, "{ blankslate.persistence.serverDefaults = false; }")
    assert any(w.startswith(DHCPCD_WARNING) for w in warnings), warnings


def test_dhcpcd_state_is_a_server_default(host_eval: Any) -> None:
    for host in ("example", "tmpfs", "zfs", "vpsfree"):
        entry = dhcpcd_entry(host_eval, host)
        assert entry is not None, host
        # As systemd makes a StateDirectory for User=dhcpcd: the user's, 0755.
        assert (entry["user"], entry["group"], entry["mode"]) == ("dhcpcd", "dhcpcd", "0755")
        warnings = host_eval(host, WARNINGS)
        assert not any(w.startswith(DHCPCD_WARNING) for w in warnings), (host, warnings)
    assert besides_placeholder(host_eval("example", WARNINGS)) == []


def test_dhcpcd_state_follows_nixpkgs_condition(host_eval: Any) -> None:
    assert dhcpcd_entry(host_eval, "example", "{ networking.useDHCP = false; }") is None
    assert dhcpcd_entry(host_eval, "example", "{ networking.dhcpcd.enable = false; }") is None
    one_interface = "{ networking.useDHCP = false; networking.interfaces.eth0.useDHCP = true; }"
    assert dhcpcd_entry(host_eval, "example", one_interface) is not None
    off = "{ networking.useDHCP = false; }"
    assert host_eval("example", "config.systemd.services ? dhcpcd", off) is False


# --- DynamicUser: /var/lib/private --------------------------------------------------------------

DYNAMIC = (
    '{ systemd.services.app.serviceConfig = { DynamicUser = true; StateDirectory = "app"; }; }'
)


def test_dynamic_user_warning_names_var_lib_private(host_eval: Any) -> None:
    warnings = besides_placeholder(host_eval("example", WARNINGS, DYNAMIC))
    assert warnings == [
        "blankslate: service app keeps its state in /var/lib/private/app (StateDirectory with "
        "DynamicUser), which nothing persists: the next boot erases it; persist "
        "/var/lib/private/app (its parent /var/lib/private stays 0700)"
    ]


def test_persisted_private_state_has_a_0700_parent(host_eval: Any) -> None:
    extra = (
        '{ systemd.services.app.serviceConfig = { DynamicUser = true; StateDirectory = "app"; };'
        ' blankslate.persistence.directories = [ "/var/lib/private/app" ]; }'
    )
    assert besides_placeholder(host_eval("example", WARNINGS, extra)) == []
    entry = directories(host_eval("example", PERSISTENCE, extra))["/var/lib/private/app"]
    parents = [(p["directory"], p["user"], p["group"], p["mode"]) for p in entry["parents"]]
    assert parents == [
        ("/var", "root", "root", "0755"),
        ("/var/lib", "root", "root", "0755"),
        ("/var/lib/private", "root", "root", "0700"),
    ]
    # impermanence makes a missing parent 0755: tmpfiles puts 0700 back on / and in persistPath.
    rules = host_eval("example", "config.systemd.tmpfiles.rules", extra)
    assert "z /var/lib/private 0700 root root -" in rules
    assert "z /persist/var/lib/private 0700 root root -" in rules
    assert not any("private" in r for r in host_eval("example", "config.systemd.tmpfiles.rules"))
    # A file's parents too.
    extra = '{ blankslate.persistence.files = [ "/var/lib/private/app/token" ]; }'
    files = {f["file"]: f for f in host_eval("example", PERSISTENCE, extra)["files"]}
    modes = {p["directory"]: p["mode"] for p in files["/var/lib/private/app/token"]["parents"]}
    assert modes == {
        "/var": "0755",
        "/var/lib": "0755",
        "/var/lib/private": "0700",
        "/var/lib/private/app": "0755",
    }


# --- Home Manager -------------------------------------------------------------------------------

HOME_MANAGER = """{
  imports = [
    (import ./tests/nix/home-manager-model.nix {
      pkgs = import ./tests/nix/fake-pkgs.nix { inherit lib; };
    })
  ];
  users.users.alice.isNormalUser = true;
  home-manager.users.alice.home.persistence."/persist/homes" = {
    directories = [ ".local/share/app" ];
    files = [ ".config/app.toml" ];
  };
}"""


def test_home_manager_persistence_reaches_the_plan(host_eval: Any) -> None:
    """Today's impermanence reads home-manager.users.<name>.home.persistence itself (its
    nixos.nix), not through environment.persistence: the plan must read it too."""
    assert host_eval("example", "failedAssertions", HOME_MANAGER) == []
    persistence = host_eval("example", PERSISTENCE, HOME_MANAGER)
    assert "/persist/homes" in persistence["roots"]
    entry = directories(persistence)["/home/alice/.local/share/app"]
    assert (entry["root"], entry["user"], entry["group"]) == ("/persist/homes", "alice", "users")
    home = next(p for p in entry["parents"] if p["directory"] == "/home/alice")
    assert (home["user"], home["mode"]) == ("alice", "0700")
    files = {f["file"]: f for f in persistence["files"]}
    assert files["/home/alice/.config/app.toml"]["root"] == "/persist/homes"
    # impermanence mounts what the plan lists.
    mounts = host_eval("example", "map (m: m.where) config.systemd.mounts", HOME_MANAGER)
    assert "/home/alice/.local/share/app" in mounts


# --- Nix's build directory on a tmpfs root -----------------------------------------------------


def test_tmpfs_root_builds_under_nix(host_eval: Any) -> None:
    settings = host_eval("tmpfs", "config.nix.settings")
    assert settings["build-dir"] == "/nix/var/nix/builds"
    rules = host_eval("tmpfs", "config.systemd.tmpfiles.rules")
    assert "d /nix/var/nix/builds 0755 root root -" in rules
    # A host may choose another place under /nix; the directory follows.
    other = '{ nix.settings.build-dir = "/nix/tmp"; }'
    assert "d /nix/tmp 0755 root root -" in host_eval(
        "tmpfs", "config.systemd.tmpfiles.rules", other
    )


def test_disk_roots_keep_nix_defaults(host_eval: Any) -> None:
    for host in ("example", "zfs"):
        assert host_eval(host, 'config.nix.settings ? "build-dir"') is False


# --- /var/lib/nixos without an initrd ----------------------------------------------------------


def test_vpsfree_binds_var_lib_nixos_before_the_users_script(host_eval: Any) -> None:
    scripts = host_eval("vpsfree", "config.system.activationScripts")
    assert "blankslateVarLibNixos" in scripts["users"]["deps"]
    text = scripts["blankslateVarLibNixos"]["text"]
    assert text.rstrip().endswith("-early-bind.bash /persistent/var/lib/nixos /var/lib/nixos")
    assert scripts["blankslateVarLibNixos"]["deps"] == []


def test_hosts_with_an_initrd_bind_in_the_initrd(host_eval: Any) -> None:
    for host in ("example", "tmpfs", "zfs"):
        scripts = host_eval(host, "config.system.activationScripts")
        assert "blankslateVarLibNixos" not in scripts, host
        # Only the attestation's note (modules/attest.nix) runs before `users` there.
        assert scripts["users"].get("deps", []) == ["blankslateNixosBound"], host


def test_no_users_script_to_order_under_userborn_or_sysusers(host_eval: Any) -> None:
    """Userborn asserts system.activationScripts.users == "": no deps may be added then."""
    userborn = (
        "{ options.services.userborn.enable = lib.mkOption { type = lib.types.bool; };"
        " config.services.userborn.enable = true; }"
    )
    scripts = host_eval("vpsfree", "config.system.activationScripts", userborn)
    assert scripts["users"]["deps"] == []
    assert "blankslateVarLibNixos" in scripts
