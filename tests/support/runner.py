"""The CLI as a user runs it: `python -m blankslate ...` in a child process, its output
captured as text, its exit status left to the test (never raised)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# How long one command may take before the test fails (a hang, not a slow machine).
TIMEOUT = 300
TIMEOUT_IN = 120


def blankslate(
    *args: str,
    quiet: bool = False,
    cwd: Path | None = None,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    no_color: bool = False,
    timeout: float = TIMEOUT,
    preexec_fn: Callable[[], object] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`blankslate [--quiet] ARGS`: `stdin` is its input (None: none), `env` its whole
    environment (None: this process's); `no_color` adds NO_COLOR=1 to that environment;
    `preexec_fn` runs in the child before blankslate starts."""
    if no_color:
        env = {**(os.environ if env is None else env), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "blankslate", *(["--quiet"] if quiet else []), *args],
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
        preexec_fn=preexec_fn,
    )


def quiet_blankslate(
    *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`blankslate --quiet ARGS` (no "plan: ..." line on stderr)."""
    return blankslate(*args, quiet=True, stdin=stdin, env=env)


def blankslate_in(
    cwd: Path, *args: str, no_color: bool = False
) -> subprocess.CompletedProcess[str]:
    """`blankslate ARGS` run in the directory `cwd`; with `no_color`, NO_COLOR=1 is added to
    this process's environment."""
    return blankslate(*args, cwd=cwd, no_color=no_color, timeout=TIMEOUT_IN)
