"""Talking to the person at the terminal: step progress, tables, confirmation."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

from blankslate.display import printable
from blankslate.errors import BlankslateError

console = Console(stderr=True, highlight=False)

Step = tuple[str, Callable[[], None]]


def run_steps(steps: Sequence[Step]) -> None:
    """Run each step in order, numbered, with its duration; the first failure names its step."""
    for number, (title, action) in enumerate(steps, 1):
        console.print(f"[{number}/{len(steps)}] {printable(title)}", markup=False)
        started = time.monotonic()
        try:
            action()
        except BlankslateError as error:
            raise BlankslateError(f"step {number}/{len(steps)} ({title}): {error}") from error
        console.print(f"      ok ({time.monotonic() - started:.1f}s)", markup=False)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(printable(cell) for cell in row))
    console.print(grid)


def confirm_by_typing(expected: str, prompt: str) -> None:
    """Destructive steps need the user to type `expected`; no terminal means no consent."""
    if not sys.stdin.isatty():
        raise BlankslateError("no terminal to confirm on; nothing written (add --yes to proceed)")
    console.print(prompt, markup=False, end="")
    answer = sys.stdin.readline().strip()
    if answer != expected:
        raise BlankslateError(f"you typed {answer!r}, not {expected!r}; nothing written")


def say(message: str) -> None:
    """One line to the person; whatever a name in it holds is escaped (`display.printable`),
    so no escape sequence or line break reaches the terminal."""
    console.print(printable(message), markup=False, soft_wrap=True)


def warn(message: str) -> None:
    console.print(f"warning: {printable(message)}", markup=False, style="yellow", soft_wrap=True)
