"""The CLI's contract: JSON on stdout, `error: ...` one-liners with exit 1, usage errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blankslate import cli, plan


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr("sys.argv", ["blankslate", *args])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    code = exit_.value.code
    return code if isinstance(code, int) else 1


def test_plan_prints_the_builtin_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(plan, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    assert run_main(monkeypatch, "plan") == 0
    assert json.loads(capsys.readouterr().out) == json.loads(plan.default_text())


def test_bad_plan_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "my plan.json"
    bad.write_text(json.dumps({"version": 1, "rollback": "btrfs"}))
    assert run_main(monkeypatch, "plan", "--plan", str(bad)) == 1
    assert capsys.readouterr().err == "error: plan: hostName: missing key\n"


def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "sys.argv", ["blankslate", "--debug", "plan", "--plan", str(tmp_path / "none.json")]
    )
    with pytest.raises(plan.BlankslateError, match="cannot read"):
        cli.main()


def test_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_main(monkeypatch, "plan", "--no-such-option") == 2
    assert run_main(monkeypatch, "plan", "--plan", "a.json", "--host", "b") == 2
