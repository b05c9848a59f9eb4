"""modules/rollback/zfs-rollback.bash against a fake `zfs` on PATH (no ZFS needed).

The fake logs its argv (one NUL-separated record per call) and answers `zfs list` with
success only for the snapshots named in $FAKE_ZFS_SNAPSHOTS.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blankslate import rules

from ..conftest import zfs_rule_environment

SCRIPT = Path(__file__).resolve().parents[2] / "modules" / "rollback" / "zfs-rollback.bash"

FAKE_ZFS = r"""#!/usr/bin/env bash
{ printf '%s\0' "$@"; printf '\n'; } >> "$FAKE_ZFS_LOG"
if [[ $1 == list ]]; then
  name=${!#}
  for s in $FAKE_ZFS_SNAPSHOTS; do
    if [[ $s == "$name" ]]; then printf '%s\t-\t-\t-\t-\n' "$name"; exit 0; fi
  done
  echo "cannot open '$name': dataset does not exist" >&2
  exit 1
fi
if [[ $1 == rollback ]]; then exit "${FAKE_ZFS_ROLLBACK_RC:-0}"; fi
exit 0
"""

IN_CI = os.environ.get("CI") == "true"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not found")


def run_script(
    tmp_path: Path,
    *args: str,
    snapshots: str = "",
    rollback_rc: int = 0,
    rules: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "zfs"
    fake.write_text(FAKE_ZFS)
    fake.chmod(0o755)
    log = tmp_path / "zfs.log"
    env = {
        **os.environ,
        **(zfs_rule_environment() if rules is None else rules),
        "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "FAKE_ZFS_LOG": str(log),
        "FAKE_ZFS_SNAPSHOTS": snapshots,
        "FAKE_ZFS_ROLLBACK_RC": str(rollback_rc),
        # the boot record goes here, never to the machine's /run/blankslate
        "BLANKSLATE_RECORD_DIR": str(tmp_path / "record"),
    }
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30
    )
    calls = []
    if log.exists():
        for record in log.read_text().split("\n"):
            if record:
                calls.append(record.rstrip("\0").split("\0"))
    return proc, calls


def read_record(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "record" / "reset").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines]
    assert [key for key, _ in pairs] == ["kind", "outcome", "reason", "old_root", "time"]
    return dict(pairs)


def test_rolls_back_existing_snapshot(tmp_path: Path) -> None:
    proc, calls = run_script(
        tmp_path, "rpool/local/root", "blank", snapshots="rpool/local/root@blank"
    )
    assert proc.returncode == 0, proc.stderr
    assert calls == [
        ["list", "-H", "-t", "snapshot", "rpool/local/root@blank"],
        ["rollback", "-r", "rpool/local/root@blank"],
    ]
    lines = proc.stdout.splitlines()
    assert lines == [
        "blankslate-rollback: found snapshot rpool/local/root@blank",
        "blankslate-rollback: rolled rpool/local/root back to rpool/local/root@blank",
    ]
    record = read_record(tmp_path)
    assert record | {"time": ""} == {
        "kind": "zfs",
        "outcome": "reset",
        "reason": "",
        "old_root": "",
        "time": "",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["time"])
    assert os.stat(tmp_path / "record" / "reset").st_mode & 0o777 == 0o644


def test_missing_snapshot_changes_nothing(tmp_path: Path) -> None:
    proc, calls = run_script(
        tmp_path, "rpool/local/root", "blank", snapshots="rpool/local/root@other"
    )
    assert proc.returncode == 1
    assert "snapshot rpool/local/root@blank not found; nothing changed" in proc.stderr
    assert [c[0] for c in calls] == ["list"]
    record = read_record(tmp_path)
    assert (record["kind"], record["outcome"]) == ("zfs", "failed")
    assert record["reason"] == "snapshot rpool/local/root@blank not found; nothing changed"


def test_failing_rollback_is_reported_with_line(tmp_path: Path) -> None:
    proc, calls = run_script(
        tmp_path, "tank/root", "blank", snapshots="tank/root@blank", rollback_rc=3
    )
    assert proc.returncode == 3
    assert [c[0] for c in calls] == ["list", "rollback"]
    assert "failed (exit 3)" in proc.stderr
    assert "line " in proc.stderr
    assert "rolled" not in proc.stdout
    # the ERR trap's message is the record's reason; the exit status stays zfs's
    record = read_record(tmp_path)
    assert record["outcome"] == "failed"
    assert record["reason"].startswith("line ") and "failed (exit 3)" in record["reason"]


def test_runs_inline_with_its_record_library(tmp_path: Path) -> None:
    """As zfs.nix writes it into postResumeCommands: record.bash's text, then the script's."""
    text = (SCRIPT.parent / "record.bash").read_text() + "\n" + SCRIPT.read_text()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "zfs").write_text(FAKE_ZFS)
    (bindir / "zfs").chmod(0o755)
    env = {
        **os.environ,
        **zfs_rule_environment(),
        "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "FAKE_ZFS_LOG": str(tmp_path / "zfs.log"),
        "FAKE_ZFS_SNAPSHOTS": "tank/root@blank",
        "BLANKSLATE_RECORD_DIR": str(tmp_path / "record"),
    }
    proc = subprocess.run(
        ["bash", "-c", text, "zfs-rollback.bash", "tank/root", "blank"],
        env=env, cwd="/", capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert read_record(tmp_path)["outcome"] == "reset"


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("tank/root",),
        ("tank/root", "blank", "extra"),
    ],
)
def test_wrong_argument_count_is_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc, calls = run_script(tmp_path, *args)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr
    assert calls == []


@pytest.mark.parametrize(
    ("dataset", "snapshot"),
    [
        ("/tank/root", "blank"),
        ("tank/root/", "blank"),
        ("tank//root", "blank"),
        ("-rtank", "blank"),
        ("tank/root@x", "blank"),
        ("tank/root", "bl@nk"),
        ("tank/root", "-r"),
        ("tank/root", ""),
        ("", "blank"),
        ("tank/ro ot", "blank"),
        ("tank/root", "bl\nank"),
        # what Nix and `blankslate plan` refuse too (rules.json's zfsPoolDataset, zfsSnapshot)
        ("_tank/root", "blank"),
        ("1tank/root", "blank"),
        ("tank/.x", "blank"),
        ("tank/-x", "blank"),
        ("tank", "blank"),
        ("tank/root", "a/b"),
        ("tank/root", ".x"),
    ],
)
def test_bad_names_are_rejected_before_zfs_runs(
    tmp_path: Path, dataset: str, snapshot: str
) -> None:
    proc, calls = run_script(tmp_path, dataset, snapshot, snapshots=f"{dataset}@{snapshot}")
    assert proc.returncode == 1
    assert "error:" in proc.stderr
    assert calls == []


def test_without_the_rules_in_the_environment_nothing_happens(tmp_path: Path) -> None:
    proc, calls = run_script(tmp_path, "tank/root", "blank", snapshots="tank/root@blank", rules={})
    assert proc.returncode == 1
    assert "BLANKSLATE_ZFS_DATASET_RULE and BLANKSLATE_ZFS_SNAPSHOT_RULE" in proc.stderr
    assert calls == []


NAME = st.text(st.sampled_from(list("tank/_.-:@ x1\né")), max_size=12)


@given(dataset=NAME, snapshot=NAME)
@settings(max_examples=100 if IN_CI else 25, deadline=None)
def test_the_script_takes_exactly_the_names_the_plan_takes(
    tmp_path_factory: pytest.TempPathFactory, dataset: str, snapshot: str
) -> None:
    # the whole script, as the unit runs it: it reaches zfs only for names both rules take
    tmp_path = tmp_path_factory.mktemp("names")
    proc, calls = run_script(tmp_path, dataset, snapshot, snapshots=f"{dataset}@{snapshot}")
    taken = rules.matches("zfsPoolDataset", dataset) and rules.matches("zfsSnapshot", snapshot)
    assert (calls != []) == taken, proc.stderr
    assert proc.returncode == (0 if taken else 1), proc.stderr
