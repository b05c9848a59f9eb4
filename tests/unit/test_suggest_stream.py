"""`diff --suggest` reads the report's entries once, in path order, and its memory does not
grow with their number: what it prints equals what it printed when it held them all (golden
documents of generated roots, captured before), and the topmost entries it finds are those
of the plain definition (a reference built from the whole list)."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from blankslate import plan, suggest
from blankslate.classify import EntryTuple, hidden_reason

from .suggest_trees import CASES, PLAN, documents
from .test_properties import PROPERTY

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(("seed", "count"), CASES)
def test_the_suggestion_equals_the_golden_one_byte_for_byte(seed: int, count: int) -> None:
    for suffix, text in documents(seed, count).items():
        expected = (GOLDEN / f"suggest-{seed}.{suffix}").read_bytes()
        assert text.encode("utf-8", "surrogateescape") == expected, suffix


# --------------------------------------------------------------------------- the reference


def reference_topmost(
    listed: list[EntryTuple],
    wanted: Callable[[EntryTuple], bool],
    keep_apart: Iterable[str] = (),
    split: Iterable[str] = (),
) -> list[EntryTuple]:
    """The topmost wanted entries as the definition says, from the whole list (the grouping
    did so before it streamed): a directory is mixed when an entry that is not wanted lies
    below it, or it is above a path of `keep_apart`, or it is (or is above) a path of
    `split`; a wanted entry is taken when it is not mixed and nothing above it is taken."""

    def above(path: str) -> Iterator[str]:
        head = path.rpartition("/")[0]
        while head:
            yield head
            head = head.rpartition("/")[0]

    mixed: set[str] = set()
    for entry in listed:
        if not wanted(entry):
            mixed.update(above(entry[0]))
    for path in keep_apart:
        mixed.update(above(path))
    for path in split:
        mixed.update(above(path))
        mixed.add(path)
    chosen: list[EntryTuple] = []
    taken: set[str] = set()
    for entry in listed:
        path = entry[0]
        if path in mixed or not wanted(entry) or any(h in taken for h in above(path)):
            continue
        taken.add(path)
        chosen.append(entry)
    return chosen


# Names that sort between a directory and what it holds ("/a.b" between "/a" and "/a/b").
PARTS = ["a", "a.b", "a b", "a-b", "b", "cache", "x\ny", "app", "web"]
TOPS = ["/srv", "/srv.old", "/home/alice", "/home/bob", "/root", "/var/lib", "/var/lib/private"]
COVER = hidden_reason("the bind mount of /var/lib/nixos")


@st.composite
def trees(draw: st.DrawFn) -> list[EntryTuple]:
    """A root: paths below TOPS, every directory above an entry listed, with a status each."""
    paths: set[str] = set()
    for _ in range(draw(st.integers(1, 40))):
        top = draw(st.sampled_from(TOPS))
        parts = draw(st.lists(st.sampled_from(PARTS), max_size=4))
        path = top + "".join("/" + part for part in parts)
        while path:
            paths.add(path)
            path = path.rpartition("/")[0]
    statuses = st.sampled_from(["lost", "lost", "lost", "lost", "hidden", "persisted", "ignored"])
    kinds = st.sampled_from(["dir", "dir", "file", "symlink", "other"])
    entries: list[EntryTuple] = []
    for path in sorted(paths):
        status = draw(statuses)
        reason = COVER if status == "hidden" else ("" if status == "lost" else "a rule")
        entries.append((path, draw(kinds), 0, "lost" if status == "hidden" else status, reason))  # type: ignore[arg-type]
    return entries


@PROPERTY
@given(
    entries=trees(),
    keep_apart=st.lists(st.sampled_from(["/var/lib/web", "/var/lib/private/app", "/srv/a/b"])),
    split=st.lists(st.sampled_from(["/root", "/home/alice", "/srv.old/a"])),
)
@example(
    entries=[
        ("/srv", "dir", 0, "lost", ""),
        ("/srv/a", "dir", 0, "lost", ""),
        ("/srv/a b", "dir", 0, "lost", ""),
        ("/srv/a b/x", "file", 0, "persisted", "x"),
        ("/srv/a/b", "file", 0, "lost", ""),
    ],
    keep_apart=[],
    split=[],
)
def test_the_streamed_topmost_entries_are_the_definitions(
    entries: list[EntryTuple], keep_apart: list[str], split: list[str]
) -> None:
    for wanted in (suggest.is_plainly_lost, suggest.is_hidden):
        expected = reference_topmost(entries, wanted, keep_apart, split)
        assert suggest.topmost(iter(entries), wanted, keep_apart, split) == expected


SUGGEST_PLAN = plan.from_json(json.loads(PLAN.read_text()))


def grouped(entries: Iterable[EntryTuple]) -> suggest.Suggestion:
    return suggest.group(entries, SUGGEST_PLAN, lambda _path: (0, 0, 0o40755), str, str)


@PROPERTY
@given(entries=trees(), shown=st.integers(1, 4))
def test_a_group_shows_its_first_entries_and_counts_the_rest(
    entries: list[EntryTuple], shown: int
) -> None:
    whole = grouped(entries)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suggest, "SHOWN", shown)
        patch.setattr(suggest, "SKIPPED_SHOWN", shown)
        cut = grouped(iter(entries))
        text = suggest.render_nix(cut)
    assert [(g.by, g.name, g.note) for g in cut.groups] == [
        (g.by, g.name, g.note) for g in whole.groups
    ]
    for part, full in zip(cut.groups, whole.groups, strict=True):
        assert part.items == full.items[:shown]
        assert part.more == len(full.items) - len(part.items)
    assert cut.skipped == whole.skipped[:shown]
    assert cut.skipped_more == len(whole.skipped) - len(cut.skipped)
    assert all(line.isprintable() for line in text.splitlines())
    if any(g.more for g in cut.groups):
        assert f"# Not shown: each group shows its first {shown} entries" in text
        assert all("more" in g for g in suggest.to_json(cut)["groups"] if g.get("more"))


def observed_grouping(
    entries: Iterable[EntryTuple], shown: int
) -> tuple[suggest.Suggestion, list[str]]:
    """The suggestion with groups of `shown` entries, and the paths observed, in order."""
    observed: list[str] = []

    def observe(path: str) -> tuple[int, int, int] | None:
        observed.append(path)
        return None if len(path) % 7 == 0 else (0, 0, 0o40755)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suggest, "SHOWN", shown)
        patch.setattr(suggest, "SKIPPED_SHOWN", shown)
        found = suggest.group(entries, SUGGEST_PLAN, observe, str, str)
    return found, observed


@PROPERTY
@given(entries=trees(), shown=st.integers(1, 4))
@example(
    # a whole directory between a name that extends it and one that is not lost; a home whose
    # entries are each suggested; one listed twice
    entries=[
        ("/home/alice", "dir", 0, "lost", ""),
        ("/home/alice/a", "dir", 0, "lost", ""),
        ("/home/alice/a/b", "file", 0, "lost", ""),
        ("/srv", "dir", 0, "lost", ""),
        ("/srv/a", "dir", 0, "lost", ""),
        ("/srv/a.b", "dir", 0, "lost", ""),
        ("/srv/a.b/x", "file", 0, "lost", ""),
        ("/srv/a/b", "dir", 0, "lost", ""),
        ("/srv/a/b/c", "file", 0, "lost", ""),
        ("/srv/a/b/c", "file", 0, "lost", ""),
        ("/srv/a/c", "file", 0, "persisted", "x"),
        ("/srv/b", "dir", 0, "lost", ""),
        ("/srv/b/c", "file", 0, "lost", ""),
    ],
    shown=1,
)
@example(
    # a hidden directory, pending while the names that extend it go by, then below it
    entries=[
        ("/srv", "dir", 0, "lost", ""),
        ("/srv/a", "dir", 0, "lost", COVER),
        ("/srv/a b", "dir", 0, "lost", ""),
        ("/srv/a b/x", "file", 0, "lost", ""),
        ("/srv/a.c", "file", 0, "lost", ""),
        ("/srv/a/y", "file", 0, "lost", COVER),
        ("/srv/a/z", "file", 0, "persisted", "x"),
    ],
    shown=1,
)
def test_a_list_is_grouped_as_the_same_entries_streamed(
    entries: list[EntryTuple], shown: int
) -> None:
    """A list is read run by run (the plainly lost entries between two that are not at once,
    a whole directory without what lies below it): the same suggestion as the entries read
    one by one, with the same paths observed in the same order."""
    assert observed_grouping(entries, shown) == observed_grouping(iter(entries), shown)


# --------------------------------------------------------------------------- memory


def synthetic(count: int) -> Iterator[EntryTuple]:
    """`count` lost entries, in path order, made one at a time: a home holding them one by one
    (each its own suggestion), a directory whose every entry is lost but the last (all of
    them held until the last one says the directory is mixed), sockets (skipped), and
    hidden entries below a mount."""
    quarter = count // 4
    yield ("/home", "dir", 0, "lost", "")
    yield ("/home/alice", "dir", 0, "lost", "")
    for index in range(quarter):
        yield (f"/home/alice/f{index:08d}", "file", 1, "lost", "")
    yield ("/srv", "dir", 0, "lost", "")
    yield ("/srv/big", "dir", 0, "lost", "")
    for index in range(quarter):
        yield (
            (f"/srv/big/d{index // 10:06d}", "dir", 0, "lost", "")
            if index % 10 == 0
            else (
                f"/srv/big/d{index // 10:06d}/f{index:08d}",
                "file",
                1,
                "lost",
                "",
            )
        )
    yield ("/srv/big/zz-kept", "file", 0, "persisted", "x")
    yield ("/srv/sockets", "dir", 0, "lost", "")
    for index in range(quarter):
        yield (f"/srv/sockets/s{index:08d}", "other", 0, "lost", "")
    yield ("/srv/sockets/zz-kept", "file", 0, "persisted", "x")
    yield ("/var", "dir", 0, "managed", "x")
    yield ("/var/lib", "dir", 0, "managed", "x")
    yield ("/var/lib/nixos", "dir", 0, "persisted", "x")
    for index in range(quarter):
        yield (f"/var/lib/nixos/h{index:08d}", "file", 0, "lost", COVER)
    yield ("/var/lib/nixos/zz", "dir", 0, "persisted", "x")


def peak_of(count: int) -> tuple[int, suggest.Suggestion]:
    """Peak memory of grouping `count` entries with the cyclic collector off, as a scan runs
    (audit._collector_paused): a reference cycle per directory then added up (86 MB at
    200,000 entries; CI's run, in a worker shared with other tests, measured 18 MB)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    tracemalloc.start()
    try:
        found = grouped(synthetic(count))
        return tracemalloc.get_traced_memory()[1], found
    finally:
        tracemalloc.stop()
        if enabled:
            gc.enable()


def test_memory_does_not_grow_with_the_lost_entries() -> None:
    small, _found = peak_of(20_000)
    peak, found = peak_of(200_000)
    by_name = {(g.by, g.name): g for g in found.groups}
    quarter = 200_000 // 4
    alice, srv = by_name["user", "alice"], by_name["top", "/srv"]
    assert len(alice.items) == suggest.SHOWN and alice.more == quarter - suggest.SHOWN
    # /srv/big's directories (each whole), /srv/sockets' sockets skipped
    assert len(srv.items) + srv.more == quarter // 10
    assert len(found.skipped) + found.skipped_more == quarter
    hidden = by_name["hidden", "the bind mount of /var/lib/nixos"]
    assert len(hidden.items) + hidden.more == quarter
    assert peak < 8 * 1024 * 1024, peak
    assert peak < small * 1.5, (small, peak)
