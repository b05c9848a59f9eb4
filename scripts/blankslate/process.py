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

from blankslate.errors import BlankslateError

log = logging.getLogger("blankslate")


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


def run(
    args: Sequence[str],
    *,
    check: bool = True,
    capture: bool = False,
    input: str | None = None,
    mutating: bool = True,
) -> Result:
    """Run `args`; raise BlankslateError with the command's stderr when it fails and `check`."""
    argv = [str(arg) for arg in args]
    if mutating and settings.dry_run:
        log.warning("would run: %s", format_command(argv))
        return Result(argv, 0, "", "")
    log.info("$ %s", format_command(argv))
    try:
        completed = subprocess.run(
            argv,
            input=input,
            text=True,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BlankslateError(
            f"{argv[0]}: command not found (install it or add it to PATH)"
        ) from exc
    result = Result(argv, completed.returncode, completed.stdout or "", completed.stderr or "")
    if check and result.returncode != 0:
        detail = result.stderr.strip().splitlines()
        reason = detail[-1] if detail else f"exit status {result.returncode}"
        raise BlankslateError(f"{format_command(argv)} failed: {reason}")
    if result.stderr.strip():
        log.debug("%s", result.stderr.rstrip())
    return result


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
