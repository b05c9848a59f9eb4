"""`blankslate doctor`: is this system safe to reboot and to log in to? One result per check.

Checks, by the names `--only` takes:

- `persist`: persistPath is mounted, and the plan mounts it in the initrd (its mount, or the
  mount holding it, has neededForBoot; with rollback "none" and no mount in the plan, the
  platform mounts it before the system starts). The initrd part is read from the plan, which
  on a running system is the configuration it runs: the kernel does not record which stage
  made a mount.
- `passwords`: every admin's password file is a regular file (not a symlink), 0600, root's,
  and it holds one password hash and nothing else, by NixOS's rules (passwordfile.py). Otherwise
  that admin cannot use sudo, and root login is off: the boot-time guard
  (modules/guard/password-files.bash) checks the same with the same rules.
- `host-keys`: every host key of the plan is in persistPath, a regular file only root reads.
- `blank` (btrfs): the blank snapshot exists, is read-only and empty.
- `root-age` (btrfs, running system only): / is the plan's root subvolume, created after the
  kernel booted (`btrfs subvolume show /` against btime in /proc/stat), so the reset ran.
- `old-roots` (btrfs): how many old roots are kept, their age and (with quotas) space; a
  warning, never a failure, when some should have been pruned.
- `free-space`: the filesystem holding persistPath has at least `MIN_FREE_BYTES` and
  `MIN_FREE_FRACTION` of its size available; below either, the check fails.
- `private-state`: /var/lib/private, where DynamicUser services keep their state, is a
  directory (not a symlink), root's and 0700, on / and in every persistence root that holds
  one; systemd refuses the services' state otherwise (impermanence #93, #254).
- `boot` (running system only): what the last boot's rollback did, from its record in
  /run/blankslate/reset (attest.py, the same reading as `blankslate attest`): `reset`, or
  `failed` with its reason, or no record (a failure, but on rollback none).
- `etc` (running system only): every file in /etc/blankslate is the running configuration's
  (/run/current-system/etc/blankslate), byte for byte; a stale or edited plan.json would
  mislead every command that reads it.

With `--root DIR` (an installed system that has not booted, mounted on DIR) the plan's paths
are read under DIR, and the checks that only mean something on a running system are skipped,
each with a line that says so. Nothing is written; the btrfs top level is mounted read-only on
a private directory and unmounted again.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from blankslate import attest, btrfs, mounts, passwordfile, paths, process, snapshots, storage
from blankslate.display import format_size, quote_path
from blankslate.errors import BlankslateError, require_root
from blankslate.paths import is_under
from blankslate.plan import Mount, Plan
from blankslate.snapshots import Snapshot, age

Status = Literal["ok", "fail", "warn", "info", "skipped"]
CHECKS = (
    "persist",
    "passwords",
    "host-keys",
    "blank",
    "root-age",
    "old-roots",
    "free-space",
    "etc",
    "persist-nested",
    "admin-keys",
    "boot",
    "private-state",
)

# Below 1 GiB or 5% free, btrfs may refuse writes (metadata) and the next boot's snapshot can fail.
MIN_FREE_BYTES = 1 << 30
MIN_FREE_FRACTION = 0.05
# The kernel computes btime from the clock and the uptime: it moves by a second or so.
CLOCK_SLACK = timedelta(seconds=5)
PROC_STAT = Path("/proc/stat")
ETC_DIR = Path("/etc/blankslate")
CURRENT_ETC_DIR = Path("/run/current-system/etc/blankslate")
# The password hash rules (passwordfile.py, password-hashes.txt), shared with `passwd` and the
# boot-time guard (modules/guard/password-files.bash).
HASH_SCHEMES = passwordfile.schemes()


# One entry of `doctor --format json`: attest's check result, with doctor's statuses.
Result = attest.Check[Status]


def parse_only(values: Sequence[str]) -> tuple[str, ...]:
    """`--only passwords,host-keys` (repeatable): the checks named, in CHECKS order; none
    named: all of them."""
    wanted: set[str] = set()
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name not in CHECKS:
                shown = quote_path(name[:40]) if name else "an empty name"
                raise BlankslateError(
                    f"--only: unknown check {shown} (checks: {', '.join(CHECKS)})"
                )
            wanted.add(name)
    return tuple(name for name in CHECKS if name in wanted) if wanted else CHECKS


def scheme_of(line: str) -> str | None:
    return passwordfile.scheme_of(line)


def hash_problem(line: str) -> str | None:
    """What is wrong with a password file holding `line` (and a newline), or None when it
    holds a hash NixOS makes a working /etc/shadow entry of (passwordfile.content_problem)."""
    return passwordfile.text_problem(line)


@dataclass
class Context:
    plan: Plan
    root: Path
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _mounts: dict[str, mounts.MountEntry] | None = None

    @property
    def booted(self) -> bool:
        """The running system, not a tree under --root."""
        return os.path.realpath(self.root) == "/"

    def under(self, path: str) -> Path:
        return paths.inside(self.root, path)

    def mounted(self) -> dict[str, mounts.MountEntry]:
        """What is mounted, by mountpoint (one findmnt per run)."""
        if self._mounts is None:
            self._mounts = {entry.target: entry for entry in mounts.all_mounts()}
        return self._mounts


def run(
    plan: Plan, root: Path, only: Sequence[str] = CHECKS, now: datetime | None = None
) -> list[Result]:
    """Every check named in `only`, in CHECKS order; one result each (one per user or key for
    `passwords` and `host-keys`)."""
    require_root("password files and the btrfs top level are root's")
    if not root.is_dir():
        raise BlankslateError(f"--root {quote_path(str(root))}: not a directory")
    context = Context(plan, root) if now is None else Context(plan, root, now)
    checks: dict[str, Callable[[Context], Iterator[Result]]] = {
        "persist": check_persist,
        "passwords": check_passwords,
        "host-keys": check_host_keys,
        "free-space": check_free_space,
        "etc": check_etc,
        "persist-nested": check_persist_nested,
        "admin-keys": check_admin_keys,
        "private-state": check_private_state,
        "boot": check_boot,
    }
    results: list[Result] = []
    btrfs_results = {r.check: r for r in btrfs_checks(context, only)} if _btrfs_wanted(only) else {}
    for name in CHECKS:
        if name not in only:
            continue
        if name in btrfs_results:
            results.append(btrfs_results[name])
            continue
        try:
            results.extend(checks[name](context))
        except (BlankslateError, OSError) as error:
            results.append(Result(name, "fail", _reason(error)))
    return results


def failed(results: Sequence[Result]) -> bool:
    return any(result.status == "fail" for result in results)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError):
        where = f"{quote_path(os.fsdecode(error.filename))}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    return str(error)


def _q(path: Path | str) -> str:
    return quote_path(str(path))


# --- persist -------------------------------------------------------------------------------


def holding_mount(plan: Plan, path: str) -> Mount | None:
    """The plan's mount that holds `path` (the deepest one), or None."""
    holding = [mount for mount in plan.mounts if is_under(mount.mount_point, path)]
    return max(holding, key=lambda mount: len(mount.mount_point), default=None)


def check_persist(context: Context) -> Iterator[Result]:
    plan = context.plan
    target = os.path.normpath(context.under(plan.persist_path))
    entry = context.mounted().get(target)
    if entry is None:
        yield Result(
            "persist",
            "fail",
            f"persistPath {_q(target)} is not mounted: what is written there lands on a root "
            "the next boot erases",
        )
        return
    mount = holding_mount(plan, plan.persist_path)
    where = f"{_q(target)} is mounted from {_q(entry.source)}"
    platform = storage.of(plan.storage).platform_resets
    if mount is None:
        if platform:
            yield Result(
                "persist", "ok", f"{where}; the platform mounts it (rollback {plan.rollback})"
            )
        else:
            yield Result("persist", "fail", f"{where}, but no mount of the plan holds it")
    elif mount.mount_point == "/" and not platform:
        yield Result(
            "persist",
            "fail",
            f"{where}, but the plan has it on /, which every boot erases",
        )
    elif mount.needed_for_boot:
        yield Result("persist", "ok", f"{where}; the plan mounts it in the initrd (neededForBoot)")
    else:
        yield Result(
            "persist",
            "fail",
            f"{where}, but the plan's mount {_q(mount.mount_point)} is not neededForBoot: "
            "impermanence and the password files need it in the initrd",
        )


# --- passwords and host keys ---------------------------------------------------------------


def _open_regular(path: Path) -> tuple[int | None, str | None]:
    """(fd, None) for a regular file opened without following a symlink, else (None, why)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, "is missing"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None, "is a symlink (it must be a plain file)"
        return None, f"cannot be opened ({error.strerror})"
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None, "is not a regular file"
    return fd, None


def _owner_mode_problem(info: os.stat_result, *, exact: int | None = None) -> str | None:
    mode = stat.S_IMODE(info.st_mode)
    bad_mode = mode != exact if exact is not None else mode & 0o077 != 0
    if info.st_uid != 0 or bad_mode:
        want = f"mode {exact:o}" if exact is not None else "no access for group or others"
        return f"has owner uid {info.st_uid} and mode {mode:o} (want uid 0, {want})"
    return None


def check_passwords(context: Context) -> Iterator[Result]:
    if not context.plan.users:
        yield Result("passwords", "info", "no admin users in the plan")
        return
    hint = "" if context.booted else f" --root {_q(context.root)}"
    for user in context.plan.users:
        path = context.under(user.hashed_password_file)
        problem, data = _password_file_problem(path)
        if problem is None:
            scheme = scheme_of(passwordfile.hash_of(data).decode("ascii"))
            yield Result(
                "passwords", "ok", f"{user.name}: {_q(path)} holds a {scheme} hash, 0600, root's"
            )
        else:
            yield Result(
                "passwords",
                "fail",
                f"{user.name}: {_q(path)} {problem}; {user.name} cannot use sudo (root login "
                f"is off): run `blankslate passwd {user.name}{hint}`",
            )


def _password_file_problem(path: Path) -> tuple[str | None, bytes]:
    """(what is wrong, None when nothing; the bytes read, at most MAX_BYTES + 1)."""
    fd, problem = _open_regular(path)
    if fd is None:
        return problem, b""
    with os.fdopen(fd, "rb") as handle:
        owner = _owner_mode_problem(os.fstat(handle.fileno()), exact=0o600)
        data = handle.read(passwordfile.MAX_BYTES + 1)
    content = passwordfile.content_problem(data)
    problems = [problem for problem in (owner, content) if problem is not None]
    return (" and ".join(problems) if problems else None), data


def check_host_keys(context: Context) -> Iterator[Result]:
    if not context.plan.ssh_host_keys:
        yield Result("host-keys", "info", "no host keys in the plan")
        return
    for key in context.plan.ssh_host_keys:
        path = context.under(key)
        fd, problem = _open_regular(path)
        if fd is not None:
            try:
                problem = _owner_mode_problem(os.fstat(fd))
            finally:
                os.close(fd)
        if problem is None:
            yield Result("host-keys", "ok", f"{_q(path)} is in persistPath, root's only")
        else:
            yield Result(
                "host-keys",
                "fail",
                f"{_q(path)} {problem}: "
                + (
                    "sshd makes a new key, with a new fingerprint, when it starts"
                    if problem == "is missing"
                    else "sshd refuses a host key others can read, or that is not a file"
                ),
            )


# --- btrfs: blank snapshot, this boot's root, old roots -----------------------------------

_BTRFS_CHECKS = ("blank", "root-age", "old-roots")


def _btrfs_wanted(only: Sequence[str]) -> bool:
    return any(name in only for name in _BTRFS_CHECKS)


def btrfs_checks(context: Context, only: Sequence[str]) -> list[Result]:
    """blank, root-age and old-roots, under one read-only mount of the top level."""
    plan = context.plan
    names = [name for name in _BTRFS_CHECKS if name in only]
    root = storage.of(plan.storage).btrfs_root()
    if isinstance(root, str):
        return [Result(name, "skipped", root) for name in names]
    results: dict[str, Result] = {}
    if "root-age" in names:
        results["root-age"] = _guard("root-age", lambda: check_root_age(context))
    try:
        device = top_level_device(context)
        with mounts.top_level(device) as top:
            if "blank" in names:
                blank = root.blank_snapshot
                results["blank"] = _guard("blank", lambda: check_blank(top, blank))
            if "old-roots" in names:
                results["old-roots"] = _guard("old-roots", lambda: check_old_roots(context, top))
    except BlankslateError as error:
        for name in ("blank", "old-roots"):
            if name in names and name not in results:
                results[name] = Result(name, "fail", f"cannot read the btrfs top level: {error}")
    return [results[name] for name in names]


def _guard(name: str, check: Callable[[], Result]) -> Result:
    try:
        return check()
    except (BlankslateError, OSError) as error:
        return Result(name, "fail", _reason(error))


def top_level_device(context: Context) -> str:
    """The device of the first btrfs mount of the plan mounted under the root, else the
    plan's main partition."""
    mounted = context.mounted()
    for mount in context.plan.mounts:
        entry = mounted.get(os.path.normpath(context.under(mount.mount_point)))
        if mount.fs_type == "btrfs" and entry is not None and entry.fstype == "btrfs":
            return entry.device
    if context.plan.disk is None:
        raise BlankslateError("no btrfs mount of the plan is mounted, and the plan has no disk")
    return context.plan.disk.main.device


def check_blank(top: Path, name: str) -> Result:
    blank = top / name
    if not blank.is_dir() or blank.is_symlink():
        return Result(
            "blank", "fail", f"the blank snapshot {name} is missing: the next boot cannot reset /"
        )
    readonly = process.probe(btrfs.property_get_ro(blank), check=False)
    if readonly.returncode != 0:
        return Result(
            "blank", "fail", f"{name} is not a btrfs subvolume ({process.failure_reason(readonly)})"
        )
    entries = os.listdir(blank)
    problems = []
    if readonly.stdout.strip() != "ro=true":
        problems.append("is writable (btrfs property set -ts ... ro true)")
    if entries:
        problems.append(f"holds {len(entries)} entries, which every boot would start from")
    if problems:
        return Result("blank", "fail", f"the blank snapshot {name} " + " and ".join(problems))
    return Result("blank", "ok", f"the blank snapshot {name} is read-only and empty")


def boot_time() -> datetime:
    """When the kernel booted: btime, in seconds since the epoch, from /proc/stat."""
    for line in PROC_STAT.read_text().splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "btime" and fields[1].isdigit():
            return datetime.fromtimestamp(int(fields[1]), UTC)
    raise BlankslateError(f"{PROC_STAT}: no btime line")


def parse_subvolume_show(text: str) -> tuple[str | None, datetime | None]:
    """(Name, Creation time) from `btrfs subvolume show`."""
    name = created = None
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        if key == "Name":
            name = value.strip()
        elif key == "Creation time":
            try:
                created = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S %z")
            except ValueError:
                created = None
    return name, created


def check_root_age(context: Context) -> Result:
    if not context.booted:
        return Result(
            "root-age", "skipped", "not the running system (--root): no boot to compare with"
        )
    root = storage.of(context.plan.storage).btrfs_root()
    if isinstance(root, str):
        return Result("root-age", "skipped", root)
    wanted = root.root_subvolume
    name, created = parse_subvolume_show(process.output(btrfs.subvolume_show(Path("/"))))
    if name != wanted:
        return Result("root-age", "fail", f"/ is subvolume {name!r}, not the plan's {wanted!r}")
    if created is None:
        return Result("root-age", "fail", "btrfs subvolume show / gave no creation time")
    booted = boot_time()
    stamp = (
        f"created {created.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z, boot at {booted:%Y-%m-%d %H:%M:%S}Z"
    )
    if created + CLOCK_SLACK < booted:
        return Result(
            "root-age",
            "fail",
            f"/ is older than this boot ({stamp}): the reset did not run "
            "(journalctl -b -u blankslate-rollback)",
        )
    return Result("root-age", "ok", f"/ was made at this boot ({stamp})")


# Old roots holding more than this share of their filesystem get a warning.
OLD_ROOTS_SHARE = 0.25


def check_old_roots(context: Context, top: Path) -> Result:
    root = storage.of(context.plan.storage).btrfs_root()
    if isinstance(root, str):
        return Result("old-roots", "skipped", root)
    rules = root.old_roots
    if not (top / rules.subvolume).is_dir():
        if not context.booted:
            return Result(
                "old-roots", "skipped", f"no {rules.subvolume} yet: the first boot makes it"
            )
        return Result(
            "old-roots", "warn", f"no {rules.subvolume} subvolume: has the rollback run at boot?"
        )
    kept = snapshots.listing(top, rules.subvolume, with_sizes=True)
    if not kept:
        return Result("old-roots", "info", "no old roots kept yet")
    timed = [root.time for root in kept if root.time is not None]
    ages = (
        f", newest {age(context.now - max(timed), 'h')} old, "
        f"oldest {age(context.now - min(timed), 'h')}"
        if timed
        else ""
    )
    usage = _old_roots_usage(top / rules.subvolume, kept)
    space = f", {format_size(usage[0])} held only by them ({usage[1]})" if usage else ""
    bound = "" if rules.keep_max is None else f" (keepMax {rules.keep_max})"
    summary = f"{len(kept)} old root{'' if len(kept) == 1 else 's'} kept{bound}{ages}{space}"
    limit = context.now - timedelta(days=rules.keep_days + 1)
    overdue = [r for r in kept[rules.keep_newest :] if r.time is not None and r.time < limit]
    if overdue:
        return Result(
            "old-roots",
            "warn",
            f"{summary}; {len(overdue)} older than keepDays ({rules.keep_days}) are still "
            "there: the pruning at boot did not remove them (journalctl -b -u blankslate-rollback)",
        )
    if rules.keep_max is not None and len(kept) > rules.keep_max:
        return Result(
            "old-roots",
            "warn",
            f"{summary}; more than keepMax: the pruning did not run "
            "(journalctl -b -u blankslate-rollback -u blankslate-prune-old-roots)",
        )
    total = free_space(top)[1]
    if usage and total > 0 and usage[0] > OLD_ROOTS_SHARE * total:
        lower = "keepDays, keepNewest" + ("" if rules.keep_max is None else " or keepMax")
        if rules.keep_max is None:
            lower += " or set keepMax"
        return Result(
            "old-roots",
            "warn",
            f"{summary}: {usage[0] / total:.0%} of the filesystem's {format_size(total)}, "
            f"more than {OLD_ROOTS_SHARE:.0%}; lower {lower} (blankslate.btrfs.oldRoots)",
        )
    return Result("old-roots", "info", summary)


def _old_roots_usage(directory: Path, kept: list[Snapshot]) -> tuple[int, str] | None:
    """(bytes, how they were measured) the old roots alone hold: btrfs's quota data when
    quotas are on (cheap: the kernel keeps it), else `btrfs filesystem du` of the old roots'
    directory (it reads their files' extents: exclusive plus shared among them only).
    None when neither says."""
    sized = [root.sizes.exclusive for root in kept if root.sizes is not None]
    if len(sized) == len(kept):
        return sum(sized), "btrfs quota data"
    shown = process.probe(btrfs.filesystem_du_summary(directory), check=False)
    parsed = btrfs.parse_du_summary(shown.stdout) if shown.returncode == 0 else None
    if parsed is None:
        return None
    return parsed[1] + parsed[2], "btrfs filesystem du"


# --- free space and /etc/blankslate --------------------------------------------------------


def free_space(path: Path) -> tuple[int, int]:
    """(available to unprivileged writers, total) bytes of the filesystem at `path`."""
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize, info.f_blocks * info.f_frsize


def check_free_space(context: Context) -> Iterator[Result]:
    target = context.under(context.plan.persist_path)
    where = target if os.path.isdir(target) else context.root
    available, total = free_space(where)
    share = available / total if total else 0.0
    text = (
        f"{format_size(available)} of {format_size(total)} available ({share:.0%}) on {_q(where)}"
    )
    if available < MIN_FREE_BYTES or share < MIN_FREE_FRACTION:
        limit = f"{format_size(MIN_FREE_BYTES)} and {MIN_FREE_FRACTION:.0%}"
        yield Result(
            "free-space", "fail", f"{text}: below {limit}; free some space before the next boot"
        )
    else:
        yield Result("free-space", "ok", text)


def check_etc(context: Context) -> Iterator[Result]:
    if not context.booted:
        yield Result("etc", "skipped", "not the running system (--root): no running configuration")
        return
    if not CURRENT_ETC_DIR.is_dir():
        yield Result(
            "etc", "skipped", f"no {CURRENT_ETC_DIR}: not a system built from these modules"
        )
        return
    wanted = sorted(os.listdir(CURRENT_ETC_DIR))
    present = sorted(os.listdir(ETC_DIR)) if ETC_DIR.is_dir() else []
    problems = []
    for name in wanted:
        live = ETC_DIR / name
        if name not in present:
            problems.append(f"{name} is missing")
        elif live.read_bytes() != (CURRENT_ETC_DIR / name).read_bytes():
            problems.append(f"{name} differs")
    extra = [name for name in present if name not in wanted]
    if problems:
        yield Result(
            "etc",
            "fail",
            f"{ETC_DIR}: {', '.join(problems)} from the running configuration's "
            f"{CURRENT_ETC_DIR} (a persisted or edited copy? the tool reads it as the plan)",
        )
    elif extra:
        yield Result(
            "etc", "warn", f"{ETC_DIR}: {', '.join(extra)} not in the running configuration"
        )
    else:
        yield Result("etc", "ok", f"{ETC_DIR} is the running configuration's ({', '.join(wanted)})")


# --- output --------------------------------------------------------------------------------


def render_text(results: Sequence[Result]) -> str:
    return "".join(
        f"{result.status:<7} {result.check:<10} {' '.join(result.message.splitlines())}\n"
        for result in results
    )


def render_json(plan: Plan, root: Path, results: Sequence[Result]) -> dict[str, Any]:
    """`doctor --format json`: {"version": 1, "host", "root", "ok", "checks": [...]}."""
    return {
        "version": 1,
        "host": plan.host_name,
        "root": str(root),
        "ok": not failed(results),
        "checks": [result.to_json() for result in results],
    }


# --- subvolumes nested in persistPath -------------------------------------------------------


def nested_in_persist(plan: Plan, root: Path) -> list[str]:
    """The subvolumes directly below persistPath's subvolume (machined, portables, docker's
    btrfs driver make them): a snapshot of persistPath holds none of their files."""
    persist = paths.inside(root, plan.persist_path)
    if not btrfs.is_subvolume(persist):
        return []
    return btrfs.nested_subvolumes(process.output(btrfs.subvolume_list_below(persist)))


def check_persist_nested(context: Context) -> Iterator[Result]:
    plan = context.plan
    skipped = storage.of(plan.storage).btrfs_persist()
    if skipped is not None:
        yield Result("persist-nested", "skipped", skipped)
        return
    nested = nested_in_persist(plan, context.root)
    if not nested:
        yield Result("persist-nested", "ok", f"no subvolume nested in {plan.persist_path}")
        return
    names = ", ".join(quote_path(name) for name in nested)
    if plan.persist_snapshots is not None:
        yield Result(
            "persist-nested",
            "warn",
            f"{len(nested)} subvolumes nested in {plan.persist_path} ({names}) are missing from "
            "its snapshots and `persist send` (a snapshot does not recurse): back them up "
            "separately",
        )
    else:
        yield Result(
            "persist-nested",
            "info",
            f"{len(nested)} subvolumes nested in {plan.persist_path}: {names}",
        )


def check_admin_keys(context: Context) -> Iterator[Result]:
    """The plan's admins can log in: one of them has a key, none has only the placeholder."""
    from blankslate import lockout

    if any(user.authorized_keys is None for user in context.plan.users):
        yield Result("admin-keys", "skipped", "the plan predates authorizedKeys: make it again")
        return
    problem = lockout.lockout_problem(context.plan)
    if problem is not None:
        yield Result("admin-keys", "fail", problem)
        return
    count = sum(len(user.authorized_keys or ()) for user in context.plan.users)
    yield Result("admin-keys", "ok", f"{count} SSH keys for {len(context.plan.users)} admins")


PRIVATE_STATE = "var/lib/private"


def private_state_problem(path: Path) -> str | None:
    """What is wrong with a /var/lib/private at `path` (not followed if a symlink), or None;
    None too when it does not exist."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return f"{_q(path)} is a symlink (it must be a directory, root's, 0700)"
    if not stat.S_ISDIR(info.st_mode):
        return f"{_q(path)} is not a directory"
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != 0 or mode != 0o700:
        return (
            f"{_q(path)} has owner uid {info.st_uid} and mode {mode:o} (want uid 0, mode 700: "
            f"chmod 700 {_q(path)}; systemd refuses DynamicUser services' state otherwise)"
        )
    return None


def check_private_state(context: Context) -> Iterator[Result]:
    """/var/lib/private on / and in each persistence root is root's and 0700, where it exists."""
    places = [context.root / PRIVATE_STATE] + [
        context.under(root) / PRIVATE_STATE for root in context.plan.persistence_roots
    ]
    found = [path for path in dict.fromkeys(places) if os.path.lexists(path)]
    problems = [problem for path in found if (problem := private_state_problem(path))]
    if problems:
        for problem in problems:
            yield Result("private-state", "fail", problem)
    elif found:
        where = ", ".join(_q(path) for path in found)
        yield Result("private-state", "ok", f"{where}: root's, 0700")
    else:
        yield Result("private-state", "ok", "no /var/lib/private (no DynamicUser state yet)")


def check_boot(context: Context) -> Iterator[Result]:
    """The last boot's outcome, from the rollback's record (attest.describe_record)."""
    if not context.booted:
        yield Result("boot", "skipped", "--root: the boot record is the running system's")
        return
    result = attest.describe_record(context.plan, attest.record_dir())
    yield Result("boot", result.status, result.message)
