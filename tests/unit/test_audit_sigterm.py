"""SIGTERM (systemd's, when the audit unit's TimeoutStartSec= runs out) ends `diff` with a
one-line error, exit 2 under --fail-on-lost, and metrics that say so: never silence, never a
half-written report."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import pytest

from blankslate import audit, render
from blankslate.classify import Report

from .test_diff_output import live_root, parse_metrics, walk_plan

__all__ = ["live_root"]  # a fixture


def terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)  # the handler raises in here
    raise AssertionError("SIGTERM did not end the audit")


def test_sigterm_during_the_scan_fails_with_exit_2_and_says_so_in_the_metrics(
    live_root: Path,
    tmp_path: Path,
    run_cli: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    def scanning(*_args: Any, **_kwargs: Any) -> Report:
        terminate_self()
        raise AssertionError("unreachable")

    monkeypatch.setattr(audit, "run_diff", scanning)
    metrics_file, report_file = tmp_path / "out" / "blankslate.prom", tmp_path / "audit.json"
    args = ["diff", "--plan", str(walk_plan(tmp_path)), "--root", str(live_root)]
    outputs = ["--metrics", str(metrics_file), "--report", str(report_file)]
    assert run_cli(*args, *outputs, "--fail-on-lost") == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("error: terminated (SIGTERM")
    values = parse_metrics(metrics_file.read_text())
    assert values["blankslate_audit_complete"] == 0
    assert values["blankslate_audit_terminated"] == 1
    assert abs(values["blankslate_audit_timestamp_seconds"] - time.time()) < 600
    assert not report_file.exists()
    assert sorted(os.listdir(metrics_file.parent)) == ["blankslate.prom"]
    # The handler was the audit's only: what was there before is back.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    # Without --fail-on-lost a failure is 1, as every other failure.
    assert run_cli(*args, *outputs) == 1


def test_sigterm_while_the_report_is_written_leaves_the_old_report_whole(
    live_root: Path,
    tmp_path: Path,
    run_cli: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics_file, report_file = tmp_path / "blankslate.prom", tmp_path / "state" / "audit.json"
    report_file.parent.mkdir()
    report_file.write_text('{"old": "report"}')
    streamed = render.write_json

    def writing(report: Report, out: TextIO, *, full: bool = False) -> None:
        out.write('{"version": 2, ')
        terminate_self()
        streamed(report, out, full=full)

    monkeypatch.setattr(render, "write_json", writing)
    args = ["diff", "--plan", str(walk_plan(tmp_path)), "--root", str(live_root)]
    outputs = ["--metrics", str(metrics_file), "--report", str(report_file)]
    assert run_cli(*args, *outputs, "--fail-on-lost") == 2
    assert report_file.read_text() == '{"old": "report"}'  # replaced whole or not at all
    assert sorted(os.listdir(report_file.parent)) == ["audit.json"]  # no temporary left
    values = parse_metrics(metrics_file.read_text())
    assert values["blankslate_audit_complete"] == 0
    assert values["blankslate_audit_terminated"] == 1


def test_an_audit_that_finishes_leaves_no_handler_and_no_terminated_gauge(
    live_root: Path, tmp_path: Path, run_cli: Callable[..., int]
) -> None:
    metrics_file = tmp_path / "blankslate.prom"
    args = ["diff", "--plan", str(walk_plan(tmp_path)), "--root", str(live_root)]
    assert run_cli(*args, "--metrics", str(metrics_file)) == 0
    values = parse_metrics(metrics_file.read_text())
    assert values["blankslate_audit_complete"] == 1
    assert "blankslate_audit_terminated" not in values
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
