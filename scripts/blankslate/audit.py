"""`blankslate diff`: what lives on / that the next boot will erase.

Three steps, each in its own module so each can be tested alone: `scan` (every entry of the
root as it will be thrown away), `classify` (one status per entry, with a reason) and `render`
(text, JSON, YAML). This module runs them in order for a plan.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blankslate import beneath, mounts, scan, storage
from blankslate.bounds import Beyond
from blankslate.classify import Report, add_live_mounts, classify, classify_deeper, rules_for
from blankslate.errors import BlankslateError
from blankslate.ignore_rules import Rule
from blankslate.plan import Plan
from blankslate.scan import RawTuple

if TYPE_CHECKING:
    from blankslate.snapshots import Snapshot

# oldroots (and what it imports) is loaded only to audit old roots: diff starts faster.


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="surrogateescape")
    except OSError:
        return None


def run_diff(
    plan: Plan,
    *,
    device: str | None = None,
    root: Path | None = None,
    ignore: Sequence[Rule] = (),
    old_root: str | None = None,
    outputs: Mapping[str, str] | None = None,
) -> Report:
    """Scan by rollback kind (a walk of `root` when given; the kept old root `old_root`, a
    name or "latest", when given) and classify. `outputs`: files this run writes (path ->
    why), which it re-creates itself and so are not lost."""
    with _collector_paused():
        if old_root is not None:
            if root is not None:
                raise BlankslateError("give either --root or --old-root, not both")
            return _audit_old_root(plan, device, old_root, ignore)
        return _scan_and_classify(plan, device, root, ignore, outputs or {})


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A scan makes hundreds of thousands of tuples and strings, and no cycles: the cyclic
    garbage collector would only walk them over and over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _classified(
    plan: Plan,
    ignore: Sequence[Rule],
    scanned: tuple[list[RawTuple], list[str]],
    etc_clean: str | None,
    method: str,
    outputs: Mapping[str, str] | None = None,
    old_root: str | None = None,
    live_mounts: Iterable[str] = (),
    beyond: Beyond | None = None,
) -> Report:
    rules = rules_for(plan, ignore, etc_clean)
    rules.managed.update(outputs or {})
    add_live_mounts(rules, live_mounts)
    raw, problems = scanned
    deeper = classify_deeper(beyond or {}, rules)
    # The scan's list becomes the report's, tuple by tuple: no entry is held twice.
    entries = classify(raw, rules, consume=True)
    return Report(method, entries, problems=problems, old_root=old_root, deeper=deeper)


def _scan_and_classify(
    plan: Plan,
    device: str | None,
    root: Path | None,
    ignore: Sequence[Rule],
    outputs: Mapping[str, str],
) -> Report:
    if root is not None:
        return _walked(plan, ignore, root, outputs)
    return storage.of(plan.storage).scan(_Scans(plan, device, ignore, outputs))


class _Scans:
    """The audit's ways to read the root (`storage_kind.Scans`): its storage kind picks one.
    (A plain class: a dataclass costs `diff`'s start a few milliseconds.)"""

    def __init__(
        self, plan: Plan, device: str | None, ignore: Sequence[Rule], outputs: Mapping[str, str]
    ) -> None:
        self.plan = plan
        self.device = device
        self.ignore = ignore
        self.outputs = outputs

    def live(self) -> Report:
        return _walked(self.plan, self.ignore, Path("/"), self.outputs)

    def zfs_diff(self, dataset: str, snapshot: str) -> Report:
        # The paths `zfs diff` gives are on the root dataset: looked at beneath the mounts,
        # a path a bind mount hides has its own size, not that of what covers it.
        entries, problems, _beyond = _beneath_or(
            "/",
            lambda view: _no_beyond(scan.scan_zfs(dataset, snapshot, view)),
            lambda: _no_beyond(scan.scan_zfs(dataset, snapshot)),
        )
        etc_clean = _read_text("/etc/.clean")
        return _classified(
            self.plan, self.ignore, (entries, problems), etc_clean, "zfs", self.outputs
        )

    def stored_root(self, subvolume: str) -> Report:
        device = self.device
        if device is None:
            device = mounts.backing_device(self.plan.persist_path)
        with mounts.top_level(device) as top:
            stored = top / subvolume
            if not stored.is_dir():
                raise BlankslateError(
                    f"subvolume {subvolume!r} not found on {device} (check --device)"
                )
            return _stored_root(self.plan, self.ignore, stored, self.outputs)


Scanned = tuple[list[RawTuple], list[str]]
# A walk's result with what it counted too deep to list: it comes back from the child that
# looks beneath the mounts as plain data.
Walked = tuple[list[RawTuple], list[str], Beyond]


def _beneath_or(root: str, work: Callable[[str], Walked], fallback: Callable[[], Walked]) -> Walked:
    """`work` on `root` seen beneath its mounts (`beneath.in_view`); for anyone but root, who
    cannot look there, `fallback` on the live tree, with a warning that says what is missed."""
    try:
        return beneath.in_view(root, work)
    except beneath.NotRoot as error:
        entries, problems, beyond = fallback()
        return entries, [*problems, str(error)], beyond


def _walk(base: str, **options: Any) -> Walked:
    """`scan.walk` with what it counted too deep to list."""
    beyond: Beyond = {}
    entries, problems = scan.walk(base, beyond=beyond, **options)
    return entries, problems, beyond


def _no_beyond(scanned: Scanned) -> Walked:
    return scanned[0], scanned[1], {}


def _walked(plan: Plan, ignore: Sequence[Rule], root: Path, outputs: Mapping[str, str]) -> Report:
    """A live tree walked beneath its mounts (`--root`, or / where nothing stores the root):
    what a mount hides there is on the root, and lost."""
    base = str(root)
    if not os.path.isdir(base):
        raise BlankslateError(f"{base} is not a directory (check --root)")
    targets = scan.mount_targets_below(base)
    entries, problems, beyond = _beneath_or(
        base,
        lambda view: _walk(view, one_filesystem=True),
        lambda: _walk(base, skip=targets, one_filesystem=True),
    )
    etc_clean = _read_text(os.path.join(base, "etc/.clean"))
    return _classified(
        plan,
        ignore,
        (entries, problems),
        etc_clean,
        "walk",
        outputs,
        live_mounts=targets,
        beyond=beyond,
    )


def _stored_root(
    plan: Plan,
    ignore: Sequence[Rule],
    stored: Path,
    outputs: Mapping[str, str] | None = None,
    old_root: str | None = None,
) -> Report:
    """A root subvolume on the mounted top level, scanned and classified."""
    beyond: Beyond = {}
    scanned = scan.scan_stored_root(str(stored), beyond)
    etc_clean = _read_text(str(stored / "etc/.clean"))
    return _classified(plan, ignore, scanned, etc_clean, "btrfs", outputs, old_root, beyond=beyond)


def _audit_old_root(plan: Plan, device: str | None, name: str, ignore: Sequence[Rule]) -> Report:
    """What the boot that moved the old root `name` ("latest": the newest) away threw away."""
    from blankslate import oldroots

    subvolume = oldroots.old_roots_subvolume(plan)
    with mounts.top_level(oldroots.default_device(plan, device)) as top:
        kept = oldroots.list_roots(top, subvolume)
        chosen = oldroots.pick(kept, name)
        return _stored_root(plan, ignore, chosen.path, old_root=chosen.name)


def audit_old_roots(
    plan: Plan, device: str | None, ignore: Sequence[Rule]
) -> list[tuple[Snapshot, dict[str, int]]]:
    """`roots --audit`: every kept old root, newest first, with the summary (entries by
    status) of what its boot threw away."""
    from blankslate import oldroots

    subvolume = oldroots.old_roots_subvolume(plan)
    with _collector_paused(), mounts.top_level(oldroots.default_device(plan, device)) as top:
        kept = oldroots.list_roots(top, subvolume, with_sizes=True)
        return [(root, _stored_root(plan, ignore, root.path).summary) for root in kept]


def outputs_of(*, report_file: Path | None, metrics_file: Path | None) -> dict[str, str]:
    """The files a run writes, as on / (path -> reason): each run re-creates them, so they
    are not lost."""
    outputs = {}
    if report_file is not None:
        outputs[os.path.abspath(report_file)] = "written by blankslate diff (--report) at every run"
    if metrics_file is not None:
        outputs[os.path.abspath(metrics_file)] = (
            "written by blankslate diff (--metrics) at every run"
        )
    return outputs


def write_started(metrics_file: Path | None, *, now: float) -> None:
    """Before the scan: the textfile says the audit is not complete (yet). An audit that is
    killed (its unit's MemoryMax= or TimeoutStartSec=) leaves it so, for an alert to see."""
    from blankslate import render, safefile

    if metrics_file is not None:
        make = safefile.fixed(0o755, os.geteuid(), os.getegid())
        safefile.write_file(metrics_file, render.render_started_metrics(now), make=make)


class Terminated(BlankslateError):
    """SIGTERM ended the audit before it finished: systemd sends it when the unit's
    TimeoutStartSec= runs out (or the unit is stopped)."""


TERMINATED_MESSAGE = (
    "terminated (SIGTERM: the unit's TimeoutStartSec= ran out, or it was stopped) before the "
    "audit finished"
)


@contextlib.contextmanager
def ending_on_sigterm() -> Iterator[None]:
    """Within: SIGTERM raises Terminated where the audit is, so that what it holds is let go
    on the way out (the top level it mounted is unmounted, a half-written report file is
    removed), the metrics say so (`write_terminated`) and the command fails (exit 2 with
    --fail-on-lost, as every audit that could not finish) instead of dying silently."""
    import signal

    def terminate(_signal: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough: the way out is taken
        raise Terminated(TERMINATED_MESSAGE)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_terminated(metrics_file: Path | None, *, started: float) -> None:
    """The textfile of an audit SIGTERM ended: not complete, and terminated."""
    from blankslate import render, safefile

    if metrics_file is not None:
        make = safefile.fixed(0o755, os.geteuid(), os.getegid())
        safefile.write_file(metrics_file, render.render_terminated_metrics(started), make=make)


def write_outputs(
    report: Report,
    *,
    report_file: Path | None,
    metrics_file: Path | None,
    now: float,
    full: bool = False,
) -> None:
    """The JSON report (0600; collapsed unless `full`, as printed) and the node-exporter
    textfile (0644: the exporter runs as its own user), each replaced atomically (a scrape
    never reads half a file) and never through a symlink planted at its name; a missing
    directory is made 0755, the caller's (root's for the scheduled audit)."""
    from blankslate import render, safefile

    make = safefile.fixed(0o755, os.geteuid(), os.getegid())
    if report_file is not None:
        # It names the files of every user: for root only. Written entry by entry into the
        # fresh file that then replaces the old one: the document is never held whole.
        safefile.write_file(
            report_file,
            lambda out: render.write_json(report, out, full=full),
            mode=0o600,
            make=make,
        )
    if metrics_file is not None:
        safefile.write_file(metrics_file, render.render_metrics(report, now), make=make)


def lost_per_old_root(
    plan: Plan, device: str | None, ignore_file: Path | None, *, host: str | None
) -> tuple[list[Snapshot], dict[str, int]]:
    """`roots --audit`: the kept old roots, newest first, and by root name how many entries
    its boot erased (lost), under the ignore rules of `host` (else the plan's host)."""
    from blankslate import ignore_rules

    rules = ignore_rules.collect(plan.audit.ignore, host or plan.host_name, ignore_file)
    audited = audit_old_roots(plan, device, rules)
    return [root for root, _summary in audited], {
        root.name: summary["lost"] for root, summary in audited
    }
