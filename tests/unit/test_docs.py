"""The user's manual stays true: README.md and docs/*.md.

- every `blankslate ...` command line they show names a command that exists, and every `--flag`
  on it is one that command (or the program) accepts;
- every relative link resolves, to a file and, with `#anchor`, to a heading there;
- the README keeps what a newcomer needs: the quick start's two commands and how to delete its
  image, the built-in ignore rules as the code defines them, how to turn blankslate off, how to
  upgrade, the rescue, the troubleshooting cases, one placeholder for the project's address;
- nothing names a path outside the repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from blankslate.app import app
from blankslate.ignore_rules import BUILTIN_IGNORES

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
MANUAL = [README, *DOCS]

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_FLAG = re.compile(r"^--?[A-Za-z][A-Za-z0-9-]*")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _prose_and_code(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line number, line, inside a fenced code block) for every line."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        yield number, line, fenced


def snippets(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, text, is a row of the commands table) for every piece of code the file shows:
    each line of a fenced block, each inline code span; a row of the table whose header is
    `| command |` gives its first cell, which names a command without `blankslate`."""
    in_table = False
    for number, line, fenced in _prose_and_code(path.read_text()):
        if fenced:
            yield number, line, False
            continue
        if line.startswith("| command |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
        spans = [m.group(2).strip() for m in _CODE_SPAN.finditer(line.replace("\\|", "|"))]
        if in_table and line.startswith("| `") and spans:
            yield number, spans[0], True
            spans = spans[1:]
        for span in spans:
            yield number, span, False


_INVOCATION = re.compile(
    r"(?:(?<![\w./-])|(?<=/))blankslate\s+(?P<rest>.*)"
    r"|nix run \.#(?P<app>[a-z-]+) -- (?P<app_rest>.*)"
    r"|nix run (?:\.|\S*/blankslate) -- (?P<run_rest>.*)"
)
_STOP = {"&&", "||", "|", ";", ">", "<", "#", "2>", ">>"}


def invocations(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, argv after `blankslate`) for every blankslate command line the file shows."""
    for number, text, table_row in snippets(path):
        if table_row:
            yield number, text.split()
            continue
        for match in _INVOCATION.finditer(text):
            if match.group("rest") is not None:
                words = match.group("rest").split()
            elif match.group("app") is not None:
                app_name = match.group("app")
                words = ([] if app_name == "default" else [app_name]) + match.group(
                    "app_rest"
                ).split()
            else:
                words = match.group("run_rest").split()
            argv: list[str] = []
            for word in words:
                if word in _STOP:
                    break
                argv.append(word)
            yield number, argv


def _options(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


ROOT: Any = typer.main.get_command(app)  # a click group (typer vendors click)


def check_invocation(argv: list[str]) -> str | None:
    """Why `blankslate ARGV` is not a command line the program accepts, or None.

    Only its shape is checked: the command (and a group's subcommand) exists, and every
    flag is one of that command's options or the program's global ones. Words that are
    not a command (`blankslate:` in quoted output, `blankslate's`) are not command lines."""
    allowed = _options(ROOT)
    command: Any = ROOT
    words = [w.strip("[](){},.'\"") for w in argv]
    words = [w for w in words if w]
    rest = words
    while hasattr(command, "commands"):
        head = next((w for w in rest if not w.startswith("-")), None)
        if head is None:
            break
        if head not in command.commands:
            if command is ROOT:
                looks_like_one = re.fullmatch(r"[a-z][a-z-]*", head) is not None
                return f"{head!r} is not a command" if looks_like_one else None
            return f"{head!r} is not a subcommand"
        command = command.commands[head]
        rest = rest[rest.index(head) + 1 :]
        allowed |= _options(command)
    for word in words:
        flag = _FLAG.match(word.split("=", 1)[0])
        if flag is not None and word.startswith("--") and flag.group(0) not in allowed:
            return f"{flag.group(0)} is not an option of `blankslate {command.name}`"
    return None


ALL_INVOCATIONS = [
    pytest.param(path, number, argv, id=f"{_rel(path)}:{number}:{' '.join(argv)[:60]}")
    for path in MANUAL
    for number, argv in invocations(path)
]


def test_the_manual_shows_command_lines() -> None:
    """The extraction finds the examples (a broken pattern would make the next test vacuous)."""
    commands = {argv[0] for path in MANUAL for _, argv in invocations(path) if argv}
    assert {"install", "diff", "seed", "mount", "passwd", "persist", "pin", "doctor"} <= commands
    assert len(ALL_INVOCATIONS) > 80


@pytest.mark.parametrize(("path", "number", "argv"), ALL_INVOCATIONS)
def test_every_command_line_in_the_manual_is_accepted(
    path: Path, number: int, argv: list[str]
) -> None:
    problem = check_invocation(argv)
    assert not problem, f"{_rel(path)}:{number}: blankslate {' '.join(argv)}: {problem}"


def test_the_checker_catches_a_wrong_flag_and_command() -> None:
    assert check_invocation(["diff", "--fail-on-lost"]) is None
    assert check_invocation(["persist", "send", "--parent", "X", "--to", "F"]) is None
    assert check_invocation(["--version"]) is None
    assert check_invocation(["diff", "--no-such-flag"])
    assert check_invocation(["persist", "sned"])
    assert check_invocation(["dif", "--root", "/"])
    assert check_invocation(["seed", "--debug", "--stop-units"]) is None
    assert check_invocation(["mount", "--stop-units"])


# --- links -------------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for _, line, fenced in _prose_and_code(path.read_text()):
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if heading and not fenced:
            base = github_anchor(heading.group(1))
            anchor, n = base, 0
            while anchor in found:
                n += 1
                anchor = f"{base}-{n}"
            found.add(anchor)
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    for number, line, fenced in _prose_and_code(path.read_text()):
        if fenced:
            continue
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            target = match.group(1)
            if not re.match(r"^[a-z]+:", target):
                yield number, target


ALL_LINKS = [
    pytest.param(path, number, target, id=f"{_rel(path)}:{number}:{target}")
    for path in MANUAL
    for number, target in links(path)
]


@pytest.mark.parametrize(("path", "number", "target"), ALL_LINKS)
def test_every_relative_link_resolves(path: Path, number: int, target: str) -> None:
    file_part, _, anchor = target.partition("#")
    linked = (path.parent / file_part).resolve() if file_part else path
    assert linked.exists(), f"{_rel(path)}:{number}: {target}: no such file"
    assert linked.is_relative_to(REPO), f"{_rel(path)}:{number}: {target} leaves the repository"
    if anchor:
        assert linked.suffix == ".md", f"{_rel(path)}:{number}: {target}: anchor into a non-page"
        assert anchor in anchors(linked), f"{_rel(path)}:{number}: {target}: no such heading"


def test_the_link_checker_sees_a_broken_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n## A `b` c.d\n\n```sh\n# not a heading\n```\n")
    assert anchors(page) == {"top", "a-b-cd"}
    assert "not-a-heading" not in anchors(page)


# --- what the README must hold -----------------------------------------------------------------


def _section(text: str, heading: str) -> str:
    """The text of the `## heading` section, up to the next heading of level 1 or 2."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^#{{1,2}} |\Z)", text, re.M | re.S)
    assert match, f"README.md has no section '## {heading}'"
    return match.group(1)


def test_the_readme_is_a_manual_a_newcomer_reads_top_to_bottom() -> None:
    text = README.read_text()
    headings = re.findall(r"^## (.*)$", text, re.M)
    order = [
        "Quick start",
        "Your first server",
        "Commands",
        "Troubleshooting",
        "Upgrading",
        "Turning blankslate off",
        "Reference",
    ]
    assert [h for h in headings if h in order] == order
    assert len(text.splitlines()) <= 760, "README.md: move reference detail to docs/"


def test_the_quick_start_is_two_commands_and_says_how_to_delete_its_image() -> None:
    quick = _section(README.read_text(), "Quick start")
    block = re.search(r"```sh\n(.*?)```", quick, re.S)
    assert block
    commands = block.group(1).strip().splitlines()
    assert len(commands) == 2
    assert commands[0].startswith(".ci/setup && .venv/bin/blankslate install --image ")
    assert commands[1] == ".venv/bin/python -m pytest"
    # CI runs "the exact test command that README.md gives": .ci/run has it as a line of its own.
    ci_run = (REPO / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci_run
    image = re.search(r"--image (\S+)", commands[0])
    assert image
    root = re.search(r"--root (\S+)", commands[0])
    assert root
    last = quick.strip().split("\n\n")[-1]
    assert f"blankslate unmount --root {root.group(1)}" in last, "it ends with the cleanup"
    assert f"rm {image.group(1)}" in last, "it ends with the cleanup"


def test_the_readme_lists_the_built_in_ignore_rules_as_the_code_defines_them() -> None:
    text = README.read_text()
    listed = re.findall(r"^\| `([^`]+)` \| ([^|]+?) \|$", text, re.M)
    rules = dict(listed)
    for pattern, reason in BUILTIN_IGNORES:
        assert rules.get(pattern) == reason, f"built-in rule {pattern} missing or different"


def test_the_readme_covers_turning_off_upgrading_rescue_and_troubleshooting() -> None:
    text = README.read_text()
    off = _section(text, "Turning blankslate off")
    assert "blankslate.enable = false" in off
    assert "fileSystems" in off and "users.users" in off
    upgrading = _section(text, "Upgrading")
    assert "nix flake update blankslate" in upgrading
    assert "blankslate pin" in upgrading
    trouble = _section(text, "Troubleshooting")
    for case in ("The reset did not happen", "Cannot log in", "Disk full", "Rescue"):
        assert f"**{case}" in trouble, case
    assert "blankslate mount" in trouble and "nixos-enter" in trouble


def test_the_project_address_is_one_placeholder_defined_once() -> None:
    for path in MANUAL:
        assert "<owner>" not in path.read_text(), f"{_rel(path)} still says <owner>"
    text = README.read_text()
    assert text.count("replace `OWNER`") == 1


@pytest.mark.parametrize("path", MANUAL, ids=_rel)
def test_the_manual_names_no_path_outside_the_repository(path: Path) -> None:
    text = path.read_text()
    assert "../shared" not in text
    assert not re.search(r"(?<![\w.])/work(/|\b)", text)
