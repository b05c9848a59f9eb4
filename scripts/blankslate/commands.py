"""The bodies of `diff` and `seed`, without typer: both the typer app and the fast start call them.

Like the rest of the command line they only call one function and print.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from blankslate.display import printable, quote_path
from blankslate.errors import BlankslateError
from blankslate.paths import inside
from blankslate.plan import Plan
from blankslate.plansource import PlanSource

# Flags of the whole program, accepted before or after the command.
GLOBAL_FLAGS = {"--debug": "debug", "--quiet": "quiet", "-q": "quiet"}


class _Printable(logging.Formatter):
    """Log lines as the terminal should get them: whatever a name in a message holds is
    escaped (`display.printable`); a traceback under --debug keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def configure_logging(*, debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_Printable("%(message)s"))


def diff(
    *,
    source: PlanSource,
    device: str | None,
    root: Path | None,
    format: str,
    all_entries: bool,
    ignore_file: Path | None,
    fail_on_lost: bool,
    full: bool = False,
    verbose: bool = False,
    report_file: Path | None = None,
    metrics_file: Path | None = None,
    old_root: str | None = None,
    suggest: bool = False,
) -> int:
    """Prints the report, writes the report and metrics files when asked; returns the exit
    code (1 for something lost with `fail_on_lost`; a failure raises). `suggest`: prints what
    is lost as Nix to paste, or as JSON, instead (the options it does not go with are refused
    before, as usage errors)."""
    import os
    import time

    from blankslate import audit, ignore_rules, plansource, process, render

    if suggest:
        return _suggest(source, device, root, old_root, ignore_file, format, verbose)
    plan = plansource.load(source, builtin=False)
    rules = ignore_rules.collect(plan.audit.ignore, source.host or plan.host_name, ignore_file)
    outputs = audit.outputs_of(report_file=report_file, metrics_file=metrics_file)
    # The temporary mount of the top level is not news, unless asked for (or under --debug,
    # which configure_logging set).
    level = process.echo.level
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    process.echo.setLevel(logging.INFO if verbose or debug else logging.WARNING)
    started = time.time()
    audit.write_started(metrics_file, now=started)
    outputs_written = False
    try:
        with audit.ending_on_sigterm():
            try:
                report = audit.run_diff(
                    plan, device=device, root=root, ignore=rules, old_root=old_root,
                    outputs=outputs,
                )  # fmt: skip
            finally:
                process.echo.setLevel(level)
            audit.write_outputs(
                report, report_file=report_file, metrics_file=metrics_file, now=time.time(),
                full=full,
            )  # fmt: skip
            outputs_written = True
            # Each format is written entry by entry: the document is never held whole.
            if format == "json":
                render.write_json(report, sys.stdout, full=full)
            elif format == "yaml":
                render.write_yaml(report, sys.stdout, full=full)
            else:
                wanted = render.colour_wanted(sys.stdout, os.environ)
                style = render.COLOURED if wanted else render.PLAIN
                render.write_text(
                    report, sys.stdout, full=full, all_entries=all_entries, style=style
                )
    except audit.Terminated:
        if not outputs_written:  # say so where monitoring looks, then fail
            audit.write_terminated(metrics_file, started=started)
        raise
    return LOST if fail_on_lost and report.lost else 0


def _suggest(
    source: PlanSource,
    device: str | None,
    root: Path | None,
    old_root: str | None,
    ignore_file: Path | None,
    format: str,
    verbose: bool,
) -> int:
    import json

    from blankslate import suggest

    found = suggest.from_source(
        source, device=device, root=root, old_root=old_root, ignore_file=ignore_file,
        verbose=verbose,
    )  # fmt: skip
    if format == "json":
        print(json.dumps(suggest.to_json(found), indent=2))
    else:
        sys.stdout.write(suggest.render_nix(found))
    return 0


# `diff --fail-on-lost`: 1 when something would be lost; 2 when the audit itself failed (an
# error, or a usage error as everywhere), so that monitoring tells the two apart.
LOST = 1
AUDIT_FAILED = 2


def seed(
    *,
    paths: tuple[str, ...],
    source: PlanSource,
    root: Path,
    dry_run: bool,
    yes: bool,
    confirm: Callable[[str], None],
    hidden: bool = False,
    stop_units: bool = False,
    live: bool = False,
) -> None:
    """`confirm` asks the question and aborts on no; it is not called with --yes or --dry-run.
    `root` is the target system's root (as nixos-install --root): the live tree is read there
    and the copies go into persistPath under it. `hidden`: copy what the mounts hide there
    instead (`hidden_seed`). A path a running service uses is refused, unless `stop_units`
    (stopped for the copy, started again) or `live` (copied while in use)."""
    from blankslate import plansource, services
    from blankslate import seed as seed_module

    plan = plansource.load(source, builtin=False)
    if hidden:
        _seed_hidden(plan, paths=paths, root=root, dry_run=dry_run, yes=yes, confirm=confirm)
        return
    items = seed_module.plan_seed(plan, root=root, selection=paths)
    for line in seed_module.describe(items):
        print(line)
    copies = [item for item in items if item.action in ("copy", "fill")]
    persist = inside(root, plan.persist_path)
    users = seed_module.live_users(copies, root)
    units = seed_module.units_to_stop(users, stop_units=stop_units, live=live)
    if copies and not dry_run and not yes:
        stopping = f" (stopping {', '.join(units)} meanwhile)" if units else ""
        confirm(f"Copy {len(copies)} paths into {quote_path(str(persist))}{stopping}?")
    with services.stopped(units, dry_run=dry_run):
        if not dry_run:
            seed_module.check_stopped(copies, root, units)
        done = seed_module.apply(items, live_root=root, dry_run=dry_run)
    if dry_run:
        print("Dry run: nothing was changed.")
    else:
        print(f"copied {len(done)} paths into {quote_path(str(persist))}")
    if done:
        print(seed_module.next_step(plan))
    if any(item.needs_attention for item in items):
        raise BlankslateError("some paths were skipped (conflict or problem above); see each line")


@dataclass(frozen=True)
class StrayMove:
    """`persist stray --move-to DIR` or `--restore DIR`, and how to confirm it."""

    move_to: Path | None
    restore: Path | None
    dry_run: bool
    yes: bool
    confirm: Callable[[str], None]


def persist_stray(
    *,
    source: PlanSource,
    root: Path,
    format: str,
    fail_on_stray: bool,
    metrics_file: Path | None,
    move: StrayMove,
) -> int:
    """Lists the strays (or moves them away, or back); returns the exit status: 1 with
    --fail-on-stray when there are strays, else 0."""
    import json

    from blankslate import plansource, safefile, stray
    from blankslate.display import format_size

    plan = plansource.load(source, builtin=False)
    if move.move_to is not None or move.restore is not None:
        return _move_strays(plan, root, move)
    found = stray.strays(plan, target_root=root)
    if format == "json":
        print(json.dumps([stray.entry_json(entry) for entry in found], indent=1))
    elif found:
        total = format_size(sum(entry.usage.bytes for entry in found))
        heading = f"{len(found)} strays ({total}): in a persistence root, declared by nothing"
        print("\n".join(stray.render_table(found, heading)))
    else:
        print("no strays: everything in the persistence roots is declared")
    if metrics_file is not None:
        safefile.write_file(metrics_file, stray.render_metrics(found))
    return 1 if fail_on_stray and found else 0


def _move_strays(plan: Plan, root: Path, request: StrayMove) -> int:
    from blankslate import stray

    move_to, restore = request.move_to, request.restore
    if move_to is not None and restore is not None:
        raise BlankslateError("give either --move-to or --restore, not both")

    def moves(*, dry_run: bool) -> list[stray.Move]:
        if move_to is not None:
            return stray.move_strays(plan, move_to, target_root=root, dry_run=dry_run)
        assert restore is not None
        return stray.restore(plan, restore, target_root=root, dry_run=dry_run)

    planned = moves(dry_run=True)
    for move in planned:
        print(f"move  {quote_path(move.source)} -> {quote_path(move.target)}")
    if not planned:
        print("nothing to move")
        return 0
    if request.dry_run:
        print("Dry run: nothing was moved.")
        return 0
    if not request.yes:
        request.confirm(f"Move {len(planned)} entries?")
    done = moves(dry_run=False)
    for move in done:
        if move.problem is not None:
            print(f"kept  {quote_path(move.source)}: {printable(move.problem)}")
    moved = [move for move in done if move.done]
    print(f"moved {len(moved)} of {len(done)} entries")
    if len(moved) != len(done):
        raise BlankslateError("some entries were not moved (see each line); nothing was lost")
    return 0


def persist_du(*, source: PlanSource, root: Path, format: str) -> None:
    """Bytes per declared path and per persistence root, largest first."""
    import json

    from blankslate import plansource, stray

    plan = plansource.load(source, builtin=False)
    declared, roots = stray.disk_usage(plan, target_root=root)
    if format == "json":
        document = {
            "roots": [stray.entry_json(entry) for entry in roots],
            "paths": [stray.entry_json(entry) for entry in declared],
        }
        print(json.dumps(document, indent=1))
        return
    print("\n".join(stray.render_table(roots, "persistence roots:")))
    print("\n".join(stray.render_table(declared, "declared paths:")))


def new_host(
    *,
    name: str,
    flake: Path,
    keys: tuple[str, ...],
    key_files: tuple[Path, ...],
    rollback: str | None,
    disk: str | None,
    boot: str | None,
    time_zone: str | None,
    ask: Callable[[str, str | None], str] | None,
) -> None:
    """`ask(question, default)` prompts on a terminal; None (no terminal) makes a missing
    choice an error that names its flag."""
    from blankslate import newhost

    def need(flag: str, question: str, default: str | None = None) -> str:
        if ask is None:
            raise BlankslateError(f"no terminal to ask on: give {flag}")
        return ask(question, default)

    newhost.check_name(name)
    if not keys and not key_files:
        keys = (need("--key KEY or --key-file FILE", "The admin's SSH public key (one line)"),)
    found = [newhost.check_key(key) for key in keys]
    for path in key_files:
        found += newhost.keys_from_file(path)
    kind = newhost.parse_rollback(
        rollback or need("--rollback btrfs|zfs|tmpfs|none", "Rollback", "btrfs")
    )
    chosen_disk = None
    if kind != "none":
        if disk is None:
            candidates = newhost.disk_candidates()
            shown = "".join(f"\n  {candidate}" for candidate in candidates)
            disk = need("--disk DEV", f"The disk to install on (erased at install){shown}\nDisk")
        chosen_disk = newhost.check_disk(disk)
    boot_mode = newhost.parse_boot(boot) if boot is not None else newhost.detect_boot()
    if time_zone is None and ask is not None:
        time_zone = ask("Time zone (IANA, empty for UTC)", "") or None
    zone = None if time_zone is None else newhost.check_time_zone(time_zone)
    choices = newhost.HostChoices(
        name=name,
        keys=tuple(found),
        rollback=kind,
        disk=chosen_disk,
        boot=boot_mode,
        time_zone=zone,
    )
    written = newhost.new_host(flake, choices)
    print(f"wrote {quote_path(str(written))}")
    for line in newhost.next_steps(choices):
        print(line)


def _seed_hidden(
    plan: Plan,
    *,
    paths: tuple[str, ...],
    root: Path,
    dry_run: bool,
    yes: bool,
    confirm: Callable[[str], None],
) -> None:
    """`seed --hidden`: list, ask, then look again and copy (the listing is not trusted)."""
    from blankslate import hidden_seed

    items = hidden_seed.inspect(plan, root=root, selection=paths)
    for line in hidden_seed.describe(items):
        print(line)
    copies = [item for item in items if item.action == "copy"]
    if not items:
        print(f"nothing hidden beneath the mounts of {quote_path(str(root))}")
    if copies and not dry_run:
        if not yes:
            confirm(f"Copy {len(copies)} hidden entries into the roots that keep them?")
        items = hidden_seed.apply(plan, root=root, selection=paths)
        copies = [item for item in items if item.action == "copy"]
        print(f"copied {len(copies)} hidden entries")
    if dry_run:
        print("Dry run: nothing was changed.")
    if any(item.needs_attention for item in items):
        raise BlankslateError(
            "some hidden entries were not copied (conflict or problem above); see each line"
        )
