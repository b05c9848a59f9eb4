"""Ignore patterns: matching takes polynomial time, and agrees with a plain reference matcher."""

from __future__ import annotations

import functools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from blankslate import ignore_rules
from blankslate.ignore_rules import Rule, RuleSet


def rules(*patterns: str) -> RuleSet:
    return RuleSet(Rule(pattern, f"why {pattern}", "test") for pattern in patterns)


def test_consecutive_double_stars_collapse_to_one() -> None:
    many = "/a" + "/**" * 12 + "/b"
    assert ignore_rules.translate(many) == ignore_rules.translate("/a/**/b")
    assert ignore_rules.translate("/a/**/**") == ignore_rules.translate("/a/**")
    assert ignore_rules.translate("**/**/x") == ignore_rules.translate("**/x")


def test_many_double_stars_against_a_long_path_that_does_not_match() -> None:
    # Twelve `(?:/[^/]+)*` in a row split 40 components in C(51, 11) ways: this never
    # returned before the runs were collapsed.
    path = "/a" + "/x" * 40 + "/c"
    assert rules("/a" + "/**" * 12 + "/b").match(path) is None
    assert rules("/a" + "/**" * 12 + "/c").match(path) is not None


def test_double_stars_between_components_against_a_long_path() -> None:
    # `/**/a` eleven times: each `**` may end at any of the 40 `a` components, C(40, 11)
    # ways, unless a middle `**` commits to the first `a` that lets it go on.
    pattern = "/**/a" * 11 + "/**/b"
    path = "/a" * 40 + "/c"
    assert rules(pattern).match(path) is None
    assert rules(pattern).match("/a" * 40 + "/b") is not None
    assert rules(pattern).match("/a" * 10 + "/b") is None


def test_many_stars_in_one_component_against_a_long_name() -> None:
    pattern = "/x/" + "*a" * 12 + "*b"
    assert rules(pattern).match("/x/" + "a" * 200) is None
    assert rules(pattern).match("/x/" + "a" * 200 + "b") is not None
    assert rules(pattern).match("/x/" + "a" * 11 + "b") is None


def test_simple_patterns_translate_as_before() -> None:
    assert ignore_rules.translate("/var/cache/**") == r"/var/cache(?:/.*)?"
    assert ignore_rules.translate("/home/*/.x") == r"/home/[^/]*/\.x"
    assert ignore_rules.translate("/srv/**/core") == r"(?:/[^/]+)*".join(["/srv", "/core"])


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/srv/x[!a]y", "/srv/x/y", False),
        ("/srv/x[!a]y", "/srv/xby", True),
        ("/**/a/**/b", "/b/a/b", True),
        ("/**/a/**/b", "/a/b/x", False),
        ("/**/a/*/**/b", "/a/a/x/b", True),
        ("/x/*a*b", "/x/aab", True),
        ("/x/*.c*", "/x/a.c.d", True),
        ("/x/*.c*.d", "/x/a.c.c.d", True),
    ],
)
def test_pattern_semantics(pattern: str, path: str, matches: bool) -> None:
    assert (rules(pattern).match(path) is not None) is matches


# --------------------------------------------------------------------------- reference


def _component_matches(glob: str, name: str) -> bool:
    """`*` any run of characters, `?` one, anything else itself (no classes here)."""

    @functools.cache
    def at(i: int, j: int) -> bool:
        if i == len(glob):
            return j == len(name)
        if glob[i] == "*":
            return at(i + 1, j) or (j < len(name) and at(i, j + 1))
        return j < len(name) and glob[i] in ("?", name[j]) and at(i + 1, j + 1)

    return at(0, 0)


def reference_match(pattern: str, path: str) -> bool:
    """The documented semantics, by dynamic programming over components."""
    globs = pattern.split("/")
    if globs[0] == "":
        globs = globs[1:]
    names = path.split("/")[1:]

    @functools.cache
    def at(i: int, j: int) -> bool:
        if i == len(globs):
            return j == len(names)
        if globs[i] == "**":
            return at(i + 1, j) or (j < len(names) and at(i, j + 1))
        return j < len(names) and _component_matches(globs[i], names[j]) and at(i + 1, j + 1)

    return at(0, 0)


COMPONENT_GLOBS = st.one_of(st.just("**"), st.text("ab*?", min_size=1, max_size=5))
PATTERNS = st.builds(
    lambda head, parts: head + "/".join(parts),
    st.sampled_from(["/", "**/"]),
    st.lists(COMPONENT_GLOBS, min_size=1, max_size=7),
)
PATHS = st.builds(
    lambda names: "/" + "/".join(names),
    st.lists(st.text("ab", min_size=1, max_size=4), min_size=1, max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(pattern=PATTERNS, paths=st.lists(PATHS, min_size=1, max_size=10))
def test_matching_agrees_with_the_reference(pattern: str, paths: list[str]) -> None:
    ruleset = rules(pattern)
    for path in paths:
        assert (ruleset.match(path) is not None) is reference_match(pattern, path), path


@settings(max_examples=200, deadline=None)
@given(pattern=st.text(max_size=40), path=st.text(max_size=40))
def test_any_string_is_a_pattern_or_refused(pattern: str, path: str) -> None:
    try:
        ignore_rules.check_pattern(pattern)
    except ValueError as error:
        assert "\n" not in str(error)
        return
    ruleset = rules(pattern)
    ruleset.match("/" + path)
    ruleset.match(path)
    list(ruleset.candidates(sorted(["/", "/" + path, path])))


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("/tmp/**", "/tmp/a/x\ny"),
        ("/tmp/**", "/tmp/\n"),
        ("**/.cache/**", "/home/alice/.cache/new\nline"),
        ("/srv/*.log", "/srv/a\nb.log"),
        ("/srv/?", "/srv/\n"),
    ],
)
def test_a_name_with_a_newline_is_matched_as_any_other(pattern: str, path: str) -> None:
    """A local user's name with a newline in /tmp is not lost for it (diff --suggest #25)."""
    rules = RuleSet([Rule(pattern, "r", "test")])
    assert rules.match(path) is not None
    assert list(rules.candidates([path])) == [0]


GLOBS_WITH_CLASSES = st.builds(
    lambda head, parts: head + "/".join(parts),
    st.sampled_from(["/", "**/"]),
    st.lists(
        st.one_of(st.just("**"), st.text("ab*?", min_size=1, max_size=5), st.just("[ab]a")),
        min_size=1,
        max_size=5,
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    patterns=st.lists(GLOBS_WITH_CLASSES, min_size=1, max_size=3),
    paths=st.lists(PATHS, min_size=1, max_size=12),
)
@example(patterns=["/a*", "**/b"], paths=["/a"])  # a prefixed glob beside one with none
def test_every_path_a_rule_matches_is_a_candidate(patterns: list[str], paths: list[str]) -> None:
    """`candidates` narrows the paths a rule is tried on (a literal prefix, or a plain text
    every match holds), and never leaves out one it matches."""
    ruleset = RuleSet([Rule(pattern, "r", "test") for pattern in patterns])
    ordered = sorted(set(paths))
    candidates = set(ruleset.candidates(ordered))
    for index, path in enumerate(ordered):
        if ruleset.match(path) is not None:
            assert index in candidates, (path, patterns)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("**/link *", "link "),
        ("**/*", ""),
        ("**/a?bc/*d", "bc"),
        ("**/x[ab]yyyy", "x"),
        ("/a/b", "a"),
    ],
)
def test_the_text_every_match_holds(pattern: str, text: str) -> None:
    assert ignore_rules._required_text(pattern) == text
