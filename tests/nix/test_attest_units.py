"""The boot attestation (modules/attest.nix): the blankslate-attest service and the
blankslateNixosBound activation script, evaluated against the model of the NixOS options
(nixos-model.nix); the ExecStart read back by the real command-line parser."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from blankslate.app import app

pytestmark = pytest.mark.nix

SERVICE = "config.systemd.services.blankslate-attest"
SCRIPTS = "config.system.activationScripts"
HOSTS = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "hosts").iterdir())
# The order nixpkgs' activation-script.nix runs the snippets in: lib.stringsWithDeps'
# textClosureList over every script, a plain string being a script without deps.
# The model declares only the scripts that meet ours (impermanence's also names nixpkgs'
# `groups`): a dependency on a script it lacks is left out.
ORDER = (
    f"let s = {SCRIPTS}; named = lib.mapAttrs (n: v: {{ text = n; deps = lib.filter"
    " (d: s ? ${d}) (if lib.isString v then [ ] else v.deps); }) s;"
    " in lib.stringsWithDeps.textClosureList named (lib.attrNames named)"
)
USERBORN = (
    "{ options.services.userborn.enable = lib.mkOption { type = lib.types.bool; };"
    " config.services.userborn.enable = true; }"
)


def parsed(command: list[str]) -> dict[str, Any]:
    """The parameters `blankslate attest` gets from these arguments (click, as typer runs it)."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup) and command[1] == "attest"
    context = group.commands["attest"].make_context("attest", command[2:])
    return dict(context.params)


@pytest.mark.parametrize("host", HOSTS)
def test_every_host_attests_its_boot(host_eval: Any, host: str) -> None:
    service = host_eval(host, SERVICE)
    assert service["wantedBy"] == ["multi-user.target"]
    assert service["after"] == ["local-fs.target"]
    assert service["serviceConfig"]["Type"] == "oneshot"
    assert service["serviceConfig"]["RemainAfterExit"] is True
    command = shlex.split(service["serviceConfig"]["ExecStart"])
    package = host_eval(host, "config.blankslate.package.outPath")
    assert command[:2] == [f"{package}/bin/blankslate", "attest"]
    params = parsed(command)
    assert str(params["plan_file"]).startswith("/nix/store/")
    assert str(params["plan_file"]).endswith("-blankslate-plan.json")
    assert params["metrics_file"] == Path(
        "/var/lib/prometheus-node-exporter-text-files/blankslate-attest.prom"
    )
    assert params["users_script"] is True


@pytest.mark.parametrize("host", HOSTS)
def test_the_nixos_bound_note_runs_right_before_users(host_eval: Any, host: str) -> None:
    order = host_eval(host, ORDER)
    assert order.index("blankslateNixosBound") < order.index("users")
    script = host_eval(host, f"{SCRIPTS}.blankslateNixosBound.text")
    assert "-attest-nixos-bound.bash /var/lib/nixos" in script
    if host == "vpsfree":  # no initrd: the early bind first, then the note
        assert order.index("blankslateVarLibNixos") < order.index("blankslateNixosBound")


def test_userborn_or_sysusers_no_note_and_attest_skips_it(host_eval: Any) -> None:
    """Userborn asserts system.activationScripts.users == "": no deps may be added then."""
    scripts = host_eval("example", SCRIPTS, USERBORN)
    assert "blankslateNixosBound" not in scripts
    assert scripts["users"]["deps"] == []
    command = shlex.split(host_eval("example", f"{SERVICE}.serviceConfig.ExecStart", USERBORN))
    assert parsed(command)["users_script"] is False


def test_without_a_persisted_var_lib_nixos_no_note(host_eval: Any) -> None:
    drop = "{ blankslate.persistence.serverDefaults = false; }"
    directories = host_eval(
        "example", "map (d: d.directory) config.blankslate.plan.persistence.directories", drop
    )
    assert "/var/lib/nixos" not in directories
    assert "blankslateNixosBound" not in host_eval("example", SCRIPTS, drop)
    assert host_eval("example", f"{SCRIPTS}.users.deps", drop) == []


def test_the_option_turns_it_off(host_eval: Any) -> None:
    off = "{ blankslate.attest.enable = false; }"
    assert host_eval("example", "config.systemd.services ? blankslate-attest", off) is False
    assert "blankslateNixosBound" not in host_eval("example", SCRIPTS, off)
    assert host_eval("example", "config.blankslate.attest.enable") is True
    disabled = "{ blankslate.enable = lib.mkForce false; }"
    assert host_eval("example", "config.systemd.services ? blankslate-attest", disabled) is False


def test_metrics_follow_the_audit_directory(host_eval: Any) -> None:
    elsewhere = '{ blankslate.audit.metricsDirectory = "/run/textfiles"; }'
    command = shlex.split(host_eval("example", f"{SERVICE}.serviceConfig.ExecStart", elsewhere))
    assert parsed(command)["metrics_file"] == Path("/run/textfiles/blankslate-attest.prom")
    none = "{ blankslate.audit.metricsDirectory = null; }"
    command = shlex.split(host_eval("example", f"{SERVICE}.serviceConfig.ExecStart", none))
    assert parsed(command)["metrics_file"] is None


def test_a_bad_remain_after_exit_fails_evaluation(nix_run: Any) -> None:
    expr = (
        'let inherit (import ./tests/nix/eval.nix { host = "example"; extraModules = [ '
        '{ systemd.services.blankslate-attest.serviceConfig.RemainAfterExit = "maybe"; } ]; }) '
        f"config; in {SERVICE}.serviceConfig"
    )
    result = nix_run(expr)
    assert result.returncode != 0
    assert "is not of type" in result.stderr, result.stderr


def test_the_vm_test_node_attests_and_has_an_immutable_admin(nix_eval: Any) -> None:
    """tests/vm/rollback.nix cannot run here; its node evaluates with the attestation unit,
    an immutable admin with a key and a password file, and a persisted path in a home."""
    from .test_eval import VM_NODE

    node = f"({VM_NODE})"
    assert nix_eval(f"{node}.failedAssertions") == []
    assert nix_eval(f"{node}.config.systemd.services ? blankslate-attest") is True
    assert nix_eval(f"{node}.config.users.mutableUsers") is False
    plan = nix_eval(f"{node}.config.blankslate.plan")
    assert [u["hashedPasswordFile"] for u in plan["users"]] == ["/persist/passwords/admin"]
    assert "/home/admin/notes" in [d["directory"] for d in plan["persistence"]["directories"]]
    unit = nix_eval(f"{node}.config.boot.initrd.systemd.services.blankslate-test-format")
    assert "/run/format/persist/passwords/admin" in unit["script"]
