"""The one error type: the CLI prints it as `error: <message>` and exits 1."""

import os


class BlankslateError(Exception):
    """A failure the user can act on; its message is one line."""


def require_root(why: str) -> None:
    """The one refusal for a user who is not root, in the same words for every command:
    "run as root (WHY)"."""
    if os.geteuid() != 0:
        raise BlankslateError(f"run as root ({why})")


def decode_utf8(data: bytes, what: str) -> str:
    """`data` as text, or an error naming `what` and the line of the first byte that is not
    UTF-8: "plan: FILE: not UTF-8 (line 2: byte 0xff)"."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise BlankslateError(
            f"{what}: not UTF-8 (line {line}: byte 0x{data[error.start]:02x})"
        ) from None
