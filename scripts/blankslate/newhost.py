"""`new-host NAME`: hosts/NAME/default.nix from the example host of its rollback kind.

The example hosts are the templates: each value a new host must choose (its name, the admin's
key, the disk, the boot mode, the time zone, a ZFS host id) is replaced where the template
writes it, and a template whose text no longer matches is refused rather than half-changed.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from blankslate import lockout, nixtext, process, safefile
from blankslate.disk import check_device_name
from blankslate.errors import BlankslateError

Rollback = Literal["btrfs", "zfs", "tmpfs", "none"]
Boot = Literal["uefi", "bios", "hybrid"]
TEMPLATES: dict[str, str] = {"btrfs": "example", "zfs": "zfs", "tmpfs": "tmpfs", "none": "vpsfree"}

# RFC 1123 host name label, as networking.hostName takes it.
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_TIME_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*\Z")
_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


@dataclass(frozen=True)
class HostChoices:
    name: str
    keys: tuple[str, ...]
    rollback: Rollback
    disk: str | None  # None for rollback "none": the platform owns the disk
    boot: Boot
    time_zone: str | None


def parse_rollback(text: str) -> Rollback:
    match text:
        case "btrfs" | "zfs" | "tmpfs" | "none":
            return text
    raise BlankslateError(f"--rollback {text!r}: choose btrfs, zfs, tmpfs or none")


def parse_boot(text: str) -> Boot:
    match text:
        case "uefi" | "bios" | "hybrid":
            return text
    raise BlankslateError(f"--boot {text!r}: choose uefi, bios or hybrid")


def check_name(name: str) -> str:
    if not _HOST_NAME.match(name):
        raise BlankslateError(
            f"host name {name!r}: use letters, digits and '-' (at most 63, no '-' at either end)"
        )
    return name


def check_time_zone(zone: str) -> str:
    if not _TIME_ZONE.match(zone) or ".." in zone:
        raise BlankslateError(f"time zone {zone!r}: give an IANA name such as Europe/Prague")
    zoneinfo = Path("/usr/share/zoneinfo")
    if zoneinfo.is_dir() and not (zoneinfo / zone).is_file():
        raise BlankslateError(f"time zone {zone!r} is not in {zoneinfo} (e.g. Europe/Prague, UTC)")
    return zone


def check_disk(disk: str) -> str:
    return check_device_name("--disk", disk)


def check_key(line: str) -> str:
    """One OpenSSH public key line: a known type, then base64 whose blob names that type.
    The example hosts' placeholder is refused: it would lock the admin out."""
    fields = line.split()
    if len(fields) < 2 or fields[0] not in _KEY_TYPES:
        raise BlankslateError(
            f"not an SSH public key: {line[:40]!r} (expected e.g. 'ssh-ed25519 AAAA... you@host')"
        )
    if lockout.is_placeholder(fields[1]):
        raise BlankslateError("that is the example's placeholder key: give your own public key")
    try:
        blob = base64.b64decode(fields[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        named = blob[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        named = ""
    if named != fields[0]:
        raise BlankslateError(f"not a valid {fields[0]} key: its base64 does not hold one")
    return " ".join(fields)


def keys_from_file(path: Path) -> tuple[str, ...]:
    """The public keys of a file such as ~/.ssh/id_ed25519.pub or authorized_keys."""
    if path.name.endswith(("id_ed25519", "id_rsa", "id_ecdsa")):
        raise BlankslateError(f"{path} looks like a private key: give the .pub file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BlankslateError(f"cannot read {path}: {getattr(error, 'strerror', error)}") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise BlankslateError(f"{path} holds no public key")
    return tuple(check_key(line) for line in lines)


def detect_boot(firmware: Path = Path("/sys/firmware/efi")) -> Boot:
    """What this machine booted with: uefi when the kernel shows EFI firmware, else bios."""
    return "uefi" if firmware.is_dir() else "bios"


def disk_candidates(by_id: Path = Path("/dev/disk/by-id")) -> list[str]:
    """Whole disks by a stable name (no partitions, no duplicate wwn- names)."""
    if not by_id.is_dir():
        return []
    names = sorted(os.listdir(by_id))
    return [
        str(by_id / name)
        for name in names
        if "-part" not in name and not name.startswith(("wwn-", "nvme-eui.", "dm-"))
    ]


def _replace_once(text: str, pattern: str, replacement: str, template: Path) -> str:
    new, count = re.subn(pattern, lambda _match: replacement, text, count=1, flags=re.MULTILINE)
    if count != 1:
        raise BlankslateError(f"{template} no longer has the line new-host changes ({pattern!r})")
    return new


def render(template_text: str, template: Path, choices: HostChoices) -> str:
    """The template with the choices written in; every replaced line must be found once."""
    text = template_text
    source = TEMPLATES[choices.rollback]
    text = f"# {choices.name}: made by `blankslate new-host` from hosts/{source}.\n" + text
    text = _replace_once(
        text,
        r'^  networking\.hostName = "[^"]*";$',
        f"  networking.hostName = {nixtext.string(choices.name)};",
        template,
    )
    keys = "\n".join(f"      {nixtext.string(key)}" for key in choices.keys)
    text = _replace_once(
        text,
        r"^    users\.admin\.authorizedKeys = \[\n(      .*\n)+?    \];$",
        f"    users.admin.authorizedKeys = [\n{keys}\n    ];",
        template,
    )
    if choices.rollback != "none":
        assert choices.disk is not None
        boot = "" if choices.boot == "uefi" else f"\n      boot = {nixtext.string(choices.boot)};"
        text = _replace_once(
            text,
            r'^      device = "[^"]*";$',
            f"      device = {nixtext.string(choices.disk)};{boot}",
            template,
        )
    if choices.rollback == "zfs":
        text = _replace_once(
            text,
            r'^  networking\.hostId = "[0-9a-f]{8}";$',
            f'  networking.hostId = "{secrets.token_hex(4)}";',
            template,
        )
    if choices.time_zone is not None:
        text = _replace_once(
            text,
            r"^  nixpkgs\.hostPlatform = ",
            f"  time.timeZone = {nixtext.string(choices.time_zone)};\n  nixpkgs.hostPlatform = ",
            template,
        )
    return text


def git_add(flake: Path, relative: str) -> list[str]:
    return ["git", "-C", str(flake), "add", "--", relative]


def new_host(flake: Path, choices: HostChoices) -> Path:
    """Write hosts/NAME/default.nix (a new directory, never over an existing host) and
    `git add` it when the flake is a git checkout. Returns the file written."""
    hosts = flake / "hosts"
    template = hosts / TEMPLATES[choices.rollback] / "default.nix"
    if not template.is_file():
        raise BlankslateError(f"{flake} has no {template.relative_to(flake)}: is it this flake?")
    target_dir = hosts / choices.name
    if os.path.lexists(target_dir):
        raise BlankslateError(f"{target_dir} exists: new-host never overwrites a host")
    text = render(template.read_text(encoding="utf-8"), template, choices)
    with safefile.held(safefile.walk(hosts, "")) as parent:
        try:
            os.mkdir(choices.name, 0o755, dir_fd=parent.fd)
        except FileExistsError:
            raise BlankslateError(
                f"{target_dir} exists: new-host never overwrites a host"
            ) from None
    written = target_dir / "default.nix"
    safefile.write_file(written, text, below=hosts)
    if (flake / ".git").exists() and process.which("git") is not None:
        process.run(git_add(flake, f"hosts/{choices.name}"), dry_run=False)
    return written


def next_steps(choices: HostChoices) -> list[str]:
    if choices.rollback == "none":
        return [
            f"review hosts/{choices.name}/default.nix, then deploy it as the platform documents "
            f"(vpsFree: nixos-rebuild switch --flake .#{choices.name} on the container)"
        ]
    return [
        f"review hosts/{choices.name}/default.nix, then, from a NixOS installer on the server:",
        f"  blankslate install --host {choices.name} --disk {choices.disk}",
    ]
