"""`blankslate seed --hidden`: copy what a bind mount hides into the root that keeps the path.

A path newly persisted after it held data (`nixos-rebuild switch`) gets impermanence's bind
mount from its empty copy in persistPath: the data that was there is hidden beneath the mount,
still on the root, and the next boot erases it. `diff` reports it (lost, hidden). This reads
it where it lies, in the root seen beneath its mounts (`beneath`, in a mount namespace of the
command's own), and copies each hidden entry whose copy in the persistence root is missing.

It never overwrites: where persistent storage holds the entry already, the same bytes (or
link target) are `present`, and anything else is a `conflict`, one line naming both copies,
with both left as they are. Hidden data below a mountpoint that no persisted path keeps (a
filesystem of the layout, a mount of the live system) is a `problem` line: copy it by hand.
Writes go through `safefile` and `copy.copy_new`, never through a symlink, as `seed`'s do;
reads go through `copy.held_source`, every component of the hidden path opened from the view
without following a link, so a link planted on the way after the listing is refused, and what
lies below it is copied through held fds (`fdcopy`): a process that was inside the hidden tree
before the mount can still change it, and no swap of a directory for a link is followed.
"""

from __future__ import annotations

import filecmp
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from blankslate import accounts, beneath, classify, copy, mounts, paths, safefile, scan
from blankslate import seed as seed_module
from blankslate.display import quote_path
from blankslate.plan import Persisted, Plan

Action = Literal["copy", "present", "conflict", "problem"]


@dataclass(frozen=True)
class HiddenItem:
    """One hidden entry (or tree) and what seeding does with it."""

    action: Action
    kind: str  # file, dir, symlink, ...
    path: str  # as on /, beneath the mount that hides it
    target: str  # its copy in the root that keeps it ("" when none does)
    detail: str = ""

    @property
    def needs_attention(self) -> bool:
        return self.action in ("conflict", "problem")


def _same(hidden: str, kept: str, kind: str) -> bool:
    """Whether the copy in persistent storage already is the hidden entry."""
    try:
        info = os.lstat(kept)
    except OSError:
        return False
    if kind == "file":
        return stat.S_ISREG(info.st_mode) and filecmp.cmp(hidden, kept, shallow=False)
    if kind == "symlink":
        return stat.S_ISLNK(info.st_mode) and os.readlink(hidden) == os.readlink(kept)
    return False


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(2, len(parts))]


def _outermost_cover(path: str, covers: dict[str, str]) -> str | None:
    head = ""
    for part in path.split("/")[1:]:
        head = f"{head}/{part}"
        if head in covers and head != path:
            return head
    return path if path in covers else None  # a placeholder file that holds data


@dataclass(frozen=True)
class _Context:
    plan: Plan
    base: Path  # the target system's root, as seen from here
    keepers: dict[str, Persisted]  # persisted path (of the selection) -> its entry
    holders: dict[str, Path]  # persistence root -> the mountpoint holding it
    selected: bool  # only some persisted paths were asked for


def _context(plan: Plan, root: Path, selection: Sequence[str]) -> _Context:
    mount_targets = frozenset(entry.target for entry in mounts.all_mounts())
    base = Path(os.path.abspath(root))
    seed_module.check_persist_mounted(str(paths.inside(base, plan.persist_path)), mount_targets)
    wanted = seed_module.selected(plan, selection)
    holders = seed_module.holding_mounts(wanted, base, mount_targets)
    return _Context(plan, base, {entry.path: entry for entry in wanted}, holders, bool(selection))


def _hidden_entries(
    context: _Context, view: str
) -> tuple[list[classify.EntryTuple], dict[str, str]]:
    """The hidden entries of the root seen at `view`, sorted, and what covers what."""
    raw, _problems = scan.walk(view, one_filesystem=True)
    rules = classify.rules_for(context.plan, ())
    classify.add_live_mounts(rules, scan.mount_targets_below(str(context.base)))
    entries = [entry for entry in classify.classify(raw, rules) if classify.is_hidden(entry)]
    return entries, rules.covers


def plan_hidden(context: _Context, view: str) -> list[HiddenItem]:
    """What seeding does with each hidden entry, outermost first; the entries below one that
    is copied (or in conflict) go with it. Called with the root beneath its mounts at `view`."""
    entries, covers = _hidden_entries(context, view)
    items: list[HiddenItem] = []
    persisted = {entry.path for entry in context.plan.persisted}
    settled: set[str] = set()  # copied or refused with all below
    unkept: dict[str, int] = {}  # what hides entries no persisted path keeps -> their count
    for path, kind, _size, _status, reason in entries:
        if any(head in settled for head in _ancestors(path)):
            continue
        cover = _outermost_cover(path, covers)
        keeper = context.keepers.get(cover or "")
        if keeper is None:
            if cover not in persisted and not context.selected:
                unkept[reason] = unkept.get(reason, 0) + 1
            settled.add(path)
            continue
        persist = paths.inside(context.base, keeper.root)
        target = paths.inside(persist, path)
        hidden = os.path.join(view, path.lstrip("/"))
        holder = context.holders[keeper.root]
        refusal = safefile.check_no_links(holder, str(target.relative_to(holder)))
        if refusal is not None:
            items.append(HiddenItem("conflict", kind, path, str(target), f"{refusal}: left as is"))
            settled.add(path)
            continue
        try:
            kept = os.lstat(target)
        except FileNotFoundError:
            items.append(HiddenItem("copy", kind, path, str(target)))
            settled.add(path)
            continue
        if kind in ("dir", "subvolume") and stat.S_ISDIR(kept.st_mode):
            continue  # both directories: what lies below is merged entry by entry
        if _same(hidden, str(target), kind):
            items.append(HiddenItem("present", kind, path, str(target), "the same, kept"))
        else:
            items.append(
                HiddenItem(
                    "conflict",
                    kind,
                    path,
                    str(target),
                    f"the hidden {path} ({reason}) and the kept {target} differ: both left as "
                    "they are",
                )
            )
        settled.add(path)
    for reason, count in unkept.items():
        noun = "entry" if count == 1 else "entries"
        items.append(
            HiddenItem(
                "problem",
                "-",
                reason.removeprefix(classify.HIDDEN_PREFIX),
                "",
                f"{count} {noun} {reason}, which no persisted path keeps: copy them by hand",
            )
        )
    return items


def _copy(context: _Context, item: HiddenItem, view: str) -> None:
    """Copy one hidden entry into place, its missing parents made as the plan declares them
    (else as the hidden ones are), never through a symlink."""
    cover = _outermost_cover(item.path, classify.rules_for(context.plan, ()).covers)
    keeper = context.keepers[cover or ""]
    persist = paths.inside(context.base, keeper.root)
    holder = context.holders[keeper.root]
    target = Path(item.target)
    users = accounts.Accounts.of(context.base)
    declared = seed_module._declared_directories(keeper, persist, holder, users)
    live = safefile.live_maker(Path(view), persist, 0o755)
    relative = PurePosixPath(str(target.parent.relative_to(holder)))
    with (
        copy.held_source(Path(view), item.path) as source,
        safefile.held(
            safefile.walk(holder, relative, make=lambda path: declared.get(path) or live(path))
        ) as parent,
    ):
        copy.copy_new(source, parent, target.name)


def _as_data(items: Sequence[HiddenItem]) -> list[tuple[str, str, str, str, str]]:
    return [(item.action, item.kind, item.path, item.target, item.detail) for item in items]


ACTIONS: dict[str, Action] = {"copy": "copy", "present": "present", "conflict": "conflict",
                               "problem": "problem"}  # fmt: skip


def _of_data(data: Sequence[Sequence[str]]) -> list[HiddenItem]:
    """The items as the child sent them back (marshal carries plain tuples only)."""
    return [
        HiddenItem(ACTIONS[action], kind, path, target, detail)
        for action, kind, path, target, detail in data
    ]


def inspect(plan: Plan, *, root: Path, selection: Sequence[str] = ()) -> list[HiddenItem]:
    """What `seed --hidden` would do (the dry run's listing)."""
    context = _context(plan, root, selection)
    return _of_data(
        beneath.in_view(str(context.base), lambda view: _as_data(plan_hidden(context, view)))
    )


def apply(plan: Plan, *, root: Path, selection: Sequence[str] = ()) -> list[HiddenItem]:
    """Look again and copy: every item, with the copies made (`copy` items) among them."""
    context = _context(plan, root, selection)

    def work(view: str) -> list[tuple[str, str, str, str, str]]:
        items = plan_hidden(context, view)
        for item in items:
            if item.action == "copy":
                _copy(context, item, view)
        return _as_data(items)

    return _of_data(beneath.in_view(str(context.base), work))


def describe(items: Sequence[HiddenItem]) -> list[str]:
    """One line per item."""
    width = max((len(item.action) for item in items), default=0)
    lines = []
    for item in items:
        path = quote_path(item.path)
        if item.action == "copy":
            where = f"{path} (hidden) -> {quote_path(item.target)}"
        elif item.action == "present":
            where = f"{path} (hidden) = {quote_path(item.target)}"
        else:
            where = path
        detail = f"  ({item.detail})" if item.detail and item.action != "present" else ""
        lines.append(f"{item.action:<{width}}  {item.kind:<9}  {where}{detail}")
    return lines
