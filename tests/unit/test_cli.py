"""The CLI's contract: JSON on stdout, `error: ...` one-liners with exit 1, usage errors exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

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
