"""Ignore rules: pattern semantics, the YAML file's round trip and its error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from blankslate import cli, ignore_rules
from blankslate.errors import BlankslateError
from blankslate.ignore_rules import Rule, RuleSet


def rules(*patterns: str) -> RuleSet:
    return RuleSet(Rule(pattern, f"why {pattern}", "test") for pattern in patterns)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/etc/adjtime", "/etc/adjtime", True),
        ("/etc/adjtime", "/etc/adjtime/x", False),
        ("/var/cache/**", "/var/cache", True),
        ("/var/cache/**", "/var/cache/a/b/c", True),
        ("/var/cache/**", "/var/cachet", False),
        ("/home/*/.cache", "/home/alice/.cache", True),
        ("/home/*/.cache", "/home/alice/x/.cache", False),
        ("/var/log/*.log", "/var/log/a.log", True),
        ("/var/log/?.log", "/var/log/ab.log", False),
        ("/srv/[ab]x", "/srv/bx", True),
        ("/srv/[!ab]x", "/srv/bx", False),
        ("/srv/**/core", "/srv/core", True),
        ("/srv/**/core", "/srv/a/b/core", True),
        ("**/__pycache__/**", "/usr/lib/x/__pycache__/m.pyc", True),
        ("/a.b", "/aXb", False),
    ],
)
def test_pattern_semantics(pattern: str, path: str, matches: bool) -> None:
    assert (rules(pattern).match(path) is not None) is matches


def test_the_first_matching_rule_gives_the_reason() -> None:
    ruleset = rules("/srv/*", "/srv/**", "/srv/data")
    assert ruleset.match("/srv/data") == Rule("/srv/data", "why /srv/data", "test")
    assert ruleset.match("/srv/x") == Rule("/srv/*", "why /srv/*", "test")
    assert ruleset.match("/srv/x/y") == Rule("/srv/**", "why /srv/**", "test")


@pytest.mark.parametrize("pattern", ["relative/path", "/a/[b", "/a\nb"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"pattern|newline"):
        ignore_rules.check_pattern(pattern)


COMMENTED = """\
# Paths this host may lose at every boot.
ignore:
  # caches first
  - pattern: /var/cache/**   # rebuilt by services
    reason: rebuilt on demand
  - pattern: "/etc/adjtime"
    reason: hwclock rewrites it
"""


def test_adding_a_rule_keeps_comments_order_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text(COMMENTED)
    assert ignore_rules.add_rule(path, "/root/.lesshst", "less history") is True
    assert path.read_text() == COMMENTED + (
        "  - pattern: /root/.lesshst\n    reason: less history\n"
    )
    assert [rule.pattern for rule in ignore_rules.load_file(path)] == [
        "/var/cache/**",
        "/etc/adjtime",
        "/root/.lesshst",
    ]


def test_adding_a_known_pattern_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text(COMMENTED)
    assert ignore_rules.add_rule(path, "/etc/adjtime", "again") is False
    assert path.read_text() == COMMENTED


@pytest.mark.parametrize(
    "text",
    [
        "# Paths this host may lose at every boot.\n# (none yet)\n",
        "# no newline at the end",
        "\n# after a blank line\n\n",
        "---\n# an explicit start\n",
    ],
)
def test_adding_to_a_file_of_only_comments_keeps_them(tmp_path: Path, text: str) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text(text)
    assert ignore_rules.add_rule(path, "/srv/**", "scratch space") is True
    written = path.read_text()
    assert written.startswith(text.rstrip("\n") + "\n")
    assert written.endswith("ignore:\n  - pattern: /srv/**\n    reason: scratch space\n")
    assert [rule.pattern for rule in ignore_rules.load_file(path)] == ["/srv/**"]


def test_adding_to_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text("")
    ignore_rules.add_rule(path, "/srv/**", "scratch space")
    assert path.read_text() == "ignore:\n  - pattern: /srv/**\n    reason: scratch space\n"


@pytest.mark.root
def test_a_new_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "hosts" / "x" / "audit.yaml"
    ignore_rules.add_rule(path, "/srv/**", "scratch space")
    assert ignore_rules.load_file(path) == [Rule("/srv/**", "scratch space", f"{path} line 2")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ignore:\n  - pattern: /a\n    reason: [x\n", "line 4: expected ',' or ']'"),
        ("ignore:\n  - pattern: /a\n    reason: x\n  - pattern: a\n    reason: y\n", "line 4:"),
        ("ignore:\n  - pattern: /a\n", "line 2: missing 'reason'"),
        ("ignore:\n  - pattern: /a\n    reason: x\n    colour: red\n", "line 2: unknown key"),
        ("rules: []\n", "line 1: unknown key 'rules'"),
        ("ignore: /a\n", "line 1: 'ignore' must be a list"),
        ("- /a\n", "line 1: expected a mapping"),
        # ruamel only warned, over many lines of stderr, and the later anchor won unseen.
        ("ignore:\n  - pattern: &a /x\n    reason: &a y\n", "line 3: found duplicate anchor 'a'"),
    ],
)
def test_a_malformed_file_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text(text)
    with pytest.raises(BlankslateError, match=f"ignore file {path} {message}"):
        ignore_rules.load_file(path)


def test_default_file_needs_a_checkout_with_the_host(tmp_path: Path) -> None:
    assert ignore_rules.default_file("web", tmp_path) is None
    (tmp_path / "flake.nix").write_text("{}")
    (tmp_path / "hosts" / "web").mkdir(parents=True)
    assert ignore_rules.default_file("web", tmp_path) == tmp_path / "hosts/web/audit.yaml"
    assert ignore_rules.default_file("db", tmp_path) is None


def test_collect_orders_file_plan_builtin(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text("ignore:\n  - pattern: /srv/**\n    reason: scratch\n")
    collected = ignore_rules.collect(["/opt/x"], "nohost", path)
    assert [rule.source for rule in collected[:2]] == [f"{path} line 2", "plan audit.ignore"]
    assert collected[2:] == ignore_rules.builtin_rules()
    with pytest.raises(BlankslateError, match="not found"):
        ignore_rules.collect([], "nohost", tmp_path / "missing.yaml")


def test_collect_falls_back_to_the_installed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "etc-audit.yaml"
    installed.write_text("ignore:\n  - pattern: /var/cache/**\n    reason: caches\n")
    monkeypatch.setattr(ignore_rules, "INSTALLED_FILE", installed)
    monkeypatch.chdir(tmp_path)  # not a flake checkout
    collected = ignore_rules.collect([], "web", None)
    assert collected[0].source == f"{installed} line 2"
    assert collected[0].pattern == "/var/cache/**"
    installed.unlink()
    assert ignore_rules.collect([], "web", None) == ignore_rules.builtin_rules()


def test_cli_ignore_writes_the_hosts_file_of_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flake.nix").write_text("{}")
    (tmp_path / "hosts" / "web").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    argv = ["blankslate", "ignore", "/srv/**", "--reason", "scratch", "--host", "web"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code in (0, None)
    target = tmp_path / "hosts/web/audit.yaml"
    assert capsys.readouterr().out == f"added: /srv/** in {target}\n"
    assert ignore_rules.load_file(target)[0].pattern == "/srv/**"


def test_add_rule_never_writes_through_a_planted_temporary_name(tmp_path: Path) -> None:
    # The old code wrote `.audit.yaml.tmp` (a predictable name) through any symlink there.
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / "audit.yaml"
    path.write_text("ignore: []\n")
    (tmp_path / ".audit.yaml.tmp").symlink_to(victim)

    assert ignore_rules.add_rule(path, "/root/.lesshst", "less history") is True

    assert victim.read_text() == "precious\n"
    assert [rule.pattern for rule in ignore_rules.load_file(path)] == ["/root/.lesshst"]
    assert not path.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".audit.yaml.tmp", "audit.yaml", "victim"]
