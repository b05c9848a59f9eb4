"""The `blankslate` typer app: parses arguments, calls one function, prints. No logic here.

`cli.main` runs it, unless `diff` or `seed` can start without it."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from blankslate import commands, process
from blankslate import plan as plan_module

if TYPE_CHECKING:
    from blankslate.install import InstallOptions, Summary

# Command modules are imported inside their commands: start-up time is part of every run.

app = typer.Typer(
    name="blankslate",
    help="Make a NixOS server impermanent: install, audit and seed a root reset at every boot.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


PlanFile = Annotated[
    Path | None,
    typer.Option("--plan", help="Plan v1 JSON file.", dir_okay=False, rich_help_panel="Plan"),
]
Host = Annotated[
    str | None,
    typer.Option("--host", help="Evaluate nixosConfigurations.HOST.", rich_help_panel="Plan"),
]
Flake = Annotated[
    str, typer.Option("--flake", help="Flake reference for --host.", rich_help_panel="Plan")
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print the mutating commands; change nothing.")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Device = Annotated[
    str | None, typer.Option("--device", help="Main btrfs device (default: backing persistPath).")
]
Mountpoint = Annotated[Path, typer.Option("--mountpoint", help="Where the layout is mounted.")]
HostKeysFrom = Annotated[
    Path | None,
    typer.Option(
        help="Reuse the SSH host keys in this directory (ssh_host_ed25519_key[.pub], ...).",
        file_okay=False,
    ),
]


def plan_source(plan_file: Path | None, host: str | None, flake: str) -> tuple[str | None, str]:
    """(host, flake) with `--flake REF#HOST` split as nixos-rebuild does; usage errors for
    a conflict."""
    try:
        flake, host = plan_module.split_flake(flake, host)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if plan_file is not None and host is not None:
        raise typer.BadParameter("give either --plan or --host, not both")
    return host, flake


def load_plan(
    plan_file: Path | None, host: str | None, flake: str, builtin: bool = True
) -> plan_module.Plan:
    host, flake = plan_source(plan_file, host, flake)
    return plan_module.load(plan_file, host, flake, builtin=builtin)


def print_summary(summary: Summary, headline: str) -> None:
    print(headline)
    for mount in summary.mounts:
        print(f"  {mount.target:<12} {mount.source} ({mount.fstype} {','.join(mount.options)})")
    if summary.fingerprints:
        print("SSH host keys (compare on first login):")
        for fingerprint in summary.fingerprints:
            print(f"  {fingerprint}")
    if summary.age_recipients:
        print("age recipients of the host keys (for sops-nix, agenix):")
        for recipient in summary.age_recipients:
            print(f"  {recipient}")
    for step in summary.next_steps:
        print(f"next: {step}")


def need_target(plan: plan_module.Plan, options: InstallOptions) -> plan_module.Plan:
    """--disk or --image, always; a usage error without either."""
    from blankslate import install as install_module

    if options.disk is None and options.image is None:
        raise typer.BadParameter(install_module.target_required(plan))
    return plan


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not echo commands.")] = False,
) -> None:
    commands.configure_logging(debug=debug, quiet=quiet)


@app.command("plan")
def plan_command(plan_file: PlanFile = None, host: Host = None, flake: Flake = ".") -> None:
    """Print the validated plan as JSON."""
    plan = load_plan(plan_file, host, flake)
    print(json.dumps(plan.to_json(), indent=2))


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command()
def completion(shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print the shell completion script (the Nix package installs it already)."""
    from blankslate import completion as completion_module

    sys.stdout.write(completion_module.script(shell.value))


@app.command()
def install(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    disk: Annotated[str | None, typer.Option(help="Whole disk to install onto.")] = None,
    image: Annotated[Path | None, typer.Option(help="Disk image file (sparse).")] = None,
    image_size: Annotated[str, typer.Option(help="Size of a new image.")] = "20G",
    mountpoint: Mountpoint = Path("/mnt"),
    yes: Yes = False,
    dry_run: DryRun = False,
    wipe: Annotated[bool, typer.Option(help="Allow a disk that already has data.")] = False,
    no_passwords: Annotated[bool, typer.Option(help="Do not ask for passwords.")] = False,
    no_nixos_install: Annotated[bool, typer.Option(help="Stop before nixos-install.")] = False,
    host_keys_from: HostKeysFrom = None,
) -> None:
    """Partition, format and lay out a disk, seed /persist, run nixos-install."""
    from blankslate import install as install_module

    process.settings.dry_run = dry_run
    host, flake = plan_source(plan_file, host, flake)
    options = install_module.InstallOptions(
        disk=disk,
        image=image,
        image_size=image_size,
        mountpoint=mountpoint,
        assume_yes=yes,
        wipe=wipe,
        passwords=not no_passwords,
        nixos_install=not no_nixos_install,
        host=host,
        flake=flake,
        host_keys_from=host_keys_from,
    )
    summary = install_module.install(
        need_target(load_plan(plan_file, host, flake), options), options
    )
    print_summary(summary, "Dry run: nothing was changed." if dry_run else "Installed.")


@app.command()
def mount(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    disk: Annotated[str | None, typer.Option(help="Disk carrying the layout.")] = None,
    image: Annotated[Path | None, typer.Option(help="Disk image carrying the layout.")] = None,
    mountpoint: Mountpoint = Path("/mnt"),
) -> None:
    """Mount an existing layout (rescue, or to continue an install)."""
    from blankslate import install as install_module

    options = install_module.InstallOptions(disk=disk, image=image, mountpoint=mountpoint)
    plan = need_target(load_plan(plan_file, host, flake), options)
    summary = install_module.mount_existing(plan, options)
    print_summary(summary, f"Mounted {summary.device} on {mountpoint}.")


@app.command()
def unmount(mountpoint: Mountpoint = Path("/mnt")) -> None:
    """Take down what blankslate mounted there (checked against its record): mounts, swap, image."""
    from blankslate import install as install_module

    unmounted = install_module.unmount(mountpoint)
    print(f"unmounted {len(unmounted)} filesystems below {mountpoint}")


class HashMethod(StrEnum):
    yescrypt = "yescrypt"
    sha512 = "sha-512"


@app.command()
def passwd(
    user: Annotated[str, typer.Argument(help="A user of the plan.")],
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    root: Annotated[Path, typer.Option(help="Prefix for the password file.")] = Path("/"),
    output: Annotated[Path | None, typer.Option(help="Write here instead.")] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read one line from stdin.")] = False,
    method: Annotated[HashMethod, typer.Option(help="Hash scheme.")] = HashMethod.yescrypt,
) -> None:
    """Write a user's hashed password file."""
    plan = load_plan(plan_file, host, flake)
    from blankslate import passwd as passwd_module

    target = passwd_module.target_path(plan, user, root, output)
    below = None if output is not None else passwd_module.persist_under(plan, root, target)
    passwd_module.set_password(
        plan, user, target, method=method.value, from_stdin=stdin, below=below
    )
    print(f"wrote {target} ({method.value})")


class Format(StrEnum):
    text = "text"
    json = "json"
    yaml = "yaml"


@app.command()
def diff(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    device: Device = None,
    root: Annotated[Path | None, typer.Option(help="Walk this tree (tmpfs/none).")] = None,
    old_root: Annotated[
        str | None,
        typer.Option(
            "--old-root",
            help="Audit this kept old root (a name or 'latest'): what its boot erased.",
        ),
    ] = None,
    format: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.text,
    full: Annotated[
        bool, typer.Option("--full", help="List every lost entry; no directory collapsed.")
    ] = False,
    all_entries: Annotated[
        bool, typer.Option("--all", help="Also list the persisted, managed and ignored entries.")
    ] = False,
    ignore_file: Annotated[Path | None, typer.Option(help="YAML ignore rules.")] = None,
    fail_on_lost: Annotated[
        bool, typer.Option(help="Exit 1 when anything is lost, 2 when the audit fails.")
    ] = False,
    report_file: Annotated[
        Path | None, typer.Option("--report", help="Also write the JSON report to FILE.")
    ] = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option("--metrics", help="Also write node-exporter textfile metrics to FILE."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Echo the commands run (the mount).")
    ] = False,
) -> None:
    """What lives on / that the next boot will erase (or, with --old-root, what a boot erased)."""
    host, flake = plan_source(plan_file, host, flake)
    code = commands.diff(
        plan_file=plan_file,
        host=host,
        flake=flake,
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
    )
    if code:
        raise typer.Exit(code)


@app.command()
def ignore(
    pattern: Annotated[str, typer.Argument(help="Exact path, dir/** or a glob.")],
    reason: Annotated[str, typer.Option(help="Why it may be erased.")],
    ignore_file: Annotated[Path | None, typer.Option(help="YAML ignore rules.")] = None,
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
) -> None:
    """Add an audit ignore rule."""
    from blankslate import ignore_rules

    host, flake = plan_source(plan_file, host, flake)
    if ignore_file is None and host is None:
        host = load_plan(plan_file, host, flake).host_name
    path = ignore_rules.target_file(host or "", ignore_file)
    added = ignore_rules.add_rule(path, pattern, reason)
    print(f"{'added' if added else 'already there'}: {pattern} in {path}")


@app.command()
def seed(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Only these persisted paths (default: all).")
    ] = None,
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    root: Annotated[Path, typer.Option(help="The live tree to copy from.")] = Path("/"),
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Copy today's data of newly persisted paths into persistPath."""
    host, flake = plan_source(plan_file, host, flake)

    def confirm(question: str) -> None:
        typer.confirm(question, abort=True)

    commands.seed(
        paths=tuple(paths or ()),
        plan_file=plan_file,
        host=host,
        flake=flake,
        root=root,
        dry_run=dry_run,
        yes=yes,
        confirm=confirm,
    )


@app.command()
def roots(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    device: Device = None,
    json_output: Annotated[bool, typer.Option("--json", help="JSON list, newest first.")] = False,
    audit_roots: Annotated[
        bool, typer.Option("--audit", help="Count what each root's boot erased (LOST column).")
    ] = False,
    ignore_file: Annotated[
        Path | None, typer.Option(help="YAML ignore rules (for --audit).")
    ] = None,
) -> None:
    """List the kept old roots, newest first (sizes only when btrfs quotas are on)."""
    from blankslate import oldroots

    host, flake = plan_source(plan_file, host, flake)
    plan = load_plan(plan_file, host, flake, builtin=False)
    lost: dict[str, int] | None = None
    if audit_roots:
        from blankslate import audit, ignore_rules

        rules = ignore_rules.collect(plan.audit.ignore, host or plan.host_name, ignore_file)
        audited = audit.audit_old_roots(plan, device, rules)
        kept = [root for root, _summary in audited]
        lost = {root.name: summary["lost"] for root, summary in audited}
    else:
        kept = oldroots.roots(plan, device)
    if json_output:
        print(json.dumps([oldroots.root_json(root, lost) for root in kept], indent=2))
    elif kept:
        print(oldroots.format_table(kept, lost=lost))
    else:
        print("no old roots kept")


class DoctorFormat(StrEnum):
    text = "text"
    json = "json"


@app.command()
def doctor(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    root: Annotated[
        Path, typer.Option(help="An installed system mounted here (skips the boot checks).")
    ] = Path("/"),
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Only these checks (comma-separated).")
    ] = None,
    format: Annotated[
        DoctorFormat, typer.Option("--format", help="Output format.")
    ] = DoctorFormat.text,
) -> None:
    """Check the system: persistPath, password files, host keys, the blank, space, /etc."""
    from blankslate import doctor as doctor_module

    checks = doctor_module.parse_only(only or [])
    plan = load_plan(plan_file, host, flake)
    results = doctor_module.run(plan, root, checks)
    if format == DoctorFormat.json:
        print(json.dumps(doctor_module.render_json(plan, root, results), indent=2))
    else:
        print(doctor_module.render_text(results), end="")
    if doctor_module.failed(results):
        raise typer.Exit(1)


@app.command()
def recover(
    path: Annotated[str, typer.Argument(help="Absolute path as it was on / (or in persistPath).")],
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    from_root: Annotated[str | None, typer.Option("--from", help="Old root name.")] = None,
    from_persist: Annotated[
        str | None,
        typer.Option("--from-persist", help="Persist snapshot name (or 'latest') to copy from."),
    ] = None,
    to: Annotated[Path | None, typer.Option(help="Copy into this directory.")] = None,
    device: Device = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be copied; copy nothing.")
    ] = False,
) -> None:
    """Copy a path back out of a kept old root or persist snapshot (never overwrites)."""
    from blankslate import oldroots

    plan = load_plan(plan_file, host, flake, builtin=False)
    if from_persist is not None:
        if from_root is not None:
            raise typer.BadParameter("give either --from or --from-persist, not both")
        from blankslate import persist

        copied = persist.recover_from_persist(
            plan, from_persist, path, to=to, device=device, dry_run=dry_run
        )
        verb = "would recover" if dry_run else "recovered"
        print(f"{verb} {copied.path} from persist snapshot {copied.snapshot} into {copied.target}")
        return
    if dry_run:
        raise typer.BadParameter("--dry-run goes with --from-persist")
    done = oldroots.recover(plan, path, from_root=from_root, to=to, device=device)
    print(f"recovered {done.path} from old root {done.root} into {done.target}")


persist_app = typer.Typer(
    help="Snapshots of persistPath (blankslate.persistSnapshots): list, send off-site.",
    no_args_is_help=True,
)
app.add_typer(persist_app, name="persist")


@persist_app.command("list")
def persist_list(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    device: Device = None,
    json_output: Annotated[bool, typer.Option("--json", help="JSON list, newest first.")] = False,
) -> None:
    """List the persist snapshots, newest first."""
    from blankslate import oldroots, persist

    with persist.snapshots(load_plan(plan_file, host, flake, builtin=False), device) as found:
        if json_output:
            print(json.dumps([{"name": s.name, "time": s.to_json()["time"]} for s in found]))
        elif found:
            print(oldroots.format_table(found))
        else:
            print("no persist snapshots yet")


@persist_app.command("send")
def persist_send(
    to: Annotated[Path, typer.Option("--to", help="New file to write the stream to.")],
    incremental: Annotated[
        bool, typer.Option(help="Only what changed since the snapshot before it.")
    ] = False,
    snapshot: Annotated[str, typer.Option(help="Snapshot name, or 'latest'.")] = "latest",
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

    plan = load_plan(plan_file, host, flake, builtin=False)
    sent = persist.send(
        plan, to, incremental=incremental, name=snapshot, device=device, dry_run=dry_run
    )
    if dry_run:
        return
    against = f" (changes since {sent.parent})" if sent.parent else ""
    print(f"sent persist snapshot {sent.snapshot}{against} to {sent.target}")


@app.command()
def pin(
    output: Annotated[Path, typer.Option(help="Nix file of pins to write.")] = Path("pins.nix"),
    impermanence_rev: Annotated[str | None, typer.Option(help="Impermanence revision.")] = None,
    source_url: Annotated[str | None, typer.Option(help="This project's repository URL.")] = None,
    source_rev: Annotated[str | None, typer.Option(help="This project's revision.")] = None,
) -> None:
    """Pin impermanence (and blankslate) for a configuration.nix without flakes."""
    from blankslate import pin as pin_module

    if (source_url is None) != (source_rev is None):
        raise typer.BadParameter("give --source-url and --source-rev together, or neither")
    pins = pin_module.pin(output, impermanence_rev, source_url, source_rev)
    for written in pins:
        print(f"pinned {written.name}: {written.url}")
    print(f"wrote {output}")


@app.command("disko")
def disko_command(
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    disk: Annotated[str | None, typer.Option(help="Disk to partition (else the plan's).")] = None,
) -> None:
    """Print the plan's layout as disko's `disko.devices` (a Nix expression)."""
    from blankslate import disko

    sys.stdout.write(disko.expression(load_plan(plan_file, host, flake), disk))


@app.command("extra-files")
def extra_files(
    directory: Annotated[Path, typer.Argument(help="New or empty directory to fill.")],
    plan_file: PlanFile = None,
    host: Host = None,
    flake: Flake = ".",
    host_keys_from: HostKeysFrom = None,
    no_passwords: Annotated[bool, typer.Option(help="Do not ask for passwords.")] = False,
    dry_run: DryRun = False,
) -> None:
    """Write the host keys and password files for `nixos-anywhere --extra-files DIR`."""
    from blankslate import extrafiles, hostkeys
    from blankslate import install as install_module

    process.settings.dry_run = dry_run
    plan = load_plan(plan_file, host, flake)
    extrafiles.check_directory(directory)
    want_passwords = not no_passwords and bool(plan.users) and not dry_run
    hashes = install_module.ask_passwords(plan) if want_passwords else {}
    made = extrafiles.write(plan, directory, host_keys_from=host_keys_from, hashes=hashes)
    verb = "would write" if dry_run else "wrote"
    for path in made.files:
        print(f"{verb} {path}")
    print("SSH host keys (compare on first login):")
    for line in hostkeys.describe(made.keys, made.fingerprints):
        print(f"  {line}")
    if not hashes:
        for user in plan.users:
            output = directory / user.hashed_password_file.lstrip("/")
            command = f"blankslate passwd {user.name} --output {output}"
            print(f"no password file for {user.name}: `{command}`")
    if dry_run:
        print("Dry run: nothing was written.")
