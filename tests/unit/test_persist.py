"""persist.py with every command mocked: builders, the ZFS listing, send into a new file,
recover's path rules, and the CLI's one-line errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from blankslate import btrfs, persist, plan, plansource, snapshots, zfs
from blankslate.errors import BlankslateError

DATASET = "rpool/safe/persist"
LISTING = [
    "ZFS_LIST", "100\trpool/safe/persist@mine",
    "120\trpool/safe/persist@blankslate-2026-11-20T08:00:00Z",
    "130\trpool/safe/persist@blankslate-2026-11-21T08:00:00Z",
    "125\trpool/safe/persist@blankslate-not-a-time",
]  # fmt: skip


def zfs_plan(tmp_path: Path) -> plan.Plan:
    """The ZFS host's plan with persistPath (and what lies in it) moved below tmp_path."""
    text = (Path(__file__).parents[1] / "plans" / "zfs.json").read_text()
    data = json.loads(text.replace('"/persist', f'"{tmp_path}/persist'))
    data["persistSnapshots"] = {"interval": "daily", "keep": 3, "persist": DATASET,
                                "subvolume": None}  # fmt: skip
    return plan.from_json(data)


def register_listing(fp: FakeProcess) -> None:
    fp.register(zfs.list_snapshots(DATASET), stdout="\n".join(LISTING[1:]) + "\n")


def test_builders() -> None:
    assert btrfs.send(Path("/t/s/new")) == ["btrfs", "send", "/t/s/new"]
    assert btrfs.send(Path("/t/s/new"), Path("/t/s/old")) == [
        "btrfs", "send", "-p", "/t/s/old", "/t/s/new",
    ]  # fmt: skip
    assert zfs.send("p/d@b") == ["zfs", "send", "p/d@b"]
    assert zfs.send("p/d@b", "@a") == ["zfs", "send", "-i", "@a", "p/d@b"]
    assert zfs.list_snapshots("p/d") == [
        "zfs", "list", "-H", "-p", "-t", "snapshot", "-d", "1", "-o", "createtxg,name", "p/d",
    ]  # fmt: skip


def test_zfs_listing_keeps_ours_newest_first(fp: FakeProcess, tmp_path: Path) -> None:
    register_listing(fp)
    found = snapshots.zfs_listing(DATASET, str(tmp_path / "persist"))
    assert [s.name for s in found] == ["2026-11-21T08:00:00Z", "2026-11-20T08:00:00Z"]
    assert found[0].path == tmp_path / "persist/.zfs/snapshot/blankslate-2026-11-21T08:00:00Z"


def test_zfs_send_incremental_into_a_new_file(fp: FakeProcess, tmp_path: Path) -> None:
    register_listing(fp)
    command = zfs.send(
        f"{DATASET}@blankslate-2026-11-21T08:00:00Z", "@blankslate-2026-11-20T08:00:00Z"
    )
    fp.register(command, stdout="STREAM")
    target = tmp_path / "out.zfs"
    sent = persist.send(zfs_plan(tmp_path), target, incremental=True)
    assert (sent.snapshot, sent.parent) == ("2026-11-21T08:00:00Z", "2026-11-20T08:00:00Z")
    assert target.read_bytes() == b"STREAM"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zfs"]


def test_a_failed_send_leaves_nothing(fp: FakeProcess, tmp_path: Path) -> None:
    register_listing(fp)
    fp.register(zfs.send(f"{DATASET}@blankslate-2026-11-21T08:00:00Z"), stdout="PART",
                stderr="cannot send: I/O error", returncode=1)  # fmt: skip
    with pytest.raises(BlankslateError, match="I/O error"):
        persist.send(zfs_plan(tmp_path), tmp_path / "out.zfs")
    assert list(tmp_path.iterdir()) == []


def test_named_snapshot_and_dry_run(fp: FakeProcess, tmp_path: Path) -> None:
    register_listing(fp)
    sent = persist.send(
        zfs_plan(tmp_path), tmp_path / "o", name="blankslate-2026-11-20T08:00:00Z", dry_run=True
    )
    assert sent.snapshot == "2026-11-20T08:00:00Z" and not (tmp_path / "o").exists()
    register_listing(fp)
    with pytest.raises(BlankslateError, match="no persist snapshot named 'nope'"):
        persist.send(zfs_plan(tmp_path), tmp_path / "o", name="nope")


def test_off_in_the_plan(tmp_path: Path) -> None:
    off = dataclasses.replace(zfs_plan(tmp_path), persist_snapshots=None)
    with pytest.raises(BlankslateError, match="persist snapshots are off"):
        persist.send(off, tmp_path / "o")


def test_persist_relative(tmp_path: Path) -> None:
    the_plan = zfs_plan(tmp_path)
    root = the_plan.persist_path
    assert persist.persist_relative(the_plan, f"{root}/etc//ssh/") == "etc/ssh"
    persisted = the_plan.persisted[0].path
    assert persist.persist_relative(the_plan, persisted) == persisted.lstrip("/")
    for bad, message in ((root, "as a whole"), ("/srv/x", "is not kept"), ("x", "absolute")):
        with pytest.raises(BlankslateError, match=message):
            persist.persist_relative(the_plan, bad)


@given(st.text(max_size=60))
def test_persist_relative_never_tracebacks(path: str) -> None:
    the_plan = zfs_plan(Path("/tmp/blankslate-property"))
    try:
        relative = persist.persist_relative(the_plan, path)
    except BlankslateError:
        return
    assert not relative.startswith("/") and ".." not in relative.split("/")


def test_cli_errors_are_one_line(
    run_cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plansource.default().to_json()))
    assert run_cli("persist", "send", "--plan", str(plan_file), "--to", str(tmp_path / "o")) == 1
    assert capsys.readouterr().err.splitlines()[-1] + "\n" == (
        "error: persist snapshots are off in this plan (set blankslate.persistSnapshots.interval)\n"
    )
    code = run_cli("recover", "--plan", str(plan_file), "--from", "x", "--from-persist", "y", "/a")
    assert code == 2


def test_parent_chains_a_send_over_snapshots_in_between(fp: FakeProcess, tmp_path: Path) -> None:
    """After a full send of the 20th, hourly or daily snapshots came and went: --parent sends the
    newest against the one the other side holds, not against the one just before it."""
    newest = "140\trpool/safe/persist@blankslate-2026-11-22T08:00:00Z"
    fp.register(zfs.list_snapshots(DATASET), stdout="\n".join([*LISTING[1:], newest]) + "\n")
    command = zfs.send(
        f"{DATASET}@blankslate-2026-11-22T08:00:00Z", "@blankslate-2026-11-20T08:00:00Z"
    )
    fp.register(command, stdout="STREAM")
    target = tmp_path / "out.zfs"
    sent = persist.send(zfs_plan(tmp_path), target, parent_name="2026-11-20T08:00:00Z")
    assert (sent.snapshot, sent.parent) == ("2026-11-22T08:00:00Z", "2026-11-20T08:00:00Z")
    assert target.read_bytes() == b"STREAM"


def test_a_parent_newer_than_the_snapshot_is_refused(fp: FakeProcess, tmp_path: Path) -> None:
    register_listing(fp)
    with pytest.raises(BlankslateError, match="is not older than 2026-11-20T08:00:00Z"):
        persist.send(
            zfs_plan(tmp_path),
            tmp_path / "out.zfs",
            name="2026-11-20T08:00:00Z",
            parent_name="2026-11-21T08:00:00Z",
        )
    assert list(tmp_path.iterdir()) == []
