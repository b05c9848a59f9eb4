"""modules/snapshots/zfs-persist-snapshot.bash against a fake `zfs` on PATH (no ZFS needed).

The fake keeps its snapshots in a file, one "createtxg<TAB>creation<TAB>name" line each, and
answers `zfs list`, `zfs snapshot` and `zfs destroy` from it; FAKE_ZFS_FAIL_DESTROY names a
snapshot that cannot be destroyed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import zfs_rule_environment

SCRIPT = Path(__file__).resolve().parents[2] / "modules" / "snapshots" / "zfs-persist-snapshot.bash"
DATASET = "rpool/safe/persist"
PREFIX = "blankslate-persist-snapshot: "

FAKE_ZFS = r"""#!/usr/bin/env bash
state=$FAKE_ZFS_STATE
{ printf '%s\0' "$@"; printf '\n'; } >> "$state/log"
touch "$state/snapshots"
name=${!#}
case $1 in
  list)
    if [[ " $* " == *" -d 1 "* ]]; then
      while IFS=$'\t' read -r txg created snap; do
        [[ $snap == "$name@"* ]] && printf '%s\t%s\t%s\n' "$txg" "$created" "$snap"
      done < "$state/snapshots"
      exit 0
    fi
    if [[ $name == *@* ]]; then
      grep -q -P "\t\Q$name\E$" "$state/snapshots" && { echo "$name"; exit 0; }
    elif [[ $name == "$FAKE_ZFS_DATASET" ]]; then
      echo "$name"; exit 0
    fi
    echo "cannot open '$name': dataset does not exist" >&2; exit 1 ;;
  snapshot)
    txg=$(( $(cat "$state/txg" 2>/dev/null || echo 100) + 1 )); echo "$txg" > "$state/txg"
    printf '%s\t%s\t%s\n' "$txg" "$(date +%s)" "$name" >> "$state/snapshots" ;;
  destroy)
    [[ $name != "${FAKE_ZFS_FAIL_DESTROY:-}" ]] || { echo "cannot destroy: busy" >&2; exit 1; }
    grep -v -P "\t\Q$name\E$" "$state/snapshots" > "$state/next" || true
    mv "$state/next" "$state/snapshots" ;;
esac
"""

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not found")


class FakeZfs:
    def __init__(self, tmp_path: Path) -> None:
        self.bindir = tmp_path / "bin"
        self.state = tmp_path / "state"
        self.bindir.mkdir()
        self.state.mkdir()
        (self.bindir / "zfs").write_text(FAKE_ZFS)
        (self.bindir / "zfs").chmod(0o755)
        (self.state / "snapshots").write_text("")

    def add(self, txg: int, created: int, name: str) -> None:
        with (self.state / "snapshots").open("a") as f:
            f.write(f"{txg}\t{created}\t{DATASET}@{name}\n")

    def names(self) -> list[str]:
        lines = (self.state / "snapshots").read_text().splitlines()
        return [line.split("\t")[2].split("@", 1)[1] for line in lines]

    def run(
        self, *args: str, fail_destroy: str = "", rules: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            **(zfs_rule_environment() if rules is None else rules),
            "PATH": f"{self.bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "FAKE_ZFS_STATE": str(self.state),
            "FAKE_ZFS_DATASET": DATASET,
            "FAKE_ZFS_FAIL_DESTROY": fail_destroy,
        }
        return subprocess.run(
            ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30
        )


OURS = re.compile(r"^blankslate-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(\.[1-9]\d*)?$")


def test_snapshot_then_prune_to_keep(tmp_path: Path) -> None:
    zfs = FakeZfs(tmp_path)
    zfs.add(5, 1_000_000_000, "mine")  # not ours: never touched
    for _ in range(4):
        proc = zfs.run(DATASET, "2")
        assert proc.returncode == 0, proc.stderr
    names = zfs.names()
    assert names[0] == "mine"
    ours = names[1:]
    assert len(ours) == 2 and all(OURS.match(name) for name in ours)
    assert f"{PREFIX}snapshot of {DATASET} taken: {DATASET}@{ours[-1]}" in proc.stdout
    assert any(line.startswith(f"{PREFIX}destroyed {DATASET}@blankslate-") for line in
               proc.stdout.splitlines())  # fmt: skip
    assert proc.stdout.splitlines()[-1] == f"{PREFIX}done"


def test_keep_zero_destroys_ours_and_takes_none(tmp_path: Path) -> None:
    zfs = FakeZfs(tmp_path)
    zfs.add(5, 1_000_000_000, "mine")
    zfs.add(6, 1_000_000_000, "blankslate-2001-09-09T01:46:40Z")
    proc = zfs.run(DATASET, "0")
    assert proc.returncode == 0, proc.stderr
    assert zfs.names() == ["mine"]
    assert "taken" not in proc.stdout


def test_newest_by_createtxg_not_by_name(tmp_path: Path) -> None:
    """A snapshot named by a wrong clock (2001, created after the 2020 one) ranks by its txg."""
    zfs = FakeZfs(tmp_path)
    zfs.add(10, 1_600_000_000, "blankslate-2020-09-13T12:26:40Z")
    zfs.add(11, 1_600_000_100, "blankslate-2001-09-09T01:46:40Z")
    proc = zfs.run(DATASET, "2")
    assert proc.returncode == 0, proc.stderr
    names = zfs.names()
    assert "blankslate-2020-09-13T12:26:40Z" not in names
    assert "blankslate-2001-09-09T01:46:40Z" in names and len(names) == 2


def test_a_name_in_the_future_stops_pruning(tmp_path: Path) -> None:
    zfs = FakeZfs(tmp_path)
    zfs.add(10, 1_600_000_000, "blankslate-2099-01-01T00:00:00Z")
    proc = zfs.run(DATASET, "1")
    assert proc.returncode == 0, proc.stderr
    assert "the clock looks wrong" in proc.stderr
    assert f"{DATASET}@blankslate-2099-01-01T00:00:00Z" in proc.stderr
    assert len(zfs.names()) == 2


def test_a_snapshot_that_cannot_be_destroyed_fails_the_unit(tmp_path: Path) -> None:
    zfs = FakeZfs(tmp_path)
    zfs.add(10, 1_600_000_000, "blankslate-2020-09-13T12:26:40Z")
    zfs.add(11, 1_600_000_001, "blankslate-2020-09-13T12:26:41Z")
    proc = zfs.run(DATASET, "0", fail_destroy=f"{DATASET}@blankslate-2020-09-13T12:26:40Z")
    assert proc.returncode == 1
    assert "could not delete" in proc.stderr
    assert zfs.names() == ["blankslate-2020-09-13T12:26:40Z"]  # the other one still went


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((DATASET,), 2, "usage:"),
        (("-rf", "2"), 1, "DATASET is not a dataset name"),
        ((f"{DATASET}@x", "2"), 1, "DATASET is not a dataset name"),
        # what Nix and `blankslate plan` refuse too (rules.json's zfsPoolDataset)
        (("_rpool/persist", "2"), 1, "DATASET is not a dataset name"),
        (("1pool/persist", "2"), 1, "DATASET is not a dataset name"),
        (("rpool/.x", "2"), 1, "DATASET is not a dataset name"),
        (("rpool/-x", "2"), 1, "DATASET is not a dataset name"),
        (("rpool", "2"), 1, "DATASET is not a dataset name"),
        ((DATASET, "x"), 1, "KEEP must be a non-negative integer"),
        (("rpool/other", "2"), 1, "dataset rpool/other not found; nothing changed"),
    ],
)
def test_bad_arguments_change_nothing(
    tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    zfs = FakeZfs(tmp_path)
    proc = zfs.run(*args)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert zfs.names() == []


def test_without_the_rule_in_the_environment_nothing_happens(tmp_path: Path) -> None:
    zfs = FakeZfs(tmp_path)
    proc = zfs.run(DATASET, "2", rules={})
    assert proc.returncode == 1
    assert "BLANKSLATE_ZFS_DATASET_RULE must hold the dataset name rule" in proc.stderr
    assert zfs.names() == []
