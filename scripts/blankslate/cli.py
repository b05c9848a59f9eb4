"""The `blankslate` program: one-line errors, and a fast start for `diff` and `seed`.

Loading typer (and what it loads) costs more than a tenth of a second, a large part of a
monitoring run of `diff`. So `diff`, and `seed` with `--yes` or `--dry-run`, whose arguments are
plain (known options, each given once, with values that need no checking) are parsed here from
fixed tables and handed to the same functions the typer app calls. Anything else, `--help` and
every usage error included, goes to the typer app in `blankslate.app`.
"""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Loading modules makes thousands of objects and no garbage: the cyclic collector, paused while
# they load, would only walk them again and again (a few ms of `diff`'s start).
_COLLECTING = gc.isenabled()
gc.disable()
try:
    from blankslate import commands, plansource
    from blankslate.errors import BlankslateError
finally:
    if _COLLECTING:
        gc.enable()

GLOBAL_FLAGS = commands.GLOBAL_FLAGS
PLAN_OPTIONS = {"--plan": "plan_file", "--host": "host", "--flake": "flake"}  # one PlanSource
FORMATS = ("text", "json", "yaml")
# What `diff --suggest` does not go with (nor --format yaml).
SUGGEST_ALONE = frozenset({"full", "all_entries", "fail_on_lost", "report_file", "metrics_file"})


@dataclass(frozen=True)
class Grammar:
    """The options of one command as `blankslate.app` declares them, with their defaults."""

    options: dict[str, str]  # option -> parameter, taking a value
    flags: dict[str, str]  # option -> parameter, set to True
    path_parameters: frozenset[str]
    defaults: dict[str, Any]
    positional: str | None = None  # the parameter collecting arguments
    required_one_of: frozenset[str] = field(default_factory=frozenset)
    exclusive: frozenset[str] = field(default_factory=frozenset)  # at most one of them


GRAMMARS = {
    "diff": Grammar(
        options={**PLAN_OPTIONS, "--device": "device", "--root": "root", "--format": "format",
                 "--ignore-file": "ignore_file", "--report": "report_file",
                 "--metrics": "metrics_file", "--old-root": "old_root"},
        flags={"--all": "all_entries", "--fail-on-lost": "fail_on_lost", "--full": "full",
               "--verbose": "verbose", "-v": "verbose", "--suggest": "suggest"},
        path_parameters=frozenset({"plan_file", "root", "ignore_file", "report_file",
                                   "metrics_file"}),
        defaults={"device": None, "root": None,
                  "format": "text", "all_entries": False, "ignore_file": None,
                  "fail_on_lost": False, "full": False, "verbose": False, "report_file": None,
                  "metrics_file": None, "old_root": None, "suggest": False},
    ),
    "seed": Grammar(
        options={**PLAN_OPTIONS, "--root": "root"},
        flags={"--dry-run": "dry_run", "--yes": "yes", "-y": "yes", "--hidden": "hidden",
               "--stop-units": "stop_units", "--live": "live"},
        path_parameters=frozenset({"plan_file", "root"}),
        defaults={"paths": (), "root": Path("/"),
                  "dry_run": False, "yes": False, "hidden": False, "stop_units": False,
                  "live": False},
        positional="paths",
        required_one_of=frozenset({"dry_run", "yes"}),  # never asks: no prompt to write here
        exclusive=frozenset({"stop_units", "live"}),  # a usage error: typer's
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Invocation:
    command: str
    debug: bool
    quiet: bool
    parameters: dict[str, Any]


def parse_plain(argv: list[str]) -> Invocation | None:
    """The invocation when `argv` is plain `diff` or `seed`; None leaves it to typer."""
    switches = {"debug": False, "quiet": False}
    index = 0
    while index < len(argv) and argv[index] in GLOBAL_FLAGS:
        switches[GLOBAL_FLAGS[argv[index]]] = True
        index += 1
    if index >= len(argv) or argv[index] not in GRAMMARS:
        return None
    command, grammar = argv[index], GRAMMARS[argv[index]]
    given: dict[str, Any] = {}
    arguments: list[str] = []
    rest = iter(argv[index + 1 :])
    for token in rest:
        name, equals, value = token.partition("=")
        if token in GLOBAL_FLAGS:  # global flags go after the command too
            switches[GLOBAL_FLAGS[token]] = True
        elif name in grammar.options:
            value = value if equals else next(rest, "")
            parameter = grammar.options[name]
            if not value or value.startswith("-") or parameter in given:
                return None
            given[parameter] = Path(value) if parameter in grammar.path_parameters else value
        elif token in grammar.flags and grammar.flags[token] not in given:
            given[grammar.flags[token]] = True
        elif grammar.positional is not None and token and not token.startswith("-"):
            arguments.append(token)
        else:
            return None
    if grammar.required_one_of and not grammar.required_one_of & given.keys():
        return None
    if len(grammar.exclusive & given.keys()) > 1:
        return None
    plan_file = given.pop("plan_file", None)
    try:  # nixos-rebuild's --flake REF#HOST, as PlanSource.of reads it for typer too
        source = plansource.PlanSource.of(
            plan_file, given.pop("host", None), given.pop("flake", ".")
        )
    except ValueError:
        return None  # a usage error: typer's
    if given.get("format", "text") not in FORMATS:
        return None
    if given.get("suggest") and (SUGGEST_ALONE & given.keys() or given.get("format") == "yaml"):
        return None  # a usage error: typer's
    if plan_file is not None and os.path.isdir(plan_file):
        return None  # typer says "is a directory"
    if grammar.positional is not None:
        given[grammar.positional] = tuple(arguments)
    parameters = {**grammar.defaults, **given, "source": source}
    return Invocation(command, switches["debug"], switches["quiet"], parameters)


def _never_asked(question: str) -> None:
    raise BlankslateError(f"cannot ask here: {question}")  # parse_plain requires --yes/--dry-run


def run_plain(invocation: Invocation) -> int:
    commands.configure_logging(debug=invocation.debug, quiet=invocation.quiet)
    if invocation.command == "diff":
        return commands.diff(**invocation.parameters)
    commands.seed(**invocation.parameters, confirm=_never_asked)
    return 0


def wants_debug(argv: list[str]) -> bool:
    """--debug anywhere before `--`: tracebacks instead of one-line errors."""
    return "--debug" in argv[: argv.index("--")] if "--" in argv else "--debug" in argv


def audit_exit_code(arguments: list[str]) -> int:
    """The exit status of a failure: 2 ("the audit itself failed") for `diff --fail-on-lost`,
    whose 1 means "something would be lost"; 1 for everything else."""
    command = next((index for index, token in enumerate(arguments) if token[:1] != "-"), None)
    is_diff = command is not None and arguments[command] == "diff"
    if is_diff and "--fail-on-lost" in arguments[(command or 0) + 1 :]:
        return commands.AUDIT_FAILED
    return 1


def main(argv: list[str] | None = None) -> None:
    """The program on `argv` (default: the command line); leaves through SystemExit."""
    arguments = sys.argv[1:] if argv is None else argv
    debug = wants_debug(arguments)
    failed = audit_exit_code(arguments)
    try:
        invocation = parse_plain(arguments)
        if invocation is not None:
            sys.exit(run_plain(invocation))
        from blankslate import completion  # typer's: loaded only off the fast path
        from blankslate.app import app, global_flags_first

        if completion.COMPLETE_VAR in os.environ:  # the shell asks what to complete
            completion.register()
        app(args=global_flags_first(arguments), prog_name="blankslate")
    except BlankslateError as error:
        if debug:
            raise
        print(error_line(str(error)), file=sys.stderr)
        sys.exit(failed)
    except OSError as error:
        if debug or isinstance(error, BrokenPipeError):
            raise  # a closed pipe is for `run`, which exits without a word
        print(error_line(describe_os_error(error)), file=sys.stderr)
        sys.exit(failed)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception:
        if failed == 1:
            raise
        import traceback

        traceback.print_exc()  # a bug; monitoring still sees "the audit failed", not "lost"
        sys.exit(failed)


# Every character str.splitlines() ends a line at, as an escape.
_LINE_BREAKS = str.maketrans(
    {char: repr(char)[1:-1] for char in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}
)


def error_line(message: str) -> str:
    """`error: MESSAGE` on one line, whatever a name quoted in the message holds: line breaks,
    escape sequences and every other character a terminal acts on are escaped."""
    from blankslate.display import printable

    return "error: " + printable(message.translate(_LINE_BREAKS))


def describe_os_error(error: OSError) -> str:
    """What the system refused, on one line, for the errors no command turned into its own
    message (a path longer than PATH_MAX, say): "/very/long/path...: File name too long"."""
    from blankslate.display import quote_path

    what = error.strerror or (str(error).splitlines() or [type(error).__name__])[0]
    if error.filename is None:
        return what
    name = error.filename
    name = os.fsdecode(name) if isinstance(name, str | bytes) else str(name)
    if len(name) > 200:
        name = f"{name[:100]}...({len(name)} characters)"
    return f"{quote_path(name)}: {what}"


def run() -> None:
    """The program: `main`, and for a plain `diff` out through os._exit without tearing the
    interpreter down: freeing the hundreds of thousands of objects of a large diff would only
    cost time at the end. Every other command leaves the ordinary way."""
    invocation = parse_plain(sys.argv[1:])
    if invocation is None or invocation.command != "diff":
        main()
        return
    # A diff makes no garbage cycles (the audit pauses the collector for its scan already):
    # the modules it loads are not walked either.
    gc.disable()
    try:
        main()
        code: object = 0
    except SystemExit as exit_:
        code = exit_.code
    except BrokenPipeError:
        code = 1  # the reader went away while the report streamed out (`diff | head`)
    if isinstance(code, str):
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else 0 if code is None else 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        status = status or 1
    os._exit(status)
