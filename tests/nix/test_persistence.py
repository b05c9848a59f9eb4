"""The plan's persistence is everything the evaluated environment.persistence holds."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import besides_placeholder, lookup_path

PERSISTENCE = "config.blankslate.plan.persistence"
WARNINGS = "config.warnings"

EXAMPLE = "import ./tests/nix/persistence-example.nix { inherit lib; }"


def by(key: str, entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry[key]: entry for entry in entries}


def owner(entry: dict[str, Any]) -> tuple[str, str, str, str]:
    return (entry["directory"], entry["user"], entry["group"], entry["mode"])


@pytest.fixture(scope="module")
def persistence(host_eval: Any) -> dict[str, Any]:
    evaluated: dict[str, Any] = host_eval("example", PERSISTENCE, EXAMPLE)
    return evaluated


def test_every_enabled_root_is_listed(persistence: dict[str, Any]) -> None:
    assert persistence["roots"] == ["/persist", "/persist/cache"]
    paths = [d["directory"] for d in persistence["directories"]]
    assert "/var/off" not in paths


def test_a_third_modules_directory_keeps_its_owner_and_mode(persistence: dict[str, Any]) -> None:
    acme = by("directory", persistence["directories"])["/var/lib/acme"]
    assert owner(acme) == ("/var/lib/acme", "acme", "acme", "0750")
    assert acme["root"] == "/persist"
    assert [owner(p) for p in acme["parents"]] == [
        ("/var", "root", "root", "0755"),
        ("/var/lib", "root", "root", "0755"),
    ]


def test_users_paths_resolve_against_their_home(persistence: dict[str, Any]) -> None:
    directories = by("directory", persistence["directories"])
    ssh = directories["/home/alice/.ssh"]
    assert (ssh["user"], ssh["group"], ssh["root"]) == ("alice", "users", "/persist")
    # The home itself is its user's and 0700, as impermanence makes it; /home stays root's.
    assert [owner(p) for p in ssh["parents"]] == [
        ("/home", "root", "root", "0755"),
        ("/home/alice", "alice", "users", "0700"),
    ]
    app = directories["/home/alice/.local/share/app"]
    assert [owner(p) for p in app["parents"]][2:] == [
        ("/home/alice/.local", "alice", "users", "0755"),
        ("/home/alice/.local/share", "alice", "users", "0755"),
    ]
    files = by("file", persistence["files"])
    assert [owner(p) for p in files["/home/alice/.screenrc"]["parents"]] == [
        ("/home", "root", "root", "0755"),
        ("/home/alice", "alice", "users", "0700"),
    ]


def test_a_files_parent_directory_mode_is_kept(persistence: dict[str, Any]) -> None:
    files = by("file", persistence["files"])
    token = files["/home/alice/.config/app/token"]
    assert [owner(p) for p in token["parents"]][-2:] == [
        ("/home/alice/.config", "alice", "users", "0755"),
        ("/home/alice/.config/app", "alice", "users", "0700"),
    ]
    key = files["/var/lib/secret/key"]
    assert (key["root"], key["method"]) == ("/persist", "symlink")
    assert owner(key["parents"][-1]) == ("/var/lib/secret", "root", "root", "0700")


def test_a_second_root_keeps_its_own_paths(persistence: dict[str, Any]) -> None:
    cache = by("directory", persistence["directories"])["/var/cache/app"]
    assert cache["root"] == "/persist/cache"


def test_blankslate_options_pass_every_attribute_to_impermanence(host_eval: Any) -> None:
    extra = """{
      blankslate.persistence.directories = [ { directory = "/srv/www"; hideMount = false; } ];
      blankslate.users.admin.persist.directories = [ { directory = ".gnupg"; mode = "0700"; } ];
      blankslate.users.admin.persist.files = [ ".bash_history" ];
    }"""
    root = 'config.environment.persistence."/persist"'
    hidden = host_eval(
        "example",
        f"map (d: {{ inherit (d) dirPath hideMount mode; }}) {root}.directories",
        extra,
    )
    assert {"dirPath": "/srv/www", "hideMount": False, "mode": "0755"} in hidden
    users = host_eval("example", f"map (d: d.dirPath) {root}.users.admin.directories", extra)
    assert users == ["/home/admin/.gnupg"]
    persistence = host_eval("example", PERSISTENCE, extra)
    gnupg = by("directory", persistence["directories"])["/home/admin/.gnupg"]
    assert (gnupg["user"], gnupg["mode"]) == ("admin", "0700")
    assert "/home/admin/.bash_history" in by("file", persistence["files"])


def test_a_user_without_persist_paths_adds_no_users_entry(host_eval: Any) -> None:
    names = 'builtins.attrNames config.environment.persistence."/persist".users'
    users = host_eval("example", names)
    assert users == []


# --- warnings ----------------------------------------------------------------------


def home_warnings(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "home" in w]


@pytest.mark.parametrize("host", ["example", "zfs", "tmpfs", "vpsfree"])
def test_example_hosts_keep_their_admins_homes(host_eval: Any, host: str) -> None:
    assert besides_placeholder(host_eval(host, WARNINGS)) == []


def test_an_unpersisted_home_warns_and_a_persisted_one_does_not(host_eval: Any) -> None:
    # vpsFree persists /home; bob lives elsewhere, on the platform's temporary dataset.
    bob = 'users.users.bob = { isNormalUser = true; home = "/srv/bob"; };'
    assert home_warnings(host_eval("vpsfree", WARNINGS, f"{{ {bob} }}")) == [
        "blankslate: user bob's home /srv/bob is erased at every boot: persist what it "
        "holds (blankslate.users.bob.persist, or environment.persistence.<root>.users.bob) "
        "or put /srv/bob on a filesystem of its own"
    ]
    persisted = 'environment.persistence."/persistent".users.bob.directories = [ ".ssh" ];'
    assert home_warnings(host_eval("vpsfree", WARNINGS, f"{{ {bob} {persisted} }}")) == []
    whole = 'blankslate.persistence.directories = [ "/srv" ];'
    assert home_warnings(host_eval("vpsfree", WARNINGS, f"{{ {bob} {whole} }}")) == []


def test_a_system_user_is_not_warned_about(host_eval: Any) -> None:
    extra = '{ users.users.daemon = { home = "/var/lib/daemon"; }; }'
    assert home_warnings(host_eval("vpsfree", WARNINGS, extra)) == home_warnings(
        host_eval("vpsfree", WARNINGS)
    )


def test_an_unpersisted_state_directory_warns(host_eval: Any) -> None:
    extra = """{
      systemd.services.acme.serviceConfig.StateDirectory = "acme";
      systemd.services.kept.serviceConfig.StateDirectory = [ "kept" "nixos/sub" ];
      systemd.services.dynamic.serviceConfig = { StateDirectory = "dyn"; DynamicUser = true; };
      systemd.services.off = { enable = false; serviceConfig.StateDirectory = "off"; };
      systemd.services.two.serviceConfig.StateDirectory = "one two:alias";
      blankslate.persistence.directories = [ "/var/lib/kept" "/var/lib/private/dyn" ];
    }"""
    warnings = [w for w in host_eval("example", WARNINGS, extra) if "StateDirectory" in w]
    assert warnings == [
        "blankslate: service acme keeps its state in /var/lib/acme (StateDirectory), which "
        "nothing persists: the next boot erases it",
        "blankslate: service two keeps its state in /var/lib/one, /var/lib/two (StateDirectory), "
        "which nothing persists: the next boot erases it",
    ]


def test_a_state_directory_on_a_persisted_filesystem_does_not_warn(host_eval: Any) -> None:
    extra = """{
      systemd.services.app.serviceConfig.StateDirectory = "app";
      blankslate.btrfs.subvolumes = lib.mkAfter [ { name = "app"; mountpoint = "/var/lib/app"; } ];
    }"""
    assert besides_placeholder(host_eval("example", WARNINGS, extra)) == []


# --- preservation ------------------------------------------------------------------


@pytest.fixture(scope="module")
def preserved(host_eval: Any, nix_instantiate: str) -> dict[str, Any]:
    """vpsfree with nix-community/preservation's options beside impermanence's."""
    lookup_path("preservation")
    extra = """{
      imports = [ <preservation/options.nix> ];
      users.users.alice.isNormalUser = true;
      preservation.enable = true;
      preservation.preserveAt."/state" = {
        directories = [
          "/var/lib/app"
          { directory = "/var/lib/linked"; how = "symlink"; user = "alice"; }
        ];
        files = [
          { file = "/etc/wpa.conf"; how = "symlink"; configureParent = true; parent.mode = "0700"; }
        ];
        users.alice = { directories = [ ".ssh" ".local/share/x" ]; files = [ ".config/foo" ]; };
      };
    }"""
    evaluated: dict[str, Any] = host_eval("vpsfree", PERSISTENCE, extra)
    return evaluated


def test_preservation_roots_and_paths_are_in_the_plan(preserved: dict[str, Any]) -> None:
    assert preserved["roots"] == ["/persistent", "/state"]
    directories = by("directory", preserved["directories"])
    assert directories["/var/lib/app"]["root"] == "/state"
    assert directories["/var/lib/nixos"]["root"] == "/persistent"  # impermanence's, still there
    # preservation takes the group from the default owner, root, not from `user`.
    assert owner(directories["/var/lib/linked"]) == ("/var/lib/linked", "alice", "root", "0755")
    files = by("file", preserved["files"])
    assert (files["/etc/wpa.conf"]["root"], files["/etc/wpa.conf"]["method"]) == (
        "/state",
        "symlink",
    )
    # configureParent: the parent as declared.
    assert [owner(p) for p in files["/etc/wpa.conf"]["parents"]] == [
        ("/etc", "root", "root", "0700")
    ]


def test_preservation_users_paths_and_their_home(preserved: dict[str, Any]) -> None:
    directories = by("directory", preserved["directories"])
    # The home as users.users.alice gives it (homeMode "700"), inside it alice's and 0755.
    assert [owner(p) for p in directories["/home/alice/.local/share/x"]["parents"]] == [
        ("/home", "root", "root", "0755"),
        ("/home/alice", "alice", "users", "700"),
        ("/home/alice/.local", "alice", "users", "0755"),
        ("/home/alice/.local/share", "alice", "users", "0755"),
    ]
    files = by("file", preserved["files"])
    assert files["/home/alice/.config/foo"]["root"] == "/state"
    # preservation's "_intermediate" entries are parents, not persisted paths.
    assert "/home/alice/.local" not in directories
