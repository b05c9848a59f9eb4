"""`blankslate attest`: did this boot do what blankslate promises? Run by
blankslate-attest.service (modules/attest.nix) once the persisted paths are mounted.

Checks, in this order:

- `record`: the boot record the rollback wrote in the record directory (`/run/blankslate`,
  or $BLANKSLATE_RECORD_DIR) says `outcome=reset` for the plan's rollback kind. On kind `none`
  a missing record means skipped (a container without an initrd runs no rollback). On any
  other kind a missing record is a failure: the rollback did not run.
- `persisted`: every persisted directory of the plan is a bind mount of its declared source
  (same device and inode, and a mountpoint in /proc/self/mountinfo, read through findmnt);
  every persisted file is such a bind mount, or a symlink to its declared source.
- `nixos-bound`: /var/lib/nixos was a mountpoint when the `users` activation script ran, as
  recorded by the activation script modules/attest-nixos-bound.bash in `nixos-bound`.
- `root-mode`: / (or --root) is a directory owned by root with mode 0755 (impermanence #295).

Every file is read without following a symlink at its name, at most MAX_RECORD_BYTES.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from blankslate import mounts, paths, storage
from blankslate.display import quote_path
from blankslate.errors import BlankslateError
from blankslate.plan import Plan

Status = Literal["ok", "fail", "skipped"]
CheckStatus = TypeVar("CheckStatus", bound=str)
RECORD_DIR_ENV = "BLANKSLATE_RECORD_DIR"
DEFAULT_RECORD_DIR = Path("/run/blankslate")
RECORD_NAME = "reset"
NIXOS_BOUND_NAME = "nixos-bound"
VAR_LIB_NIXOS = "/var/lib/nixos"
# A record is five short lines; anything longer is not one.
MAX_RECORD_BYTES = 4096
KINDS = ("btrfs", "zfs", "tmpfs", "none")
OUTCOMES = ("reset", "failed", "skipped")
RECORD_KEYS = ("kind", "outcome", "reason", "old_root", "time")
NIXOS_BOUND_KEYS = ("bound", "time")
_TIME = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
# Control characters have no place in a one-line value (a C1 control neither).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
METRICS_NAME = "blankslate-attest.prom"


class RecordError(BlankslateError):
    """A record that is not one: one line saying why."""


@dataclass(frozen=True)
class Record:
    kind: str
    outcome: str
    reason: str
    old_root: str
    time: str


@dataclass(frozen=True)
class Check(Generic[CheckStatus]):
    """One check's outcome, as attest and doctor report it; `to_json` is a stable contract."""

    check: str
    status: CheckStatus
    message: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "message": self.message}


Result = Check[Status]


@dataclass(frozen=True)
class Report:
    results: tuple[Result, ...]
    reset_ok: bool
    unbound: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not any(result.status == "fail" for result in self.results)


def record_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the rollback writes its record: $BLANKSLATE_RECORD_DIR or /run/blankslate."""
    value = (os.environ if environ is None else environ).get(RECORD_DIR_ENV, "")
    return Path(value) if value else DEFAULT_RECORD_DIR


# --- reading and parsing -----------------------------------------------------------------------


def read_small(path: Path) -> bytes | None:
    """The bytes of the regular file at `path`, at most MAX_RECORD_BYTES + 1; None when there
    is none. A symlink at `path` is not followed (an error), nor is anything else than a
    regular file read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RecordError(f"{quote_path(str(path))} is a symlink (not followed)") from None
        raise RecordError(f"{quote_path(str(path))}: {error.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RecordError(f"{quote_path(str(path))} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_RECORD_BYTES:
            chunk = os.read(fd, MAX_RECORD_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise RecordError(f"{quote_path(str(path))}: {error.strerror}") from None
    finally:
        os.close(fd)


def parse_lines(data: bytes, keys: Sequence[str], what: str) -> dict[str, str]:
    """`key=value` lines, exactly `keys`, each once, UTF-8 without control characters; a
    RecordError (one line) for anything else."""
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError(f"{what}: larger than {MAX_RECORD_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{what}: not UTF-8") from None
    if not text.endswith("\n"):
        raise RecordError(f"{what}: incomplete (no final newline)")
    values: dict[str, str] = {}
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        key, sep, value = line.partition("=")
        if not sep:
            raise RecordError(f"{what}: line {number} is not key=value")
        if key not in keys:
            raise RecordError(f"{what}: line {number}: unknown key {quote_path(key[:40])}")
        if key in values:
            raise RecordError(f"{what}: line {number}: {key} given twice")
        if _CONTROL.search(value):
            raise RecordError(f"{what}: line {number}: {key} holds a control character")
        values[key] = value
    missing = [key for key in keys if key not in values]
    if missing:
        raise RecordError(f"{what}: missing {', '.join(missing)}")
    if values.get("time") and not _TIME.match(values["time"]):
        raise RecordError(f"{what}: time {quote_path(values['time'][:40])} is not UTC ISO 8601")
    return values


def parse_record(data: bytes) -> Record:
    """The boot record (see modules/rollback/record.bash for the writer), or a RecordError."""
    values = parse_lines(data, RECORD_KEYS, "boot record")
    if values["kind"] not in KINDS:
        raise RecordError(f"boot record: unknown kind {quote_path(values['kind'][:40])}")
    if values["outcome"] not in OUTCOMES:
        raise RecordError(f"boot record: unknown outcome {quote_path(values['outcome'][:40])}")
    if values["outcome"] == "reset" and values["reason"]:
        raise RecordError("boot record: outcome reset with a reason")
    return Record(**values)


def read_record(directory: Path) -> Record | None:
    """The record in `directory`, None when there is none; a RecordError when it is no record."""
    data = read_small(directory / RECORD_NAME)
    return None if data is None else parse_record(data)


def describe_record(plan: Plan, directory: Path) -> Result:
    """What the last boot's rollback did, as a `record` result (doctor's `boot` reads it too)."""
    where = quote_path(str(directory / RECORD_NAME))
    try:
        record = read_record(directory)
    except RecordError as error:
        return Result("record", "fail", f"{where}: {error}")
    platform = storage.of(plan.storage).platform_resets
    if record is None:
        if platform:
            return Result(
                "record", "skipped", f"no record on rollback {plan.rollback}: the platform resets /"
            )
        return Result("record", "fail", f"no record ({where}): the rollback did not run")
    if record.kind != plan.rollback:
        return Result(
            "record",
            "fail",
            f"the record is of rollback {record.kind}, the plan's is {plan.rollback} ({where})",
        )
    old = f", old root {quote_path(record.old_root)}" if record.old_root else ""
    when = f" at {record.time}" if record.time else ""
    if record.outcome == "reset":
        return Result("record", "ok", f"{record.kind}: reset{when}{old}")
    if record.outcome == "skipped" and platform:
        return Result("record", "skipped", f"{record.kind}: skipped{when} (the platform resets /)")
    reason = f": {record.reason}" if record.reason else ""
    return Result(
        "record",
        "fail",
        f"{record.kind}: {record.outcome}{when}{reason}{old}: this boot may run yesterday's root",
    )


# --- the checks --------------------------------------------------------------------------------


def _same(first: os.stat_result, second: os.stat_result) -> bool:
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def persisted_problem(
    kind: str, target: Path, source: Path, declared: str, mounted: frozenset[str]
) -> str | None:
    """What is wrong with the persisted `target` (a path on the checked root) kept at `source`
    (the same under that root; `declared` is its name as the running system sees it), or None.
    A directory must be a bind mount of the source; a file a bind mount or a symlink to it."""
    shown = quote_path(str(target))
    try:
        here = target.lstat()
    except FileNotFoundError:
        return f"{shown} is missing"
    except OSError as error:
        return f"{shown}: {error.strerror}"
    if stat.S_ISLNK(here.st_mode):
        if kind == "directory":
            return f"{shown} is a symlink, not a bind mount of {quote_path(declared)}"
        link = os.readlink(target)
        if os.path.normpath(link) == os.path.normpath(declared):
            return None
        return f"{shown} links to {quote_path(link)}, not to {quote_path(declared)}"
    try:
        there = source.lstat()
    except FileNotFoundError:
        return f"{shown}: its source {quote_path(declared)} is missing"
    except OSError as error:
        return f"{quote_path(str(source))}: {error.strerror}"
    if os.path.normpath(target) in mounted and _same(here, there):
        return None
    return f"{shown} is not mounted from {quote_path(declared)}: the next boot erases what is in it"


def check_persisted(plan: Plan, root: Path) -> tuple[list[Result], list[str]]:
    """One result per persisted path that is not in place (one `ok` when all are), and those
    paths."""
    mounted = frozenset(os.path.normpath(entry.target) for entry in mounts.all_mounts())
    problems: list[tuple[str, str]] = []
    for entry in plan.persisted:
        declared = os.path.join(entry.root, entry.path.lstrip("/"))
        target = paths.inside(root, entry.path)
        source = paths.inside(root, declared)
        problem = persisted_problem(entry.kind, target, source, declared, mounted)
        if problem is not None:
            problems.append((entry.path, problem))
    if not problems:
        count = len(plan.persisted)
        return [Result("persisted", "ok", f"{count} persisted paths in place")], []
    return [Result("persisted", "fail", problem) for _, problem in problems], [
        path for path, _ in problems
    ]


def parse_nixos_bound(data: bytes) -> bool:
    """The activation script's note (modules/attest-nixos-bound.bash): whether /var/lib/nixos
    was a mountpoint before `users` ran."""
    values = parse_lines(data, NIXOS_BOUND_KEYS, "nixos-bound record")
    if values["bound"] not in ("yes", "no"):
        raise RecordError("nixos-bound record: bound is neither yes nor no")
    return values["bound"] == "yes"


def check_nixos_bound(plan: Plan, directory: Path, *, expected: bool = True) -> Result:
    if not any(d.directory == VAR_LIB_NIXOS for d in plan.persistence.directories):
        return Result("nixos-bound", "skipped", f"{VAR_LIB_NIXOS} is not persisted by the plan")
    if not expected:
        return Result(
            "nixos-bound", "skipped", "no `users` activation script (systemd-sysusers or Userborn)"
        )
    where = quote_path(str(directory / NIXOS_BOUND_NAME))
    try:
        data = read_small(directory / NIXOS_BOUND_NAME)
        if data is None:
            return Result(
                "nixos-bound", "fail", f"no record ({where}): the activation did not record it"
            )
        bound = parse_nixos_bound(data)
    except RecordError as error:
        return Result("nixos-bound", "fail", f"{where}: {error}")
    if bound:
        return Result("nixos-bound", "ok", f"{VAR_LIB_NIXOS} was bound before `users` ran")
    return Result(
        "nixos-bound",
        "fail",
        f"{VAR_LIB_NIXOS} was not a mountpoint when `users` ran: the uid/gid map it wrote "
        "is on the root the next boot erases",
    )


def check_root_mode(root: Path) -> Result:
    try:
        info = root.lstat()
    except OSError as error:
        return Result("root-mode", "fail", f"{quote_path(str(root))}: {error.strerror}")
    mode = stat.S_IMODE(info.st_mode)
    shown = quote_path(str(root))
    if not stat.S_ISDIR(info.st_mode):
        return Result("root-mode", "fail", f"{shown} is not a directory")
    if info.st_uid != 0 or mode != 0o755:
        return Result(
            "root-mode",
            "fail",
            f"{shown} has owner uid {info.st_uid} and mode {mode:o} (want uid 0, mode 755: "
            "sshd and others refuse it otherwise)",
        )
    return Result("root-mode", "ok", f"{shown} is root's, mode 755")


def run(plan: Plan, root: Path, directory: Path, *, nixos_bound: bool = True) -> Report:
    if not root.is_dir():
        raise BlankslateError(f"--root {quote_path(str(root))}: not a directory")
    # The mount table names canonical paths: a --root given through a symlink must match them.
    root = Path(os.path.realpath(root))
    record = describe_record(plan, directory)
    persisted, unbound = check_persisted(plan, root)
    results = (
        record,
        *persisted,
        check_nixos_bound(plan, directory, expected=nixos_bound),
        check_root_mode(root),
    )
    return Report(results, record.status != "fail", tuple(unbound))


# --- output ------------------------------------------------------------------------------------


def render_text(report: Report, *, journal: bool = False) -> str:
    """One line per result; under systemd's journal (`journal`), each line starts with its
    syslog level (`<2>`, crit, for a failure; `<6>`, info, otherwise), which systemd reads
    (SyslogLevelPrefix=, on by default)."""
    lines = []
    for result in report.results:
        level = ("<2>" if result.status == "fail" else "<6>") if journal else ""
        message = " ".join(result.message.splitlines())
        lines.append(f"{level}{result.status:<7} {result.check:<11} {message}\n")
    return "".join(lines)


def render_json(plan: Plan, root: Path, report: Report) -> dict[str, Any]:
    return {
        "version": 1,
        "host": plan.host_name,
        "root": str(root),
        "ok": report.ok,
        "resetOk": report.reset_ok,
        "unbound": list(report.unbound),
        "checks": [result.to_json() for result in report.results],
    }


def render_metrics(report: Report, now: float) -> str:
    return (
        "# HELP blankslate_reset_ok Whether this boot's rollback reset the root (1) or not (0).\n"
        "# TYPE blankslate_reset_ok gauge\n"
        f"blankslate_reset_ok {int(report.reset_ok)}\n"
        "# HELP blankslate_unbound_paths Persisted paths not mounted or linked from their source.\n"
        "# TYPE blankslate_unbound_paths gauge\n"
        f"blankslate_unbound_paths {len(report.unbound)}\n"
        "# HELP blankslate_attest_ok Whether every boot attestation check passed.\n"
        "# TYPE blankslate_attest_ok gauge\n"
        f"blankslate_attest_ok {int(report.ok)}\n"
        "# HELP blankslate_attest_timestamp_seconds When the attestation ran.\n"
        "# TYPE blankslate_attest_timestamp_seconds gauge\n"
        f"blankslate_attest_timestamp_seconds {now:.0f}\n"
    )


def write_metrics(report: Report, metrics_file: Path, now: float) -> None:
    """Atomically, never through a symlink planted at its name or above (safefile)."""
    from blankslate import safefile

    make = safefile.fixed(0o755, os.geteuid(), os.getegid())
    safefile.write_file(metrics_file, render_metrics(report, now), make=make)
