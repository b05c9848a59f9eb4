"""SSH host keys known before the first boot: made fresh or taken from a directory, written below
persistPath without following a link, and shown with their fingerprints and age recipients.

The age recipient is what `ssh-to-age` prints for an ed25519 public key (sops-nix and agenix
encrypt to it): the Ed25519 point's Montgomery form, u = (1 + y) / (1 - y) mod 2^255 - 19 (the
birational map RFC 7748 gives), as 32 little-endian bytes in bech32 with the prefix "age".
Written from ssh-to-age's convert.go (edwards25519's Point.BytesMontgomery) and bech32/bech32.go.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from blankslate import paths, process, safefile
from blankslate.errors import BlankslateError
from blankslate.plan import Plan

# --- builders -------------------------------------------------------------------------------

# The sizes NixOS's services.openssh.hostKeys gives (rsa: 4096 bits); ed25519 has one size.
KEY_BITS = {"rsa": 4096}
_KEY_TYPE = re.compile(r"ssh_host_(\w+?)_key$")


def ssh_keygen(path: Path, key_type: str, comment: str) -> list[str]:
    bits = ["-b", str(KEY_BITS[key_type])] if key_type in KEY_BITS else []
    return ["ssh-keygen", "-q", "-t", key_type, *bits, "-N", "", "-C", comment, "-f", str(path)]


def ssh_fingerprint(public_key: Path) -> list[str]:
    return ["ssh-keygen", "-l", "-f", str(public_key)]


def ssh_public_of(private_key: Path) -> list[str]:
    """The public key of a private key file (it must be 0600, or ssh-keygen refuses it).
    `-P ""`: an empty passphrase is tried and nothing is ever asked, so a passphrase-protected
    key fails (as sshd, which has nobody to ask at boot, fails to load it)."""
    return ["ssh-keygen", "-y", "-P", "", "-f", str(private_key)]


def key_type(path: str | Path) -> str:
    """The key type a host key's file name says: ssh_host_rsa_key -> rsa (ed25519 else)."""
    match = _KEY_TYPE.search(Path(path).name)
    return match.group(1) if match else "ed25519"


def host_key_command(plan: Plan, path: Path) -> list[str]:
    """ssh-keygen for the host key at `path`, its type read from the name."""
    return ssh_keygen(path, key_type(path), f"root@{plan.host_name}")


# --- age recipients (ssh-to-age) ------------------------------------------------------------

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if (top >> i) & 1:
                checksum ^= generator
    return checksum


def bech32_encode(hrp: str, data: bytes) -> str:
    """BIP 173 bech32, 8-bit data regrouped into 5-bit words (padded), lower case."""
    words: list[int] = []
    accumulator = bits = 0
    for byte in data:
        accumulator = (accumulator << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            words.append((accumulator >> bits) & 31)
    if bits:
        words.append((accumulator << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod(expanded + words + [0] * 6) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[w] for w in words + checksum)


def ed25519_to_x25519(public: bytes) -> bytes:
    """The X25519 public key of an Ed25519 one; a ValueError for bytes that are not a point."""
    if len(public) != 32:
        raise ValueError(f"an ed25519 public key is 32 bytes, not {len(public)}")
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    # On the curve: x^2 = (y^2 - 1) / (d y^2 + 1) must have a root (Euler's criterion).
    y2 = y * y % _P
    x2 = (y2 - 1) * pow((_D * y2 + 1) % _P, _P - 2, _P) % _P
    if x2 != 0 and pow(x2, (_P - 1) // 2, _P) != 1:
        raise ValueError("not a point of edwards25519")
    u = (1 + y) * pow((1 - y) % _P, _P - 2, _P) % _P
    return u.to_bytes(32, "little")


def _ssh_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated key blob")
    (length,) = struct.unpack_from(">I", blob, offset)
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated key blob")
    return blob[offset + 4 : end], end


def age_recipient(public_key_line: str) -> str | None:
    """`ssh-ed25519 AAAA... comment` -> "age1..."; None for another key type (ssh-to-age
    converts only ed25519). A BlankslateError for a line that is not a public key."""
    fields = public_key_line.split()
    if len(fields) < 2:
        raise BlankslateError("not an SSH public key line (expected `TYPE BASE64 [COMMENT]`)")
    if fields[0] != "ssh-ed25519":
        return None
    try:
        blob = base64.b64decode(fields[1], validate=True)
        name, offset = _ssh_string(blob, 0)
        key, offset = _ssh_string(blob, offset)
        if name != b"ssh-ed25519" or offset != len(blob):
            raise ValueError("the blob is not an ed25519 key")
        return bech32_encode("age", ed25519_to_x25519(key))
    except (ValueError, binascii.Error) as error:
        raise BlankslateError(f"not a valid ssh-ed25519 public key ({error})") from None


# --- keys made or taken ---------------------------------------------------------------------


@dataclass(frozen=True)
class HostKey:
    path: str  # where the plan wants it, as on the installed system (/persist/etc/ssh/...)
    private: bytes
    public: str  # one line, ending in a newline

    @property
    def public_path(self) -> str:
        return self.path + ".pub"

    @property
    def age(self) -> str | None:
        return age_recipient(self.public)


@contextmanager
def scratch() -> Iterator[Path]:
    """A private directory (0700) for keys between ssh-keygen and their place."""
    with tempfile.TemporaryDirectory(prefix="blankslate-keys-") as directory:
        os.chmod(directory, 0o700)
        yield Path(directory)


def _read_regular(path: Path, what: str) -> bytes:
    """The bytes of a regular file, opened without following a link at its name."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise BlankslateError(f"{what}: {path} does not exist") from None
    except OSError as error:
        raise BlankslateError(f"{what}: cannot read {path}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise BlankslateError(f"{what}: {path} is not a regular file")
        data = file.read(1 << 20)
    return data


# The public key types a host key file's name allows (ssh_host_<type>_key). DSA is refused:
# OpenSSH disabled it by default (7.0) and removed it (9.8); its keys are 1024 bits.
PUBLIC_TYPES = {
    "ed25519": ("ssh-ed25519",),
    "rsa": ("ssh-rsa",),
    "ecdsa": ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"),
}
MIN_RSA_BITS = 2048
_PEM_ENCRYPTED = (b"Proc-Type: 4,ENCRYPTED", b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
_OPENSSH_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_END = b"-----END OPENSSH PRIVATE KEY-----"


def is_encrypted(private: bytes) -> bool:
    """A private key file protected by a passphrase: PEM's ENCRYPTED headers, or the OpenSSH
    format (PROTOCOL.key: "openssh-key-v1\\0", then the cipher's name) with a cipher."""
    if any(marker in private for marker in _PEM_ENCRYPTED):
        return True
    start, end = private.find(_OPENSSH_BEGIN), private.find(_OPENSSH_END)
    if start < 0 or end < start:
        return False
    body = b"".join(private[start + len(_OPENSSH_BEGIN) : end].split())
    try:
        blob = base64.b64decode(body, validate=True)
        magic = b"openssh-key-v1\0"
        if not blob.startswith(magic):
            return False
        cipher, _ = _ssh_string(blob, len(magic))
    except (ValueError, binascii.Error):
        return False
    return cipher != b"none"


def rsa_bits(public_key_line: str) -> int | None:
    """The modulus size of an `ssh-rsa` public key line; None for another line."""
    fields = public_key_line.split()
    if len(fields) < 2 or fields[0] != "ssh-rsa":
        return None
    try:
        blob = base64.b64decode(fields[1], validate=True)
        name, offset = _ssh_string(blob, 0)
        _exponent, offset = _ssh_string(blob, offset)
        modulus, _ = _ssh_string(blob, offset)
    except (ValueError, binascii.Error):
        return None
    return int.from_bytes(modulus, "big").bit_length() if name == b"ssh-rsa" else None


def check_key(name: str, shown: Path, derived: str) -> None:
    """Refuse a host key sshd would not load or should not trust: a key whose type is not the
    one its file name says, a DSA key, a short RSA key. (Encryption is checked before.)"""
    wanted = key_type(name)
    if wanted == "dsa" or derived.startswith("ssh-dss"):
        raise BlankslateError(
            f"--host-keys-from: {shown} is a DSA key: refused (OpenSSH removed DSA; use an "
            "ed25519 key)"
        )
    if wanted not in PUBLIC_TYPES:
        raise BlankslateError(
            f"--host-keys-from: {shown}: {wanted!r} is not a host key type "
            f"({', '.join(PUBLIC_TYPES)})"
        )
    kind = derived.split()[0] if derived.split() else "unknown"
    if kind not in PUBLIC_TYPES[wanted]:
        raise BlankslateError(
            f"--host-keys-from: {shown} is a {kind} key, not {wanted} as its name says"
        )
    bits = rsa_bits(derived)
    if bits is not None and bits < MIN_RSA_BITS:
        raise BlankslateError(
            f"--host-keys-from: {shown} is a {bits}-bit RSA key: refused (at least "
            f"{MIN_RSA_BITS} bits)"
        )


def _same_key(a: str, b: str) -> bool:
    return a.split()[:2] == b.split()[:2]


def take_keys(plan: Plan, source: Path, work: Path) -> list[HostKey]:
    """The plan's host keys from `source` (a directory such as an old server's /etc/ssh, with
    the same file names): each private key checked with ssh-keygen (never asking anything),
    refused when protected by a passphrase, of DSA, or of another type than its name says
    (`check_key`); its .pub made from it when missing, refused when the .pub is another key's."""
    if not source.is_dir():
        raise BlankslateError(f"--host-keys-from {source}: not a directory")
    keys = []
    for wanted in plan.ssh_host_keys:
        name = Path(wanted).name
        private = _read_regular(source / name, "--host-keys-from")
        if is_encrypted(private):
            raise BlankslateError(
                f"--host-keys-from: {source / name} is protected by a passphrase, and sshd "
                "cannot load it at boot (remove the passphrase from a copy: "
                "ssh-keygen -p -N '' -f COPY)"
            )
        copy = work / name
        copy.write_bytes(private)
        copy.chmod(0o600)
        # Read-only; stdin is an empty pipe, so nothing could be asked even by mistake.
        result = process.run(
            ssh_public_of(copy), dry_run=False, check=False, capture=True, input=""
        )
        derived = result.stdout.strip()
        if result.returncode != 0 or not derived:
            said = process.failure_reason(result) if result.returncode != 0 else "no output"
            if "passphrase" in said.lower():
                raise BlankslateError(
                    f"--host-keys-from: {source / name} is protected by a passphrase, and "
                    "sshd cannot load it at boot"
                )
            raise BlankslateError(f"--host-keys-from: {source / name}: not a private key ({said})")
        check_key(name, source / name, derived)
        public_path = source / f"{name}.pub"
        if public_path.exists() or public_path.is_symlink():
            public = _read_regular(public_path, "--host-keys-from").decode(errors="replace")
            if not _same_key(public, derived):
                raise BlankslateError(
                    f"--host-keys-from: {public_path} is not the public key of {source / name}"
                )
        else:
            public = f"{derived.split()[0]} {derived.split()[1]} root@{plan.host_name}"
        keys.append(HostKey(wanted, private, public.strip() + "\n"))
    return keys


def make_keys(plan: Plan, work: Path) -> list[HostKey]:
    """Fresh host keys for the plan, made by ssh-keygen in `work` (a private directory)."""
    keys = []
    for wanted in plan.ssh_host_keys:
        path = work / Path(wanted).name
        process.run(host_key_command(plan, path), dry_run=False)  # in a private scratch dir
        public = path.with_name(path.name + ".pub").read_text()
        keys.append(HostKey(wanted, path.read_bytes(), public))
    return keys


def write_keys(
    keys: list[HostKey], root: Path, *, owner: tuple[int, int] | None = (0, 0)
) -> list[Path]:
    """Each key below `root` where the plan wants it: private 0600, public 0644, missing
    directories 0755, `owner`'s (root's; None: whoever runs this); no link below `root` is
    followed. Returns the files written."""
    uid, gid = owner if owner is not None else (os.geteuid(), os.getegid())
    written = []
    for key in keys:
        for relative, data, mode in (
            (key.path, key.private, 0o600),
            (key.public_path, key.public.encode(), 0o644),
        ):
            target = paths.inside(root, relative)
            make = safefile.fixed(0o755, uid, gid)
            safefile.write_file(target, data, mode=mode, owner=owner, below=root, make=make)
            written.append(target)
    return written


def describe(keys: list[HostKey], fingerprints: list[str]) -> list[str]:
    """One line per key: its fingerprint, and its age recipient for an ed25519 key."""
    lines = []
    for key, fingerprint in zip(keys, fingerprints, strict=True):
        lines.append(fingerprint)
        if key.age is not None:
            lines.append(f"  age recipient: {key.age}")
    return lines


def fingerprint(key: HostKey, work: Path) -> str:
    path = work / (Path(key.path).name + ".fingerprint.pub")
    path.write_text(key.public)
    return process.output(ssh_fingerprint(path)).strip()
