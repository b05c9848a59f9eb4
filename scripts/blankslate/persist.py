"""Snapshots of persistPath (`blankslate persist list|send`, `recover --from-persist`).

The unit blankslate-persist-snapshot takes them (modules/snapshots): on btrfs read-only
subvolumes `<subvolume>/<UTC time>` at the top level, on ZFS `<dataset>@blankslate-<UTC time>`.
Here they are only read: listing and `recover` mount the btrfs top level read-only on a private
directory (ZFS: `<persistPath>/.zfs/snapshot`), and `send` streams one to a file.

`send` writes the stream to a fresh file in the target's directory (O_EXCL, O_NOFOLLOW,
reached without following a symlink past the directory named), fsyncs it and links it to
FILE, which fails rather than replace anything: FILE appears whole or not at all, and an
existing FILE is never touched.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from blankslate import copy, oldroots, process, safefile, storage, ui
from blankslate import snapshots as kept
from blankslate.display import format_size
from blankslate.errors import BlankslateError
from blankslate.oldroots import Recovered
from blankslate.paths import is_under, resolves_under
from blankslate.plan import PersistSnapshots, Plan
from blankslate.snapshots import LATEST, ZFS_PREFIX, Snapshot


@dataclass(frozen=True)
class Sent:
    snapshot: str
    parent: str | None
    target: Path
    size: int


def settings(plan: Plan) -> PersistSnapshots:
    if plan.persist_snapshots is None:
        raise BlankslateError(
            "persist snapshots are off in this plan (set blankslate.persistSnapshots.interval)"
        )
    return plan.persist_snapshots


# --------------------------------------------------------------------------- listing


@contextmanager
def snapshots(plan: Plan, device: str | None) -> Iterator[list[Snapshot]]:
    """The snapshots, newest first; their paths are valid inside the block."""
    setting = settings(plan)
    with storage.of(plan.storage).persist_snapshots(setting, plan.persist_path, device) as found:
        yield found


def nested_warning(plan: Plan) -> str | None:
    """What `persist list` says when subvolumes nested in persistPath are not in its snapshots."""
    from blankslate import doctor

    if storage.of(plan.storage).btrfs_persist() is not None:
        return None  # not a btrfs subvolume: nothing nests in it
    nested = doctor.nested_in_persist(plan, Path("/"))
    if not nested:
        return None
    return (
        f"warning: {len(nested)} subvolumes nested in {plan.persist_path} are not in these "
        f"snapshots (a snapshot does not recurse): {', '.join(nested)}"
    )


def pick(found: list[Snapshot], name: str) -> Snapshot:
    """The snapshot called `name` (a ZFS name may keep its prefix), or the newest for
    "latest"."""
    return kept.pick(
        found,
        name,
        what="persist snapshot",
        none_yet="no persist snapshots yet (the timer takes them; now: "
        "systemctl start blankslate-persist-snapshot)",
        prefix=ZFS_PREFIX,
    )


# --------------------------------------------------------------------------- recover


def persist_relative(plan: Plan, path: str) -> str:
    """Where `path` lies in persistPath: a path below persistPath ("/persist/etc/x"), or a
    path persisted there as it is on / ("/etc/x")."""
    path = oldroots.check_path(path)
    if is_under(plan.persist_path, path):
        relative = os.path.relpath(path, plan.persist_path)
        if relative == ".":
            raise BlankslateError("cannot recover persistPath as a whole (name a path in it)")
        return relative
    entry = oldroots.keeping_entry(plan, path)
    if entry is None or entry.root != plan.persist_path:
        raise BlankslateError(
            f"{path} is not kept in {plan.persist_path} (name it as it is there, "
            f"e.g. {plan.persist_path}{path})"
        )
    return path.lstrip("/")


def recover_from_persist(
    plan: Plan,
    name: str,
    path: str,
    *,
    to: Path | None = None,
    device: str | None = None,
    dry_run: bool = False,
) -> Recovered:
    """Copy `path` out of the persist snapshot `name` (or "latest") back to its place in
    persistPath, or into `to`; never overwrites, never writes through a symlink."""
    relative = persist_relative(plan, path)
    if to is not None:
        target = to / os.path.basename(relative)
        holder = None
    else:
        target = Path(plan.persist_path, relative)
        holder = Path(oldroots.check_persist_device(plan.persist_path, device).target)
        refusal = safefile.check_no_links(holder, relative)
        if refusal is not None:
            raise BlankslateError(f"{refusal}: refusing to write through it")
    oldroots.check_target_free(target)
    with snapshots(plan, device) as found:
        snapshot = pick(found, name)
        source = snapshot.path / relative
        if not os.path.lexists(source):
            raise BlankslateError(f"{relative} is not in persist snapshot {snapshot.name}")
        if not resolves_under(source.parent, snapshot.path):
            raise BlankslateError(
                f"{relative} in persist snapshot {snapshot.name} goes through a symlink "
                "leading out of it"
            )
        if not dry_run:
            # Read without following a link on the way, even one that stays inside the
            # snapshot: a user's ~/.config -> ../../etc/ssh would copy root's files to them.
            with copy.held_source(snapshot.path, relative, frozen=True) as held:
                oldroots.copy_to(held, target, holder)
    return Recovered(f"{plan.persist_path}/{relative}", "persist snapshot", snapshot.name, target)


# --------------------------------------------------------------------------- send


def send_command(plan: Plan, snapshot: Snapshot, parent: Snapshot | None) -> list[str]:
    return storage.of(plan.storage).send_command(settings(plan), snapshot, parent)


def send(
    plan: Plan,
    to: Path,
    *,
    incremental: bool = False,
    name: str = LATEST,
    parent_name: str | None = None,
    device: str | None = None,
    dry_run: bool = False,
) -> Sent:
    """Stream the snapshot `name` (default the newest) to the new file `to`; incremental:
    against the snapshot before it, or against `parent_name` (the last one sent, say, when
    hourly snapshots came in between), which the receiving side must already hold."""
    if os.path.lexists(to):
        raise BlankslateError(f"{to} already exists (send never overwrites; choose a new name)")
    if to.name in ("", ".", ".."):
        raise BlankslateError(f"{to} is not a file name")
    with snapshots(plan, device) as found:
        snapshot = pick(found, name)
        parent = None
        older = found[found.index(snapshot) + 1 :]
        if parent_name is not None:
            parent = pick(found, parent_name)
            if parent not in older:
                raise BlankslateError(
                    f"--parent {parent.name} is not older than {snapshot.name}: an incremental "
                    "stream goes from an older snapshot the other side holds to a newer one"
                )
        elif incremental:
            if not older:
                raise BlankslateError(
                    f"--incremental needs a snapshot older than {snapshot.name} to send "
                    "against; there is none (send this one in full first)"
                )
            parent = older[0]
        command = send_command(plan, snapshot, parent)
        if dry_run:
            ui.say(f"would run: {process.format_command(command)} > {to}")
            return Sent(snapshot.name, parent.name if parent else None, to, 0)
        size = _stream_to_new_file(command, to, f"sending {snapshot.name}")
    return Sent(snapshot.name, parent.name if parent else None, to, size)


def _stream_to_new_file(command: list[str], target: Path, title: str) -> int:
    """Run `command` with its output going to a fresh temporary file beside `target`, then
    link it to `target`. Shows the bytes written so far."""
    directory = safefile.open_directory(target.parent)
    with safefile.held(directory):
        temporary = f".{target.name}.{secrets.token_hex(4)}.blankslate-partial"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(temporary, flags, 0o600, dir_fd=directory.fd)
        except OSError as error:
            raise BlankslateError(
                f"cannot create a file in {target.parent}: {error.strerror}"
            ) from None
        try:
            with os.fdopen(fd, "wb") as output:
                with _progress(title, output.fileno()):
                    process.run(command, output=output, dry_run=False)  # after the dry run returned
                output.flush()
                os.fsync(output.fileno())
                size = os.fstat(output.fileno()).st_size
            try:
                os.link(temporary, target.name, src_dir_fd=directory.fd, dst_dir_fd=directory.fd)
            except FileExistsError:
                raise BlankslateError(f"{target} appeared while sending: left as is") from None
        finally:
            with suppress(FileNotFoundError):
                os.unlink(temporary, dir_fd=directory.fd)
        os.fsync(directory.fd)
    return size


@contextmanager
def _progress(title: str, fd: int) -> Iterator[None]:
    """A status line with the bytes written to `fd`, refreshed while the block runs."""
    done = threading.Event()
    with ui.console.status(title) as status:

        def refresh() -> None:
            while not done.wait(0.5):
                status.update(f"{title}: {format_size(os.fstat(fd).st_size)}")

        watcher = threading.Thread(target=refresh, daemon=True)
        watcher.start()
        started = time.monotonic()
        try:
            yield
        finally:
            done.set()
            watcher.join()
    ui.say(f"{title}: {format_size(os.fstat(fd).st_size)} in {time.monotonic() - started:.1f}s")


def recover(
    plan: Plan,
    path: str,
    *,
    from_root: str | None = None,
    from_persist: str | None = None,
    to: Path | None = None,
    device: str | None = None,
    dry_run: bool = False,
) -> Recovered:
    """`blankslate recover`: from the persist snapshot `from_persist` when given (a dry run
    possible), else from the kept old root `from_root` (default: the newest holding `path`)."""
    if from_persist is not None:
        if from_root is not None:
            raise BlankslateError("give either an old root or a persist snapshot, not both")
        return recover_from_persist(plan, from_persist, path, to=to, device=device, dry_run=dry_run)
    if dry_run:
        raise BlankslateError("a dry run of recover is for a persist snapshot only")
    return oldroots.recover(plan, path, from_root=from_root, to=to, device=device)
