"""Which running services use the paths `seed` copies, and stopping them for the copy.

A database copied file by file while it writes (the README's PostgreSQL example) is a torn
copy. `seed` looks for two signs of use of a path it copies, or of anything below or above it:

- a running unit whose StateDirectory=, CacheDirectory=, LogsDirectory= or
  ConfigurationDirectory= lies there (`systemctl show`, only when the root copied is this
  system's own `/`);
- a process with a file or its working directory open there (the links of /proc/PID/fd and
  /proc/PID/cwd); its unit is read from /proc/PID/cgroup.

The proc root is a parameter (`PROC` by default), so the tests give a tree of their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from blankslate import process
from blankslate.errors import BlankslateError
from blankslate.paths import nested

log = logging.getLogger("blankslate")
PROC = Path("/proc")

# systemd's directory settings and the directory their relative names live in.
DIRECTORY_SETTINGS = {
    "StateDirectory": "/var/lib",
    "CacheDirectory": "/var/cache",
    "LogsDirectory": "/var/log",
    "ConfigurationDirectory": "/etc",
}


def list_running_services() -> list[str]:
    return [
        "systemctl", "list-units", "--type=service", "--state=running", "--no-legend",
        "--plain", "--full", "--no-pager",
    ]  # fmt: skip


def show_directories(units: Sequence[str]) -> list[str]:
    properties = ",".join(["Id", *DIRECTORY_SETTINGS])
    return ["systemctl", "show", f"--property={properties}", "--", *units]


def stop_units(units: Sequence[str]) -> list[str]:
    return ["systemctl", "stop", "--", *units]


def start_units(units: Sequence[str]) -> list[str]:
    return ["systemctl", "start", "--", *units]


def parse_unit_list(text: str) -> list[str]:
    """The unit names of `systemctl list-units --plain --no-legend` (the first word of each
    line that names a service)."""
    units = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0].endswith(".service") and "/" not in words[0]:
            units.append(words[0])
    return units


def parse_show(text: str) -> dict[str, list[str]]:
    """`systemctl show --property=Id,StateDirectory,...` of several units (blocks separated by
    a blank line) as unit -> the absolute directories its settings name."""
    found: dict[str, list[str]] = {}
    for block in text.split("\n\n"):
        unit = ""
        directories: list[str] = []
        for line in block.splitlines():
            key, equals, value = line.partition("=")
            if not equals:
                continue
            if key == "Id":
                unit = value.strip()
            elif key in DIRECTORY_SETTINGS:
                base = DIRECTORY_SETTINGS[key]
                for name in value.split():
                    name = name.split(":", 1)[0]  # StateDirectory=a:b (a symlink b to a)
                    if name and ".." not in name.split("/"):
                        directories.append(os.path.normpath(f"{base}/{name}"))
        if unit:
            found[unit] = directories
    return found


def parse_cgroup(text: str) -> str | None:
    """The service unit of a process from its /proc/PID/cgroup (the last ".service" component
    of its path: "0::/system.slice/postgresql.service" -> postgresql.service); None for a
    process outside a service (a login session's scope)."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1] if line.count(":") >= 2 else ""
        services = [part for part in path.split("/") if part.endswith(".service")]
        if services:
            return services[-1]
    return None


@dataclass(frozen=True)
class User:
    """Something that uses a path being copied."""

    unit: str | None  # the service unit, or None (a process outside one)
    detail: str  # e.g. "its directory /var/lib/postgresql", "pid 42 (postgres) has ... open"

    def describe(self) -> str:
        return f"{self.unit} ({self.detail})" if self.unit is not None else self.detail


def unit_directories(copied: Sequence[str]) -> list[User]:
    """The running units whose directory settings name a copied path or one below or above
    it. `copied`: paths as on this system."""
    units = parse_unit_list(process.output(list_running_services()))
    if not units:
        return []
    users = []
    for unit, directories in parse_show(process.output(show_directories(units))).items():
        for directory in directories:
            if any(nested(path, directory) for path in copied):
                users.append(User(unit, f"its directory {directory}"))
    return users


def open_files(copied: Sequence[str], proc_root: Path | None = None) -> list[User]:
    """The processes with a file (or their working directory) open at or below a copied path.
    `copied`: paths as the processes see them. Processes that end meanwhile are passed over."""
    proc_root = proc_root or PROC
    users = []
    try:
        pids = sorted((name for name in os.listdir(proc_root) if name.isdigit()), key=int)
    except OSError as error:
        raise BlankslateError(f"cannot read {proc_root}: {error.strerror}") from None
    waiting = _ancestors(proc_root)  # seed and what waits for it (the admin's shell, sudo)
    pids = [pid for pid in pids if pid not in waiting]
    for pid in pids:
        opened = _opened(proc_root / pid)
        hit = next((path for path in opened if any(_under(c, path) for c in copied)), None)
        if hit is None:
            continue
        unit = None
        with contextlib.suppress(OSError, UnicodeDecodeError):
            unit = parse_cgroup((proc_root / pid / "cgroup").read_text())
        users.append(User(unit, f"pid {pid} ({_comm(proc_root / pid)}) has {hit} open"))
    return users


def _ancestors(proc_root: Path) -> set[str]:
    """This process and its parents, by the PPid lines of proc_root/PID/status."""
    found: set[str] = set()
    pid = str(os.getpid())
    while pid not in found and pid != "0":
        found.add(pid)
        try:
            status = (proc_root / pid / "status").read_text(errors="replace")
        except OSError:
            break
        parent = [line.split()[1:] for line in status.splitlines() if line.startswith("PPid:")]
        if not parent or not parent[0] or not parent[0][0].isdigit():
            break
        pid = parent[0][0]
    return found


def _under(copied: str, path: str) -> bool:
    return path == copied or path.startswith(copied.rstrip("/") + "/")


def _opened(directory: Path) -> list[str]:
    links = []
    with contextlib.suppress(OSError):
        links.append(os.readlink(directory / "cwd"))
    try:
        names = os.listdir(directory / "fd")
    except OSError:
        return links  # ended, or not ours to read
    for name in names:
        with contextlib.suppress(OSError):
            links.append(os.readlink(directory / "fd" / name))
    return [link.removesuffix(" (deleted)") for link in links if link.startswith("/")]


def _comm(directory: Path) -> str:
    try:
        return (directory / "comm").read_text().strip() or "?"
    except (OSError, UnicodeDecodeError):
        return "?"


def users_of(
    copied: Sequence[str], *, system_root: bool, proc_root: Path | None = None
) -> list[User]:
    """Everything that uses a copied path: units by their settings (when the root copied is
    this system's `/`), and processes by their open files."""
    found = unit_directories(copied) if system_root else []
    found += open_files(copied, proc_root)
    return list(dict.fromkeys(found))


def stoppable(users: Sequence[User]) -> tuple[list[str], list[User]]:
    """The units to stop, and the users that are in no unit (seed cannot stop those)."""
    units = list(dict.fromkeys(user.unit for user in users if user.unit is not None))
    return units, [user for user in users if user.unit is None]


@contextlib.contextmanager
def stopped(units: Sequence[str], *, dry_run: bool) -> Iterator[None]:
    """`units` stopped for the block and started again afterwards, also when it fails."""
    if not units:
        yield
        return
    process.run(stop_units(units), dry_run=dry_run)
    failed = True
    try:
        yield
        failed = False
    finally:
        started = process.run(start_units(units), dry_run=dry_run, check=False)
        if started.returncode != 0:
            message = (
                f"systemctl start {' '.join(units)} failed ({process.failure_reason(started)}):"
                " start them by hand"
            )
            if failed:
                log.error("%s", message)
            else:
                raise BlankslateError(message)
