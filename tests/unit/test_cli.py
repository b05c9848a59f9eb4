"""The CLI's contract: JSON on stdout, `error: ...` one-liners with exit 1, usage errors exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from blankslate import cli, nix, plansource
from blankslate.errors import BlankslateError


def test_plan_prints_the_builtin_default(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    assert run_cli("plan") == 0
    assert json.loads(capsys.readouterr().out) == json.loads(plansource.default_text())


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
    with pytest.raises(BlankslateError, match="cannot read"):
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
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    for command in ("install", "mount"):
        assert run_cli(command, "--root", "/tmp/target") == 2
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
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    fp.register(nix.eval_plan("/etc/nixos", "web"), stdout=plansource.default_text())
    assert run_cli("plan", "--flake", "/etc/nixos#web") == 0
    assert fp.call_count(nix.eval_plan("/etc/nixos", "web")) == 1
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
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    assert run_cli("plan") == 0
    assert capsys.readouterr().err == "plan: built-in default (the hosts/example layout)\n"
    assert run_cli("--quiet", "plan") == 0
    assert capsys.readouterr().err == ""
    installed = tmp_path / "plan.json"
    installed.write_text(plansource.default_text())
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", installed)
    assert run_cli("plan") == 0
    assert capsys.readouterr().err == f"plan: host example from {installed}\n"
    assert run_cli("plan", "--plan", str(installed)) == 0
    assert capsys.readouterr().err == f"plan: host example from {installed}\n"


COMMAND_NAMES = [
    "plan", "completion", "install", "mount", "unmount", "passwd", "diff", "ignore", "seed",
    "roots", "doctor", "recover", "pin", "disko", "extra-files", "persist",
]  # fmt: skip


@pytest.mark.parametrize("command", ["", *COMMAND_NAMES])
def test_help_names_values_as_unix_tools_do(
    command: str, capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    """No python types (`<bool>`, `<list[str]>`), no `--no-no-...`, no `{user}`."""
    assert run_cli(*([command] if command else []), "--help") == 0
    text = capsys.readouterr().out
    assert text.startswith("Usage: blankslate ")
    for wrong in ("<bool>", "<str>", "<path>", "<file>", "list[", "--no-no-", "{", "}"):
        assert wrong not in text, (wrong, text)


def test_version_comes_from_the_package_metadata(
    capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    from importlib.metadata import version

    assert run_cli("--version") == 0
    assert capsys.readouterr().out == f"blankslate {version('blankslate')}\n"


def test_global_flags_after_the_command(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    assert run_cli("plan", "--quiet") == 0
    assert capsys.readouterr().err == ""  # quiet: the plan's source is not said


def test_a_global_flag_as_an_options_value_stays_a_value() -> None:
    from blankslate.app import global_flags_first

    argv = ["ignore", "/x", "--reason", "--quiet", "--debug"]
    assert global_flags_first(argv) == ["--debug", "ignore", "/x", "--reason", "--quiet"]
    assert global_flags_first(["-q", "diff", "--", "--debug"]) == ["-q", "diff", "--", "--debug"]


def test_debug_after_the_command_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(BlankslateError, match="cannot read"):
        cli.main(["plan", "--plan", str(tmp_path / "none.json"), "--debug"])


def test_mountpoint_is_the_old_name_of_root(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    """Scripts written for --mountpoint go on working, with a warning; it is not in --help."""
    from blankslate import install

    unmounted: list[Path] = []

    def unmount(root: Path) -> list[str]:
        unmounted.append(root)
        return []

    monkeypatch.setattr(install, "unmount", unmount)
    assert run_cli("unmount", "--mountpoint", "/tmp/old") == 0
    assert run_cli("unmount", "--root", "/tmp/new") == 0
    assert run_cli("unmount") == 0
    assert unmounted == [Path("/tmp/old"), Path("/tmp/new"), Path("/mnt")]
    assert "warning: --mountpoint is deprecated: use --root" in capsys.readouterr().err
    assert run_cli("unmount", "--root", "/a", "--mountpoint", "/b") == 2
    assert run_cli("unmount", "--help") == 0
    assert "--mountpoint" not in capsys.readouterr().out


def test_disk_and_image_together_are_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, run_cli: Callable[..., int]
) -> None:
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    assert run_cli("install", "--disk", "/dev/vda", "--image", "/tmp/x.img") == 2


@pytest.mark.parametrize(
    "argv",
    [["diff", "--format", "xml"], ["seed", "--root"], ["diff", "stray"], ["nosuch"]],
    ids=" ".join,
)
def test_usage_errors_exit_2_past_the_fast_start(
    argv: list[str], run_cli: Callable[..., int]
) -> None:
    assert cli.parse_plain(argv) is None
    assert run_cli(*argv) == 2


def test_run_as_root_is_said_the_same_way_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from blankslate import errors

    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(errors.BlankslateError, match=r"^run as root \(it mounts\)$"):
        errors.require_root("it mounts")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    errors.require_root("it mounts")
