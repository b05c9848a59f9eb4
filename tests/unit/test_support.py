"""tests/support is what the tests share (issue 26 item 5): its fakes say what the real
commands print, and no test file writes one of its helpers again."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_subprocess import FakeProcess

from blankslate import mounts, plansource

from ..support import loops
from ..support.mounts import FINDMNT, findmnt_json
from ..support.plans import FIXTURES, PLANS, Fixture, boot_plan_data, render, write_plan_json

TESTS = Path(__file__).resolve().parents[1]
# The helpers tests/support holds, by the names test files used to define them under.
SHARED = {
    "blankslate": "support.runner",
    "attached_loops": "support.loops",
    "findmnt_json": "support.mounts",
    "findmnt": "support.mounts",
    "with_boot": "support.plans",
}


def test_the_findmnt_argv_is_the_one_blankslate_runs() -> None:
    assert mounts.findmnt_cmd() == FINDMNT


def test_the_findmnt_fake_reads_back_through_blankslates_parser(fp: FakeProcess) -> None:
    fp.register(
        FINDMNT,
        stdout=findmnt_json(
            "/",
            ("/persist", "/dev/vda3[/persist]"),
            ("/srv", "tank/srv", "zfs"),
            ("/nix", "/dev/vda3[/nix]", "btrfs", "rw,noatime"),
        ),
    )
    assert mounts.all_mounts() == [
        mounts.MountEntry("/", "/dev/vda3", "btrfs", ("rw",)),
        mounts.MountEntry("/persist", "/dev/vda3[/persist]", "btrfs", ("rw",)),
        mounts.MountEntry("/srv", "tank/srv", "zfs", ("rw",)),
        mounts.MountEntry("/nix", "/dev/vda3[/nix]", "btrfs", ("rw", "noatime")),
    ]


def test_each_boot_mode_plan_is_accepted_by_the_cli(
    tmp_path: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    names = {
        "uefi": ["ESP", "swap", "nixos"],
        "bios": ["bios", "boot", "swap", "nixos"],
        "hybrid": ["bios", "ESP", "swap", "nixos"],
    }
    for boot in names:
        path = write_plan_json(tmp_path, boot_plan_data(boot), f"plan-{boot}.json")
        assert run_cli("--quiet", "plan", "--plan", str(path)) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["disk"]["boot"] == boot
        assert [part["name"] for part in shown["disk"]["partitions"]] == names[boot]


def test_no_test_file_defines_a_shared_helper_again() -> None:
    redefined = []
    for path in sorted(TESTS.rglob("*.py")):
        if "support" in path.relative_to(TESTS).parts:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name in SHARED:
                where = f"{path.relative_to(TESTS)}:{node.lineno}"
                redefined.append(f"{where} defines {node.name} (use {SHARED[node.name]})")
            if isinstance(node, ast.Assign) and ast.unparse(node.value) == repr(FINDMNT):
                where = f"{path.relative_to(TESTS)}:{node.lineno}"
                redefined.append(f"{where} writes the findmnt argv (use support.mounts.FINDMNT)")
    assert redefined == []


# --- the golden plan fixtures and tests/plans/update.py ------------------------------------


def test_each_plan_fixture_is_in_the_layout_update_py_writes() -> None:
    """So a rewrite by update.py changes only what changed."""
    for fixture in FIXTURES:
        text = fixture.path.read_text()
        assert render(fixture, json.loads(text)) == text, fixture.path


def test_boot_plan_data_is_the_nix_proven_plan_of_each_boot_mode() -> None:
    assert boot_plan_data("uefi") == json.loads(plansource.default_text())
    for boot in ("bios", "hybrid"):
        data = boot_plan_data(boot)
        assert data == json.loads((PLANS / f"{boot}.json").read_text())
        assert data["disk"]["boot"] == boot


def load_update() -> Any:
    spec = importlib.util.spec_from_file_location("plans_update", PLANS / "update.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_update_py_rewrites_only_the_stale_fixtures_and_check_only_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Evaluation stubbed: same.json equals it, stale.json does not (its keys in its own
    order), new.json is missing."""
    update = load_update()
    same, stale, new = (tmp_path / f"{n}.json" for n in ("same", "stale", "new"))
    same_text = '{\n  "b": 1,\n  "a": [\n    2\n  ]\n}\n'  # not Nix's (sorted) order: kept
    same.write_text(same_text)
    stale.write_text('{\n  "z": 1,\n  "a": 2\n}\n')
    table = tuple(Fixture(path, "example") for path in (same, stale, new))
    values = [{"a": [2], "b": 1}, {"a": 3, "m": None, "z": 1}, {"x": True}]
    monkeypatch.setattr(update, "REPO", tmp_path)
    monkeypatch.setattr(update, "FIXTURES", table)
    monkeypatch.setattr(update, "evaluate_fixtures", lambda: values)
    assert update.main(["--check"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "stale.json: differs from its evaluation: a, m (new)",
        "new.json: differs from its evaluation: missing",
        "2 fixture(s) differ: run .venv/bin/python tests/plans/update.py",
    ]
    assert not new.exists() and stale.read_text() == '{\n  "z": 1,\n  "a": 2\n}\n'
    assert update.main([]) == 0
    assert same.read_text() == same_text
    assert stale.read_text() == '{\n  "z": 1,\n  "a": 3,\n  "m": null\n}\n'
    assert json.loads(new.read_text()) == {"x": True}
    capsys.readouterr()
    assert update.main(["--check"]) == 0
    assert capsys.readouterr().out == ""


def test_update_py_reports_a_failed_evaluation_in_one_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    update = load_update()

    def failing() -> list[Any]:
        raise RuntimeError("nix evaluation of the plan fixtures failed:\nerror: boom")

    monkeypatch.setattr(update, "evaluate_fixtures", failing)
    assert update.main(["--check"]) == 1
    assert capsys.readouterr().err.startswith("update.py: nix evaluation of the plan fixtures")


def test_the_compact_layout_keeps_flat_values_on_one_line() -> None:
    value = {"a": [{"n": 1, "k": ["x"], "p": [{"d": "/"}]}], "e": {}, "f": {"g": []}}
    assert render(Fixture(Path("x"), "example", compact=True), value) == (
        "{\n"
        '  "a": [\n'
        "    {\n"
        '      "n": 1, "k": ["x"],\n'
        '      "p": [\n'
        '        { "d": "/" }\n'
        "      ]\n"
        "    }\n"
        "  ],\n"
        '  "e": {},\n'
        '  "f": { "g": [] }\n'
        "}\n"
    )


def test_the_leftover_check_names_this_runs_images_only(fp: FakeProcess) -> None:
    """Under pytest-xdist every worker names its images after the run, so the controller's check
    finds a worker's leftover and never another pytest run's."""
    ours, theirs = loops.image_prefix(), "blankslate-itest-1-"
    assert ours != theirs and os.environ[loops.RUN_VARIABLE] == loops.run_id()
    fp.register(
        ["losetup", "-l", "-n", "--raw", "-O", "NAME,BACK-FILE"],
        stdout=f"/dev/loop3 /tmp/x/{ours}a.img (deleted)\n/dev/loop4 /tmp/y/{theirs}b.img\n",
    )
    assert loops.leftover_loops() == [f"/dev/loop3 (/tmp/x/{ours}a.img (deleted))"]
