"""The golden plan fixtures (FIXTURES: each file and what Nix evaluates it from), plan data
for the library in each boot mode, and a plan (data or `plan.Plan`) written where a command
reads it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from blankslate import plan, plansource

from .nixeval import host_expr, nix_instantiate_eval

REPO = Path(__file__).resolve().parents[2]
PLANS = REPO / "tests/plans"


@dataclass(frozen=True)
class Fixture:
    """A golden plan file and what it is the evaluated `config.blankslate.plan` of: HOST (of
    hosts/) with EXTRA, a NixOS module written in Nix ("" for none). `compact`: the file is
    laid out by hand, one line per flat object (the built-in plan users read)."""

    path: Path
    host: str
    extra: str = ""
    compact: bool = False


def _boot(mode: str) -> str:
    return f'{{ blankslate.disk.boot = "{mode}"; }}'


# Every golden plan, ONE table: tests/nix/test_plan_fixtures.py proves each equals its
# evaluation, and tests/plans/update.py rewrites those that no longer do.
FIXTURES: tuple[Fixture, ...] = (
    Fixture(REPO / "scripts/blankslate/default-plan.json", "example", compact=True),
    Fixture(PLANS / "tmpfs.json", "tmpfs"),
    Fixture(PLANS / "vpsfree.json", "vpsfree"),
    Fixture(PLANS / "zfs.json", "zfs"),
    Fixture(
        PLANS / "persistence.json",
        "example",
        "import ./tests/nix/persistence-example.nix { inherit lib; }",
    ),
    Fixture(
        PLANS / "suggest.json", "example", "{ imports = [ ./tests/nix/suggest-example.nix ]; }"
    ),
    Fixture(PLANS / "bios.json", "example", _boot("bios")),
    Fixture(PLANS / "hybrid.json", "example", _boot("hybrid")),
)


def boot_plan_data(boot: str) -> dict[str, Any]:
    """The example host's plan in boot mode `boot` (uefi, bios or hybrid), as Nix evaluates
    it: the built-in plan, tests/plans/bios.json or tests/plans/hybrid.json (a new dict each
    call: tests change their plans)."""
    if boot == "uefi":
        return cast(dict[str, Any], json.loads(plansource.default_text()))
    return cast(dict[str, Any], json.loads((PLANS / f"{boot}.json").read_text()))


def write_plan_json(
    directory: Path, data: dict[str, Any] | plan.Plan, name: str = "plan.json"
) -> Path:
    """`data` (or the plan's JSON) written to directory/name; returns that path."""
    path = directory / name
    path.write_text(json.dumps(data.to_json() if isinstance(data, plan.Plan) else data))
    return path


def evaluate_fixtures() -> list[Any]:
    """Each fixture's evaluated `config.blankslate.plan`, in FIXTURES' order (one Nix run);
    RuntimeError with Nix's message when the evaluation fails."""
    exprs = " ".join(f"({host_expr(f.host, 'config.blankslate.plan', f.extra)})" for f in FIXTURES)
    result = nix_instantiate_eval(f"[ {exprs} ]")
    if result.returncode != 0:
        raise RuntimeError(f"nix evaluation of the plan fixtures failed:\n{result.stderr}")
    return cast(list[Any], json.loads(result.stdout))


# --- writing a fixture (tests/plans/update.py) -----------------------------------------


def ordered_like(new: Any, old: Any) -> Any:
    """NEW with its object keys in the order OLD (the file's previous content) had them."""
    if isinstance(new, dict) and isinstance(old, dict):
        keys = [key for key in old if key in new] + [key for key in new if key not in old]
        return {key: ordered_like(new[key], old.get(key)) for key in keys}
    if isinstance(new, list) and isinstance(old, list):
        return [ordered_like(item, old[i] if i < len(old) else None) for i, item in enumerate(new)]
    return new


def _flat(value: Any) -> bool:
    """A scalar, a list of scalars, or an object of those: one line in the compact layout."""
    if isinstance(value, list):
        return all(not isinstance(item, (dict, list)) for item in value)
    if isinstance(value, dict):
        return all(not isinstance(item, dict) and _flat(item) for item in value.values())
    return True


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{json.dumps(k)}: {_inline(v)}" for k, v in value.items())
        return "{ " + items + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(item) for item in value) + "]"
    return json.dumps(value)


def compact(value: Any, depth: int = 0, *, element: bool = False) -> str:
    """The hand layout of the built-in plan: a flat object or list on one line; in an object
    of a list (an ELEMENT), its leading flat members share the first line."""
    if _flat(value) or not isinstance(value, (dict, list)):
        return _inline(value)
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict):
        items = list(value.items())
        lines = []
        if element:
            lead = 0
            while (
                lead < len(items) and not isinstance(items[lead][1], dict) and _flat(items[lead][1])
            ):
                lead += 1
            if lead:
                shared = ", ".join(f"{json.dumps(k)}: {_inline(v)}" for k, v in items[:lead])
                lines.append(inner + shared)
                items = items[lead:]
        lines += [f"{inner}{json.dumps(k)}: {compact(v, depth + 1)}" for k, v in items]
        return "{\n" + ",\n".join(lines) + f"\n{pad}}}"
    lines = [f"{inner}{compact(item, depth + 1, element=True)}" for item in value]
    return "[\n" + ",\n".join(lines) + f"\n{pad}]"


def render(fixture: Fixture, value: Any) -> str:
    if fixture.compact:
        return compact(value) + "\n"
    return json.dumps(value, indent=2) + "\n"


def differences(new: Any, old: Any, where: str = "") -> list[str]:
    """Where NEW and OLD differ, as key paths (e.g. disk.partitions[0].type)."""
    if isinstance(new, dict) and isinstance(old, dict):
        found = []
        for key in [*old, *(k for k in new if k not in old)]:
            path = f"{where}.{key}" if where else key
            if key not in new:
                found.append(f"{path} (gone)")
            elif key not in old:
                found.append(f"{path} (new)")
            else:
                found += differences(new[key], old[key], path)
        return found
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        pairs = enumerate(zip(new, old, strict=True))
        return [d for i, (n, o) in pairs for d in differences(n, o, f"{where}[{i}]")]
    return [] if new == old else [where or "(whole file)"]


def btrfs_storage(the_plan: plan.Plan) -> plan.BtrfsStorage:
    """The storage of a plan with rollback "btrfs" (a test fails on any other)."""
    storage = the_plan.storage
    assert isinstance(storage, plan.BtrfsStorage), storage.kind
    return storage


def zfs_storage(the_plan: plan.Plan) -> plan.ZfsStorage:
    """The storage of a plan with rollback "zfs" (a test fails on any other)."""
    storage = the_plan.storage
    assert isinstance(storage, plan.ZfsStorage), storage.kind
    return storage


def with_kind(the_plan: plan.Plan, kind: plan.RollbackKind) -> plan.Plan:
    """`the_plan` with a storage value of rollback `kind`, for tests that read the kind: tmpfs
    keeps the plan's btrfs layout, zfs gets a one-dataset pool."""
    storage: plan.Storage
    if kind == "btrfs":
        storage = btrfs_storage(the_plan)
    elif kind == "zfs":
        storage = plan.ZfsStorage("rpool", "local/root", "blank", ("local/root",))
    elif kind == "tmpfs":
        storage = plan.TmpfsStorage("2G", plan.btrfs_layout(the_plan.storage))
    else:
        storage = plan.NoStorage()
    return dataclasses.replace(the_plan, storage=storage)
