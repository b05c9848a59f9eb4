"""The `blankslate` typer app: parses arguments, calls one function, prints. No logic here.

`cli.main` runs it, unless `diff` or `seed` can start without it."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer
from typer.core import TyperArgument, TyperCommand, TyperOption

from blankslate import commands, plansource
from blankslate import plan as plan_module
from blankslate.display import printable, quote_path

if TYPE_CHECKING:
    from blankslate.install import InstallOptions, Summary

# Command modules are imported inside their commands: start-up time is part of every run.

app = typer.Typer(
    name="blankslate",
    help="Make a NixOS server impermanent: install, audit and seed a root reset at every boot.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help, as other Unix tools print it (and without loading rich)
)


class HelpFormatter(Protocol):
    """What `Command` writes help with: click's HelpFormatter, which typer does not export."""

    def section(self, name: str) -> AbstractContextManager[None]: ...

    def write_dl(self, rows: Sequence[tuple[str, str]]) -> None: ...


def argument_name(parameter: TyperArgument) -> str:
    return parameter.metavar if parameter.metavar is not None else parameter.name or ""


class Command(TyperCommand):
    """typer's command with help as POSIX tools write it: `USER` and `[PATH]...` in the usage
    line (not `{user}`), no `<str>` after an argument's name.

    Only typer's public names: `ctx` is the context typer documents as `typer.Context` (the
    object is click's, of which typer.Context is the subclass typer exports)."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        pieces = [self.options_metavar] if self.options_metavar else []
        for parameter in self.get_params(ctx):
            if isinstance(parameter, TyperArgument):
                name = argument_name(parameter)
                pieces.append(name if parameter.required else f"[{name}]...")
        return pieces

    def format_options(  # type: ignore[override]
        self, ctx: typer.Context, formatter: HelpFormatter
    ) -> None:
        rows = [
            (argument_name(parameter), parameter.help or "")
            for parameter in self.get_params(ctx)
            if isinstance(parameter, TyperArgument)
        ]
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        options = [
            record
            for parameter in self.get_params(ctx)
            if isinstance(parameter, TyperOption)
            if (record := parameter.get_help_record(ctx)) is not None
        ]
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)


PlanFile = Annotated[
    Path | None,
    typer.Option(
        "--plan", metavar="FILE", help="Plan JSON file.", dir_okay=False, rich_help_panel="Plan"
    ),
]
Host = Annotated[
    str | None,
    typer.Option(
        "--host", metavar="NAME", help="Evaluate nixosConfigurations.NAME.", rich_help_panel="Plan"
    ),
]
Flake = Annotated[
    str,
    typer.Option(
        "--flake", metavar="REF", help="Flake for --host (or REF#NAME).", rich_help_panel="Plan"
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print the mutating commands; change nothing.")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Device = Annotated[
    str | None,
    typer.Option(
        "--device", metavar="DEV", help="Main btrfs device (default: the one backing persistPath)."
    ),
]
# The target system's root, as nixos-install --root; --mountpoint is its old name, hidden and
# still accepted so that scripts written for it go on working.
TargetRoot = Annotated[
    Path | None,
    typer.Option(
        "--root", metavar="DIR", help="The target system's root, mounted here (default: /mnt)."
    ),
]
OldMountpoint = Annotated[
    Path | None, typer.Option("--mountpoint", metavar="DIR", hidden=True, help="Old --root.")
]
HostKeysFrom = Annotated[
    Path | None,
    typer.Option(
        metavar="DIR",
        help="Reuse the SSH host keys in this directory (ssh_host_ed25519_key[.pub], ...).",
        file_okay=False,
    ),
]


def target_root(root: Path | None, mountpoint: Path | None) -> Path:
    """--root, or the deprecated --mountpoint; /mnt without either."""
    if mountpoint is None:
        return root or Path("/mnt")
    if root is not None:
        raise typer.BadParameter("--mountpoint is the old name of --root: give --root only")
    print("warning: --mountpoint is deprecated: use --root", file=sys.stderr)
    return mountpoint


IgnoreFile = Annotated[
    Path | None, typer.Option("--ignore-file", metavar="FILE", help="YAML ignore rules.")
]
NoPasswords = Annotated[bool, typer.Option("--no-passwords", help="Do not ask for passwords.")]
JsonList = Annotated[bool, typer.Option("--json", help="JSON list, newest first.")]
METRICS_HELP = "Also write node-exporter textfile metrics to FILE."
MetricsFile = Annotated[Path | None, typer.Option("--metrics", metavar="FILE", help=METRICS_HELP)]


class TextOrJson(StrEnum):
    text = "text"
    json = "json"


TextOrJsonFormat = Annotated[
    TextOrJson, typer.Option("--format", metavar="[text|json]", help="Output format.")
]


def plan_source(plan_file: Path | None, host: str | None, flake: str) -> plansource.PlanSource:
    """The three plan options as one value; a conflict is a usage error."""
    try:
        return plansource.PlanSource.of(plan_file, host, flake)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def load_plan(plan_file: Path | None, host: str | None, flake: str) -> plan_module.Plan:
    """The plan the three plan options name, without the built-in fallback."""
    return plansource.load(plan_source(plan_file, host, flake), builtin=False)


def confirm(question: str) -> None:
    """Ask a yes/no question; anything but yes aborts."""
    typer.confirm(question, abort=True)


def global_flags_first(argv: list[str]) -> list[str]:
    """`argv` with --debug and --quiet given after the command moved before it, where typer
    reads them; a token that is the value of the option before it stays where it is."""
    from typer.core import TyperGroup, TyperOption

    index = 0
    while index < len(argv) and argv[index] in commands.GLOBAL_FLAGS:
        index += 1
    group = typer.main.get_command(app)
    name = argv[index] if index < len(argv) else None
    command = group.commands.get(name) if isinstance(group, TyperGroup) and name else None
    if command is None:
        return argv
    taking_value = {
        option
        for parameter in command.params
        if isinstance(parameter, TyperOption) and not parameter.is_flag
        for option in parameter.opts
    }
    moved, kept = argv[:index], argv[index : index + 1]
    rest = iter(argv[index + 1 :])
    for token in rest:
        if token == "--":
            kept += [token, *rest]
        elif token in commands.GLOBAL_FLAGS:
            moved.append(token)
        else:
            kept.append(token)
            value = next(rest, None) if token in taking_value else None
            if value is not None:
                kept.append(value)
    return [*moved, *kept]


def print_summary(summary: Summary, headline: str) -> None:
    print(headline)
    for mount in summary.mounts:
        options = printable(",".join(mount.options))
        where, what = quote_path(mount.target), quote_path(mount.source)
        print(f"  {where:<12} {what} ({printable(mount.fstype)} {options})")
    if summary.fingerprints:
        print("SSH host keys (compare on first login):")
        for fingerprint in summary.fingerprints:
            print(f"  {fingerprint}")
    if summary.age_recipients:
        print("age recipients of the host keys (for sops-nix, agenix):")
        for recipient in summary.age_recipients:
            print(f"  {recipient}")
    for step in summary.next_steps:
        print(f"next: {printable(step)}")


def need_target(plan: plan_module.Plan, options: InstallOptions) -> plan_module.Plan:
    """Exactly one of --disk and --image; a usage error otherwise."""
    from blankslate import install as install_module

    if options.disk is not None and options.image is not None:
        raise typer.BadParameter("give either --disk or --image, not both")
    if options.disk is None and options.image is None:
        raise typer.BadParameter(install_module.target_required(plan))
    return plan


def show_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        print(f"blankslate {version('blankslate')}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not echo commands.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Global flags go before or after the command: `blankslate diff --quiet` works too."""
    commands.configure_logging(debug=debug, quiet=quiet)


@app.command("plan", cls=Command)
def plan_command(plan_file: PlanFile = None, host: Host = None, flake: Flake = ".") -> None:
    """Print the validated plan as JSON."""
    plan = plansource.load(plan_source(plan_file, host, flake))
    print(json.dumps(plan.to_json(), indent=2))


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command(cls=Command)
def completion(
    shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script (the Nix package installs it already)."""
    from blankslate import completion as completion_module

    sys.stdout.write(completion_module.script(shell.value))


@app.command(cls=Command)
def install(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    disk: Annotated[
        str | None, typer.Option(metavar="DEV", help="Whole disk to install onto.")
    ] = None,
    image: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Disk image file (sparse).")
    ] = None,
    image_size: Annotated[str, typer.Option(metavar="SIZE", help="Size of a new image.")] = "20G",
    root: TargetRoot = None,
    mountpoint: OldMountpoint = None,
    yes: Yes = False,
    dry_run: DryRun = False,
    wipe: Annotated[
        bool, typer.Option("--wipe", help="Allow a disk that already has data.")
    ] = False,
    no_passwords: NoPasswords = False,
    no_nixos_install: Annotated[
        bool, typer.Option("--no-nixos-install", help="Stop before nixos-install.")
    ] = False,
    host_keys_from: HostKeysFrom = None,
) -> None:
    """Partition, format and lay out a disk, seed /persist, run nixos-install."""
    from blankslate import install as install_module

    options = install_module.InstallOptions(
        disk=disk,
        image=image,
        image_size=image_size,
        root=target_root(root, mountpoint),
        assume_yes=yes,
        dry_run=dry_run,
        wipe=wipe,
        passwords=not no_passwords,
        nixos_install=not no_nixos_install,
        source=plan_source(plan_file, host, flake),
        host_keys_from=host_keys_from,
    )
    plan = need_target(plansource.load(options.source), options)
    summary = install_module.install(plan, options)
    print_summary(summary, "Dry run: nothing was changed." if dry_run else "Installed.")


@app.command(cls=Command)
def mount(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    disk: Annotated[
        str | None, typer.Option(metavar="DEV", help="Disk carrying the layout.")
    ] = None,
    image: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Disk image carrying the layout.")
    ] = None,
    root: TargetRoot = None,
    mountpoint: OldMountpoint = None,
) -> None:
    """Mount an existing layout (rescue, or to continue an install)."""
    from blankslate import install as install_module

    options = install_module.InstallOptions(
        disk=disk, image=image, root=target_root(root, mountpoint)
    )
    plan = need_target(plansource.load(plan_source(plan_file, host, flake)), options)
    summary = install_module.mount_existing(plan, options)
    print_summary(summary, f"Mounted {summary.device} on {options.root}.")


@app.command(cls=Command)
def unmount(root: TargetRoot = None, mountpoint: OldMountpoint = None) -> None:
    """Take down what blankslate mounted there (checked against its record): mounts, swap, image."""
    from blankslate import install as install_module

    root = target_root(root, mountpoint)
    unmounted = install_module.unmount(root)
    print(f"unmounted {len(unmounted)} filesystems below {quote_path(str(root))}")


class HashMethod(StrEnum):
    yescrypt = "yescrypt"
    sha512 = "sha-512"


@app.command(cls=Command)
def passwd(
    user: Annotated[str, typer.Argument(metavar="USER", help="A user of the plan.")],
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    root: Annotated[
        Path,
        typer.Option(metavar="DIR", help="The target system's root: persistPath is under it."),
    ] = Path("/"),
    output: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Write this file instead.")
    ] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read one line from stdin.")] = False,
    method: Annotated[
        HashMethod, typer.Option(metavar="[yescrypt|sha-512]", help="Hash scheme.")
    ] = HashMethod.yescrypt,
) -> None:
    """Write a user's hashed password file."""
    plan = plansource.load(plan_source(plan_file, host, flake))
    from blankslate import passwd as passwd_module

    target = passwd_module.write_password_file(
        plan, user, root=root, output=output, method=method.value, from_stdin=stdin
    )
    print(f"wrote {quote_path(str(target))} ({method.value})")


class Format(StrEnum):
    text = "text"
    json = "json"
    yaml = "yaml"


@app.command(cls=Command)
def diff(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    device: Device = None,
    root: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Walk the target system's root here instead."),
    ] = None,
    old_root: Annotated[
        str | None,
        typer.Option(
            "--old-root",
            metavar="NAME",
            help="Audit this kept old root (a name or 'latest'): what its boot erased.",
        ),
    ] = None,
    format: Annotated[
        Format, typer.Option("--format", metavar="[text|json|yaml]", help="Output format.")
    ] = Format.text,
    full: Annotated[
        bool, typer.Option("--full", help="List every lost entry; no directory collapsed.")
    ] = False,
    all_entries: Annotated[
        bool, typer.Option("--all", help="Also list the persisted, managed and ignored entries.")
    ] = False,
    ignore_file: IgnoreFile = None,
    fail_on_lost: Annotated[
        bool,
        typer.Option(
            "--fail-on-lost", help="Exit 1 when anything is lost, 2 when the audit fails."
        ),
    ] = False,
    report_file: Annotated[
        Path | None,
        typer.Option("--report", metavar="FILE", help="Also write the JSON report to FILE."),
    ] = None,
    metrics_file: MetricsFile = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Echo the commands run (the mount).")
    ] = False,
    suggest: Annotated[
        bool,
        typer.Option(
            "--suggest",
            help="Print what is lost as Nix to paste (--format json: as data), grouped by "
            "service, user and top directory.",
        ),
    ] = False,
) -> None:
    """What lives on / that the next boot will erase (or, with --old-root, what a boot erased)."""
    if suggest:
        _check_suggest(
            format=format,
            others={
                "--full": full,
                "--all": all_entries,
                "--fail-on-lost": fail_on_lost,
                "--report": report_file is not None,
                "--metrics": metrics_file is not None,
            },
        )
    code = commands.diff(
        source=plan_source(plan_file, host, flake),
        device=device,
        root=root,
        format=format.value,
        all_entries=all_entries,
        ignore_file=ignore_file,
        fail_on_lost=fail_on_lost,
        full=full,
        verbose=verbose,
        report_file=report_file,
        metrics_file=metrics_file,
        old_root=old_root,
        suggest=suggest,
    )
    if code:
        raise typer.Exit(code)


def _check_suggest(*, format: Format, others: dict[str, bool]) -> None:
    """The usage errors of `diff --suggest` (the fast start leaves them to typer)."""
    given = [flag for flag, on in others.items() if on]
    if given:
        raise typer.BadParameter(f"--suggest does not go with {given[0]}", param_hint="--suggest")
    if format == Format.yaml:
        raise typer.BadParameter("--suggest prints text (Nix) or json", param_hint="--format")


@app.command(cls=Command)
def ignore(
    pattern: Annotated[
        str, typer.Argument(metavar="PATTERN", help="Exact path, dir/** or a glob.")
    ],
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why it may be erased.")],
    ignore_file: IgnoreFile = None,
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
) -> None:
    """Add an audit ignore rule."""
    from blankslate import ignore_rules

    path = ignore_rules.rule_file(plan_source(plan_file, host, flake), ignore_file)
    added = ignore_rules.add_rule(path, pattern, reason)
    shown = f"{quote_path(pattern)} in {quote_path(str(path))}"
    print(f"{'added' if added else 'already there'}: {shown}")


@app.command(cls=Command)
def seed(
    paths: Annotated[
        list[str] | None,
        typer.Argument(metavar="PATH", help="Only these persisted paths (default: all)."),
    ] = None,
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    root: Annotated[
        Path,
        typer.Option(
            metavar="DIR", help="The target system's root: copy from it into its persistPath."
        ),
    ] = Path("/"),
    dry_run: DryRun = False,
    yes: Yes = False,
    hidden: Annotated[
        bool,
        typer.Option("--hidden", help="Copy what the mounts hide on the root (see diff) instead."),
    ] = False,
    stop_units: Annotated[
        bool,
        typer.Option(
            "--stop-units",
            help="Stop the services that use the paths for the copy, start them again after.",
        ),
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live", help="Copy paths that running services use anyway (torn copy risk)."
        ),
    ] = False,
) -> None:
    """Copy today's data of newly persisted paths into persistPath."""
    if stop_units and live:
        raise typer.BadParameter("give either --stop-units or --live, not both")

    commands.seed(
        paths=tuple(paths or ()),
        source=plan_source(plan_file, host, flake),
        root=root,
        dry_run=dry_run,
        yes=yes,
        confirm=confirm,
        hidden=hidden,
        stop_units=stop_units,
        live=live,
    )


@app.command(cls=Command)
def roots(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    device: Device = None,
    json_output: JsonList = False,
    audit_roots: Annotated[
        bool, typer.Option("--audit", help="Count what each root's boot erased (LOST column).")
    ] = False,
    ignore_file: Annotated[
        Path | None, typer.Option(metavar="FILE", help="YAML ignore rules (for --audit).")
    ] = None,
) -> None:
    """List the kept old roots, newest first (sizes only when btrfs quotas are on)."""
    from blankslate import oldroots, snapshots

    source = plan_source(plan_file, host, flake)
    plan = plansource.load(source, builtin=False)
    lost: dict[str, int] | None = None
    if audit_roots:
        from blankslate import audit

        kept, lost = audit.lost_per_old_root(plan, device, ignore_file, host=source.host)
    else:
        kept = oldroots.roots(plan, device)
    if json_output:
        print(json.dumps([oldroots.root_json(root, lost) for root in kept], indent=2))
    elif kept:
        print(snapshots.format_table(kept, lost=lost))
        line = oldroots.retention(plan, len(kept))
        if line:
            print(line)
    else:
        print("no old roots kept")


@app.command(cls=Command)
def doctor(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    root: Annotated[
        Path,
        typer.Option(
            metavar="DIR", help="The target system's root, installed, not booted (fewer checks)."
        ),
    ] = Path("/"),
    only: Annotated[
        list[str] | None,
        typer.Option("--only", metavar="CHECK,...", help="Only these checks (comma-separated)."),
    ] = None,
    format: TextOrJsonFormat = TextOrJson.text,
) -> None:
    """Check the system: persistPath, password files, host keys, the blank, space, /etc."""
    from blankslate import doctor as doctor_module

    checks = doctor_module.parse_only(only or [])
    plan = load_plan(plan_file, host, flake)
    results = doctor_module.run(plan, root, checks)
    if format == TextOrJson.json:
        print(json.dumps(doctor_module.render_json(plan, root, results), indent=2))
    else:
        print(doctor_module.render_text(results), end="")
    if doctor_module.failed(results):
        raise typer.Exit(1)


@app.command(cls=Command)
def attest(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    root: Annotated[
        Path,
        typer.Option(metavar="DIR", help="Check the tree at DIR instead of / (the records stay)."),
    ] = Path("/"),
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            "--metrics",
            metavar="FILE",
            help=METRICS_HELP,
        ),
    ] = None,
    users_script: Annotated[
        bool,
        typer.Option(
            "--users-script/--no-users-script",
            help="Whether a `users` activation script ran (not with systemd-sysusers, Userborn).",
        ),
    ] = True,
    format: TextOrJsonFormat = TextOrJson.text,
) -> None:
    """Check this boot: the reset happened, persisted paths are bound, / is root's 0755."""
    import os
    import time

    from blankslate import attest as attest_module

    plan = load_plan(plan_file, host, flake)
    report = attest_module.run(plan, root, attest_module.record_dir(), nixos_bound=users_script)
    # The results first: a metrics file that cannot be written must not hide them.
    if format == TextOrJson.json:
        print(json.dumps(attest_module.render_json(plan, root, report), indent=2))
    else:
        journal = bool(os.environ.get("JOURNAL_STREAM"))
        print(attest_module.render_text(report, journal=journal), end="", flush=True)
    if metrics_file is not None:
        attest_module.write_metrics(report, metrics_file, time.time())
    if not report.ok:
        raise typer.Exit(1)


@app.command(cls=Command)
def recover(
    path: Annotated[
        str,
        typer.Argument(metavar="PATH", help="Absolute path as it was on / (or in persistPath)."),
    ],
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    from_root: Annotated[
        str | None, typer.Option("--from", metavar="NAME", help="Old root name.")
    ] = None,
    from_persist: Annotated[
        str | None,
        typer.Option(
            "--from-persist",
            metavar="NAME",
            help="Persist snapshot name (or 'latest') to copy from.",
        ),
    ] = None,
    to: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Copy into this directory.")
    ] = None,
    device: Device = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="With --from-persist: say what would be copied; copy nothing."
        ),
    ] = False,
) -> None:
    """Copy a path back out of a kept old root or persist snapshot (never overwrites)."""
    from blankslate import persist

    plan = load_plan(plan_file, host, flake)
    if from_persist is not None and from_root is not None:
        raise typer.BadParameter("give either --from or --from-persist, not both")
    if dry_run and from_persist is None:
        raise typer.BadParameter("--dry-run goes with --from-persist")
    done = persist.recover(
        plan,
        path,
        from_root=from_root,
        from_persist=from_persist,
        to=to,
        device=device,
        dry_run=dry_run,
    )
    verb = "would recover" if dry_run else "recovered"
    print(
        f"{verb} {quote_path(done.path)} from {done.kind} {quote_path(done.source)} "
        f"into {quote_path(str(done.target))}"
    )


persist_app = typer.Typer(
    help="What persistPath holds: strays, sizes, and its snapshots (list, send off-site).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(persist_app, name="persist")


@persist_app.command("list", cls=Command)
def persist_list(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    device: Device = None,
    json_output: JsonList = False,
) -> None:
    """List the persist snapshots, newest first."""
    from blankslate import persist, snapshots

    plan = load_plan(plan_file, host, flake)
    with persist.snapshots(plan, device) as found:
        if json_output:
            print(json.dumps([{"name": s.name, "time": s.to_json()["time"]} for s in found]))
        elif found:
            print(snapshots.format_table(found))
        else:
            print("no persist snapshots yet")
        warning = persist.nested_warning(plan)
        if warning is not None:
            print(printable(warning), file=sys.stderr)


TargetSystemRoot = Annotated[
    Path,
    typer.Option(metavar="DIR", help="The target system's root (default: this system's /)."),
]


@persist_app.command("stray", cls=Command)
def persist_stray(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    root: TargetSystemRoot = Path("/"),
    format: TextOrJsonFormat = TextOrJson.text,
    fail_on_stray: Annotated[
        bool, typer.Option("--fail-on-stray", help="Exit 1 when there are strays.")
    ] = False,
    metrics_file: MetricsFile = None,
    move_to: Annotated[
        Path | None,
        typer.Option(
            "--move-to",
            metavar="DIR",
            help="Move the strays into DIR/strays-<time>/ (same filesystem; nothing deleted).",
        ),
    ] = None,
    restore: Annotated[
        Path | None,
        typer.Option(
            "--restore", metavar="DIR", help="Move back what --move-to put in DIR/strays-<time>."
        ),
    ] = None,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """What the persistence roots hold that no declaration covers, with size and last change."""

    code = commands.persist_stray(
        source=plan_source(plan_file, host, flake),
        root=root,
        format=format.value,
        fail_on_stray=fail_on_stray,
        metrics_file=metrics_file,
        move=commands.StrayMove(
            move_to=move_to, restore=restore, dry_run=dry_run, yes=yes, confirm=confirm
        ),
    )
    if code:
        raise typer.Exit(code)


@persist_app.command("du", cls=Command)
def persist_du(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    root: TargetSystemRoot = Path("/"),
    format: TextOrJsonFormat = TextOrJson.text,
) -> None:
    """Bytes per declared path and per persistence root, largest first."""
    commands.persist_du(source=plan_source(plan_file, host, flake), root=root, format=format.value)


@persist_app.command("send", cls=Command)
def persist_send(
    to: Annotated[
        Path, typer.Option("--to", metavar="FILE", help="New file to write the stream to.")
    ],
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Only what changed since the snapshot before it.")
    ] = False,
    parent: Annotated[
        str | None,
        typer.Option(
            "--parent",
            metavar="NAME",
            help="Only what changed since snapshot NAME (the last one the other side received).",
        ),
    ] = None,
    snapshot: Annotated[
        str, typer.Option(metavar="NAME", help="Snapshot name, or 'latest'.")
    ] = "latest",
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    device: Device = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the command; write nothing.")
    ] = False,
) -> None:
    """Write a persist snapshot as a `btrfs send` (ZFS: `zfs send`) stream to a new file."""
    from blankslate import persist

    plan = load_plan(plan_file, host, flake)
    sent = persist.send(
        plan,
        to,
        incremental=incremental,
        name=snapshot,
        parent_name=parent,
        device=device,
        dry_run=dry_run,
    )
    if dry_run:
        return
    against = f" (changes since {sent.parent})" if sent.parent else ""
    print(
        f"sent persist snapshot {quote_path(sent.snapshot)}{printable(against)} "
        f"to {quote_path(str(sent.target))}"
    )


@app.command("new-host", cls=Command)
def new_host(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The new host's name.")],
    flake: Annotated[
        Path, typer.Option("--flake", metavar="DIR", help="The flake checkout to add it to.")
    ] = Path("."),
    key: Annotated[
        list[str] | None,
        typer.Option("--key", metavar="KEY", help="The admin's SSH public key (repeatable)."),
    ] = None,
    key_file: Annotated[
        list[Path] | None,
        typer.Option("--key-file", metavar="FILE", help="A file of public keys (e.g. *.pub)."),
    ] = None,
    disk: Annotated[
        str | None,
        typer.Option(metavar="DEV", help="The disk to install on (/dev/disk/by-id/... is best)."),
    ] = None,
    boot: Annotated[
        str | None,
        typer.Option(metavar="uefi|bios|hybrid", help="Boot mode (default: this machine's)."),
    ] = None,
    rollback: Annotated[
        str | None, typer.Option(metavar="btrfs|zfs|tmpfs|none", help="How / is reset.")
    ] = None,
    time_zone: Annotated[
        str | None, typer.Option("--time-zone", metavar="ZONE", help="e.g. Europe/Prague.")
    ] = None,
) -> None:
    """Make hosts/NAME/ from the example host of its rollback kind, and git add it."""

    def ask(question: str, default: str | None) -> str:
        answer: str = typer.prompt(question, default=default)
        return answer.strip()

    commands.new_host(
        name=name,
        flake=flake,
        keys=tuple(key or ()),
        key_files=tuple(key_file or ()),
        rollback=rollback,
        disk=disk,
        boot=boot,
        time_zone=time_zone,
        ask=ask if sys.stdin.isatty() else None,
    )


@app.command(cls=Command)
def pin(
    output: Annotated[Path, typer.Option(metavar="FILE", help="Nix file of pins to write.")] = Path(
        "pins.nix"
    ),
    impermanence_rev: Annotated[
        str | None, typer.Option(metavar="REV", help="Impermanence revision.")
    ] = None,
    source_url: Annotated[
        str | None, typer.Option(metavar="URL", help="This project's repository URL.")
    ] = None,
    source_rev: Annotated[
        str | None, typer.Option(metavar="REV", help="This project's revision.")
    ] = None,
) -> None:
    """Pin impermanence (and blankslate) for a configuration.nix without flakes."""
    from blankslate import pin as pin_module

    if (source_url is None) != (source_rev is None):
        raise typer.BadParameter("give --source-url and --source-rev together, or neither")
    pins = pin_module.pin(output, impermanence_rev, source_url, source_rev)
    for written in pins:
        print(f"pinned {written.name}: {written.url}")
    print(f"wrote {quote_path(str(output))}")


@app.command("disko", cls=Command)
def disko_command(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    disk: Annotated[
        str | None, typer.Option(metavar="DEV", help="Disk to partition (else the plan's).")
    ] = None,
) -> None:
    """Print the plan's layout as disko's `disko.devices` (a Nix expression)."""
    from blankslate import disko
    from blankslate.disk import check_device_name

    if disk is not None:
        check_device_name("--disk", disk)
    sys.stdout.write(disko.expression(load_plan(plan_file, host, flake), disk))


@app.command("extra-files", cls=Command)
def extra_files(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="New or empty directory to fill.")
    ],
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    host_keys_from: HostKeysFrom = None,
    no_passwords: NoPasswords = False,
    dry_run: DryRun = False,
) -> None:
    """Write the host keys and password files for `nixos-anywhere --extra-files DIR`."""
    from blankslate import extrafiles, hostkeys

    plan = load_plan(plan_file, host, flake)
    made = extrafiles.extra_files(
        plan, directory, host_keys_from=host_keys_from, passwords=not no_passwords, dry_run=dry_run
    )
    verb = "would write" if dry_run else "wrote"
    for path in made.files:
        print(f"{verb} {quote_path(str(path))}")
    print("SSH host keys (compare on first login):")
    for line in hostkeys.describe(made.keys, made.fingerprints):
        print(f"  {line}")
    for name, output in made.without_password:
        command = f"blankslate passwd {name} --output {output}"
        print(f"no password file for {name}: `{printable(command)}`")
    if dry_run:
        print("Dry run: nothing was written.")
