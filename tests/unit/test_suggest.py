"""`diff --suggest`: grouping of the lost entries, their Nix text and JSON, the plan's units."""

from __future__ import annotations

import copy
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from blankslate import audit, beneath, plan, suggest
from blankslate.classify import EntryTuple, hidden_reason
from blankslate.errors import BlankslateError
from blankslate.plansource import PlanSource

from ..conftest import PLANS
from ..support.strategies import SURROGATES
from .test_properties import JSON, PARSER, PROPERTY, one_line

SUGGEST_PLAN = json.loads((PLANS / "suggest.json").read_text())
NAMES = {0: "root", 990: "web", 1000: "alice", 100: "users", 991: "www"}


def the_plan(**units: Any) -> plan.Plan:
    data = copy.deepcopy(SUGGEST_PLAN)
    if units:
        data["units"] = [units]
    return plan.from_json(data)


def lost(path: str, kind: str = "dir", reason: str = "") -> EntryTuple:
    return (path, kind, 0, "lost", reason)


def kept(path: str, kind: str = "dir") -> EntryTuple:
    return (path, kind, 0, "persisted", "persisted directory")


def run(
    entries: list[EntryTuple],
    observed: dict[str, tuple[int, int, int]] | None = None,
    the: plan.Plan | None = None,
) -> suggest.Suggestion:
    """Grouped with every path observed as root's 0755 directory unless `observed` says."""
    seen = observed or {}

    def observe(path: str) -> tuple[int, int, int] | None:
        return seen.get(path, (0, 0, 0o40755))

    def name(number: int) -> str:
        return NAMES.get(number, str(number))

    return suggest.group(sorted(entries), the or the_plan(), observe, name, name)


def rows(found: suggest.Suggestion) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    return {
        (g.by, g.name): [(i.name, i.kind, i.user, i.group, i.mode, i.ignore) for i in g.items]
        for g in found.groups
    }


def test_a_static_users_state_directory_is_its_service_with_the_observed_owner() -> None:
    found = run(
        [lost("/var/lib/web"), lost("/var/lib/web/sessions"), lost("/var/lib/web/a", "file")],
        {"/var/lib/web": (990, 991, 0o40750)},
    )
    assert rows(found) == {
        ("service", "web"): [("/var/lib/web", "directory", "web", "www", "0750", None)]
    }
    assert found.groups[0].note == "web.service: StateDirectory"


def test_a_dynamic_users_state_is_its_private_directory_and_the_link_is_systemds() -> None:
    found = run(
        [
            lost("/var/lib/private"),
            lost("/var/lib/private/app"),
            lost("/var/lib/private/app/db", "file"),
            lost("/var/lib/app", "symlink"),
            lost("/var/lib/private/two-b"),
        ],
        {"/var/lib/private/app": (61234, 61234, 0o40700)},
    )
    assert rows(found) == {
        ("service", "app"): [("/var/lib/private/app", "directory", "root", "root", "0700", None)],
        ("service", "two"): [("/var/lib/private/two-b", "directory", "root", "root", "0755", None)],
    }
    assert "DynamicUser" in found.groups[0].note
    assert found.skipped == (suggest.Skipped("/var/lib/app", "a symlink systemd makes for app"),)


CACHE_PATTERN = "/var/cache/private/app/**"


def test_a_units_cache_directory_is_offered_as_an_ignore_pattern() -> None:
    found = run([lost("/var/cache/private/app"), lost("/var/cache/private/app/x", "file")])
    assert rows(found) == {
        ("service", "app"): [
            (
                "/var/cache/private/app",
                "directory",
                "root",
                "root",
                "0755",
                "/var/cache/private/app/**",
            )
        ]
    }


def test_home_paths_are_the_users_relative_to_the_home() -> None:
    alice = (1000, 100, 0o40700)
    found = run(
        [
            lost("/home"),
            lost("/home/alice"),
            lost("/home/alice/.bash_history", "file"),
            lost("/home/alice/src"),
            lost("/home/alice/src/main.c", "file"),
            lost("/root"),
            lost("/root/.viminfo", "file"),
        ],
        {"/home/alice/.bash_history": (1000, 100, 0o100600), "/home/alice/src": alice},
    )
    assert rows(found) == {
        ("user", "alice"): [
            (".bash_history", "file", "alice", "users", "0600", None),
            ("src", "directory", "alice", "users", "0700", None),
        ],
        ("user", "root"): [(".viminfo", "file", "root", "root", "0755", None)],
    }
    text = suggest.render_nix(found)
    assert 'environment.persistence."/persist".users.alice = {' in text
    assert '{ directory = "src"; user = "alice"; group = "users"; mode = "0700"; }' in text


def test_the_rest_goes_by_top_directory_topmost_only() -> None:
    found = run(
        [
            lost("/srv"),
            lost("/srv/data"),
            lost("/srv/data/f", "file"),
            lost("/etc/notes", "file"),
            lost("/opt"),
            lost("/opt/x", "file"),
        ]
    )
    assert rows(found) == {
        ("top", "/etc"): [("/etc/notes", "file", "root", "root", "0755", None)],
        ("top", "/opt"): [("/opt", "directory", "root", "root", "0755", None)],
        ("top", "/srv"): [("/srv", "directory", "root", "root", "0755", None)],
    }


def test_a_directory_with_a_kept_entry_below_is_not_taken_whole() -> None:
    found = run(
        [
            lost("/srv"),
            kept("/srv/kept"),
            lost("/srv/a"),
            lost("/srv/a/f", "file"),
            lost("/srv/b", "file"),
            (*lost("/srv/c")[:3], "ignored", "a rule"),
        ]
    )
    assert [i.path for i in found.groups[0].items] == ["/srv/a", "/srv/b"]


@pytest.mark.parametrize(
    ("path", "kind", "pattern"),
    [
        ("/home/alice/.cache", "dir", "/home/alice/.cache/**"),
        ("/srv/tmp", "dir", "/srv/tmp/**"),
        ("/srv/app/Cache", "dir", "/srv/app/Cache/**"),
        ("/srv/cache/one.db", "file", "/srv/cache/one.db"),
        ("/srv/cache/[x]", "file", None),  # a glob character: no pattern names only it
        ("/srv/cache/a*", "file", None),
    ],
)
def test_a_cache_is_offered_an_ignore_pattern(path: str, kind: str, pattern: str | None) -> None:
    entries = [lost(path, kind), kept(path.rpartition("/")[0] + "/kept")]
    (item,) = [i for g in run(entries).groups for i in g.items]
    assert item.cache
    assert item.ignore == pattern
    text = suggest.render_nix(run(entries))
    assert "  blankslate.audit.ignore = [\n" in text
    if pattern is not None:
        assert f'\n    "{pattern}"\n' in text
    else:
        assert "# no ignore pattern matches this name; to keep it:" in text


def test_what_a_mount_hides_is_its_own_group_without_owner() -> None:
    reason = hidden_reason("the bind mount of /var/lib/nixos")
    found = run(
        [
            kept("/var/lib/nixos"),
            lost("/var/lib/nixos/old", reason=reason),
            lost("/var/lib/nixos/old/x", "file", reason),
        ]
    )
    (grouped,) = found.groups
    assert (grouped.by, grouped.name) == ("hidden", "the bind mount of /var/lib/nixos")
    assert [(i.path, i.user, i.mode) for i in grouped.items] == [("/var/lib/nixos/old", None, None)]
    assert "blankslate seed --hidden" in suggest.render_nix(found)
    assert "blankslate.persistence" not in suggest.render_nix(found)


def test_names_nix_cannot_hold_are_skipped_with_a_note() -> None:
    bad = ["/srv/odd\udcffname", "/srv/esc\x1b[31m", "/srv/bell\x07"]
    found = run([lost("/srv"), kept("/srv/kept"), *(lost(p, "file") for p in bad)])
    assert found.groups == ()
    assert sorted(s.path for s in found.skipped) == sorted(bad)
    text = suggest.render_nix(found)
    assert "\x1b" not in text and "\x07" not in text
    assert "#   $'/srv/odd\\xffname': Nix strings cannot hold" in text
    assert json.loads(json.dumps(suggest.to_json(found)))["skipped"][0]["path"].startswith("$'")


def test_an_entry_gone_since_the_scan_is_skipped() -> None:
    found = suggest.group(
        [lost("/srv"), lost("/srv/x", "file")],
        the_plan(),
        lambda path: None,
        str,
        str,
    )
    assert found.groups == ()
    assert found.skipped == (suggest.Skipped("/srv", suggest.GONE),)


def test_a_socket_or_fifo_is_not_suggested() -> None:
    found = run([lost("/srv"), kept("/srv/kept"), lost("/srv/fifo", "other")])
    assert found.groups == ()
    assert [s.why for s in found.skipped] == ["not a file or directory (a socket, fifo or device)"]


@pytest.mark.parametrize(
    ("text", "nix"),
    [
        ("plain", '"plain"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("${x}", '"\\${x}"'),
        ("$${x}", '"\\$\\${x}"'),
        ("$x {y}", '"\\$x {y}"'),
        ("new\nline\ttab\rcr", '"new\\nline\\ttab\\rcr"'),
    ],
)
def test_nix_strings_escape_quotes_backslashes_and_interpolation(text: str, nix: str) -> None:
    assert suggest.nix_string(text) == nix


@pytest.mark.parametrize(
    ("name", "nix"), [("alice", "alice"), ("a-b_c'", "a-b_c'"), ("in", '"in"'), ("1x", '"1x"')]
)
def test_nix_attribute_names(name: str, nix: str) -> None:
    assert suggest.nix_attribute(name) == nix


def test_nothing_lost_says_so_and_is_still_an_attribute_set() -> None:
    text = suggest.render_nix(run([kept("/srv")]))
    assert "# Nothing is lost at the next boot: nothing to add." in text
    assert "{\n}\n" in text


COMPONENT = st.text(
    st.characters(blacklist_categories=SURROGATES, blacklist_characters="/\x00"), min_size=1
).filter(lambda name: name not in (".", ".."))


@PROPERTY
@given(
    names=st.lists(COMPONENT, min_size=1, max_size=5),
    top=st.sampled_from(["/srv", "/home/alice", "/var/lib/web", "/var/cache", "/root"]),
    surrogate=st.booleans(),
)
@example(names=['q"uo${x}te\\b', "new\nline", "tmp"], top="/srv", surrogate=True)
def test_any_names_render_as_printable_nix_lines_and_json(
    names: list[str], top: str, surrogate: bool
) -> None:
    paths = [f"{top}/{name}" for name in names]
    if surrogate:
        paths.append(f"{top}/odd\udcff")
    found = run([kept(f"{top}/kept"), *(lost(path, "file") for path in paths)])
    text = suggest.render_nix(found)
    for line in text.splitlines():
        assert line.isprintable(), line
    assert text.count("{") - text.count("\\{") >= 1
    json.dumps(suggest.to_json(found))
    listed = {i.path for g in found.groups for i in g.items} | {s.path for s in found.skipped}
    assert listed == set(paths)


@PARSER
@given(text=st.text())
@example(text="a:x:1\nb:x:notanumber\n:x:2\nc:x:1\n")
def test_accounts_of_any_text(text: str) -> None:
    names = suggest.parse_accounts(text)
    assert all(isinstance(k, int) and v for k, v in names.items())


def test_accounts_first_name_of_an_id_wins() -> None:
    assert suggest.parse_accounts("a:x:1\nb:x:nope\n:x:2\nc:x:1:\n") == {1: "a"}


def test_observer_does_not_follow_links_and_reads_etc_passwd(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real/f").write_text("x")
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("someone:x:4242:4242::/:x\n")
    observer = suggest.Observer(str(tmp_path))
    try:
        assert observer("/real/f") is not None
        assert observer("/link/f") is None  # reached through a link: not followed
        assert observer("/gone") is None
        assert observer("/link") is not None  # the link itself
        assert observer.read("/etc/passwd", 1000) == "someone:x:4242:4242::/:x\n"
        assert observer.read("/etc/passwd", 3) is None  # too big
        assert observer.read("/link", 1000) is None
    finally:
        observer.close()


# --------------------------------------------------------------------------- the plan's units


def test_the_plans_units_are_read() -> None:
    units = {unit.name: unit for unit in the_plan().units}
    assert units["app"] == plan.Unit("app", ("app",), ("app",), (), True, None, None)
    assert units["web"].state_directories == ("web", "web-uploads")
    assert (units["web"].user, units["web"].group) == ("web", "www")
    assert units["two"].state_directories == ("two-a", "two-b")
    assert "off" not in units
    assert suggest.unit_directories(the_plan(name="x", stateDirectories=["a/b"])) == [
        ("/var/lib/a/b", plan.Unit("x", ("a/b",)), "StateDirectory")
    ]


def test_a_plan_without_units_has_none() -> None:
    data = copy.deepcopy(SUGGEST_PLAN)
    del data["units"]
    assert plan.from_json(data).units == ()


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        ({"name": ""}, "units[0].name: '' is not a systemd unit name"),
        ({"name": "a b"}, "units[0].name: 'a b' is not a systemd unit name"),
        ({"name": "x", "stateDirectories": ["../etc"]}, "units[0].stateDirectories[0]: '../etc'"),
        ({"name": "x", "cacheDirectories": ["/abs"]}, "units[0].cacheDirectories[0]: '/abs'"),
        ({"name": "x", "logsDirectories": [""]}, "units[0].logsDirectories[0]: ''"),
        ({"name": "x", "stateDirectories": ["a\nb"]}, "units[0].stateDirectories[0]: 'a\\nb'"),
        ({"name": "x", "user": "a:b"}, "units[0].user: 'a:b' is not a user or group name"),
        ({"name": "x", "dynamicUser": "yes"}, "units[0].dynamicUser: expected a boolean"),
        ({"name": "x", "other": 1}, "units[0].other: unknown key"),
    ],
)
def test_bad_units_get_one_clear_line(unit: dict[str, Any], message: str) -> None:
    data = copy.deepcopy(SUGGEST_PLAN)
    data["units"] = [unit]
    with pytest.raises(BlankslateError) as error:
        plan.from_json(data)
    assert message in str(error.value)
    one_line(error.value)


def test_duplicate_units_are_refused() -> None:
    data = copy.deepcopy(SUGGEST_PLAN)
    data["units"] = [{"name": "x"}, {"name": "x"}]
    with pytest.raises(BlankslateError, match=r"units\[1\]: duplicate unit 'x'"):
        plan.from_json(data)


WITHOUT_DISKO = {key: value for key, value in SUGGEST_PLAN.items() if key != "disko"}


# PROPERTY, not the 10,000-input PARSER corpus: drawing these costs ~20 ms each (320 s in CI).
# The plan parser's 10,000-input corpus is test_properties' (any JSON, any plan file), and its
# one-value-replaced property reaches every position of the units too.
@PROPERTY
@given(units=st.lists(st.dictionaries(st.sampled_from(sorted(SUGGEST_PLAN["units"][0])), JSON)))
def test_any_units_parse_or_fail_in_one_line(units: list[dict[str, Any]]) -> None:
    # the rest of the plan as it is (from_json changes nothing), without the disko tree,
    # which this does not vary and which costs most of each check
    data = {**WITHOUT_DISKO, "units": units}
    try:
        assert isinstance(plan.from_json(data), plan.Plan)
    except BlankslateError as error:
        one_line(error)


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--full"], "--suggest does not go with --full"),
        (["--fail-on-lost"], "--suggest does not go with --fail-on-lost"),
        (["--format", "yaml"], "--suggest prints text (Nix) or json"),
    ],
)
def test_suggest_refuses_what_does_not_go_with_it(
    run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = run_cli("diff", "--plan", str(PLANS / "suggest.json"), "--suggest", *extra)
    assert code == 2
    assert message in capsys.readouterr().err


def test_the_readmes_example_is_what_suggest_prints() -> None:
    """The README's example: a DynamicUser service app, web running as web, alice's home."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("```nix\n# blankslate diff --suggest") + len("```nix\n")
    shown = readme[start : readme.index("```\n", start)]
    web = (990, 991, 0o40750)
    found = run(
        [
            lost("/home"),
            lost("/home/alice"),
            lost("/home/alice/.cache"),
            lost("/home/alice/.cache/thumbs"),
            lost("/home/alice/src"),
            lost("/home/alice/src/main.c", "file"),
            lost("/var/lib/app", "symlink"),
            lost("/var/lib/private"),
            lost("/var/lib/private/app"),
            lost("/var/lib/web"),
            lost("/var/lib/web/sessions"),
        ],
        {
            "/var/lib/private/app": (61234, 61234, 0o40750),
            "/var/lib/web": web,
            "/home/alice/.cache": (1000, 100, 0o40700),
            "/home/alice/src": (1000, 100, 0o40755),
        },
    )
    assert suggest.render_nix(found) == shown


# --------------------------------------------------------------------------- other roots


def plan_of(kind: str, tmp_path: Path) -> Path:
    """tests/plans/<kind>.json with the units of the suggest plan."""
    data = json.loads((PLANS / f"{kind}.json").read_text())
    data["units"] = SUGGEST_PLAN["units"]
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("kind", "rollback"), [("zfs", "zfs"), ("tmpfs", "tmpfs"), ("vpsfree", "none")]
)
def test_a_root_no_subvolume_stores_is_observed_where_it_lives(
    kind: str, rollback: str, tmp_path: Path
) -> None:
    """zfs, tmpfs and no rollback: the owners and modes are those on / (or --root)."""
    the = plan.from_json(json.loads(plan_of(kind, tmp_path).read_text()))
    assert the.rollback == rollback
    with suggest._base(the, None, None, None) as base:
        assert base == "/"
    with suggest._base(the, None, tmp_path, None) as base:
        assert base == str(tmp_path)


LIVE = "/etc/hostname"  # on every Linux this runs on; lost on a NixOS root (no rule keeps it)


@pytest.mark.skipif(not os.path.isfile(LIVE), reason=f"{LIVE} is missing here")
def test_suggest_on_zfs_lists_zfs_diffs_entries_observed_on_the_live_root(
    fp: FakeProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`diff --suggest` on a zfs root: `zfs diff` against the blank snapshot finds the
    entries, / gives their owner and mode, and what the audit could not see is said. A
    local user's name with a newline in /tmp is ignored as /tmp's other names are."""
    weird = Path(os.path.realpath(tmp_path)) / "we ird\n${x}"
    weird.mkdir()
    escaped = str(weird).replace(" ", "\\0040").replace("\n", "\\0012")  # as zfs writes it
    fp.register(
        ["zfs", "diff", "-H", "-F", "rpool/local/root@blank"],
        stdout=f"+\tF\t{LIVE}\n+\t/\t{escaped}\n+\tF\t/srv-blankslate-gone-since\n",
    )

    def not_root(root: str, work: object) -> object:
        raise beneath.NotRoot(f"not root: what the mounts on {root} hide is not seen")

    monkeypatch.setattr(beneath, "in_view", not_root)
    monkeypatch.setattr(audit, "_read_text", lambda path: None)
    rules = tmp_path / "rules.yaml"
    rules.write_text("ignore: []\n")
    found = suggest.from_source(PlanSource(plan_of("zfs", tmp_path)), ignore_file=rules)
    info = os.lstat(LIVE)
    assert [(g.by, g.name) for g in found.groups] == [("top", "/etc")]
    (item,) = found.groups[0].items
    assert (item.path, item.kind, item.user, item.group, item.mode) == (
        LIVE,
        "file",
        suggest.user_name(info.st_uid),
        suggest.group_name(info.st_gid),
        f"{stat.S_IMODE(info.st_mode):04o}",
    )
    assert found.skipped == ()  # the gone entry is dropped by the scan; /tmp is ignored
    assert found.problems == ("not root: what the mounts on / hide is not seen",)
    text = suggest.render_nix(found)
    assert "# warning: not root: what the mounts on / hide is not seen\n" in text
    assert "# warning: the audit is incomplete (see above): more may be lost\n" in text
    assert all(line.isprintable() for line in text.splitlines())
    assert suggest.to_json(found)["problems"] == [found.problems[0]]
