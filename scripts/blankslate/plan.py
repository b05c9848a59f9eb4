"""Plan v2: the JSON contract between the Nix configuration and this tool.

Nix computes the plan (`config.blankslate.plan`); this module only parses and validates it. Where a
plan comes from (a file, `nix eval` of a host, the installed plan, the built-in default) is
plansource.py's job.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from blankslate import rules
from blankslate.errors import BlankslateError
from blankslate.paths import is_under, nested

RollbackKind = Literal["btrfs", "zfs", "tmpfs", "none"]
PLAN_VERSION = 2
# rules.json, which modules/lib.nix reads too (tests/nix/test_rules.py: both, and bash, agree).
# Each is anchored: `.match` takes the whole value.
_SIZE = rules.compiled("size")
_TMPFS_PERCENT = rules.compiled("tmpfsPercent")
_NORMAL_PATH = rules.compiled("normalPath")
_RELATIVE_NAME = rules.compiled("subvolumeName")
_LABEL = rules.compiled("label")
_POOL = rules.compiled("zfsPool")
_DATASET = rules.compiled("zfsDataset")
_SNAPSHOT = rules.compiled("zfsSnapshot")
_POOL_DATASET = rules.compiled("zfsPoolDataset")
_USER = rules.compiled("userName")
# What shadow-utils accepts in /etc/passwd and /etc/group, where owners are looked up.
_ACCOUNT = rules.compiled("account")
_TYPE_CODE = rules.compiled("typeCode")
# systemd.unit(5): unit names are ASCII letters, digits, ":", "-", "_", ".", "\\" and "@"
# (modules/plan-units.nix leaves out a service whose name is not one).
_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]{1,255}\Z")
MAX_KEEP = 999_999  # btrfs-rollback.bash takes at most six digits
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_MODE = rules.compiled("mode")


def json_key(name: str) -> str:
    """snake_case attribute -> camelCase plan key: "esp_size" -> "espSize"."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def parse_size(text: str) -> int:
    """A plan size in bytes: "1GiB" -> 1073741824, "512M" -> 536870912, "0" -> 0."""
    match = _SIZE.match(text)  # rules.json's size: (digits)(unit)
    if not match:
        raise ValueError(f"bad size {text!r} (use e.g. 512MiB, 8GiB, 0)")
    unit = (match.group(2) or "")[:1]
    return int(match.group(1)) * _UNITS[unit]


PartitionFormat = Literal["vfat", "swap", "btrfs", "zfs", "none"]
BootMode = Literal["uefi", "bios", "hybrid"]
BIOS_BOOT_TYPE = "ef02"  # GRUB's core image on a GPT disk booted by a BIOS
ESP_TYPE = "ef00"


@dataclass(frozen=True)
class Partition:
    """One GPT partition, in disk order; `size` None takes the rest of the disk."""

    name: str  # GPT partition name
    type: str  # sgdisk type code
    size: str | None
    format: PartitionFormat  # "none": no filesystem (the BIOS boot partition)
    label: str | None  # filesystem label, or the pool's name for zfs; None for "none"
    device: str  # how the mount table and NixOS name it (/dev/disk/by-label/...)

    @property
    def size_bytes(self) -> int | None:
        return None if self.size is None else parse_size(self.size)


@dataclass(frozen=True)
class Disk:
    device: str | None
    partitions: tuple[Partition, ...]
    boot: BootMode = "uefi"  # plans written before it existed booted through UEFI

    def formatted(self, kind: PartitionFormat) -> Partition | None:
        return next((p for p in self.partitions if p.format == kind), None)

    @property
    def main(self) -> Partition:
        """The partition that holds the system (btrfs or the zfs pool), always the last."""
        return self.partitions[-1]


@dataclass(frozen=True)
class Mount:
    """One row of the mount table, as NixOS's fileSystems has it."""

    mount_point: str
    device: str
    fs_type: str
    options: tuple[str, ...]
    needed_for_boot: bool


@dataclass(frozen=True)
class OldRoots:
    subvolume: str
    keep_days: int
    keep_newest: int
    # at most this many old roots are kept, by creation order, whatever the clock (None: no
    # bound); a plan written before keepMax existed has no key and no bound
    keep_max: int | None = None


@dataclass(frozen=True)
class Btrfs:
    root_subvolume: str | None
    blank_snapshot: str | None
    old_roots: OldRoots | None
    subvolumes: tuple[str, ...]


@dataclass(frozen=True)
class Zfs:
    pool: str
    root_dataset: str
    blank_snapshot: str
    datasets: tuple[str, ...]

    @property
    def root(self) -> str:
        return f"{self.pool}/{self.root_dataset}"


@dataclass(frozen=True)
class Tmpfs:
    size: str


@dataclass(frozen=True)
class ParentDirectory:
    """A directory above a persisted path, made with this owner and mode where missing."""

    directory: str
    user: str = "root"
    group: str = "root"
    mode: str = "0755"


@dataclass(frozen=True)
class PersistedDirectory:
    directory: str  # as on /, users' paths resolved against their home
    user: str = "root"
    group: str = "root"
    mode: str = "0755"
    root: str | None = None  # the persistence root keeping it; None: persistPath
    parents: tuple[ParentDirectory, ...] = ()  # outermost first


@dataclass(frozen=True)
class PersistedFile:
    file: str
    root: str | None = None
    method: Literal["auto", "symlink"] = "auto"
    parents: tuple[ParentDirectory, ...] = ()


@dataclass(frozen=True)
class Persistence:
    directories: tuple[PersistedDirectory, ...]
    files: tuple[PersistedFile, ...]
    roots: tuple[str, ...] = ()  # every environment.persistence root; persistPath when empty


@dataclass(frozen=True)
class Persisted:
    """One persisted path: what it is, the root that keeps it, the directories above it."""

    path: str
    kind: Literal["directory", "file"]
    root: str
    parents: tuple[ParentDirectory, ...]


@dataclass(frozen=True)
class User:
    name: str
    hashed_password_file: str
    # blankslate.users.<name>.authorizedKeys; None in a plan made before they travelled.
    authorized_keys: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Audit:
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class PersistSnapshots:
    """Read-only snapshots of persistPath taken on a timer (modules/snapshots/persist.nix)."""

    interval: str
    keep: int
    persist: str  # btrfs: the persist subvolume; zfs: its dataset, pool/name
    subvolume: str | None  # btrfs: the subvolume at the top level holding them; zfs: null


@dataclass(frozen=True)
class Unit:
    """A systemd service with directories systemd makes for it (modules/plan-units.nix):
    each is relative to /var/lib, /var/cache or /var/log (below private/ with DynamicUser)."""

    name: str
    state_directories: tuple[str, ...] = ()
    cache_directories: tuple[str, ...] = ()
    logs_directories: tuple[str, ...] = ()
    dynamic_user: bool = False
    user: str | None = None  # User= and Group= of a static user; None: root, or DynamicUser
    group: str | None = None


@dataclass(frozen=True)
class BtrfsStorage:
    """rollback "btrfs": the root subvolume is reset from the blank snapshot at every boot."""

    root_subvolume: str
    blank_snapshot: str
    old_roots: OldRoots
    subvolumes: tuple[str, ...]
    kind: Literal["btrfs"] = field(default="btrfs", init=False)


@dataclass(frozen=True)
class ZfsStorage:
    """rollback "zfs": the root dataset is rolled back to its blank snapshot at every boot."""

    pool: str
    root_dataset: str
    blank_snapshot: str
    datasets: tuple[str, ...]
    kind: Literal["zfs"] = field(default="zfs", init=False)

    @property
    def root(self) -> str:
        return f"{self.pool}/{self.root_dataset}"


@dataclass(frozen=True)
class TmpfsStorage:
    """rollback "tmpfs": / is a tmpfs; `layout` holds /nix and the persisted subvolumes on btrfs
    (None without a disk, where the platform mounts them)."""

    size: str
    layout: Btrfs | None
    kind: Literal["tmpfs"] = field(default="tmpfs", init=False)


@dataclass(frozen=True)
class NoStorage:
    """rollback "none": the platform resets / (or nothing does); no storage of ours."""

    kind: Literal["none"] = field(default="none", init=False)


# The storage kind, tagged: `match plan.storage` narrows it, and an exhaustive match ends in
# `assert_never`, so a new kind is a type error wherever it is not handled.
Storage = BtrfsStorage | ZfsStorage | TmpfsStorage | NoStorage


def btrfs_layout(storage: Storage) -> Btrfs | None:
    """The btrfs subvolume layout of a storage kind that has one (btrfs, tmpfs with a disk)."""
    match storage:
        case BtrfsStorage():
            return Btrfs(
                storage.root_subvolume,
                storage.blank_snapshot,
                storage.old_roots,
                storage.subvolumes,
            )
        case TmpfsStorage():
            return storage.layout
        case ZfsStorage() | NoStorage():
            return None
        case _:
            typing.assert_never(storage)


@dataclass(frozen=True)
class Plan:
    version: int
    host_name: str
    storage: Storage
    persist_path: str
    disk: Disk | None
    mounts: tuple[Mount, ...]
    persistence: Persistence
    users: tuple[User, ...]
    ssh_host_keys: tuple[str, ...]
    audit: Audit = field(default_factory=Audit)
    # Plans written before persist snapshots existed have no such key: off.
    persist_snapshots: PersistSnapshots | None = None
    # The layout as disko's `disko.devices`, rendered by modules/disko/devices.nix (JSON data,
    # the disk as configured); null without a disk, None too in a plan made before it travelled.
    disko: dict[str, Any] | None = None
    # Plans written before units travelled have none: diff --suggest groups by path only.
    units: tuple[Unit, ...] = ()

    @property
    def rollback(self) -> RollbackKind:
        """The storage kind's name, as the plan's `rollback` key has it."""
        return self.storage.kind

    def to_json(self) -> dict[str, Any]:
        encoded = _to_json(_as_json(self))
        assert isinstance(encoded, dict)
        return encoded

    def user(self, name: str) -> User:
        for user in self.users:
            if user.name == name:
                return user
        known = ", ".join(u.name for u in self.users) or "none"
        raise BlankslateError(f"user {name!r} is not in the plan (plan users: {known})")

    @property
    def persisted(self) -> list[Persisted]:
        """Every persisted directory, then every persisted file, as the plan lists them."""
        return [
            Persisted(d.directory, "directory", d.root or self.persist_path, d.parents)
            for d in self.persistence.directories
        ] + [
            Persisted(f.file, "file", f.root or self.persist_path, f.parents)
            for f in self.persistence.files
        ]

    @property
    def persistence_roots(self) -> list[str]:
        """persistPath first, then every other root, each once."""
        roots = [self.persist_path, *self.persistence.roots]
        roots += [entry.root for entry in self.persisted]
        return list(dict.fromkeys(roots))


@dataclass(frozen=True)
class _PlanJson:
    """The plan as its JSON has it: the rollback kind and a section per storage kind, each
    null unless the kind uses it. Plan holds the same as one tagged storage value."""

    version: int
    host_name: str
    rollback: RollbackKind
    persist_path: str
    disk: Disk | None
    mounts: tuple[Mount, ...]
    btrfs: Btrfs | None
    zfs: Zfs | None
    tmpfs: Tmpfs | None
    persistence: Persistence
    users: tuple[User, ...]
    ssh_host_keys: tuple[str, ...]
    audit: Audit = field(default_factory=Audit)
    # Plans written before persist snapshots existed have no such key: off.
    persist_snapshots: PersistSnapshots | None = None
    # The layout as disko's `disko.devices`, rendered by modules/disko/devices.nix (JSON data,
    # the disk as configured); null without a disk, None too in a plan made before it travelled.
    disko: dict[str, Any] | None = None
    # Plans written before units travelled have none: diff --suggest groups by path only.
    units: tuple[Unit, ...] = ()


def _sections(storage: Storage) -> tuple[Btrfs | None, Zfs | None, Tmpfs | None]:
    """The plan JSON's btrfs, zfs and tmpfs sections of a storage value."""
    match storage:
        case BtrfsStorage():
            return btrfs_layout(storage), None, None
        case ZfsStorage():
            zfs = Zfs(storage.pool, storage.root_dataset, storage.blank_snapshot, storage.datasets)
            return None, zfs, None
        case TmpfsStorage():
            return storage.layout, None, Tmpfs(storage.size)
        case NoStorage():
            return None, None, None
        case _:
            typing.assert_never(storage)


def _as_json(plan: Plan) -> _PlanJson:
    btrfs, zfs, tmpfs = _sections(plan.storage)
    fields = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)}
    del fields["storage"]
    return _PlanJson(rollback=plan.storage.kind, btrfs=btrfs, zfs=zfs, tmpfs=tmpfs, **fields)


def _storage(plan: _PlanJson) -> Storage:
    """The tagged storage value of a plan whose sections `_validate_sections` checked."""
    btrfs, zfs, tmpfs = plan.btrfs, plan.zfs, plan.tmpfs
    if plan.rollback == "btrfs" and btrfs is not None:
        root, blank, old = btrfs.root_subvolume, btrfs.blank_snapshot, btrfs.old_roots
        if root is not None and blank is not None and old is not None:
            return BtrfsStorage(root, blank, old, btrfs.subvolumes)
    elif plan.rollback == "zfs" and zfs is not None:
        return ZfsStorage(zfs.pool, zfs.root_dataset, zfs.blank_snapshot, zfs.datasets)
    elif plan.rollback == "tmpfs" and tmpfs is not None:
        return TmpfsStorage(tmpfs.size, btrfs)
    elif plan.rollback == "none":
        return NoStorage()
    raise PlanError("rollback", f"{plan.rollback!r} lacks its section")  # checked before


def _from_plan_json(plan: _PlanJson) -> Plan:
    fields = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)}
    for key in ("rollback", "btrfs", "zfs", "tmpfs"):
        del fields[key]
    return Plan(storage=_storage(plan), **fields)


class PlanError(BlankslateError):
    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"plan: {where}: {what}")


def _to_json(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            json_key(f.name): _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, tuple):
        return [_to_json(item) for item in value]
    return value


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", type(None): "null"}


def _describe(hint: object) -> str:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return "an object"
    origin = typing.get_origin(hint)
    if origin is tuple:
        return "a list"
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(v) for v in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    return _TYPE_NAMES.get(hint, str(hint)) if isinstance(hint, type) else str(hint)


def _convert(hint: Any, data: object, where: str) -> object:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        # The plan's only unions are optionals: `X | None`.
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return None if data is None else _convert(inner, data, where)
    if origin is Literal:
        if data in typing.get_args(hint):
            return data
        raise PlanError(where, f"expected {_describe(hint)}, got {json.dumps(data)[:40]}")
    if origin is tuple:
        if not isinstance(data, list):
            raise PlanError(where, f"expected a list, got {json.dumps(data)[:40]}")
        (item,) = typing.get_args(hint)[:1]
        return tuple(_convert(item, value, f"{where}[{i}]") for i, value in enumerate(data))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _from_json(hint, data, where)
    if origin is dict:  # JSON data, checked as such (the disko tree)
        if not isinstance(data, dict):
            raise PlanError(where, f"expected an object, got {json.dumps(data)[:40]}")
        _check_json_data(where, data)
        return data
    if hint is type(None):
        if data is None:
            return None
    elif hint is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
    elif isinstance(data, hint):
        return data
    raise PlanError(where, f"expected {_describe(hint)}, got {json.dumps(data)[:40]}")


def _from_json(cls: type, data: object, where: str) -> object:
    if not isinstance(data, dict):
        raise PlanError(where or "top level", f"expected an object, got {json.dumps(data)[:40]}")
    hints = typing.get_type_hints(cls)
    fields = {json_key(f.name): f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        path = f"{where}.{unknown[0]}" if where else unknown[0]
        raise PlanError(path, f"unknown key (expected one of: {', '.join(fields)})")
    values: dict[str, object] = {}
    for key, spec in fields.items():
        path = f"{where}.{key}" if where else key
        if key not in data:
            no_default = spec.default is dataclasses.MISSING
            if no_default and spec.default_factory is dataclasses.MISSING:
                raise PlanError(path, "missing key")
            continue
        values[spec.name] = _convert(hints[spec.name], data[key], path)
    return cls(**values)


_INT64 = range(-(2**63), 2**63)


def _check_json_data(where: str, data: object) -> None:
    """Only what Nix holds too: strings without NUL or lone surrogates, 64-bit integers,
    booleans, null, lists and objects of them (no floats), whatever their depth."""
    stack: list[tuple[str, object]] = [(where, data)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, dict):
            for key in value:
                if not _nix_text(key):
                    raise PlanError(at, f"key {json.dumps(key)[:40]} holds NUL or a surrogate")
            stack.extend((f"{at}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{at}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str):
            if not _nix_text(value):
                raise PlanError(at, "a string holding NUL or a surrogate, which Nix cannot hold")
        elif isinstance(value, bool) or value is None:
            continue
        elif not isinstance(value, int) or value not in _INT64:
            raise PlanError(
                at,
                f"expected a string, a 64-bit integer, a boolean, null, a list "
                f"or an object, got {json.dumps(value)[:40]}",
            )


def _nix_text(text: str) -> bool:
    return "\0" not in text and not any("\ud800" <= char <= "\udfff" for char in text)


def is_normal_path(path: str) -> bool:
    """Absolute, no '.', '..' or empty component, no trailing '/': "/a/b" yes, "/a/../b" no."""
    return _NORMAL_PATH.match(path) is not None


def _check_path(where: str, path: str) -> None:
    if not is_normal_path(path):
        raise PlanError(
            where,
            f"{path!r} is not an absolute, normalised path "
            "(no '.', '..' or empty component, no trailing '/', no control character)",
        )


def _check_match(where: str, value: str, pattern: re.Pattern[str], what: str) -> None:
    if not pattern.match(value):
        raise PlanError(where, f"{value!r} is not {what}")


def _check_name(where: str, name: str) -> None:
    _check_match(
        where,
        name,
        _RELATIVE_NAME,
        "a subvolume name (letters, digits, _ . @ + -; '/' between components; no '.' or '..')",
    )


def _check_size(where: str, text: str) -> None:
    _check_match(where, text, _SIZE, "a size (digits, optionally K, M, G or T, then iB or B)")


def _check_range(where: str, value: int) -> None:
    if not 0 <= value <= MAX_KEEP:
        raise PlanError(where, f"must be between 0 and {MAX_KEEP}")


def _check_unique(where: str, values: list[str], what: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise PlanError(f"{where}[{index}]", f"duplicate {what} {value!r}")
        seen.add(value)


def validate(plan: Plan) -> Plan:
    """Semantic checks beyond the types (modules/plan.nix makes the same); returns the plan."""
    _validate(_as_json(plan))
    return plan


_SECTIONS: dict[RollbackKind, tuple[str, ...]] = {
    "btrfs": ("btrfs",),
    "zfs": ("zfs",),
    "tmpfs": ("tmpfs", "btrfs"),  # tmpfs keeps btrfs for /nix and persistPath with a disk
    "none": (),
}


def _validate(plan: _PlanJson) -> None:
    _check_path("persistPath", plan.persist_path)
    if plan.persist_path == "/":
        raise PlanError("persistPath", "cannot be / (it is erased at every boot)")
    if plan.disk is not None:
        _validate_disk(plan.disk)
    elif plan.rollback != "none":
        raise PlanError("disk", f"rollback {plan.rollback!r} needs a disk section")
    for kind in ("btrfs", "zfs", "tmpfs"):
        if plan.rollback == kind and getattr(plan, kind) is None:
            raise PlanError(kind, f"rollback {kind!r} needs a {kind} section")
    for kind in ("btrfs", "zfs", "tmpfs"):
        if kind not in _SECTIONS[plan.rollback] and getattr(plan, kind) is not None:
            raise PlanError(kind, f"must be null when rollback is {plan.rollback!r}")
    _validate_mounts(plan)
    if plan.btrfs is not None:
        _validate_btrfs(plan, plan.btrfs)
    if plan.zfs is not None:
        _validate_zfs(plan, plan.zfs)
    if plan.persist_snapshots is not None:
        _validate_persist_snapshots(plan, plan.persist_snapshots)
    if plan.tmpfs is not None and not _TMPFS_PERCENT.match(plan.tmpfs.size):
        _check_size("tmpfs.size", plan.tmpfs.size)
    _validate_persistence(plan.persistence)
    if plan.disko is not None:
        _validate_disko(plan.disko)
    for i, user in enumerate(plan.users):
        _check_match(f"users[{i}].name", user.name, _USER, "a user name")
        _check_inside_persist(plan, f"users[{i}].hashedPasswordFile", user.hashed_password_file)
    _check_unique("users", [u.name for u in plan.users], "user")
    for i, key in enumerate(plan.ssh_host_keys):
        _check_inside_persist(plan, f"sshHostKeys[{i}]", key)
    _validate_units(plan.units)


def _validate_disko(disko: dict[str, Any]) -> None:
    """Where `blankslate disko` puts the device: the tree's own, disk.main. (That the tree is
    the layout's is Nix's work: it renders both from the same options.)"""
    main = disko.get("disk")
    main = main.get("main") if isinstance(main, dict) else None
    if not isinstance(main, dict):
        raise PlanError("disko.disk.main", "missing: expected the disk's object")


def _validate_units(units: tuple[Unit, ...]) -> None:
    for i, unit in enumerate(units):
        where = f"units[{i}]"
        _check_match(f"{where}.name", unit.name, _UNIT_NAME, "a systemd unit name")
        for key, directories in (
            ("stateDirectories", unit.state_directories),
            ("cacheDirectories", unit.cache_directories),
            ("logsDirectories", unit.logs_directories),
        ):
            for j, directory in enumerate(directories):
                if not directory or not is_normal_path("/" + directory):
                    raise PlanError(
                        f"{where}.{key}[{j}]",
                        f"{directory!r} is not a relative, normalised path "
                        "(no '.', '..' or empty component, no control character)",
                    )
        for key, account in (("user", unit.user), ("group", unit.group)):
            if account is not None:
                _check_match(f"{where}.{key}", account, _ACCOUNT, "a user or group name")
    _check_unique("units", [unit.name for unit in units], "unit")


def _validate_persistence(persistence: Persistence) -> None:
    for i, root in enumerate(persistence.roots):
        _check_root(f"persistence.roots[{i}]", root)
    for i, directory in enumerate(persistence.directories):
        where = f"persistence.directories[{i}]"
        _check_path(f"{where}.directory", directory.directory)
        if directory.directory == "/":
            raise PlanError(f"{where}.directory", "/ cannot be persisted as a whole")
        _check_owner(where, directory)
        _check_placement(where, directory.directory, directory.root, directory.parents)
    for i, persisted in enumerate(persistence.files):
        where = f"persistence.files[{i}]"
        _check_path(f"{where}.file", persisted.file)
        if persisted.file == "/":
            raise PlanError(f"{where}.file", "/ is not a file")
        _check_placement(where, persisted.file, persisted.root, persisted.parents)


def _check_root(where: str, root: str) -> None:
    _check_path(where, root)
    if root == "/":
        raise PlanError(where, "cannot be / (it is erased at every boot)")


def _check_owner(where: str, entry: PersistedDirectory | ParentDirectory) -> None:
    _check_match(f"{where}.user", entry.user, _ACCOUNT, "a user name")
    _check_match(f"{where}.group", entry.group, _ACCOUNT, "a group name")
    if not _MODE.match(entry.mode):
        raise PlanError(f"{where}.mode", f"{entry.mode!r} is not an octal mode")


def _check_placement(
    where: str, path: str, root: str | None, parents: tuple[ParentDirectory, ...]
) -> None:
    """The root is a path other than /; each parent lies above the path, outermost first."""
    if root is not None:
        _check_root(f"{where}.root", root)
    above = "/"
    for i, parent in enumerate(parents):
        at = f"{where}.parents[{i}]"
        _check_path(f"{at}.directory", parent.directory)
        _check_owner(at, parent)
        inside = parent.directory != above and is_under(above, parent.directory)
        if not inside or not path.startswith(parent.directory + "/"):
            raise PlanError(
                f"{at}.directory", f"{parent.directory!r} is not between {above!r} and {path!r}"
            )
        above = parent.directory


def _check_inside_persist(plan: _PlanJson, where: str, path: str) -> None:
    _check_path(where, path)
    if path == plan.persist_path or not is_under(plan.persist_path, path):
        raise PlanError(where, f"{path!r} is not inside persistPath {plan.persist_path!r}")


def _validate_disk(disk: Disk) -> None:
    if disk.device is not None:
        _check_path("disk.device", disk.device)
    if not disk.partitions:
        raise PlanError("disk.partitions", "no partitions")
    for i, part in enumerate(disk.partitions):
        where = f"disk.partitions[{i}]"
        _check_match(f"{where}.name", part.name, _LABEL, "a partition name")
        _check_match(f"{where}.type", part.type, _TYPE_CODE, "an sgdisk type code (4 hex digits)")
        if (part.format == "none") != (part.label is None):
            raise PlanError(f"{where}.label", "null exactly when the format is 'none'")
        if part.label is not None:
            _check_match(f"{where}.label", part.label, _LABEL, "a label")
        _check_path(f"{where}.device", part.device)
        last = i == len(disk.partitions) - 1
        if part.size is None:
            if not last:
                raise PlanError(f"{where}.size", "only the last partition takes the rest (null)")
            continue
        _check_size(f"{where}.size", part.size)
        if parse_size(part.size) == 0:
            raise PlanError(f"{where}.size", "cannot be zero (leave the partition out)")
    if disk.main.format not in ("btrfs", "zfs"):
        raise PlanError("disk.partitions", "the last partition must hold btrfs or zfs")
    if disk.formatted("vfat") is None:
        raise PlanError("disk.partitions", "no vfat partition for the ESP")
    _check_boot(disk)
    _check_unique("disk.partitions", [p.name for p in disk.partitions], "name")
    _check_unique("disk.partitions", [p.label for p in disk.partitions if p.label], "label")
    _check_unique("disk.partitions", [p.device for p in disk.partitions], "device")


def _check_boot(disk: Disk) -> None:
    """A BIOS boot partition exactly for "bios" and "hybrid", an ESP for "uefi" and "hybrid"."""
    types = [part.type.lower() for part in disk.partitions]
    wants_bios = disk.boot in ("bios", "hybrid")
    if (BIOS_BOOT_TYPE in types) != wants_bios:
        has = "has" if BIOS_BOOT_TYPE in types else "has no"
        raise PlanError("disk.boot", f"{disk.boot!r} but the disk {has} BIOS boot partition (ef02)")
    esp = any(p.type.lower() == ESP_TYPE and p.format == "vfat" for p in disk.partitions)
    if disk.boot != "bios" and not esp:
        raise PlanError("disk.boot", f"{disk.boot!r} needs a vfat ESP (type ef00)")
    for i, part in enumerate(disk.partitions):
        if (part.type.lower() == BIOS_BOOT_TYPE) != (part.format == "none"):
            raise PlanError(
                f"disk.partitions[{i}].format", "'none' exactly for the BIOS boot partition (ef02)"
            )


def _validate_mounts(plan: _PlanJson) -> None:
    seen: list[str] = []
    for i, mount in enumerate(plan.mounts):
        where = f"mounts[{i}]"
        _check_path(f"{where}.mountPoint", mount.mount_point)
        if not mount.device or "\0" in mount.device or "\n" in mount.device:
            raise PlanError(f"{where}.device", "empty or holds a control character")
        # Parents before children: the order to mount them in.
        for later in seen:
            if mount.mount_point != later and is_under(mount.mount_point, later):
                what = f"{mount.mount_point!r} must come before {later!r}"
                raise PlanError(f"{where}.mountPoint", what)
        seen.append(mount.mount_point)
    _check_unique("mounts", seen, "mountPoint")
    if plan.rollback != "none" and "/" not in seen:
        raise PlanError("mounts", "nothing is mounted on /")
    root = next((m for m in plan.mounts if m.mount_point == "/"), None)
    if (plan.rollback == "tmpfs") != (root is not None and root.fs_type == "tmpfs"):
        raise PlanError(
            "mounts", f"rollback {plan.rollback!r} mounts a tmpfs on / exactly when it is 'tmpfs'"
        )


def _validate_btrfs(plan: _PlanJson, btrfs: Btrfs) -> None:
    for i, name in enumerate(btrfs.subvolumes):
        _check_name(f"btrfs.subvolumes[{i}]", name)
    _check_unique("btrfs.subvolumes", list(btrfs.subvolumes), "subvolume")
    names = set(btrfs.subvolumes)
    if plan.rollback == "btrfs":
        for key in ("root_subvolume", "blank_snapshot", "old_roots"):
            if getattr(btrfs, key) is None:
                raise PlanError(f"btrfs.{json_key(key)}", "required when rollback is 'btrfs'")
        assert btrfs.root_subvolume is not None and btrfs.blank_snapshot is not None
        _check_name("btrfs.rootSubvolume", btrfs.root_subvolume)
        _check_name("btrfs.blankSnapshot", btrfs.blank_snapshot)
        if btrfs.root_subvolume not in names:
            raise PlanError("btrfs.rootSubvolume", f"{btrfs.root_subvolume!r} is not a subvolume")
        if any(nested(btrfs.blank_snapshot, name) for name in names):
            raise PlanError("btrfs.blankSnapshot", "is, or nests with, one of the subvolumes")
    if btrfs.old_roots is not None:
        old = btrfs.old_roots.subvolume
        _check_name("btrfs.oldRoots.subvolume", old)
        blank = [btrfs.blank_snapshot] if btrfs.blank_snapshot else []
        if any(nested(old, name) for name in [*names, *blank]):
            raise PlanError(
                "btrfs.oldRoots.subvolume", "is, or nests with, a subvolume or the blank snapshot"
            )
        _check_range("btrfs.oldRoots.keepDays", btrfs.old_roots.keep_days)
        _check_range("btrfs.oldRoots.keepNewest", btrfs.old_roots.keep_newest)
        keep_max = btrfs.old_roots.keep_max
        if keep_max is not None and not 1 <= keep_max <= MAX_KEEP:
            raise PlanError("btrfs.oldRoots.keepMax", f"must be null or between 1 and {MAX_KEEP}")


def _validate_persist_snapshots(plan: _PlanJson, snapshots: PersistSnapshots) -> None:
    _check_range("persistSnapshots.keep", snapshots.keep)
    if plan.rollback == "zfs":
        _check_match(
            "persistSnapshots.persist", snapshots.persist, _POOL_DATASET, "a pool/dataset name"
        )
        return
    if plan.btrfs is None or snapshots.subvolume is None:
        raise PlanError("persistSnapshots", "needs a btrfs layout (subvolume) or rollback 'zfs'")
    _check_name("persistSnapshots.persist", snapshots.persist)
    _check_name("persistSnapshots.subvolume", snapshots.subvolume)
    if snapshots.persist not in plan.btrfs.subvolumes:
        raise PlanError("persistSnapshots.persist", f"{snapshots.persist!r} is not a subvolume")
    if any(nested(snapshots.subvolume, name) for name in plan.btrfs.subvolumes):
        raise PlanError("persistSnapshots.subvolume", "is, or nests with, one of the subvolumes")


def _validate_zfs(plan: _PlanJson, zfs: Zfs) -> None:
    _check_match("zfs.pool", zfs.pool, _POOL, "a pool name (a letter first)")
    _check_match("zfs.rootDataset", zfs.root_dataset, _DATASET, "a dataset name")
    _check_match("zfs.blankSnapshot", zfs.blank_snapshot, _SNAPSHOT, "a snapshot name")
    for i, dataset in enumerate(zfs.datasets):
        _check_match(f"zfs.datasets[{i}]", dataset, _DATASET, "a dataset name")
    _check_unique("zfs.datasets", list(zfs.datasets), "dataset")
    if plan.rollback == "zfs" and not any(
        m.mount_point == "/" and m.device == zfs.root for m in plan.mounts
    ):
        raise PlanError("zfs.rootDataset", f"{zfs.root!r} must be mounted on /")


def from_json(data: object) -> Plan:
    """Validate parsed JSON as plan v2."""
    if isinstance(data, dict) and data.get("version") == 1:
        raise PlanError(
            "version",
            "plan version 1 comes from an older blankslate; this tool reads version 2 "
            "(make it again from the configuration: `blankslate plan --host NAME > FILE`)",
        )
    if isinstance(data, dict) and "version" in data and data["version"] != PLAN_VERSION:
        raise PlanError(
            "version",
            f"unsupported plan version {json.dumps(data['version'])[:20]} "
            f"(this tool reads {PLAN_VERSION})",
        )
    plan = _from_json(_PlanJson, data, "")
    assert isinstance(plan, _PlanJson)
    _validate(plan)
    return _from_plan_json(plan)


# Deeper than any plan (it nests 5 levels), shallow enough for every recursive function.
_MAX_DEPTH = 64


def parse_text(text: str, source: str) -> object:
    """The JSON document in `text` (read from `source`, named in the errors), refused with one
    line when it is not JSON or nests deeper than any plan."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BlankslateError(
            f"plan: {source}: not valid JSON (line {error.lineno}: {error.msg})"
        ) from None
    except RecursionError:
        data = None  # too deep for the parser: reported below like any deep document
        depth = _MAX_DEPTH + 1
    except ValueError:  # the only other one: an integer past int()'s digit limit
        limit = sys.get_int_max_str_digits()
        raise BlankslateError(
            f"plan: {source}: not valid JSON (a number with more than {limit} digits)"
        ) from None
    else:
        depth = _depth(data)
    if depth > _MAX_DEPTH:
        raise BlankslateError(
            f"plan: {source}: not valid JSON (nested too deeply: more than {_MAX_DEPTH} levels)"
        )
    return data


def _depth(data: object) -> int:
    """How deeply lists and objects nest in `data` (0 for a scalar), without recursion."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level)
            if level <= _MAX_DEPTH:
                items = value.values() if isinstance(value, dict) else value
                stack.extend((item, level + 1) for item in items)
    return deepest
