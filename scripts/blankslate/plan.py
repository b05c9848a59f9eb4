"""Plan v1: the JSON contract between the Nix configuration and this tool.

Nix computes the plan (`config.blankslate.plan`); this module only reads and validates it. Loading
order, first match wins: `--plan FILE`, `--host NAME` (via `nix eval`), `/etc/blankslate/plan.json`,
the built-in default (the layout of `hosts/example`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from blankslate import process
from blankslate.errors import BlankslateError, decode_utf8

RollbackKind = Literal["btrfs", "zfs", "tmpfs", "none"]
INSTALLED_PLAN = Path("/etc/blankslate/plan.json")
_SIZE = re.compile(r"^(\d+)([KMGT]i?B?|B)?$")
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_MODE = re.compile(r"^0?[0-7]{3,4}$")


def json_key(name: str) -> str:
    """snake_case attribute -> camelCase plan key: "esp_size" -> "espSize"."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def parse_size(text: str) -> int:
    """A plan size in bytes: "1GiB" -> 1073741824, "512M" -> 536870912, "0" -> 0."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"bad size {text!r} (use e.g. 512MiB, 8GiB, 0)")
    unit = (match.group(2) or "")[:1]
    return int(match.group(1)) * _UNITS[unit]


def format_size(size: int) -> str:
    """Bytes for people, in binary units: 512 -> "512 B", 2048 -> "2.0 KiB"."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


@dataclass(frozen=True)
class Disk:
    device: str | None
    esp_size: str
    swap_size: str
    label: str

    @property
    def esp_bytes(self) -> int:
        return parse_size(self.esp_size)

    @property
    def swap_bytes(self) -> int:
        return parse_size(self.swap_size)


@dataclass(frozen=True)
class OldRoots:
    subvolume: str
    keep_days: int


@dataclass(frozen=True)
class Subvolume:
    name: str
    mountpoint: str
    options: tuple[str, ...]
    needed_for_boot: bool


@dataclass(frozen=True)
class Btrfs:
    root_subvolume: str | None
    blank_snapshot: str | None
    old_roots: OldRoots | None
    subvolumes: tuple[Subvolume, ...]


@dataclass(frozen=True)
class Dataset:
    name: str
    mountpoint: str


@dataclass(frozen=True)
class Zfs:
    pool: str
    root_dataset: str
    blank_snapshot: str
    datasets: tuple[Dataset, ...]

    @property
    def root(self) -> str:
        return f"{self.pool}/{self.root_dataset}"


@dataclass(frozen=True)
class Tmpfs:
    size: str


@dataclass(frozen=True)
class PersistedDirectory:
    directory: str
    user: str = "root"
    group: str = "root"
    mode: str = "0755"


@dataclass(frozen=True)
class PersistedFile:
    file: str


@dataclass(frozen=True)
class Persistence:
    directories: tuple[PersistedDirectory, ...]
    files: tuple[PersistedFile, ...]


@dataclass(frozen=True)
class User:
    name: str
    hashed_password_file: str


@dataclass(frozen=True)
class Audit:
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    version: int
    host_name: str
    rollback: RollbackKind
    persist_path: str
    disk: Disk | None
    btrfs: Btrfs | None
    zfs: Zfs | None
    tmpfs: Tmpfs | None
    persistence: Persistence
    users: tuple[User, ...]
    ssh_host_keys: tuple[str, ...]
    audit: Audit = field(default_factory=Audit)

    def to_json(self) -> dict[str, Any]:
        encoded = _to_json(self)
        assert isinstance(encoded, dict)
        return encoded

    def user(self, name: str) -> User:
        for user in self.users:
            if user.name == name:
                return user
        known = ", ".join(u.name for u in self.users) or "none"
        raise BlankslateError(f"user {name!r} is not in the plan (plan users: {known})")

    @property
    def persisted_paths(self) -> list[str]:
        return [d.directory for d in self.persistence.directories] + [
            f.file for f in self.persistence.files
        ]


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


def _check_absolute(where: str, path: str) -> None:
    if not path.startswith("/"):
        raise PlanError(where, f"{path!r} is not an absolute path")
    if "\n" in path or "\0" in path:
        raise PlanError(where, "a path may not contain a newline or NUL")


def _check_name(where: str, name: str) -> None:
    if not name or name.startswith("/") or name in (".", "..") or "\0" in name or "\n" in name:
        raise PlanError(where, f"{name!r} is not a valid name")


def _check_size(where: str, text: str) -> None:
    try:
        parse_size(text)
    except ValueError as error:
        raise PlanError(where, str(error)) from None


def _check_unique(where: str, values: list[str], what: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise PlanError(f"{where}[{index}]", f"duplicate {what} {value!r}")
        seen.add(value)


def validate(plan: Plan) -> Plan:
    """Semantic checks beyond the types; returns the plan unchanged."""
    if plan.version != 1:
        raise PlanError("version", f"unsupported plan version {plan.version} (this tool reads 1)")
    _check_absolute("persistPath", plan.persist_path)
    if plan.persist_path == "/":
        raise PlanError("persistPath", "cannot be / (it is erased at every boot)")
    if plan.disk is not None:
        if plan.disk.device is not None:
            _check_absolute("disk.device", plan.disk.device)
        _check_size("disk.espSize", plan.disk.esp_size)
        _check_size("disk.swapSize", plan.disk.swap_size)
        _check_name("disk.label", plan.disk.label)
    elif plan.rollback != "none":
        raise PlanError("disk", f"rollback {plan.rollback!r} needs a disk section")
    for kind in ("btrfs", "zfs", "tmpfs"):
        if plan.rollback == kind and getattr(plan, kind) is None:
            raise PlanError(kind, f"rollback {kind!r} needs a {kind} section")
    if plan.btrfs is not None:
        _validate_btrfs(plan, plan.btrfs)
    if plan.zfs is not None:
        _check_name("zfs.pool", plan.zfs.pool)
        _check_name("zfs.rootDataset", plan.zfs.root_dataset)
        _check_name("zfs.blankSnapshot", plan.zfs.blank_snapshot)
        for i, dataset in enumerate(plan.zfs.datasets):
            _check_name(f"zfs.datasets[{i}].name", dataset.name)
            _check_absolute(f"zfs.datasets[{i}].mountpoint", dataset.mountpoint)
        _check_unique("zfs.datasets", [d.mountpoint for d in plan.zfs.datasets], "mountpoint")
        _check_unique("zfs.datasets", [d.name for d in plan.zfs.datasets], "dataset")
    if plan.tmpfs is not None and not plan.tmpfs.size.endswith("%"):
        _check_size("tmpfs.size", plan.tmpfs.size)
    for i, directory in enumerate(plan.persistence.directories):
        where = f"persistence.directories[{i}]"
        _check_absolute(f"{where}.directory", directory.directory)
        if directory.directory == "/":
            raise PlanError(f"{where}.directory", "/ cannot be persisted as a whole")
        if not _MODE.match(directory.mode):
            raise PlanError(f"{where}.mode", f"{directory.mode!r} is not an octal mode")
    for i, persisted in enumerate(plan.persistence.files):
        _check_absolute(f"persistence.files[{i}].file", persisted.file)
    for i, user in enumerate(plan.users):
        _check_name(f"users[{i}].name", user.name)
        _check_absolute(f"users[{i}].hashedPasswordFile", user.hashed_password_file)
    _check_unique("users", [u.name for u in plan.users], "user")
    for i, key in enumerate(plan.ssh_host_keys):
        _check_absolute(f"sshHostKeys[{i}]", key)
    return plan


def _validate_btrfs(plan: Plan, btrfs: Btrfs) -> None:
    for i, subvolume in enumerate(btrfs.subvolumes):
        _check_name(f"btrfs.subvolumes[{i}].name", subvolume.name)
        _check_absolute(f"btrfs.subvolumes[{i}].mountpoint", subvolume.mountpoint)
    _check_unique("btrfs.subvolumes", [s.mountpoint for s in btrfs.subvolumes], "mountpoint")
    _check_unique("btrfs.subvolumes", [s.name for s in btrfs.subvolumes], "subvolume")
    names = {s.name for s in btrfs.subvolumes}
    if plan.rollback == "btrfs":
        for key in ("root_subvolume", "blank_snapshot", "old_roots"):
            if getattr(btrfs, key) is None:
                raise PlanError(f"btrfs.{json_key(key)}", "required when rollback is 'btrfs'")
        assert btrfs.root_subvolume is not None and btrfs.blank_snapshot is not None
        _check_name("btrfs.rootSubvolume", btrfs.root_subvolume)
        _check_name("btrfs.blankSnapshot", btrfs.blank_snapshot)
        if btrfs.root_subvolume not in names:
            raise PlanError("btrfs.rootSubvolume", f"{btrfs.root_subvolume!r} is not a subvolume")
        if btrfs.blank_snapshot in names or btrfs.blank_snapshot == btrfs.root_subvolume:
            raise PlanError("btrfs.blankSnapshot", "must differ from every subvolume's name")
    if btrfs.old_roots is not None:
        _check_name("btrfs.oldRoots.subvolume", btrfs.old_roots.subvolume)
        if btrfs.old_roots.subvolume in names:
            raise PlanError("btrfs.oldRoots.subvolume", "must differ from every subvolume's name")
        if btrfs.old_roots.keep_days < 0:
            raise PlanError("btrfs.oldRoots.keepDays", "must be 0 or more")


def from_json(data: object) -> Plan:
    """Validate parsed JSON as plan v1."""
    if isinstance(data, dict) and "version" in data and data["version"] != 1:
        raise PlanError(
            "version", f"unsupported plan version {data['version']!r} (this tool reads 1)"
        )
    plan = _from_json(Plan, data, "")
    assert isinstance(plan, Plan)
    return validate(plan)


# Deeper than any plan (it nests 5 levels), shallow enough for every recursive function.
_MAX_DEPTH = 64


def _parse(text: str, source: str) -> object:
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


def from_file(path: Path) -> Plan:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BlankslateError(f"plan: cannot read {path}: {error.strerror}") from None
    return from_json(_parse(decode_utf8(data, f"plan: {path}"), str(path)))


def nix_eval_plan(flake: str, host: str) -> list[str]:
    return [
        "nix",
        "--extra-experimental-features",
        "nix-command flakes",
        "eval",
        "--json",
        f"{flake}#nixosConfigurations.{host}.config.blankslate.plan",
    ]


def from_host(host: str, flake: str = ".") -> Plan:
    text = process.output(nix_eval_plan(flake, host))
    return from_json(_parse(text, f"nix eval of host {host!r}"))


def default_text() -> str:
    return resources.files("blankslate").joinpath("default-plan.json").read_text()


def default() -> Plan:
    return from_json(_parse(default_text(), "built-in default"))


def load(
    plan_file: Path | None = None,
    host: str | None = None,
    flake: str = ".",
    installed: Path | None = None,
) -> Plan:
    """The plan from the first source that is given or present (DESIGN.md order)."""
    if plan_file is not None:
        return from_file(plan_file)
    if host is not None:
        return from_host(host, flake)
    installed = installed or INSTALLED_PLAN
    if installed.exists():
        return from_file(installed)
    return default()
