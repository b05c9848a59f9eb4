"""Plan v2: loading from each source, and one clear error for every kind of bad plan."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_subprocess import FakeProcess

from blankslate import display, nix, plan, plansource
from blankslate.errors import BlankslateError

from ..support.plans import btrfs_storage


@pytest.fixture
def good() -> dict[str, Any]:
    data = json.loads(plansource.default_text())
    assert isinstance(data, dict)
    return data


def test_default_plan_round_trips_to_the_same_json(good: dict[str, Any]) -> None:
    loaded = plansource.default()
    assert loaded.to_json() == good
    assert list(loaded.to_json()) == list(good)  # key order as in the contract
    assert btrfs_storage(loaded).blank_snapshot == "root-blank"
    assert loaded.disk is not None and loaded.disk.partitions[0].size_bytes == 1024**3
    assert [entry.path for entry in loaded.persisted] == [
        "/var/lib/blankslate",
        "/var/lib/dhcpcd",
        "/var/lib/nixos",
        "/var/lib/systemd",
        "/etc/machine-id",
    ]


def test_plan_file_wins_over_host(tmp_path: Path, good: dict[str, Any]) -> None:
    good["hostName"] = "from-file"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(good))
    assert plansource.load(plansource.PlanSource(path, "ignored-host")).host_name == "from-file"


def test_host_is_evaluated_with_nix(fp: FakeProcess, good: dict[str, Any]) -> None:
    good["hostName"] = "web1"
    fp.register(nix.eval_plan("/src/flake", "web1"), stdout=json.dumps(good))
    loaded = plansource.load(
        plansource.PlanSource(None, "web1", "/src/flake"), installed=Path("/nonexistent")
    )
    assert loaded.host_name == "web1"
    assert nix.eval_plan("/src/flake", "web1")[-1] == (
        "/src/flake#nixosConfigurations.web1.config.blankslate.plan"
    )


def test_failing_nix_eval_is_one_error_line(fp: FakeProcess) -> None:
    fp.register(nix.eval_plan(".", "nope"), returncode=1, stderr="error: no such host\n")
    with pytest.raises(BlankslateError, match="no such host"):
        plansource.load(plansource.PlanSource(host="nope"))


def test_installed_plan_before_builtin_default(tmp_path: Path, good: dict[str, Any]) -> None:
    good["hostName"] = "installed"
    installed = tmp_path / "plan.json"
    installed.write_text(json.dumps(good))
    assert plansource.load(installed=installed).host_name == "installed"
    assert plansource.load(installed=tmp_path / "missing.json").host_name == "example"


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(BlankslateError, match=r"^plan: cannot read .*missing\.json"):
        plansource.from_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1,\n oops}')
    with pytest.raises(BlankslateError, match=r"not valid JSON \(line 2"):
        plansource.from_file(broken)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[last]
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return apply


_DELETE = object()

BAD_PLANS = [
    ("unknown key", _set("colour", "blue"), "plan: colour: unknown key"),
    ("nested unknown key", _set("disk.sizee", "1G"), "plan: disk.sizee: unknown key"),
    ("missing key", _set("persistPath", _DELETE), "plan: persistPath: missing key"),
    ("missing nested key", _set("mounts.2.device", _DELETE), "plan: mounts[2].device: missing"),
    ("wrong type", _set("btrfs.oldRoots.keepDays", "30"), "keepDays: expected an integer"),
    ("bool is not int", _set("btrfs.oldRoots.keepNewest", True), "keepNewest: expected an integer"),
    ("keepMax zero", _set("btrfs.oldRoots.keepMax", 0), "keepMax: must be null or between 1"),
    ("keepMax too big", _set("btrfs.oldRoots.keepMax", 10**6), "keepMax: must be null or between"),
    ("keepMax negative", _set("btrfs.oldRoots.keepMax", -3), "keepMax: must be null or between"),
    ("keepMax string", _set("btrfs.oldRoots.keepMax", "30"), "keepMax: expected an integer, got"),
    ("keepMax bool", _set("btrfs.oldRoots.keepMax", True), "keepMax: expected an integer, got"),
    ("list expected", _set("users", {"name": "x"}), "plan: users: expected a list"),
    ("bad rollback kind", _set("rollback", "ext4"), 'rollback: expected one of "btrfs"'),
    ("bad size", _set("disk.partitions.1.size", "8 gigs"), "disk.partitions[1].size: '8 gigs'"),
    ("relative path", _set("persistPath", "persist"), "persistPath: 'persist' is not an absolute"),
    (
        "relative mountpoint",
        _set("mounts.3.mountPoint", "nix"),
        "mounts[3].mountPoint: 'nix' is not an absolute, normalised path",
    ),
    (
        "duplicate mountpoint",
        _set("mounts.4.mountPoint", "/nix"),
        "mounts[4]: duplicate mountPoint '/nix'",
    ),
    (
        "child before parent",
        _set("mounts.1.mountPoint", "/home/x"),
        "mounts[2].mountPoint: '/home' must come before '/home/x'",
    ),
    (
        "tmpfs rollback, btrfs root",
        lambda data: data.update(rollback="tmpfs", tmpfs={"size": "2G"}),
        "mounts: rollback 'tmpfs' mounts a tmpfs",
    ),
    (
        "password file outside persistPath",
        _set("users.0.hashedPasswordFile", "/persist/../etc/shadow"),
        "users[0].hashedPasswordFile: '/persist/../etc/shadow' is not an absolute, normalised",
    ),
    ("persistPath not normal", _set("persistPath", "/persist/.."), "persistPath: '/persist/..'"),
    ("keepDays too large", _set("btrfs.oldRoots.keepDays", 10**6), "keepDays: must be between"),
    (
        "rest before the end",
        _set("disk.partitions.0.size", None),
        "disk.partitions[0].size: only the last partition",
    ),
    ("old plan version", _set("version", 1), "plan version 1 comes from an older blankslate"),
    (
        "rollback without its section",
        _set("btrfs", None),
        "plan: btrfs: rollback 'btrfs' needs a btrfs section",
    ),
    ("zfs without section", _set("rollback", "zfs"), "plan: zfs: rollback 'zfs' needs a zfs"),
    ("disk missing", _set("disk", None), "plan: disk: rollback 'btrfs' needs a disk section"),
    ("blank equals root", _set("btrfs.blankSnapshot", "root"), "btrfs.blankSnapshot: is, or nests"),
    (
        "root subvolume unknown",
        _set("btrfs.rootSubvolume", "rootfs"),
        "btrfs.rootSubvolume: 'rootfs' is not a subvolume",
    ),
    (
        "persisting /",
        _set("persistence.directories.0.directory", "/"),
        "persistence.directories[0].directory: / cannot be persisted",
    ),
    ("bad mode", _set("persistence.directories.0.mode", "rwx"), "mode: 'rwx' is not an octal"),
    ("mode with a newline", _set("persistence.directories.0.mode", "0755\n"), "is not an octal"),
    ("path with a newline", _set("persistPath", "/persist\n"), "persistPath: '/persist\\n'"),
    ("root is /", _set("persistence.files.0.root", "/"), "files[0].root: cannot be /"),
    ("roots holds /", _set("persistence.roots.0", "/"), "persistence.roots[0]: cannot be /"),
    ("bad method", _set("persistence.files.0.method", "copy"), 'method: expected one of "auto"'),
    (
        "parent not above",
        _set("persistence.directories.0.parents.1.directory", "/srv"),
        "directories[0].parents[1].directory: '/srv' is not between '/var' and "
        "'/var/lib/blankslate'",
    ),
    (
        "parents out of order",
        _set("persistence.directories.0.parents.0.directory", "/var/lib"),
        "parents[1].directory: '/var/lib' is not between '/var/lib' and",
    ),
    (
        "parent is the path",
        _set("persistence.files.0.parents.0.directory", "/etc/machine-id"),
        "files[0].parents[0].directory: '/etc/machine-id' is not between '/' and",
    ),
    ("bad owner", _set("persistence.directories.0.parents.0.user", "a:b"), "user: 'a:b' is not a"),
    ("bad group", _set("persistence.directories.0.group", ""), "group: '' is not a group name"),
    ("bad version", _set("version", 3), "plan: version: unsupported plan version 3"),
    ("not an object", lambda data: data.clear() or data.update({"x": 1}), "plan: x: unknown key"),
]


@pytest.mark.parametrize(
    ("mutate", "message"), [(m, msg) for _, m, msg in BAD_PLANS], ids=[i for i, _, _ in BAD_PLANS]
)
def test_bad_plans_get_one_clear_line(
    good: dict[str, Any], mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = copy.deepcopy(good)
    mutate(data)
    with pytest.raises(BlankslateError) as error:
        plan.from_json(data)
    text = str(error.value)
    assert message in text
    assert text.startswith("plan: ")
    assert "\n" not in text


def test_keep_max_is_read_and_may_be_null_or_absent(good: dict[str, Any]) -> None:
    loaded = plan.from_json(good)
    assert btrfs_storage(loaded).old_roots.keep_max == 30
    for value in (None, _DELETE):  # null: no bound; absent: a plan from before keepMax
        data = copy.deepcopy(good)
        _set("btrfs.oldRoots.keepMax", value)(data)
        assert btrfs_storage(plan.from_json(data)).old_roots.keep_max is None


def test_a_plan_without_roots_keeps_everything_in_persist_path(good: dict[str, Any]) -> None:
    """What Nix wrote before persistence roots: every path in persistPath, no parents."""
    good["persistence"] = {
        "directories": [{"directory": "/var/lib/nixos"}],
        "files": [{"file": "/etc/machine-id"}],
    }
    loaded = plan.from_json(good)
    assert [(e.path, e.kind, e.root, e.parents) for e in loaded.persisted] == [
        ("/var/lib/nixos", "directory", "/persist", ()),
        ("/etc/machine-id", "file", "/persist", ()),
    ]
    assert loaded.persistence_roots == ["/persist"]


def test_every_root_once_persist_path_first(good: dict[str, Any]) -> None:
    good["persistence"]["roots"] = ["/persist/cache", "/persist"]
    good["persistence"]["files"][0]["root"] = "/state"
    assert plan.from_json(good).persistence_roots == ["/persist", "/persist/cache", "/state"]


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(BlankslateError, match="plan: top level: expected an object"):
        plan.from_json([])


def test_rollback_none_needs_no_disk(good: dict[str, Any]) -> None:
    good.update(rollback="none", disk=None, btrfs=None, mounts=[], persistPath="/persistent")
    good["users"][0]["hashedPasswordFile"] = "/persistent/passwords/admin"
    good["sshHostKeys"] = ["/persistent/etc/ssh/ssh_host_ed25519_key"]
    loaded = plan.from_json(good)
    assert loaded.disk is None and loaded.rollback == "none"


def test_tmpfs_plan_on_btrfs(host_plan_data: Callable[[str], dict[str, Any]]) -> None:
    data = host_plan_data("tmpfs")
    data["tmpfs"] = {"size": "25%"}
    loaded = plan.from_json(data)
    storage = loaded.storage
    assert isinstance(storage, plan.TmpfsStorage) and storage.size == "25%"
    assert storage.layout is not None and storage.layout.root_subvolume is None


def test_user_lookup(good: dict[str, Any]) -> None:
    loaded = plan.from_json(good)
    assert loaded.user("admin").hashed_password_file == "/persist/passwords/admin"
    with pytest.raises(BlankslateError, match=r"user 'bob' is not in the plan \(plan users: admin"):
        loaded.user("bob")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("512M", 512 * 1024**2),
        ("1GiB", 1024**3),
        ("8G", 8 * 1024**3),
        ("2TB", 2 * 1024**4),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert plan.parse_size(text) == size


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (512, "512 B"), (2048, "2.0 KiB"), (1536 << 20, "1.5 GiB"), (3 << 40, "3.0 TiB")],
)
def test_format_size(size: int, text: str) -> None:
    assert display.format_size(size) == text
