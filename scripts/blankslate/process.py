"""The only module that runs external commands.

Every command is logged as `$ cmd`; secrets travel on stdin, never in argv. Under dry-run, mutating
commands are printed instead of run, while read-only probes still run so the plan can be checked.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from blankslate.errors import BlankslateError

log = logging.getLogger("blankslate")
# The `$ cmd` echo has its own logger, so a command can hide it (diff's temporary mount).
echo = logging.getLogger("blankslate.commands")


@dataclass
class Settings:
    dry_run: bool = False


settings = Settings()


@dataclass(frozen=True)
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def format_command(args: Sequence[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in args)


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "'": "\\'", "\\": "\\\\"}


def quote_path(path: str) -> str:
    """`path` as is when it is printable UTF-8, else in bash's $'...' quoting."""
    if path.isprintable():
        return path
    out: list[str] = []
    for char in path:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif "\udc80" <= char <= "\udcff":  # an undecodable byte (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char.isprintable():
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
    return "$'" + "".join(out) + "'"


def run(
    args: Sequence[str],
    *,
    check: bool = True,
    capture: bool = False,
    input: str | None = None,
    mutating: bool = True,
    stream: bool = False,
    output: BinaryIO | None = None,
) -> Result:
    """Run `args`; raise BlankslateError with the command's stderr when it fails and `check`.

    Output is kept (and shown under --debug) unless `stream`, for long commands the user watches,
    or `output`, a file its standard output is written to (a `btrfs send` stream).
    """
    argv = [str(arg) for arg in args]
    if mutating and settings.dry_run:
        log.warning("would run: %s", format_command(argv))
        return Result(argv, 0, "", "")
    echo.info("$ %s", format_command(argv))
    try:
        completed = subprocess.run(
            argv,
            input=input,
            text=True,
            errors="surrogateescape",  # bytes that are not UTF-8 survive, as in os.fsdecode
            stdout=output if output is not None else None if stream else subprocess.PIPE,
            stderr=None if stream else subprocess.PIPE,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BlankslateError(
            f"{argv[0]}: command not found (install it or add it to PATH)"
        ) from exc
    stdout = completed.stdout or ""
    result = Result(argv, completed.returncode, stdout if capture else "", completed.stderr or "")
    if check and result.returncode != 0:
        raise BlankslateError(f"{format_command(argv)} failed: {failure_reason(result)}")
    for text in (stdout if not capture else "", result.stderr):
        if text.strip():
            log.debug("%s", text.rstrip())
    return result


def failure_reason(result: Result) -> str:
    """The line of stderr that says what went wrong.

    The last line opening with "error:" or "fatal:" (nix and git retry with warnings that also
    say "error" before the final word), else the first naming an error, else the first line.
    """
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    final = [line for line in lines if line.lower().startswith(("error:", "fatal:"))]
    if final:
        return final[-1]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [f"exit status {result.returncode}"])[0]


def output(args: Sequence[str]) -> str:
    """Run a read-only probe and return its standard output."""
    return run(args, capture=True, mutating=False).stdout


def which(program: str) -> str | None:
    return shutil.which(program)


def require_tools(programs: Sequence[str]) -> None:
    missing = [program for program in programs if which(program) is None]
    if missing:
        raise BlankslateError(
            f"missing tool: {', '.join(missing)} (install it, or use `nix run` from the flake)"
        )
