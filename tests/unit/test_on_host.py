"""On a system built from the modules, the commands need no plan arguments: the plan is
/etc/blankslate/plan.json and the ignore file /etc/blankslate/audit.yaml (both paths are module
constants, pointed at tmp_path here). Without that plan, the commands that act on this system's
own disk stop with one line instead of taking the built-in default (the hosts/example layout)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_subprocess import FakeProcess

from blankslate import ignore_rules, plansource, scan
from blankslate.errors import BlankslateError

MISSING_PLAN = "/nonexistent/etc/blankslate/plan.json"


@pytest.fixture
def etc(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    host_plan_data: Callable[[str], dict[str, Any]],
) -> Path:
    """An /etc/blankslate of the zfs host, in tmp_path; the working directory is no checkout."""
    directory = tmp_path / "etc-blankslate"
    directory.mkdir()
    (directory / "plan.json").write_text(json.dumps(host_plan_data("zfs")))
    (directory / "audit.yaml").write_text(
        "ignore:\n  - pattern: /srv/cache/**\n    reason: rebuilt by the app\n"
    )
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", directory / "plan.json")
    monkeypatch.setattr(ignore_rules, "INSTALLED_FILE", directory / "audit.yaml")
    monkeypatch.chdir(tmp_path)
    return directory


def test_diff_without_arguments_reads_plan_and_ignore_file_from_etc(
    etc: Path,
    tmp_path: Path,
    fp: FakeProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    # The zfs host's root and blank snapshot, as the installed plan names them; the paths it
    # reports are measured in a tree of tmp_path instead of /.
    diff = ["zfs", "diff", "-H", "-F", "rpool/local/root@blank"]
    fp.register(diff, stdout="+\tF\t/srv/cache/index\n+\tF\t/srv/notes\n")
    live = tmp_path / "live"
    (live / "srv" / "cache").mkdir(parents=True)
    (live / "srv" / "cache" / "index").write_text("rebuilt")
    (live / "srv" / "notes").write_text("lost")
    scan_zfs = scan.scan_zfs
    monkeypatch.setattr(
        scan, "scan_zfs", lambda dataset, blank, _view="/": scan_zfs(dataset, blank, str(live))
    )
    assert run_cli("diff", "--format", "json") == 0
    assert fp.call_count(diff) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"plan: host zfs from {etc / 'plan.json'}\n")
    entries = {entry["path"]: entry for entry in json.loads(captured.out)["entries"]}
    assert entries["/srv/cache/index"]["status"] == "ignored"
    # Neither the plan's audit.ignore (empty) nor a built-in rule has it: /etc's file does.
    assert entries["/srv/cache/index"]["reason"] == "rebuilt by the app [/srv/cache/**]"
    assert entries["/srv/notes"]["status"] == "lost"


@pytest.mark.parametrize(
    "argv",
    [
        ["diff"],  # the fast start
        ["diff", "--all", "--all"],  # through typer
        ["seed", "--dry-run"],
        ["seed"],
        ["roots"],
        ["recover", "/etc/foo"],
        # these once checked or wrote the built-in example's plan without a word
        ["doctor"],
        ["ignore", "/srv/x", "--reason", "test"],
        ["disko", "--disk", "/dev/sda"],
        ["extra-files", "/nonexistent/tree", "--dry-run", "--no-passwords"],
    ],
    ids=" ".join,
)
def test_without_the_installed_plan_the_host_commands_stop_in_one_line(
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", Path(MISSING_PLAN))
    assert run_cli(*argv) == 1
    assert capsys.readouterr().err == (
        f"error: no plan: {MISSING_PLAN} does not exist (not a system built from the blankslate "
        "modules?); give --host NAME from a flake checkout, or --plan FILE (`blankslate plan > "
        "plan.json` writes the built-in example's)\n"
    )


def test_load_takes_the_builtin_default_only_when_allowed(
    tmp_path: Path, host_plan_data: Callable[[str], dict[str, Any]]
) -> None:
    missing = tmp_path / "plan.json"
    assert plansource.load(installed=missing).host_name == "example"
    with pytest.raises(BlankslateError, match=f"no plan: {missing} does not exist"):
        plansource.load(installed=missing, builtin=False)
    missing.write_text(json.dumps(host_plan_data("zfs")))
    assert plansource.load(installed=missing, builtin=False).host_name == "zfs"
