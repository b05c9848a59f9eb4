"""The vpsFree host's conversion pieces, the boot-time password guard, and the ssh options,
evaluated against the model of the NixOS options (nixos-model.nix)."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import besides_placeholder

pytestmark = pytest.mark.nix

REPO = Path(__file__).resolve().parents[2]
GUARD = "config.systemd.services.blankslate-password-guard"
GUARD_SCRIPT = REPO / "modules/guard/password-files.bash"


# --- vpsFree -------------------------------------------------------------------------


def test_vpsfree_persists_the_configuration_and_the_uid_map(host_eval: Any) -> None:
    persisted = 'config.environment.persistence."/persistent".directories'
    for attr in (persisted, "config.blankslate.plan.persistence.directories"):
        dirs = host_eval("vpsfree", f"map (d: d.directory) {attr}")
        assert {"/etc/nixos", "/var/lib/nixos"} <= set(dirs), attr


def vpsfree_copy(tmp_path: Path, vpsadminos: str | None) -> Path:
    host = tmp_path / "vpsfree"
    shutil.copytree(REPO / "hosts/vpsfree", host)
    if vpsadminos is not None:
        (host / "vpsadminos.nix").write_text(vpsadminos)
    return host


def eval_host_dir(nix_eval: Any, host: Path, attr: str) -> Any:
    evaluated = f"import ./tests/nix/eval.nix {{ extraModules = [ {json.dumps(str(host))} ]; }}"
    return nix_eval(f"let inherit ({evaluated}) config failedAssertions; in {attr}")


def test_vpsfree_imports_a_vpsadminos_nix_placed_beside_it(nix_eval: Any, tmp_path: Path) -> None:
    # A stand-in for the platform's module: the real one sets options (systemd.sockets,
    # networking.nameservers, ...) the model does not declare.
    stub = '{ lib, ... }: { warnings = [ "vpsadminos.nix imported" ]; boot.isContainer = true; }'
    with_it = vpsfree_copy(tmp_path / "with", stub)
    warnings = eval_host_dir(nix_eval, with_it, "config.warnings")
    assert besides_placeholder(warnings) == ["vpsadminos.nix imported"]
    assert eval_host_dir(nix_eval, with_it, "failedAssertions") == []
    # Our own settings stand next to it: the plan is the host's plan.
    plan = eval_host_dir(nix_eval, with_it, "config.blankslate.plan")
    assert plan == json.loads((REPO / "tests/plans/vpsfree.json").read_text())
    without = vpsfree_copy(tmp_path / "without", None)
    assert besides_placeholder(eval_host_dir(nix_eval, without, "config.warnings")) == []


# --- the password guard --------------------------------------------------------------


def test_guard_unit_runs_the_script_on_every_password_file(host_eval: Any) -> None:
    for host, persist in (("example", "/persist"), ("vpsfree", "/persistent")):
        unit = host_eval(host, GUARD)
        command = shlex.split(unit["serviceConfig"]["ExecStart"])
        assert command[0].endswith("-bash/bin/bash")
        assert command[1].endswith("-password-files.bash")
        assert command[2:] == [f"{persist}/passwords/admin"]
        assert unit["serviceConfig"]["Type"] == "oneshot"
        assert unit["wantedBy"] == ["multi-user.target"]
        assert unit["after"] == ["local-fs.target"]
        # Nothing waits on it and nothing requires it: a failure never stops the boot.
        assert unit["before"] == [] and unit["requiredBy"] == []
        assert [p.rsplit("-", 1)[1] for p in unit["path"]] == ["coreutils"]  # stat
        # The one rule of passwordfile.py, read by the guard from the same data file.
        rules = unit["environment"]["BLANKSLATE_HASH_RULES"]
        assert rules.startswith("/nix/store/") and rules.endswith("-password-hashes.txt")


def test_guard_rules_are_the_packages_rules_file(nix_eval: Any) -> None:
    rules = "scripts/blankslate/password-hashes.txt"
    store_path = nix_eval(f"builtins.toString (builtins.path {{ path = ./{rules}; }})")
    unit = nix_eval(f'(import ./tests/nix/eval.nix {{ host = "example"; }}).{GUARD}.environment')
    assert unit["BLANKSLATE_HASH_RULES"].rsplit("-", 1)[0] == store_path.rsplit("-", 1)[0]


def test_guard_script_is_the_repository_file(nix_eval: Any) -> None:
    script = GUARD_SCRIPT.relative_to(REPO)
    store_path = nix_eval(f"builtins.toString (builtins.path {{ path = ./{script}; }})")
    unit = nix_eval(
        f'(import ./tests/nix/eval.nix {{ host = "example"; }}).{GUARD}.serviceConfig.ExecStart'
    )
    assert shlex.split(unit)[1].rsplit("-", 1)[0] == store_path.rsplit("-", 1)[0]


def test_guard_lists_every_admin_and_can_be_turned_off(host_eval: Any) -> None:
    extra = '{ blankslate.users.bob.authorizedKeys = [ "ssh-ed25519 AAAA bob" ]; }'
    command = shlex.split(host_eval("example", f"{GUARD}.serviceConfig.ExecStart", extra))
    assert command[2:] == ["/persist/passwords/admin", "/persist/passwords/bob"]
    off = "{ blankslate.guard.passwordFiles = false; }"
    has_guard = "config.systemd.services ? blankslate-password-guard"
    assert host_eval("example", has_guard, off) is False
    assert host_eval("example", has_guard, "{ blankslate.users = lib.mkForce { }; }") is False


# --- ssh options ---------------------------------------------------------------------


def test_sftp_is_kept_unless_turned_off(host_eval: Any) -> None:
    assert host_eval("example", "config.services.openssh.allowSFTP") is True
    off = "{ blankslate.ssh.allowSFTP = false; }"
    assert host_eval("example", "config.services.openssh.allowSFTP", off) is False
    # A mkDefault: the NixOS option itself still wins.
    direct = "{ services.openssh.allowSFTP = false; }"
    assert host_eval("example", "config.services.openssh.allowSFTP", direct) is False


def test_rsa_host_key_is_optional_and_in_the_plan(host_eval: Any) -> None:
    ed25519 = {"type": "ed25519", "path": "/persist/etc/ssh/ssh_host_ed25519_key"}
    rsa = {"type": "rsa", "bits": 4096, "path": "/persist/etc/ssh/ssh_host_rsa_key"}
    assert host_eval("example", "config.services.openssh.hostKeys") == [ed25519]
    on = "{ blankslate.ssh.rsaHostKey = true; }"
    assert host_eval("example", "config.services.openssh.hostKeys", on) == [ed25519, rsa]
    assert host_eval("example", "config.blankslate.plan.sshHostKeys", on) == [
        ed25519["path"],
        rsa["path"],
    ]
    assert host_eval("vpsfree", "config.blankslate.plan.sshHostKeys", on)[1] == (
        "/persistent/etc/ssh/ssh_host_rsa_key"
    )
