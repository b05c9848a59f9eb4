"""The storage kind is one tagged value, each kind has its module behind `storage_kind.Kind`
(install, diff's scan, the kept copies, doctor's checks), a `match` that misses a kind or a
module that misses an answer is a type error (mypy, run in-process on a snippet), and no module
but plan.py and storage*.py tells the kinds apart."""

from __future__ import annotations

import ast
import json
import re
import typing
from pathlib import Path

import mypy.api
import pytest

from blankslate import plan, storage, storage_btrfs, storage_none, storage_tmpfs, storage_zfs
from blankslate.errors import BlankslateError
from blankslate.snapshots import Snapshot

from ..support.plans import FIXTURES, PLANS

if typing.TYPE_CHECKING:
    from blankslate.storage_kind import Kind

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


# --- each kind answers the whole protocol; nothing else tests the kind ---------------------

PACKAGE = Path(storage.__file__).resolve().parent


def _protocol_members() -> list[str]:
    """The members `storage_kind.Kind` declares (methods and properties), in its order."""
    module = ast.parse((PACKAGE / "storage_kind.py").read_text(encoding="utf-8"))
    kind = next(n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "Kind")
    return [n.name for n in kind.body if isinstance(n, ast.FunctionDef)]


def _without(source: str, cls: str, member: str) -> str:
    """The class `cls` of `source`, renamed `cls_without_member`, lacking `member`; what it
    inherits from a class of the same module is copied into it (the copy has no base)."""
    lines = source.splitlines()
    module = ast.parse(source)
    classes = {n.name: n for n in module.body if isinstance(n, ast.ClassDef)}
    node = classes[cls]
    inherited = [
        item
        for base in node.bases
        if isinstance(base, ast.Name) and base.id in classes
        for item in classes[base.id].body
        if isinstance(item, ast.FunctionDef)
    ]
    whole = [*node.body, *inherited]
    # dataclass fields (tools, volumes) are members too: a field or a method.
    body = [
        n
        for n in whole
        if not (isinstance(n, ast.FunctionDef) and n.name == member)
        and not (
            isinstance(n, ast.AnnAssign)
            and isinstance(n.target, ast.Name)
            and n.target.id == member
        )
    ]
    assert len(body) == len(whole) - 1, f"{cls} has no {member}"
    kept = [
        "\n".join(lines[min([b.lineno for b in n.decorator_list] + [n.lineno]) - 1 : n.end_lineno])
        if isinstance(n, ast.FunctionDef)
        else "\n".join(lines[n.lineno - 1 : n.end_lineno])
        for n in body
        if n.end_lineno is not None
    ]
    start = min([d.lineno for d in node.decorator_list] + [node.lineno])
    header = "\n".join(lines[start - 1 : node.lineno])
    return (
        re.sub(rf"class {cls}(\(.*\))?:", f"class {cls}_without_{member}:", header)
        + "\n"
        + "\n\n".join(kept)
        + "\n"
    )


def test_every_kind_module_answers_the_protocol_and_mypy_finds_a_missing_answer(
    tmp_path: Path,
) -> None:
    """A copy of storage_btrfs's BtrfsKind lacking any one of Kind's members, returned where
    a Kind is wanted (as `storage.of` returns each kind), is a type error naming the member;
    the whole class is not."""
    members = _protocol_members()
    # The protocol covers install, diff's scan, the kept copies and doctor's checks.
    assert {"tools", "create", "missing", "scan", "describe_mount", "btrfs_root"} <= set(members)
    assert {"persist_snapshots", "send_command", "btrfs_persist", "platform_resets"} <= set(members)
    source = (PACKAGE / "storage_btrfs.py").read_text(encoding="utf-8")
    snippet = [source, "from blankslate.storage_kind import Kind\n"]
    snippet.append("def whole(s: BtrfsStorage) -> Kind:\n    return BtrfsKind(s)\n")
    for member in members:
        snippet.append(_without(source, "BtrfsKind", member))
        snippet.append(
            f"def lacking_{member}(s: BtrfsStorage) -> Kind:\n"
            f"    return BtrfsKind_without_{member}(s)\n"
        )
    out, status = _mypy(tmp_path, "\n\n".join(snippet))
    assert status == 1, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == len(members), out
    for member in members:
        assert f'"BtrfsKind_without_{member}" is missing following "Kind" protocol member' in out
        assert re.search(rf'"BtrfsKind_without_{member}".*\n.*note:\s+{member}\n', out), (
            member,
            out,
        )
    assert "whole" not in out and '"BtrfsKind"' not in out


# Where a module may still compare a rollback kind by name, and why.
ALLOWED = {
    "newhost.py": "compares `choices.rollback`, the kind `new-host` is asked for, to pick the "
    "example host it copies: a new host file, not a plan's storage",
}
STORAGE_TYPES = {"BtrfsStorage", "ZfsStorage", "TmpfsStorage", "NoStorage"}


def _is_kind_name(node: ast.expr) -> bool:
    """`x.rollback` or `x.storage.kind`: the storage kind by name."""
    if not isinstance(node, ast.Attribute):
        return False
    return node.attr == "rollback" or (
        node.attr == "kind"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "storage"
    )


def _is_kind_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_kind_literal(element) for element in node.elts)
    return False


def storage_dispatches(source: str) -> list[str]:
    """Where `source` tells the storage kinds apart itself: a storage type named (isinstance,
    a `case`, an import), or the kind's name compared with a string (`plan.rollback ==
    "zfs"`) or matched."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id in STORAGE_TYPES:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in STORAGE_TYPES:
            found.append(f"line {node.lineno}: {node.attr}")
        elif isinstance(node, ast.ImportFrom):
            found += [
                f"line {node.lineno}: imports {alias.name}"
                for alias in node.names
                if alias.name in STORAGE_TYPES
            ]
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(map(_is_kind_name, sides)) and any(map(_is_kind_literal, sides)):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Match) and _is_kind_name(node.subject):
            found.append(f"line {node.lineno}: match {ast.unparse(node.subject)}")
    return sorted(found, key=lambda where: int(where.split()[1].rstrip(":")))


def test_the_storage_dispatch_finder_finds_each_form() -> None:
    found = storage_dispatches(
        "from blankslate.plan import ZfsStorage\n"
        "isinstance(plan.storage, plan_module.BtrfsStorage)\n"
        "if plan.rollback == 'none': pass\n"
        "if 'zfs' != context.plan.rollback: pass\n"
        "if plan.storage.kind in ('btrfs', 'tmpfs'): pass\n"
        "match plan.rollback:\n    case 'zfs': pass\n"
        "match plan.storage:\n    case TmpfsStorage(): pass\n"
        # not a dispatch: the record's kind against the plan's, a kind shown in a message
        "if record.kind != plan.rollback: pass\n"
        "print(f'rollback {plan.rollback}')\n"
    )
    assert [line.partition(":")[0] for line in found] == [
        "line 1",
        "line 2",
        "line 3",
        "line 4",
        "line 5",
        "line 6",
        "line 9",
    ]


def test_no_module_but_plan_and_the_storage_modules_tells_the_kinds_apart() -> None:
    """A new kind is one module: nothing else matches on the storage type or compares the
    kind by name; it asks `storage.of(plan.storage)`."""
    found = {
        path.name: where
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name != "plan.py" and not path.name.startswith("storage")
        if (where := storage_dispatches(path.read_text(encoding="utf-8")))
    }
    unexpected = {name: where for name, where in found.items() if name not in ALLOWED}
    assert not unexpected, "\n".join(
        f"{name}: {', '.join(where)} (ask storage.of(plan.storage) instead)"
        for name, where in unexpected.items()
    )
    assert set(ALLOWED) <= set(found), "an allowed place no longer dispatches: drop it"


class _Recorded:
    """A `storage_kind.Scans` that says which way the kind picked, with its names."""

    def live(self) -> tuple[str, ...]:
        return ("live",)

    def zfs_diff(self, dataset: str, snapshot: str) -> tuple[str, ...]:
        return ("zfs_diff", dataset, snapshot)

    def stored_root(self, subvolume: str) -> tuple[str, ...]:
        return ("stored_root", subvolume)


def _kind(kind: str) -> Kind:
    return storage.of(plan.from_json(_data(kind)).storage)


def test_each_kind_picks_the_root_diff_scans_and_says_what_it_lacks() -> None:
    """The answers consumers used to find by matching on the storage type, kind by kind."""
    btrfs, zfs, tmpfs, none = (_kind(k) for k in ("btrfs", "zfs", "tmpfs", "none"))
    diskless_tmpfs = storage.of(plan.TmpfsStorage("2G", None))
    assert btrfs.scan(_Recorded()) == ("stored_root", "root")
    assert zfs.scan(_Recorded()) == ("zfs_diff", "rpool/local/root", "blank")
    assert tmpfs.scan(_Recorded()) == none.scan(_Recorded()) == ("live",)
    root = btrfs.btrfs_root()
    assert isinstance(root, plan.BtrfsStorage) and root.old_roots.subvolume == "old_roots"
    assert [k.btrfs_root() for k in (zfs, tmpfs, none)] == [
        "rollback zfs: no btrfs root",
        "rollback tmpfs: no btrfs root",
        "rollback none: no btrfs root",
    ]
    assert [k.btrfs_persist() for k in (btrfs, zfs, tmpfs, diskless_tmpfs, none)] == [
        None,
        "rollback zfs: no btrfs persistPath",
        None,
        "rollback tmpfs: no btrfs persistPath",
        "rollback none: no btrfs persistPath",
    ]
    assert [k.platform_resets for k in (btrfs, zfs, tmpfs, none)] == [False, False, False, True]
    mount = plan.Mount("/var/log", "rpool/safe/log", "zfs", ("zfsutil",), True)
    assert zfs.describe_mount(mount) == "dataset 'safe/log'"
    assert btrfs.describe_mount(mount) is None


def test_persist_snapshots_are_sent_as_their_kind_keeps_them() -> None:
    newer = Snapshot("2026-03-02T00:00:00Z", Path("/top/snaps/2026-03-02T00:00:00Z"), None, 0)
    older = Snapshot("2026-03-01T00:00:00Z", Path("/top/snaps/2026-03-01T00:00:00Z"), None, 0)
    on_zfs = plan.PersistSnapshots("hourly", 3, "rpool/safe/persist", None)
    on_btrfs = plan.PersistSnapshots("hourly", 3, "persist", "persist-snapshots")
    assert _kind("zfs").send_command(on_zfs, newer, older) == [
        "zfs",
        "send",
        "-i",
        "@blankslate-2026-03-01T00:00:00Z",
        "rpool/safe/persist@blankslate-2026-03-02T00:00:00Z",
    ]
    for kind in ("btrfs", "tmpfs"):
        assert _kind(kind).send_command(on_btrfs, newer, None) == [
            "btrfs",
            "send",
            "/top/snaps/2026-03-02T00:00:00Z",
        ]
