"""`cli.parse_plain`: plain `diff` and `seed` arguments skip typer and mean what typer means."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from pytest_subprocess import FakeProcess

import blankslate
from blankslate import cli, commands, plansource
from blankslate.app import app, global_flags_first

from ..support.mounts import FINDMNT

PLAIN = [
    ["diff"],
    ["--quiet", "diff", "--plan", "my plan.json", "--device", "/dev/vda2", "--format", "json"],
    ["-q", "--debug", "diff", "--format=yaml", "--all", "--fail-on-lost", "--host", "web"],
    ["diff", "--root", "/srv/root", "--ignore-file", "audit.yaml", "--flake", "/etc/nixos"],
    ["seed", "--yes"],
    ["seed", "/var/lib/nixos", "--dry-run", "/etc/machine-id", "--root=/mnt/live"],
    ["--quiet", "seed", "-y", "--plan", "plan.json", "--flake", "..", "/var/log"],
    ["diff", "--flake", "/etc/nixos#web"],
    ["diff", "--flake=.#web", "--host", "web"],
    ["seed", "--yes", "--flake", "github:o/r?dir=x#db"],
    ["diff", "--quiet"],  # global flags after the command too
    ["diff", "--format", "json", "--debug", "-q"],
    ["seed", "/var/lib/nixos", "--quiet", "--yes"],
    ["seed", "--hidden", "--dry-run", "--root", "/mnt"],
    ["seed", "-y", "/var/lib/foo", "--hidden"],
    [
        "diff",
        "--full",
        "--verbose",
        "--report",
        "r.json",
        "--metrics=m.prom",
        "--old-root",
        "latest",
    ],
    ["diff", "-v", "--fail-on-lost", "--report", "/var/lib/blankslate/audit.json", "--all"],
    ["diff", "--suggest"],
    [
        "-q",
        "diff",
        "--suggest",
        "--format",
        "json",
        "--old-root",
        "latest",
        "--device",
        "/dev/vda2",
    ],
    ["diff", "--root", "/mnt", "--format=text", "--suggest", "--ignore-file", "a.yaml", "-v"],
]

LEFT_TO_TYPER = [
    ["--help"],
    ["diff", "--help"],
    ["plan"],
    ["diff", "--no-fail-on-lost"],
    ["diff", "--format", "xml"],
    ["diff", "--format"],
    ["diff", "--device", "--all"],
    ["diff", "--plan", "a.json", "--plan", "b.json"],
    ["diff", "--plan", "a.json", "--host", "web"],
    ["diff", "--all=yes"],
    ["diff", "--full", "--full"],
    ["diff", "--old-root"],
    ["diff", "stray"],
    ["diff", "--plan="],
    ["-qv", "diff"],
    ["seed"],  # would ask: the question is typer's
    ["seed", "--yes", "--yes"],
    ["seed", "--hidden", "--yes", "--hidden"],
    ["seed", "--yes", "--", "/var/lib"],
    ["diff", "--flake", ".#web", "--host", "db"],
    ["diff", "--flake", ".#"],
    ["diff", "--plan", "a.json", "--flake", ".#web"],
    # what --suggest does not go with: typer's usage errors
    ["diff", "--suggest", "--full"],
    ["diff", "--all", "--suggest"],
    ["diff", "--suggest", "--fail-on-lost"],
    ["diff", "--suggest", "--report", "r.json"],
    ["diff", "--metrics=m.prom", "--suggest"],
    ["diff", "--suggest", "--format", "yaml"],
    ["diff", "--suggest", "--suggest"],
]


def typer_parameters(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> dict[str, Any]:
    """What the typer app hands to `commands` (and to the logging set-up) for `argv`."""
    seen: dict[str, Any] = {}

    def record(**parameters: Any) -> int:
        seen.update(parameters)
        return 0

    def record_logging(*, debug: bool, quiet: bool) -> None:
        seen.update(debug=debug, quiet=quiet)

    monkeypatch.setattr(commands, "diff", record)
    monkeypatch.setattr(commands, "seed", record)
    monkeypatch.setattr(commands, "configure_logging", record_logging)
    app(args=global_flags_first(argv), standalone_mode=False)
    seen.pop("confirm", None)
    return seen


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_arguments_mean_what_typer_means(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    invocation = cli.parse_plain(argv)
    assert invocation is not None
    assert invocation.command in argv
    fast = {**invocation.parameters, "debug": invocation.debug, "quiet": invocation.quiet}
    assert fast == typer_parameters(monkeypatch, argv)


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=" ".join)
def test_anything_else_is_left_to_typer(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.parse_plain(argv) is None


def test_a_directory_given_as_plan_is_left_to_typer(tmp_path: Path) -> None:
    assert cli.parse_plain(["diff", "--plan", str(tmp_path)]) is None


def test_the_fast_start_does_not_load_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of it: the typer app stays out of a plain diff run."""
    calls: list[dict[str, Any]] = []

    def record(**parameters: Any) -> int:
        calls.append(parameters)
        return 1

    monkeypatch.setattr(commands, "diff", record)
    monkeypatch.setitem(sys.modules, "blankslate.app", None)  # importing it now fails
    monkeypatch.setattr("sys.argv", ["blankslate", "--quiet", "diff", "--fail-on-lost"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    assert calls[0]["fail_on_lost"] is True
    monkeypatch.setattr("sys.argv", ["blankslate", "diff", "--help"])
    with pytest.raises(ImportError):
        cli.main()  # and the guard works: this one needs the app


def test_a_plain_diff_run_needs_no_typer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fp: FakeProcess, capsys: Any
) -> None:
    """As the timer runs it: neither loading the program nor a plain diff imports typer or
    click (the completion module is typer's: it is loaded only off the fast path)."""
    for name in [name for name in sys.modules if name.split(".")[0] in ("typer", "click")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("typer", "click", "blankslate.app", "blankslate.completion"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now fails
        monkeypatch.delattr(blankslate, name.rpartition(".")[2], raising=False)
    importlib.reload(cli)
    (tmp_path / "plan.json").write_text(plansource.default_text())
    (tmp_path / "root").mkdir()
    monkeypatch.chdir(tmp_path)
    fp.register(FINDMNT, stdout='{"filesystems": []}')
    with pytest.raises(SystemExit) as exit_:
        cli.main(["diff", "--plan", "plan.json", "--root", "root", "--format", "json"])
    assert exit_.value.code == 0
    assert json.loads(capsys.readouterr().out)["method"] == "walk"


def test_a_suggest_run_needs_no_typer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fp: FakeProcess, capsys: Any
) -> None:
    """`diff --suggest` takes the fast start too: typer and what it loads cost more memory
    than the suggestion itself at 1,000,000 entries."""
    for name in [name for name in sys.modules if name.split(".")[0] in ("typer", "click")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("typer", "click", "blankslate.app", "blankslate.completion"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now fails
        monkeypatch.delattr(blankslate, name.rpartition(".")[2], raising=False)
    importlib.reload(cli)
    (tmp_path / "plan.json").write_text(plansource.default_text())
    (tmp_path / "root" / "srv").mkdir(parents=True)
    (tmp_path / "root" / "srv" / "data").write_text("x")
    monkeypatch.chdir(tmp_path)
    fp.register(FINDMNT, stdout='{"filesystems": []}')
    with pytest.raises(SystemExit) as exit_:
        cli.main(["diff", "--plan", "plan.json", "--root", "root", "--suggest", "--format", "json"])
    assert exit_.value.code == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert [(group["by"], group["name"]) for group in groups] == [("top", "/srv")]


class Exited(Exception):
    pass


@pytest.mark.parametrize(
    ("outcome", "status", "stderr"),
    [
        (None, 0, ""),
        (SystemExit(2), 2, ""),
        (SystemExit(None), 0, ""),
        (SystemExit("bye"), 1, "bye\n"),
        # The report streams out: a reader that goes away (`diff | head`) ends it quietly.
        (BrokenPipeError(32, "Broken pipe"), 1, ""),
    ],
)
def test_run_leaves_with_the_exit_status_of_main(
    outcome: BaseException | None,
    status: int,
    stderr: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def main() -> None:
        if outcome is not None:
            raise outcome

    def leave(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(cli, "main", main)
    monkeypatch.setattr(os, "_exit", leave)
    monkeypatch.setattr("sys.argv", ["blankslate", "diff"])
    with pytest.raises(Exited) as exited:
        cli.run()
    assert exited.value.args == (status,)
    assert capsys.readouterr().err == stderr


def test_only_a_plain_diff_skips_the_interpreters_teardown(monkeypatch: pytest.MonkeyPatch) -> None:
    """os._exit pays for diff's large report only; other commands exit as Python does."""

    def leave(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(cli, "main", lambda: sys.exit(3))
    monkeypatch.setattr(os, "_exit", leave)
    for argv in (["plan"], ["seed", "--yes"], ["diff", "--help"]):
        monkeypatch.setattr("sys.argv", ["blankslate", *argv])
        with pytest.raises(SystemExit) as exit_:
            cli.run()
        assert exit_.value.code == 3
