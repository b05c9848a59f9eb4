"""tests/support is what the tests share (issue 26 item 5): its fakes say what the real
commands print, and no test file writes one of its helpers again."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from blankslate import mounts

from ..support.mounts import FINDMNT, findmnt_json
from ..support.plans import boot_plan_data, write_plan_json

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
