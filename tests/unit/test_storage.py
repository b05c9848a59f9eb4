"""The storage kind is one tagged value, each kind has its module behind `storage.Kind`, and a
`match` that misses a kind is a type error (mypy, run in-process on a snippet)."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import mypy.api
import pytest

from blankslate import plan, storage, storage_btrfs, storage_none, storage_tmpfs, storage_zfs
from blankslate.errors import BlankslateError

from ..support.plans import FIXTURES, PLANS

KIND_CLASSES = {
    "btrfs": (plan.BtrfsStorage, storage_btrfs.BtrfsKind),
    "zfs": (plan.ZfsStorage, storage_zfs.ZfsKind),
    "tmpfs": (plan.TmpfsStorage, storage_tmpfs.TmpfsKind),
    "none": (plan.NoStorage, storage_none.NoKind),
}


def test_storage_is_a_union_tagged_by_every_rollback_kind() -> None:
    members = typing.get_args(plan.Storage)
    tags = [typing.get_args(typing.get_type_hints(member)["kind"]) for member in members]
    assert sorted(tag for (tag,) in tags) == sorted(typing.get_args(plan.RollbackKind))
    assert {kind: classes[0] for kind, classes in KIND_CLASSES.items()} == {
        tag: member for (tag,), member in zip(tags, members, strict=True)
    }


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.path.name)
def test_each_golden_plan_reads_as_its_kind_and_writes_back_the_same_json(
    fixture: typing.Any,
) -> None:
    data = json.loads(fixture.path.read_text(encoding="utf-8"))
    loaded = plan.from_json(data)
    storage_class, kind_class = KIND_CLASSES[data["rollback"]]
    assert type(loaded.storage) is storage_class
    assert loaded.rollback == loaded.storage.kind == data["rollback"]
    assert type(storage.of(loaded.storage)) is kind_class
    assert loaded.to_json() == data


def test_every_kind_has_a_golden_plan() -> None:
    kinds = {json.loads(f.path.read_text(encoding="utf-8"))["rollback"] for f in FIXTURES}
    assert kinds == set(KIND_CLASSES)


def test_install_asks_each_kind_for_its_tools_and_volumes() -> None:
    zfs = plan.from_json(json.loads((PLANS / "zfs.json").read_text(encoding="utf-8")))
    tmpfs = plan.from_json(json.loads((PLANS / "tmpfs.json").read_text(encoding="utf-8")))
    assert storage.of(zfs.storage).tools == ("zpool", "zfs")
    assert storage.of(zfs.storage).volumes == "datasets"
    assert storage.of(tmpfs.storage).tools == ("mkfs.btrfs", "btrfs")
    assert storage.of(tmpfs.storage).extra_rows() == []  # no blank snapshot on tmpfs
    with pytest.raises(BlankslateError, match="rollback 'none' has no subvolumes"):
        storage.of(plan.NoStorage()).create("/dev/null", dry_run=True)


_FILES = {"btrfs": "bios.json", "zfs": "zfs.json", "tmpfs": "tmpfs.json", "none": "vpsfree.json"}


def _data(kind: str) -> dict[str, typing.Any]:
    data = json.loads((PLANS / _FILES[kind]).read_text(encoding="utf-8"))
    assert isinstance(data, dict) and data["rollback"] == kind
    return data


@pytest.mark.parametrize(
    ("rollback", "section"),
    [("btrfs", "zfs"), ("btrfs", "tmpfs"), ("zfs", "btrfs"), ("tmpfs", "zfs"), ("none", "btrfs")],
)
def test_a_section_of_another_kind_is_refused(rollback: str, section: str) -> None:
    """Nix writes only the kind's own sections: the tagged value has room for no other."""
    data = _data(rollback)
    data[section] = _data(section)[section]
    with pytest.raises(BlankslateError) as error:
        plan.from_json(data)
    assert str(error.value) == f"plan: {section}: must be null when rollback is {rollback!r}"


_MATCH = """
from typing import assert_never

from blankslate.plan import BtrfsStorage, NoStorage, Storage, TmpfsStorage, ZfsStorage


def name(storage: Storage) -> str:
    match storage:
        case BtrfsStorage():
            return storage.root_subvolume
        case ZfsStorage():
            return storage.root
        case TmpfsStorage():
            return storage.size
{none}        case _:
            assert_never(storage)
"""
_NONE_CASE = """        case NoStorage():
            return "none"
"""


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(source, encoding="utf-8")
    cache = tmp_path / "mypy-cache"
    out, err, status = mypy.api.run(
        ["--strict", "--no-error-summary", "--cache-dir", str(cache), str(snippet)]
    )
    return out + err, status


def test_a_match_missing_a_kind_is_a_type_error(tmp_path: Path) -> None:
    complete, status = _mypy(tmp_path, _MATCH.format(none=_NONE_CASE))
    assert status == 0, complete
    missing, status = _mypy(tmp_path, _MATCH.format(none=""))
    assert status == 1
    assert 'Argument 1 to "assert_never" has incompatible type "NoStorage"' in missing
