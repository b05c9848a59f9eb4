"""The CLI's contract: JSON on stdout, `error: ...` one-liners with exit 1, usage errors exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from blankslate import cli, plan


def test_plan_prints_the_builtin_default(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    monkeypatch.setattr(plan, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    assert run_cli("plan") == 0
    assert json.loads(capsys.readouterr().out) == json.loads(plan.default_text())


def test_bad_plan_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    bad = tmp_path / "my plan.json"
    bad.write_text(json.dumps({"version": 2, "rollback": "btrfs"}))
    assert run_cli("plan", "--plan", str(bad)) == 1
    assert capsys.readouterr().err == "error: plan: hostName: missing key\n"


def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "sys.argv", ["blankslate", "--debug", "plan", "--plan", str(tmp_path / "none.json")]
    )
    with pytest.raises(plan.BlankslateError, match="cannot read"):
        cli.main()


def test_usage_errors_exit_2(run_cli: Callable[..., int]) -> None:
    assert run_cli("plan", "--no-such-option") == 2
    assert run_cli("plan", "--plan", "a.json", "--host", "b") == 2


def test_install_needs_disk_or_image_naming_the_plans_disk(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    """The plan's disk.device is never taken silently: a typo away from the wrong disk."""
    monkeypatch.setattr(plan, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    for command in ("install", "mount"):
        assert run_cli(command, "--mountpoint", "/tmp/target") == 2
        err = capsys.readouterr().err
        assert "give --disk DEV or --image FILE" in err
        assert "the plan's disk is /dev/vda" in err


def test_flake_with_host_fragment_is_the_host(
    fp: FakeProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    """nixos-rebuild's `--flake REF#HOST`: not silently ignored for the built-in plan."""
    monkeypatch.setattr(plan, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    fp.register(plan.nix_eval_plan("/etc/nixos", "web"), stdout=plan.default_text())
    assert run_cli("plan", "--flake", "/etc/nixos#web") == 0
    assert fp.call_count(plan.nix_eval_plan("/etc/nixos", "web")) == 1
    assert capsys.readouterr().err.endswith("\nplan: host example from flake /etc/nixos\n")


@pytest.mark.parametrize(
    "args",
    [
        ["--flake", ".#web", "--host", "db"],
        ["--flake", ".#"],
        ["--flake", ".#web", "--plan", "p.json"],
    ],
)
def test_flake_host_conflicts_are_usage_errors(
    args: list[str], capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    assert run_cli("plan", *args) == 2
    assert "Usage" in capsys.readouterr().err


def test_the_plan_used_is_said_once_unless_quiet(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    monkeypatch.setattr(plan, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    assert run_cli("plan") == 0
    assert capsys.readouterr().err == "plan: built-in default (the hosts/example layout)\n"
    assert run_cli("--quiet", "plan") == 0
    assert capsys.readouterr().err == ""
    installed = tmp_path / "plan.json"
    installed.write_text(plan.default_text())
    monkeypatch.setattr(plan, "INSTALLED_PLAN", installed)
    assert run_cli("plan") == 0
    assert capsys.readouterr().err == f"plan: host example from {installed}\n"
    assert run_cli("plan", "--plan", str(installed)) == 0
    assert capsys.readouterr().err == f"plan: host example from {installed}\n"
