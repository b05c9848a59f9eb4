"""The only module that runs external commands.

Every command is logged as `$ cmd`; secrets travel on stdin, never in argv. A mutating command
(`run`) says whether this is a dry run, where it is printed instead of run; read-only probes
(`probe`, `output`) always run, so that a dry run checks what a real one would.
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


@dataclass(frozen=True)
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def format_command(args: Sequence[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in args)


def run(
    args: Sequence[str],
    *,
    dry_run: bool,
    check: bool = True,
    capture: bool = False,
    input: str | None = None,
    stream: bool = False,
    output: BinaryIO | None = None,
) -> Result:
    """Run the mutating command `args`, or under `dry_run` only say it would; raise
    BlankslateError with the command's stderr when it fails and `check`.

    Output is kept (and shown under --debug) unless `stream`, for long commands the user watches,
    or `output`, a file its standard output is written to (a `btrfs send` stream).
    """
    argv = [str(arg) for arg in args]
    if dry_run:
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


def probe(args: Sequence[str], *, check: bool = True) -> Result:
    """Run a read-only probe (a dry run runs it too), its output captured."""
    return run(args, dry_run=False, check=check, capture=True)


def output(args: Sequence[str]) -> str:
    """Run a read-only probe and return its standard output."""
    return probe(args).stdout


def which(program: str) -> str | None:
    return shutil.which(program)


def require_tools(programs: Sequence[str]) -> None:
    missing = [program for program in programs if which(program) is None]
    if missing:
        raise BlankslateError(
            f"missing tool: {', '.join(missing)} (install it, or use `nix run` from the flake)"
        )
