"""`install`, `mount`, `unmount`: from a blank disk to a layout ready for `nixos-install`.

Everything is checked before the first write (disko's rule: probe, then create); the user types the
device's name to consent; every mutating command goes through process.run, so --dry-run is exact.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from blankslate import (
    disk,
    hostkeys,
    layout,
    lockout,
    mounts,
    nix,
    passwd,
    paths,
    plansource,
    process,
    safefile,
    seed,
    storage,
    ui,
)
from blankslate import plan as plan_module
from blankslate.errors import BlankslateError, require_root
from blankslate.plan import Plan

DRY_RUN_LOOP = "/dev/loopN"


@dataclass(frozen=True)
class Target:
    """Where the layout goes: a whole disk, or a loop device over an image file."""

    device: str
    image: Path | None = None
    attached_here: bool = False
    created: bool = False  # the image file was made by this run

    @property
    def is_image(self) -> bool:
        return self.image is not None


@dataclass(frozen=True)
class InstallOptions:
    disk: str | None = None
    image: Path | None = None
    image_size: str = "20G"
    root: Path = Path("/mnt")  # the target system's root, as nixos-install --root
    assume_yes: bool = False
    dry_run: bool = False
    wipe: bool = False
    passwords: bool = True
    nixos_install: bool = True
    source: plansource.PlanSource = field(default_factory=plansource.PlanSource)
    host_keys_from: Path | None = None  # reuse these host keys instead of making new ones


@dataclass
class Summary:
    device: str
    mounts: list[layout.Mount] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    age_recipients: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


# --- builders -------------------------------------------------------------------------------


def truncate(image: Path, size: str) -> list[str]:
    return ["truncate", "--size", size, str(image)]


def git_toplevel(directory: Path) -> list[str]:
    return ["git", "-C", str(directory), "rev-parse", "--show-toplevel"]


def git_ls_files(directory: Path, relative: str) -> list[str]:
    return ["git", "-C", str(directory), "ls-files", "--", relative]


def git_add_intent(directory: Path, relative: str) -> list[str]:
    """Record the path in the index with empty content (`git add -N`): a git flake sees the
    file as it is in the work tree, and nothing is staged for the next commit."""
    return ["git", "-C", str(directory), "add", "--intent-to-add", "--", relative]


# --- preflight ------------------------------------------------------------------------------


def required_tools(plan: Plan, options: InstallOptions) -> list[str]:
    assert plan.disk is not None
    tools = ["lsblk", "wipefs", "sgdisk", "partprobe", "mkfs.vfat", "mount", "umount", "mkdir"]
    tools += storage.of(plan.storage).tools
    if plan.disk.formatted("swap") is not None:
        tools.append("mkswap")
    if options.image is not None:
        tools += ["losetup", "truncate"]
    if plan.ssh_host_keys:
        tools.append("ssh-keygen")
    if options.passwords and plan.users:
        tools.append("mkpasswd")
    return tools


def minimum_bytes(plan: Plan) -> int:
    assert plan.disk is not None
    fixed = sum(part.size_bytes or 0 for part in plan.disk.partitions)
    return fixed + disk.MIN_MAIN_BYTES


def check_plan(plan: Plan) -> None:
    if plan.disk is None:
        raise BlankslateError(
            f"the plan of host {plan.host_name!r} has no disk section "
            f"(rollback {plan.rollback!r}: the platform owns the disk)"
        )


def grub_on_plan_disk(plan: Plan) -> bool:
    """bios and hybrid plans install GRUB on `disk.device` (boot.loader.grub.device)."""
    return plan.disk is not None and plan.disk.boot in ("bios", "hybrid")


def check_boot_disk(plan: Plan, options: InstallOptions) -> None:
    """nixos-install runs grub-install on the plan's disk.device: with --disk, that must be
    the disk laid out, /dev/disk/by-id links resolved (an --image gets no boot loader here,
    see `installs_bootloader`)."""
    disk_given = options.disk
    if plan.disk is None or not grub_on_plan_disk(plan) or disk_given is None:
        return
    boot, device = plan.disk.boot, plan.disk.device
    if device is None:
        raise BlankslateError(
            f"--disk {disk_given}: the plan has no disk.device, so install cannot check that "
            f"GRUB (disk.boot = {boot!r}) goes to this disk: set blankslate.disk.device to it"
        )
    given, planned = os.path.realpath(disk_given), os.path.realpath(device)
    if given != planned:
        shown = f"{disk_given} ({given})" if given != disk_given else disk_given
        wanted = f"{device} ({planned})" if planned != device else device
        raise BlankslateError(
            f"--disk {shown} is not the plan's disk.device {wanted}, where nixos-install puts "
            f"GRUB (disk.boot = {boot!r}): set blankslate.disk.device to this disk, or give "
            "that one"
        )


def installs_bootloader(plan: Plan, options: InstallOptions) -> bool:
    """False for an image of a bios/hybrid plan: GRUB would go to disk.device of this machine."""
    return not (grub_on_plan_disk(plan) and options.image is not None)


def bootloader_later(plan: Plan, root: Path) -> str:
    """How the target gets its boot loader when nixos-install ran with --no-bootloader: the
    step nixos-install itself skips, run on the target machine from a NixOS installer, with
    the image written to the disk that disk.device names there."""
    assert plan.disk is not None
    device = plan.disk.device or "its disk"
    return (
        f"on the target, with this image written to {device} and mounted on {root} "
        f"(`blankslate mount --disk {device} --root {root}`): `nixos-enter --root "
        f"{root} -c 'NIXOS_INSTALL_BOOTLOADER=1 /nix/var/nix/profiles/system/bin/"
        "switch-to-configuration boot'` installs GRUB (nixos-install's own last step)"
    )


def check_image_path(image: Path, size: str) -> None:
    if not image.parent.is_dir():
        raise BlankslateError(f"--image {image}: directory {image.parent} does not exist")
    if image.exists() and not image.is_file():
        raise BlankslateError(f"--image {image}: not a regular file")
    try:
        plan_module.parse_size(size)
    except ValueError as error:
        raise BlankslateError(f"--image-size: {error}") from None


def check_device(plan: Plan, device: str, *, wipe: bool) -> None:
    """The target is a whole, unused disk that is big enough; data on it needs --wipe.

    Unused: nothing mounted from it, no swap on it, nothing stacked on it (device-mapper, md)
    and nothing holding it exclusively (a multi-device btrfs, a VM) -- a device without any
    signature can still be someone's."""
    found = disk.probe(device)
    if not disk.is_whole_disk(found):
        raise BlankslateError(f"{device} is a {found.type}, not a whole disk (give the disk)")
    in_use = found.in_use
    swaps = set(disk.active_swaps())
    in_use += [f"swap {d.path}" for d in found.walk() if os.path.realpath(d.path) in swaps]
    if not in_use and (held := disk.exclusive_users(found)):
        raise BlankslateError(f"{device} is in use ({', '.join(held)}); stop what holds it first")
    if in_use:
        raise BlankslateError(
            f"{device} is in use ({', '.join(sorted(set(in_use)))}); unmount it first "
            "(`blankslate unmount`)"
        )
    if found.size < minimum_bytes(plan):
        raise too_small(plan, f"{device} is too small: {found.size >> 20} MiB, ")
    found_data = disk.signatures(found)
    if found_data and not wipe:
        raise BlankslateError(
            f"{device} already holds data ({', '.join(dict.fromkeys(found_data))}); "
            "add --wipe to erase it, or run `blankslate mount` to continue an interrupted install"
        )


@contextlib.contextmanager
def probe_loop(image: Path) -> Iterator[str]:
    """The existing image attached read-only for the checks of a dry run, detached after."""
    device = process.output(disk.losetup_attach_readonly(image)).strip()
    try:
        yield device
    finally:
        process.run(disk.losetup_detach(device), check=False, dry_run=False)  # a probe's own


def check_target(plan: Plan, target: Target, *, wipe: bool) -> None:
    """The same checks for a real run and a dry run: a dry run probes an existing image
    through a read-only loop device; a new one only has to be big enough."""
    if target.device != DRY_RUN_LOOP:
        check_device(plan, target.device, wipe=wipe)
    elif target.image is not None and target.image.exists():
        with probe_loop(target.image) as device:
            check_device(plan, device, wipe=wipe)


def check_new_image(plan: Plan, size: str) -> None:
    if plan_module.parse_size(size) < minimum_bytes(plan):
        raise too_small(plan, f"--image-size {size} is too small: ")


def too_small(plan: Plan, what: str) -> BlankslateError:
    """`what` followed by what the plan needs."""
    need = minimum_bytes(plan) >> 20
    return BlankslateError(f"{what}the plan needs {need} MiB (the fixed partitions + 4 GiB)")


def target_required(plan: Plan) -> str:
    """--disk or --image, always: the plan's disk.device is one typo away from the wrong disk."""
    device = plan.disk.device if plan.disk is not None else None
    hint = f" (the plan's disk is {device})" if device else ""
    return f"give --disk DEV or --image FILE{hint}"


def open_target(options: InstallOptions, plan: Plan, *, create: bool) -> Target:
    """Resolve --disk / --image / the plan's device; attach an image as a loop device."""
    if options.disk is not None and options.image is not None:
        raise BlankslateError("give either --disk or --image, not both")
    if options.image is None:
        if options.disk is None:
            raise BlankslateError(target_required(plan))
        return Target(options.disk)
    image = options.image.absolute()
    check_image_path(image, options.image_size)
    if not image.exists():
        if not create:
            raise BlankslateError(f"--image {image}: no such file")
        check_new_image(plan, options.image_size)
        process.run(truncate(image, options.image_size), dry_run=options.dry_run)
        created = not options.dry_run
    elif (loop := disk.attached_loop(image)) is not None:
        return Target(loop, image)
    else:
        created = False
    if options.dry_run:
        return Target(DRY_RUN_LOOP, image, attached_here=True)
    try:
        device = process.run(disk.losetup_attach(image), capture=True, dry_run=False).stdout.strip()
    except BaseException:
        if created:
            image.unlink()
        raise
    target = Target(device, image, attached_here=True, created=created)
    try:
        # --partscan alone is not always seen without udev
        process.run(disk.partprobe(device), dry_run=False)
    except BaseException:
        abandon(target, options.root, written=False, dry_run=False)
        raise
    return target


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C (and SIGTERM) wait until the block is done: a clean-up is not cut in half.
    The commands it runs inherit the blocked mask, so they are not cut either."""
    deferred = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, deferred)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def abandon(
    target: Target, mountpoint: Path, *, written: bool, dry_run: bool, made: str = "install"
) -> str:
    """Undo what a run that did not finish made: its recorded mounts (checked, as `unmount`
    does), its loop device, the image it created. Returns what is left, for the message."""
    if dry_run:
        return ""
    said: list[str] = []
    with signals_deferred():
        try:
            if layout.recorded(mountpoint) is not None:
                unmounted = layout.unmount_all(mountpoint)
                if unmounted:
                    said.append(f"unmounted {len(unmounted)} filesystems below {mountpoint}")
        except BlankslateError as error:
            said.append(f"could not unmount: {error}")
        if target.attached_here and disk.loop_backing_file(target.device) == str(target.image):
            process.run(disk.losetup_detach(target.device), check=False, dry_run=False)
        if target.attached_here and disk.loop_backing_file(target.device) is None:
            said.append(f"detached {target.device}")
        if target.created and target.image is not None:
            if disk.loop_backing_file(target.device) is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(target.image)
                said.append(f"removed {target.image}")
            else:
                said.append(f"{target.image} is left, still attached to {target.device}")
        elif written and made == "install":
            what = target.image or target.device
            said.append(
                f"{what} holds a partial layout: `blankslate install --wipe` starts over, "
                "`blankslate mount` shows what is there"
            )
    if not written and not target.created:
        return ""  # refused before any write: the refusal says it all
    return f"{made} did not finish: " + "; ".join(said)


# --- install --------------------------------------------------------------------------------


def planned_actions(plan: Plan, target: Target, parts: layout.Partitions) -> list[list[str]]:
    names = ", ".join(part.name for part, _ in parts.nodes)
    rows = [["partition table", target.device, f"GPT: {names} (everything on it erased)"]]
    kind = storage.of(plan.storage)
    for part, node in parts.nodes:
        size = part.size or "rest"
        described = kind.describe(part)
        if described is not None:
            how = described
        elif part.label is None:
            how = "BIOS boot partition, for GRUB (no filesystem)"
        else:
            how = f"{part.format}, label {part.label}"
        rows.append([f"{part.name} {size}", node, how])
    rows += kind.extra_rows()
    return rows


def install(plan: Plan, options: InstallOptions) -> Summary:
    check_plan(plan)
    check_boot_disk(plan, options)
    if options.nixos_install and options.source.host is not None:
        # The system nixos-install builds is the one the admin must log in to.
        lockout.refuse_lockout(plan, f"install of host {options.source.host}")
    if not options.dry_run:
        require_root("install partitions and formats a disk")
    process.require_tools(required_tools(plan, options))
    want_passwords = options.passwords and bool(plan.users)
    if want_passwords and not os.isatty(0) and not options.dry_run:
        raise BlankslateError(
            "no terminal to ask for passwords: add --no-passwords, then run "
            f"`blankslate passwd USER --root {options.root} --stdin`"
        )
    check_mountpoint(options.root)
    target = open_target(options, plan, create=True)
    written = False
    try:
        check_target(plan, target, wipe=options.wipe)
        with_esp = check_esp_mountable(options)
        parts = layout.partitions(plan, target.device)
        ui.table(
            f"blankslate install: {plan.host_name}",
            ["what", "where", "how"],
            planned_actions(plan, target, parts),
        )
        if not options.assume_yes and not options.dry_run:
            ui.confirm_by_typing(target.device, f"Type {target.device} to erase it and go on: ")
        hashes = passwd.ask_passwords(plan) if want_passwords and not options.dry_run else {}
        kept_keys = taken_keys(plan, options.host_keys_from)
        layout.remember(
            options.root, loop=loop_of(target, options.dry_run), swap=None, dry_run=options.dry_run
        )
        summary = Summary(target.device)
        written = True
        ui.run_steps(
            install_steps(plan, options, target, parts, hashes, summary, with_esp, kept_keys)
        )
    except BlankslateError as error:
        left = abandon(target, options.root, written=written, dry_run=options.dry_run)
        raise BlankslateError(f"{error} ({left})" if left else str(error)) from error
    except BaseException:
        left = abandon(target, options.root, written=written, dry_run=options.dry_run)
        if left:
            ui.warn(left)
        raise
    if not want_passwords and plan.users:
        ui.warn(
            "no password files written: run `blankslate passwd USER "
            f"--root {options.root}` for {', '.join(u.name for u in plan.users)}"
        )
    finish(plan, options, summary)
    return summary


def check_esp_mountable(options: InstallOptions) -> bool:
    """nixos-install needs /boot; a layout-only run can leave the ESP formatted but unmounted."""
    if layout.can_mount_esp():
        return True
    if options.nixos_install and options.source.host is not None:
        raise BlankslateError("this kernel cannot mount vfat, so the ESP cannot go on /boot")
    ui.warn("this kernel cannot mount vfat: the ESP is left unmounted, /boot stays empty")
    return False


def check_mountpoint(root: Path) -> None:
    if not root.is_absolute():
        raise BlankslateError(f"--root {root}: give an absolute path")
    busy = mounts.mounts_below(root)
    if busy:
        raise BlankslateError(
            f"{busy[-1].target} is already mounted; run `blankslate unmount --root {root}` first"
        )


def install_steps(
    plan: Plan,
    options: InstallOptions,
    target: Target,
    parts: layout.Partitions,
    hashes: dict[str, str],
    summary: Summary,
    with_esp: bool,
    kept_keys: list[hostkeys.HostKey] | None = None,
) -> list[ui.Step]:
    assert plan.disk is not None
    nodes = [node for _, node in parts.nodes]
    gpt = [disk.GptPartition(part.size_bytes, part.type, part.name) for part, _ in parts.nodes]

    def partition() -> None:
        if options.wipe:
            found = [target.device]  # a dry run's probe device is detached by now
            if target.device != DRY_RUN_LOOP:
                found = [node.path for node in disk.probe(target.device).walk()]
            for node in reversed(found):
                process.run(disk.wipefs_all(node), dry_run=options.dry_run)
        process.run(disk.sgdisk_layout(target.device, gpt), dry_run=options.dry_run)
        # sgdisk's own re-read is not always seen
        process.run(disk.partprobe(target.device), dry_run=options.dry_run)
        if not options.dry_run:
            disk.wait_for(nodes)

    def mount() -> None:
        summary.mounts = layout.mount_layout(
            plan, parts, options.root, with_esp=with_esp, dry_run=options.dry_run
        )
        swap = enable_swap(target, parts, dry_run=options.dry_run)
        layout.remember_swap(options.root, swap, dry_run=options.dry_run)

    def seed() -> None:
        if kept_keys is None:
            summary.fingerprints = make_host_keys(plan, options.root, dry_run=options.dry_run)
        else:
            summary.fingerprints = place_host_keys(kept_keys, options.root, dry_run=options.dry_run)
        summary.age_recipients = age_recipients(plan, options.root, dry_run=options.dry_run)
        for name, hashed in hashes.items():
            path = paths.inside(options.root, plan.user(name).hashed_password_file)
            passwd.write_secret(path, hashed + "\n", dry_run=options.dry_run)

    label = storage.of(plan.storage).volumes
    dry_run = options.dry_run
    return [
        (f"Partition {target.device}", partition),
        ("Make filesystems", lambda: layout.create_filesystems(plan, parts, dry_run=dry_run)),
        (
            f"Create {label} and the blank snapshot",
            lambda: layout.create_volumes(plan, parts, dry_run=dry_run),
        ),
        (f"Mount the layout on {options.root}", mount),
        (f"Seed {plan.persist_path}: host keys and passwords", seed),
    ]


def loop_of(target: Target, dry_run: bool) -> layout.LoopRecord | None:
    """The loop device this run attached, with its image's identity (none in a dry run)."""
    if not target.attached_here or target.image is None or dry_run:
        return None
    return layout.LoopRecord.of(target.device, target.image)


def enable_swap(target: Target, parts: layout.Partitions, *, dry_run: bool) -> str | None:
    """Swap on a real disk helps nixos-install; on an image it would pin the loop device."""
    if parts.swap is None or target.is_image:
        return None
    process.run(disk.swapon(parts.swap), dry_run=dry_run)
    return os.path.realpath(parts.swap)


def taken_keys(plan: Plan, source: Path | None) -> list[hostkeys.HostKey] | None:
    """--host-keys-from: the keys read and checked before anything is written; None without."""
    if source is None:
        return None
    with hostkeys.scratch() as work:
        return hostkeys.take_keys(plan, source, work)


def place_host_keys(keys: list[hostkeys.HostKey], root: Path, *, dry_run: bool) -> list[str]:
    """Kept keys written below persistPath (no link followed); their fingerprints."""
    if dry_run:
        for key in keys:
            process.log.warning("would write %s (0600) and its .pub (0644)", key.path)
        return []
    hostkeys.write_keys(keys, root)
    with hostkeys.scratch() as work:
        return [hostkeys.fingerprint(key, work) for key in keys]


def age_recipients(plan: Plan, root: Path, *, dry_run: bool) -> list[str]:
    """`<age recipient> <key>` for each ed25519 host key, as ssh-to-age gives it."""
    if dry_run:
        return []
    lines = []
    for key in plan.ssh_host_keys:
        public = paths.inside(root, f"{key}.pub").read_text()
        recipient = hostkeys.age_recipient(public)
        if recipient is not None:
            lines.append(f"{recipient}  {key}")
    return lines


def make_host_keys(plan: Plan, root: Path, *, dry_run: bool) -> list[str]:
    """Host keys made before the first boot, so their fingerprints can be checked on first login."""
    fingerprints = []
    for key in plan.ssh_host_keys:
        path = paths.inside(root, key)
        if not path.exists():
            safefile.make_parents(root, key, dry_run=dry_run)  # as `blankslate seed` makes them
            process.run(hostkeys.host_key_command(plan, path), dry_run=dry_run)
        if not dry_run:
            fingerprints.append(
                process.output(hostkeys.ssh_fingerprint(path.with_suffix(".pub"))).strip()
            )
    return fingerprints


def finish(plan: Plan, options: InstallOptions, summary: Summary) -> None:
    root, flake, host = options.root, options.source.flake, options.source.host
    bootloader = installs_bootloader(plan, options)
    if host is None:
        command = nix.nixos_install(root, "<your flake>", "<host>", bootloader=bootloader)
        summary.next_steps.append(" ".join(command))
        summary.next_steps.append(f"blankslate seed --root {root}  (after nixos-install)")
        if not bootloader:
            summary.next_steps.append(bootloader_later(plan, root))
        return
    hardware = write_hardware_config(flake, host, root, dry_run=options.dry_run)
    if hardware is not None:
        show_to_flake(Path(flake), hardware, dry_run=options.dry_run)
    command = nix.nixos_install(root, flake, host, bootloader=bootloader)
    if not bootloader:
        assert plan.disk is not None
        ui.say(
            f"No boot loader from this machine: disk.boot is {plan.disk.boot!r} and GRUB would "
            f"go to {plan.disk.device or 'a disk'} here, so nixos-install runs with "
            "--no-bootloader."
        )
    if not options.nixos_install or process.which("nixos-install") is None:
        reason = "--no-nixos-install" if not options.nixos_install else "no nixos-install on PATH"
        ui.say(f"Stopping before nixos-install ({reason}); the layout stays mounted on {root}.")
        summary.next_steps.append(" ".join(command))
        summary.next_steps.append(f"blankslate seed --root {root}  (after nixos-install)")
        if not bootloader:
            summary.next_steps.append(bootloader_later(plan, root))
        return
    ui.say(f"Running nixos-install for {host} (it builds the system; this takes a while).")
    process.run(command, stream=True, dry_run=options.dry_run)
    seed_installed(plan, root, dry_run=options.dry_run)
    if not bootloader:
        summary.next_steps.append(bootloader_later(plan, root))
    summary.next_steps.append(f"blankslate unmount --root {root} && reboot")


def write_hardware_config(flake: str, host: str, root: Path, *, dry_run: bool) -> str | None:
    """hosts/<host>/hardware.nix for a flake checkout on this machine, when it is missing.
    Returns its path relative to the flake when it is there (or, in a dry run, would be)."""
    host_dir = Path(flake) / "hosts" / host
    target = host_dir / "hardware.nix"
    relative = f"hosts/{host}/hardware.nix"
    if not host_dir.is_dir():
        return None
    if target.exists():
        return relative
    if process.which("nixos-generate-config") is None:
        return None
    config = process.run(nix.nixos_generate_config(root), capture=True, dry_run=dry_run).stdout
    if not dry_run:
        safefile.write_file(target, config)
        ui.say(f"Wrote {target}.")
    return relative


def show_to_flake(flake: Path, relative: str, *, dry_run: bool) -> None:
    """A git flake builds only what git tracks: an untracked hardware.nix is left out of the
    very build it was written for. `git add --intent-to-add` that one file (nothing staged,
    nothing else touched); a flake that is no git work tree is a path: flake, which sees it."""
    if process.which("git") is None:
        if any((directory / ".git").exists() for directory in [flake, *flake.resolve().parents]):
            raise BlankslateError(
                f"{flake} is a git checkout but there is no git on PATH: the build would not "
                f"see {relative} (run `git add --intent-to-add {relative}` there first)"
            )
        return
    found = process.probe(git_toplevel(flake), check=False)
    if found.returncode != 0:
        if "not a git repository" in found.stderr:
            return  # nix copies the whole directory
        raise BlankslateError(
            f"git cannot read {flake}, so the build may not see {relative}: "
            f"{process.failure_reason(found)}"
        )
    if process.output(git_ls_files(flake, relative)).strip():
        ui.say(f"{relative} is tracked by git: the build sees it.")
        return
    process.run(git_add_intent(flake, relative), dry_run=dry_run)
    ui.say(
        f"Added {relative} to git with --intent-to-add, so that nixos-install's build sees it "
        "(a git flake sees only tracked files); commit it with the host."
    )


def seed_installed(plan: Plan, root: Path, *, dry_run: bool) -> list[seed.SeedItem]:
    """What nixos-install wrote under persisted paths (the uid map in /var/lib/nixos,
    /etc/machine-id, ...) is on the root the first boot erases: copy it into the persistence
    root, as `blankslate seed --root` does (no bind mount exists yet, so the live view under
    `root` is that data). A directory that persistent storage holds empty (impermanence's
    activation makes them during nixos-install) is filled, as seed does; anything it holds
    already is left as is, and a different copy on the root is a conflict, one line naming
    both. Returns what was copied."""
    persist = paths.inside(root, plan.persist_path)
    if dry_run:
        ui.say(
            f"After nixos-install, would copy into {persist} what it wrote under the "
            f"persisted paths ({', '.join(sorted(entry.path for entry in plan.persisted))})."
        )
        return []
    items = seed.plan_seed(plan, root=root)
    lines = []
    for item in items:
        if item.action in ("copy", "fill"):
            lines.append(f"{item.action:<8}  {item.kind:<9}  {item.source} -> {item.target}")
        lines += _conflict_lines(item)
    ui.say(f"Seeding {persist} with what nixos-install wrote under persisted paths:")
    for line in lines or ["nothing to copy"]:
        ui.say(f"  {line}")
    return seed.apply(items, live_root=root)


def _is_directory(path: Path) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def _conflict_lines(item: seed.SeedItem) -> list[str]:
    """One line per path whose two copies differ: the persisted one is kept, as is the other."""
    if item.action in ("conflict", "problem"):
        return [f"{item.action:<8}  {item.kind:<9}  {item.source} and {item.target}: {item.detail}"]
    if item.action != "present" or os.path.islink(item.source) or os.path.islink(item.target):
        return []
    if item.kind == "file" and os.path.isfile(item.source) and os.path.isfile(item.target):
        with open(item.source, "rb") as ours, open(item.target, "rb") as kept:
            if ours.read() == kept.read():
                return []
        return [
            f"conflict  file       {item.source} and {item.target} differ: "
            f"{item.target} is kept, {item.source} is left as is (the first boot erases it)"
        ]
    if item.kind == "directory" and _is_directory(item.source) and _is_directory(item.target):
        missing = sorted(set(os.listdir(item.source)) - set(os.listdir(item.target)))
        if missing and os.listdir(item.target):
            return [
                f"conflict  directory  {item.source} and {item.target} both hold data; "
                f"{item.target} lacks {', '.join(missing)}: both left as is (merge by hand)"
            ]
    return []


# --- mount / unmount ------------------------------------------------------------------------


def mount_existing(plan: Plan, options: InstallOptions) -> Summary:
    """Mount a layout `install` made, for rescue or to continue; first check it is all there."""
    check_plan(plan)
    require_root("mounting needs it")
    check_mountpoint(options.root)
    target = open_target(options, plan, create=False)
    try:
        parts = layout.partitions(plan, target.device)
        disk.wait_for([node for _, node in parts.nodes], timeout=5)
        missing = layout.missing_volumes(plan, parts)
        if missing:
            raise BlankslateError(
                f"{parts.main} lacks {', '.join(missing)} (not a complete blankslate layout; "
                "`blankslate install --wipe` starts over)"
            )
        with_esp = check_esp_mountable(options)
        layout.remember(options.root, loop=loop_of(target, dry_run=False), swap=None)
        planned = layout.mount_layout(plan, parts, options.root, with_esp=with_esp, dry_run=False)
        summary = Summary(target.device, planned)
        layout.remember_swap(options.root, enable_swap(target, parts, dry_run=False))
    except BaseException:
        abandon(target, options.root, written=False, dry_run=False, made="mount")
        raise
    warn_unfinished(plan, options.root)
    return summary


def warn_unfinished(plan: Plan, mountpoint: Path) -> None:
    """A layout whose persistPath lacks what install's last step makes: say so loudly."""
    persist = f"Seed {plan.persist_path}"
    for key in plan.ssh_host_keys:
        path = paths.inside(mountpoint, key)
        if not path.exists():
            command = hostkeys.host_key_command(plan, path)
            ui.warn(
                f"install did not finish: no host key {path} (`blankslate install` stopped "
                f'before its step "{persist}"): run `{process.format_command(command)}`, or '
                "start over with `blankslate install --wipe`"
            )
    for user in plan.users:
        if not paths.inside(mountpoint, user.hashed_password_file).exists():
            ui.warn(
                f"no password file for {user.name}: run `blankslate passwd {user.name} "
                f"--root {mountpoint}`"
            )


def unmount(mountpoint: Path) -> list[str]:
    require_root("unmounting needs it")
    mounts.sweep_stale_scratch()  # a killed run's own temporary mount holds the loop device
    return layout.unmount_all(mountpoint)
