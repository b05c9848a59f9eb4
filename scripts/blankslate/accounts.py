"""Owners by name, looked up in a system's own /etc/passwd and /etc/group.

`seed --root DIR` copies the data of the system under DIR, whose users need not exist on the
machine running the tool: the plan names owners, and DIR's files say who they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blankslate.errors import BlankslateError


def _ids(text: str) -> dict[str, int]:
    """name -> id from passwd or group lines (name:password:id:...); malformed lines skipped."""
    ids: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and fields[2].isascii() and fields[2].isdigit():
            ids.setdefault(fields[0], int(fields[2]))
    return ids


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    except OSError as error:
        raise BlankslateError(f"cannot read {path}: {error.strerror}") from None


@dataclass(frozen=True)
class Accounts:
    root: Path
    users: dict[str, int]
    groups: dict[str, int]

    @classmethod
    def of(cls, root: Path) -> Accounts:
        etc = root / "etc"
        users, groups = _ids(_read(etc / "passwd")), _ids(_read(etc / "group"))
        # root is uid and gid 0 everywhere, even on a root not yet activated.
        users.setdefault("root", 0)
        groups.setdefault("root", 0)
        return cls(root, users, groups)

    def uid(self, name: str) -> int:
        if name not in self.users:
            raise BlankslateError(f"user {name!r} is not in {self.root / 'etc/passwd'}")
        return self.users[name]

    def gid(self, name: str) -> int:
        if name not in self.groups:
            raise BlankslateError(f"group {name!r} is not in {self.root / 'etc/group'}")
        return self.groups[name]
