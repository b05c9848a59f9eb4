"""Property tests of every parser: any input gives a result or a one-line BlankslateError."""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from blankslate import cli, commands, disko, ignore_rules, plan, plansource
from blankslate.app import app
from blankslate.errors import BlankslateError

from ..conftest import PARSER_CORPUS
from ..support.strategies import SURROGATES

PROPERTY = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CLI_PROPERTY = settings(PROPERTY, max_examples=100)  # each runs the typer app: a few ms
PARSER = settings(PROPERTY, max_examples=PARSER_CORPUS)  # the parsers' corpus, full in CI

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


def one_line(error: BlankslateError) -> None:
    """The CLI prints it as one line (a message may quote a name holding a newline)."""
    assert len(cli.error_line(str(error)).splitlines()) == 1, str(error)


def streams_as_run(monkeypatch: pytest.MonkeyPatch) -> io.TextIOWrapper:
    """stdout and stderr as the interpreter opens them under a UTF-8 locale (stderr with
    backslashreplace), not pytest's strict capture; returns stderr."""
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    return stderr


def written(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode()


def default_plan() -> dict[str, Any]:
    loaded = json.loads(plansource.default_text())
    assert isinstance(loaded, dict)
    return loaded


def paths_of(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every place in a JSON document, as the keys and indices leading to it."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_of(item, (*prefix, index))
    return found


PLACES = paths_of(default_plan())


def check_plan(data: object) -> None:
    """A plan, or one line; a plan that carries a disko tree prints it (`blankslate disko`),
    or says in one line why not."""
    try:
        loaded = plan.from_json(data)
        assert isinstance(loaded, plan.Plan)
        if loaded.disko is not None:
            text = disko.expression(loaded, "/dev/sda")
            assert '"/dev/sda"' in text
            text.encode()  # printable: no lone surrogate reaches stdout
    except BlankslateError as error:
        one_line(error)


@PARSER
@given(data=JSON)
@example(data={"\n": None})  # a key quoted in the message: printed on one line all the same
def test_from_json_on_any_value(data: object) -> None:
    check_plan(data)


@PROPERTY
@given(place=st.sampled_from(PLACES), value=JSON)
def test_from_json_on_the_default_plan_with_one_value_replaced(
    place: tuple[object, ...], value: object
) -> None:
    document: Any = default_plan()
    if not place:
        check_plan(value)
        return
    target = document
    for step in place[:-1]:
        target = target[step]
    target[place[-1]] = value
    check_plan(document)


def plan_bytes() -> st.SearchStrategy[bytes]:
    text = plansource.default_text().encode()
    spliced = st.builds(
        lambda cut, junk: text[:cut] + junk + text[cut:],
        st.integers(0, len(text)),
        st.binary(max_size=8),
    )
    return st.one_of(st.binary(max_size=200), spliced, JSON.map(lambda v: json.dumps(v).encode()))


@PARSER
@given(data=plan_bytes())
def test_from_file_on_any_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "plan.json"
        path.write_bytes(data)
        try:
            assert isinstance(plansource.from_file(path), plan.Plan)
        except BlankslateError as error:
            one_line(error)


YAML_WORDS = st.sampled_from(
    ["ignore:", "pattern:", "reason:", "- ", "  ", "\n", "#", "/a/**", "[", "]", "{", "}", "&a",
     "*a", "!!str", ":", "'", '"', "---", "...", "%YAML 1.2", "\t", "x", "\xff", "\ufeff"]
)  # fmt: skip
IGNORE_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(YAML_WORDS, max_size=25).map("".join),
    st.builds(
        lambda pattern, reason: f"ignore:\n  - pattern: {pattern}\n    reason: {reason}\n",
        st.text(max_size=20),
        st.text(max_size=20),
    ),
)


@PARSER
@given(content=st.one_of(IGNORE_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
                         st.binary(max_size=60)))  # fmt: skip
@example(content=b"\x1f")  # ruamel's reader error spans two lines
def test_the_ignore_file_parser_on_any_bytes(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audit.yaml"
        path.write_bytes(content)
        try:
            rules = ignore_rules.load_file(path)
        except BlankslateError as error:
            one_line(error)
            return
        assert all(isinstance(rule, ignore_rules.Rule) for rule in rules)
        try:
            ignore_rules.add_rule(path, "/srv/added/**", "a property test")
        except BlankslateError as error:
            one_line(error)
            return
        assert "/srv/added/**" in [rule.pattern for rule in ignore_rules.load_file(path)]


# --------------------------------------------------------------------------- the command line

OPTIONS = sorted(
    {
        option
        for command in typer.main.get_command(app).commands.values()  # type: ignore[attr-defined]
        for parameter in command.params
        for option in [*parameter.opts, *parameter.secondary_opts]
    }
    | {"--debug", "--quiet", "-q", "--help", "--format=json", "--plan=", "--root="}
)
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
# An argument as the kernel hands it over: any bytes but NUL, decoded as sys.argv is.
ARGUMENT = st.one_of(
    st.sampled_from(OPTIONS),
    st.sampled_from(COMMANDS),
    st.text(max_size=12).filter(lambda text: "\0" not in text),
    st.binary(max_size=12).filter(lambda raw: b"\0" not in raw).map(os.fsdecode),
    st.sampled_from(["", "-", "--", "/", "/nonexistent", "x" * 5000, "text", "json", "yaml"]),
)
ARGV = st.lists(ARGUMENT, max_size=8)


@PARSER
@given(
    argv=st.one_of(ARGV, st.builds(lambda c, a: [c, *a], st.sampled_from(["diff", "seed"]), ARGV))
)
def test_parse_plain_on_any_argv(argv: list[str]) -> None:
    invocation = cli.parse_plain(argv)
    if invocation is not None:
        grammar = cli.GRAMMARS[invocation.command]
        assert invocation.parameters.keys() == {*grammar.defaults, "source"}


@CLI_PROPERTY
@given(argv=ARGV)
def test_cli_main_parses_any_argv(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command's body is replaced by one that does nothing: only the parsing runs."""
    streams_as_run(monkeypatch)
    for info in app.registered_commands:
        original = info.callback
        assert original is not None
        monkeypatch.setattr(info, "callback", functools.wraps(original)(lambda *a, **k: None))
    monkeypatch.setattr(cli, "run_plain", lambda invocation: 0)
    try:
        cli.main(argv)
        code: object = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        commands.configure_logging(debug=False, quiet=False)
    assert code in (0, 2, None)


SAFE = st.sampled_from(["plan", "--help", "--debug", "-q", "--plan", "--host", "--flake"])


@CLI_PROPERTY
@given(argv=st.lists(st.one_of(SAFE, ARGUMENT.filter(lambda a: a not in COMMANDS)), max_size=6))
def test_cli_main_on_any_argv_of_the_plan_command(
    argv: list[str],
    fp: FakeProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`plan` reads a file or asks `nix eval` (failing here): nothing else runs or writes."""
    stderr = streams_as_run(monkeypatch)
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    fp.register(["nix", fp.any()], returncode=1, stderr="error: no such flake", occurrences=10)
    argv = ["plan", *argv] if "plan" not in argv else argv
    try:
        cli.main(argv)
        code: object = 0
    except SystemExit as exit_:
        code = exit_.code
    except BlankslateError as error:  # --debug re-raises it
        assert "--debug" in argv
        one_line(error)
        code = 1
    except OSError:  # --debug re-raises it
        assert "--debug" in argv
        code = 1
    finally:
        commands.configure_logging(debug=False, quiet=False)
    assert code in (0, 1, 2, None)
    error_lines = [line for line in written(stderr).splitlines() if line]
    if code == 1 and "--debug" not in argv:
        assert error_lines[-1].startswith("error: "), error_lines


# --------------------------------------------------------------------------- diff's documents

# A name as the kernel hands it over (any bytes but NUL and "/"), decoded as os.fsdecode does,
# or any text (astral characters, DEL, controls): the YAML and JSON documents keep each.
NAME = st.one_of(
    st.text(st.characters(blacklist_categories=SURROGATES, blacklist_characters="/\0"), min_size=1),
    st.binary(min_size=1, max_size=20).filter(lambda raw: b"\0" not in raw and b"/" not in raw)
    .map(os.fsdecode),
)  # fmt: skip


def _expected_name(path: str) -> str:
    """What "path" reads back as: the name, or for a name that is not UTF-8, U+FFFD in place
    of each byte that is not."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@PROPERTY
@given(names=st.lists(NAME, min_size=1, max_size=6), reason=st.text(max_size=10))
@example(names=["caf\u00e9 \U0001f600"], reason="")  # an emoji: a surrogate pair in JSON
@example(names=["del\x7f"], reason="\x7f\U0001f600")  # DEL: not allowed raw in YAML
def test_every_name_round_trips_through_ruamel_and_pyyaml(names: list[str], reason: str) -> None:
    import yaml as pyyaml
    from ruamel.yaml import YAML

    from blankslate import render
    from blankslate.classify import Report

    paths = sorted({f"/srv/{name}" for name in names})
    report = Report("walk", [(path, "file", 1, "ignored", reason) for path in paths])
    document = render.render_yaml(report)  # files, none lost: nothing to collapse
    from_json = json.loads(render.render_json(report))
    from_ruamel = YAML(typ="safe", pure=True).load(document)
    from_pyyaml = pyyaml.safe_load(document)
    assert from_ruamel == from_pyyaml == from_json
    assert [entry["path"] for entry in from_pyyaml["entries"]] == [_expected_name(p) for p in paths]
    assert all(entry["reason"] == reason for entry in from_pyyaml["entries"])
    for entry, path in zip(from_pyyaml["entries"], paths, strict=True):
        if "pathBytes" in entry:
            assert base64.b64decode(entry["pathBytes"]) == os.fsencode(path)


@PROPERTY
@given(names=st.lists(NAME, min_size=1, max_size=8), statuses=st.lists(st.booleans(), min_size=8))
@example(names=["caf\u00e9 \U0001f600", "plain"], statuses=[True] * 8)
def test_a_full_document_made_a_run_at_a_time_equals_one_made_entry_by_entry(
    names: list[str], statuses: list[bool]
) -> None:
    """`--full` makes the lines of plainly lost entries a run at a time (render.PlainRun);
    the document is the one the entry-by-entry writer makes, whatever the names hold."""
    from blankslate import render
    from blankslate.classify import EntryTuple, Report

    paths = sorted({f"/srv/{name}" for name in names})
    entries: list[EntryTuple] = [
        (path, "file", index, "lost" if lost else "ignored", "" if lost else "r")
        for index, (path, lost) in enumerate(zip(paths, statuses, strict=False))
    ]
    report = Report("walk", entries)
    heading = render.Heading.of(report)
    one_by_one: list[render.Row] = [(entry, None) for entry in entries]
    for write in (render.write_json_document, render.write_yaml_document):
        runs, rows = io.StringIO(), io.StringIO()
        write(runs, heading, render.listed_rows(report, full=True), [])
        write(rows, heading, one_by_one, [])
        assert runs.getvalue() == rows.getvalue()


@PROPERTY
@given(depth=st.integers(min_value=1, max_value=3000), flow=st.booleans())
@example(depth=3000, flow=True)
@example(depth=3000, flow=False)
def test_an_ignore_file_nested_deep_is_one_line(depth: int, flow: bool) -> None:
    """Nested 3,000 deep, the ignore file ended in a RecursionError traceback (#28)."""
    if flow:
        text = "ignore: " + "[" * depth + "]" * depth + "\n"
    else:
        text = "ignore:\n" + "".join(" " * level + "-\n" for level in range(2, depth + 2))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audit.yaml"
        path.write_text(text)
        try:
            ignore_rules.load_file(path)
        except BlankslateError as error:
            one_line(error)
            if depth + 1 > ignore_rules.MAX_DEPTH:
                assert "nested too deeply" in str(error)
