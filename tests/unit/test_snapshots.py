"""snapshots.py, the Python twin of modules/rollback/kept.bash: one naming rule, read alike by
both; one LATEST, one "by name or latest", one age (issue 26)."""

from __future__ import annotations

import ast
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

import blankslate
from blankslate import snapshots
from blankslate.errors import BlankslateError

REPO = Path(__file__).resolve().parents[2]
KEPT_BASH = REPO / "modules" / "rollback" / "kept.bash"
PACKAGE = Path(blankslate.__file__).parent
STAMP = "2026-11-20T08:00:00Z"


def test_the_stamp_pattern_is_kept_bash_s() -> None:
    found = re.search(r"^readonly stamp_pattern='([^']*)'$", KEPT_BASH.read_text(), re.M)
    assert found is not None
    assert found[1] == snapshots.STAMP_PATTERN
    assert re.search(rf"^readonly stamp_format='{re.escape(snapshots.STAMP_FORMAT)}'$",
                     KEPT_BASH.read_text(), re.M)  # fmt: skip


def _mutations() -> list[str]:
    """Names near a kept name: every one-character change, deletion and insertion of a few
    stamps, and sequence suffixes (".0", ".01", ".7"), as kept.bash must judge them."""
    bases = [STAMP, f"{STAMP}.2", "2026-02-31T23:59:59Z", "1970-01-01T00:00:00Z.10"]
    names = {*bases, f"{STAMP}.0", f"{STAMP}.01", f"{STAMP}.", f"{STAMP}.7", f"{STAMP}\n", ""}
    for base in bases:
        for i in range(len(base) + 1):
            names.add(base[:i] + base[i + 1 :])
            for char in "09Z.:-T a\n":
                names.add(base[:i] + char + base[i + 1 :])
                names.add(base[:i] + char + base[i:])
    return sorted(names)


JUDGE = 'while IFS= read -r -d "" n; do if is_kept_name "$n"; then echo 1; else echo 0; fi; done'


def test_python_and_kept_bash_agree_on_every_name(fp: FakeProcess) -> None:
    names = _mutations()
    command = ["bash", "-c", f"prog=test; source {KEPT_BASH}\n{JUDGE}"]
    fp.pass_command(command)  # the real kept.bash
    bash = subprocess.run(
        command,
        input="".join(f"{name}\0" for name in names),
        capture_output=True,
        text=True,
        check=True,
    )
    verdicts = bash.stdout.split()
    assert len(verdicts) == len(names) > 500
    differ = [
        n for n, v in zip(names, verdicts, strict=True) if snapshots.is_kept_name(n) != (v == "1")
    ]
    assert differ == []
    assert verdicts.count("1") > 10  # both accept real names, not only refuse


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        (STAMP, (datetime(2026, 11, 20, 8, tzinfo=UTC), 0)),
        (f"{STAMP}.12", (datetime(2026, 11, 20, 8, tzinfo=UTC), 12)),
        (f"{STAMP}.0", None),  # kept.bash never names one so, nor prunes it as one
        (f"{STAMP}.01", None),
        (f"{STAMP}\n", None),
        ("2026-02-31T08:00:00Z", None),  # kept.bash's shape, but no date
        ("before-upgrade", None),
    ],
)
def test_parse_name(name: str, parsed: tuple[datetime, int] | None) -> None:
    assert snapshots.parse_name(name) == parsed


@given(st.text())
def test_parse_name_takes_any_text(name: str) -> None:
    parsed = snapshots.parse_name(name)
    assert parsed is None or snapshots.is_kept_name(name)


def _kept(*names: str) -> list[snapshots.Snapshot]:
    return [snapshots.Snapshot(name, Path("/x") / name, None, 0) for name in names]


def test_pick_by_name_latest_or_prefixed_name() -> None:
    found = _kept("new", "old")
    words = {"what": "copy", "none_yet": "none yet", "prefix": "blankslate-"}
    assert snapshots.pick(found, snapshots.LATEST, **words).name == "new"
    assert snapshots.pick(found, "old", **words).name == "old"
    assert snapshots.pick(found, "blankslate-old", **words).name == "old"
    with pytest.raises(BlankslateError, match=r"^no copy named 'gone' \(newest: new, old; x\)$"):
        snapshots.pick(found, "gone", what="copy", none_yet="none yet", hint="; x")
    with pytest.raises(BlankslateError, match=r"^none yet$"):
        snapshots.pick([], snapshots.LATEST, what="copy", none_yet="none yet")


@pytest.mark.parametrize(
    ("delta", "smallest", "shown"),
    [
        (timedelta(minutes=42), "m", "42m"),
        (timedelta(minutes=42), "h", "0h"),
        (timedelta(hours=5, minutes=59), "m", "5h"),
        (timedelta(days=3, hours=23), "h", "3d"),
        (timedelta(seconds=-30), "m", "0m"),  # a name from the future: no negative age
    ],
)
def test_age(delta: timedelta, smallest: str, shown: str) -> None:
    assert snapshots.age(delta, "m" if smallest == "m" else "h") == shown


def _defined(name: str) -> list[str]:
    """The modules of the package that define `name` (an assignment, function or class)."""
    found = []
    for module in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Assign):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                targets = [node.name]
            if name in targets:
                found.append(module.name)
    return found


@pytest.mark.parametrize("name", ["LATEST", "ZFS_PREFIX", "STAMP_FORMAT", "Sizes", "newest_first"])
def test_one_definition_in_snapshots_py(name: str) -> None:
    assert _defined(name) == ["snapshots.py"]


def test_no_second_age_formatter_or_entry_type() -> None:
    assert _defined("_age") == []
    assert _defined("OldRoot") == []
    assert _defined("pick_old_root") == []
