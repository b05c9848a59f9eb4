"""The scheduled audit (modules/audit.nix): the blankslate-audit service and timer, evaluated
against the model of the NixOS options (nixos-model.nix), and its ExecStart read back by the
real command-line parser."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from blankslate import cli

pytestmark = pytest.mark.nix

SERVICE = "config.systemd.services.blankslate-audit"
TIMER = "config.systemd.timers.blankslate-audit"
HOSTS = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "hosts").iterdir())
DIRECTORIES = "map (d: d.directory) config.blankslate.plan.persistence.directories"


@pytest.mark.parametrize("host", HOSTS)
def test_every_host_audits_daily_and_after_boot(host_eval: Any, host: str) -> None:
    timer = host_eval(host, TIMER)
    assert timer["wantedBy"] == ["timers.target"]
    assert timer["timerConfig"] == {"OnBootSec": "15min", "OnCalendar": "daily"}
    service = host_eval(host, SERVICE)
    assert service["serviceConfig"]["Type"] == "oneshot"
    assert service["after"] == ["local-fs.target"]
    # Started by the timer alone: nothing at boot waits for it or needs it.
    assert service["wantedBy"] == [] and service["requiredBy"] == [] and service["before"] == []
    assert service["serviceConfig"]["StateDirectory"] == "blankslate"
    assert service["serviceConfig"]["StateDirectoryMode"] == "0700"
    # Bounded and out of the way (#28): memory, time, CPU (within the unit and against every
    # other cgroup) and I/O priority.
    assert {key: service["serviceConfig"][key] for key in BOUNDS} == BOUNDS


BOUNDS = {
    "MemoryMax": "2G",
    "TimeoutStartSec": "1h",
    "Nice": 19,
    "CPUWeight": "idle",
    "CPUSchedulingPolicy": "batch",
    "IOSchedulingClass": "idle",
}


def test_a_host_replaces_the_bounds_and_a_bad_value_fails(host_eval: Any, nix_run: Any) -> None:
    more = '{ systemd.services.blankslate-audit.serviceConfig.MemoryMax = "8G"; }'
    assert host_eval("example", f"{SERVICE}.serviceConfig.MemoryMax", more) == "8G"
    bad_values = (
        'MemoryMax = "lots"',
        "Nice = 20",
        'IOSchedulingClass = "lowest"',
        'CPUWeight = "lowest"',
        "CPUWeight = 0",
        "CPUWeight = 10001",
    )
    for bad in bad_values:
        expr = (
            'let inherit (import ./tests/nix/eval.nix { host = "example"; extraModules = '
            f"[ {{ systemd.services.blankslate-audit.serviceConfig.{bad}; }} ]; }}) config; in "
            f"{SERVICE}.serviceConfig"
        )
        result = nix_run(expr)
        assert result.returncode != 0, bad
        assert "is not of type" in result.stderr, result.stderr


def test_exec_start_runs_the_package_and_fails_on_lost(host_eval: Any) -> None:
    command = shlex.split(host_eval("example", f"{SERVICE}.serviceConfig.ExecStart"))
    package = host_eval("example", "config.blankslate.package.outPath")
    assert command[0] == f"{package}/bin/blankslate"
    assert command[1:] == [
        "diff",
        "--fail-on-lost",
        "--report",
        "/var/lib/blankslate/audit.json",
        "--metrics",
        "/var/lib/prometheus-node-exporter-text-files/blankslate.prom",
    ]
    # The tool reads these arguments as meant, on its fast path (no typer at every run).
    invocation = cli.parse_plain(command[1:])
    assert invocation is not None and invocation.command == "diff"
    assert invocation.parameters["fail_on_lost"] is True
    assert invocation.parameters["report_file"] == Path("/var/lib/blankslate/audit.json")
    assert invocation.parameters["metrics_file"] == Path(
        "/var/lib/prometheus-node-exporter-text-files/blankslate.prom"
    )


def test_schedule_metrics_directory_and_persistence_are_options(host_eval: Any) -> None:
    hourly = host_eval(
        "example", f"{TIMER}.timerConfig.OnCalendar", '{ blankslate.audit.schedule = "hourly"; }'
    )
    assert hourly == "hourly"
    elsewhere = '{ blankslate.audit.metricsDirectory = "/run/textfiles"; }'
    command = shlex.split(host_eval("example", f"{SERVICE}.serviceConfig.ExecStart", elsewhere))
    assert command[-2:] == ["--metrics", "/run/textfiles/blankslate.prom"]
    none = "{ blankslate.audit.metricsDirectory = null; }"
    command = shlex.split(host_eval("example", f"{SERVICE}.serviceConfig.ExecStart", none))
    assert "--metrics" not in command and command[-2:] == [
        "--report",
        "/var/lib/blankslate/audit.json",
    ]
    assert "/var/lib/blankslate" in host_eval("example", DIRECTORIES)
    kept_off = "{ blankslate.audit.persistReport = false; }"
    assert "/var/lib/blankslate" not in host_eval("example", DIRECTORIES, kept_off)


def test_null_schedule_turns_the_audit_off(host_eval: Any) -> None:
    off = "{ blankslate.audit.schedule = null; }"
    assert host_eval("example", "config.systemd.services ? blankslate-audit", off) is False
    assert host_eval("example", "config.systemd.timers ? blankslate-audit", off) is False
    assert "/var/lib/blankslate" not in host_eval("example", DIRECTORIES, off)
    disabled = "{ blankslate.enable = lib.mkForce false; }"
    assert host_eval("example", "config.systemd.timers ? blankslate-audit", disabled) is False


def test_an_alert_hook_can_be_attached(host_eval: Any) -> None:
    hook = '{ systemd.services.blankslate-audit.onFailure = [ "alert@%n.service" ]; }'
    assert host_eval("example", f"{SERVICE}.onFailure", hook) == ["alert@%n.service"]


def test_a_bad_schedule_or_directory_fails_evaluation(nix_run: Any) -> None:
    for extra in (
        '{ blankslate.audit.schedule = "daily\\nOnCalendar=hourly"; }',
        '{ blankslate.audit.metricsDirectory = "relative/dir"; }',
    ):
        expr = (
            'let inherit (import ./tests/nix/eval.nix { host = "example"; extraModules = '
            f"[ ({{ lib, ... }}: {extra}) ]; }}) config; in {TIMER}.timerConfig"
            " // { x = config.systemd.services.blankslate-audit.serviceConfig.ExecStart; }"
        )
        result = nix_run(expr)
        assert result.returncode != 0, extra
        assert "is not of type" in result.stderr, result.stderr
