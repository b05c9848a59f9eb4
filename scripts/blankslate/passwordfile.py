"""What an admin's hashedPasswordFile may hold: exactly what NixOS turns into a working
/etc/shadow entry. One rule for `passwd`, `doctor` and the boot-time guard.

NixOS's users script (nixpkgs nixos/modules/config/update-users-groups.pl) reads the whole
file (File::Slurp's read_file), removes one final newline (Perl's chomp) and writes the rest
as the second field of the user's line in /etc/shadow; users-groups.nix says the file "should
contain exactly one line". So a second line (`HASH\\n\\n`, `HASH\\nx`), a carriage return, a
colon or a NUL ends up inside /etc/shadow and breaks that entry: the admin can neither log in
with a password nor use sudo, and root login is off. The file is therefore the hash, with or
without one final newline, and nothing else; the hash is one of the schemes of
password-hashes.txt, which the guard (modules/guard/password-files.bash) reads too.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

RULES = Path(__file__).with_name("password-hashes.txt")
# A hash is about a hundred bytes; a file larger than this is never read further.
MAX_BYTES = 4096


@cache
def schemes() -> dict[str, re.Pattern[str]]:
    """password-hashes.txt: `NAME REGEX` a line, `#` comments and blank lines skipped."""
    rules = {}
    for line in RULES.read_text(encoding="ascii").splitlines():
        if line.strip() and not line.startswith("#"):
            name, pattern = line.split(" ", 1)
            rules[name] = re.compile(pattern, re.ASCII)
    return rules


def scheme_of(text: str) -> str | None:
    """The scheme of a hash (one line, no newline in it), or None."""
    if "\n" in text:  # Python's $ also matches before a final newline; ERE's does not
        return None
    return next((name for name, rule in schemes().items() if rule.search(text)), None)


def hash_of(data: bytes) -> bytes:
    """What NixOS puts into /etc/shadow from the file's bytes: all, less one final newline."""
    return data[:-1] if data.endswith(b"\n") else data


def content_problem(data: bytes) -> str | None:
    """What is wrong with a password file's bytes (its first MAX_BYTES + 1 at most), or None
    when NixOS makes a working shadow entry of them."""
    if len(data) > MAX_BYTES:
        return f"is larger than {MAX_BYTES} bytes: it does not hold one password hash"
    hashed = hash_of(data)
    if not hashed:
        return "is empty: no password is set"
    if b"\n" in hashed:
        return (
            "has more than one line: NixOS removes only the final newline, and the entry "
            "in /etc/shadow would be broken"
        )
    if b"\0" in hashed:
        return "holds a NUL byte: it does not hold a password hash"
    if hashed[:1] in (b"!", b"*"):
        return f"holds a locked password ({hashed[:1].decode()!r})"
    try:
        text = hashed.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if not text or scheme_of(text) is None:
        return f"does not hold a password hash ({', '.join(schemes())})"
    return None


def text_problem(line: str) -> str | None:
    """content_problem of a file holding `line` and a newline (a hash as `mkpasswd` prints
    it, or as a test writes it)."""
    return content_problem(line.encode("utf-8", "surrogateescape") + b"\n")
