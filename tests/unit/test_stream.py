"""The audit's renderings are streamed: each document is written entry by entry, says what
it said before it streamed (golden files captured from the earlier renderings, and a plain
reference built from the same entries), and its writer's memory does not grow with the
number of entries."""

from __future__ import annotations

import base64
import gc
import json
import random
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import SupportsIndex, TextIO, cast, overload

import pytest
from ruamel.yaml import YAML

from blankslate import classify, plansource, render
from blankslate.classify import STATUSES, DeeperTuple, EntryTuple, Report

from .audit_trees import CLEAN, IGNORE, generated_raw, generated_report

GOLDEN = Path(__file__).parent / "golden"


def golden_documents(seed: int) -> dict[str, str]:
    old_root = "2026-01-01T00:00:00" if seed == 8 else None
    report = generated_report(seed, 400, old_root=old_root)
    return {
        "json": render.render_json(report),
        "full.json": render.render_json(report, full=True),
        "yaml": render.render_yaml(report),
        "full.yaml": render.render_yaml(report, full=True),
        "txt": render.render_text(report),
        "full.txt": render.render_text(report, full=True),
        "all.txt": render.render_text(report, all_entries=True, style=render.COLOURED),
        "prom": render.render_metrics(report, 1700000000.0),
    }


@pytest.mark.parametrize("seed", [7, 8])
def test_every_rendering_equals_the_golden_one_byte_for_byte(seed: int) -> None:
    for suffix, text in golden_documents(seed).items():
        expected = (GOLDEN / f"stream-{seed}.{suffix}").read_bytes()
        assert text.encode("utf-8", "surrogateescape") == expected, suffix


class Sink:
    """A stream that keeps only how much was written, and how many rows had been made by
    then (`made`, when a generator of rows says so)."""

    def __init__(self) -> None:
        self.size = 0
        self.made = 0
        self.made_at_writes: list[int] = []

    def write(self, text: str) -> int:
        self.size += len(text)
        self.made_at_writes.append(self.made)
        return len(text)


def lost_report(count: int) -> Report:
    """`count` entries, 100 to a directory, one of each directory ignored: nothing collapses,
    every lost entry is listed."""
    entries: list[EntryTuple] = [("/srv", "dir", 0, "managed", "holds only ...")]
    for index in range(count):
        if index % 100 == 0:
            directory = f"/srv/d{index // 100:06d}"
            entries.append((directory, "dir", 0, "lost", ""))
            entries.append((f"{directory}/a.tmp", "file", 1, "ignored", "scratch [**/*.tmp]"))
        entries.append((f"{directory}/file {index:07d}", "file", index % 200, "lost", ""))
    return Report("btrfs", entries)


WRITERS: dict[str, Callable[[Report, Sink], None]] = {
    "json": lambda report, out: render.write_json(report, cast(TextIO, out)),
    "json --full": lambda report, out: render.write_json(report, cast(TextIO, out), full=True),
    "yaml": lambda report, out: render.write_yaml(report, cast(TextIO, out)),
    "text": lambda report, out: render.write_text(report, cast(TextIO, out)),
    "text --full": lambda report, out: render.write_text(report, cast(TextIO, out), full=True),
}


def traced_peak(work: Callable[[], None]) -> int:
    """The most memory `work` allocated at once, beyond what there was before."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_writer_needs_no_more_memory_for_ten_times_the_lost_entries(name: str) -> None:
    """Not a timed test: the peak a writer allocates for a report of 100,000 lost entries is
    less than twice its peak for 10,000 (a writer that held its document, or a line per
    entry, would need ten times as much)."""
    write = WRITERS[name]
    peaks = {}
    for count in (10_000, 100_000):
        report = lost_report(count)
        sink = Sink()
        peaks[count] = traced_peak(lambda: write(report, sink))  # noqa: B023
        assert sink.size > count * 20  # every entry was written
    assert peaks[100_000] < 2 * peaks[10_000], peaks


def rows(count: int, sink: Sink) -> Iterator[render.Row]:
    """`count` lost entries, made one at a time as the writer asks for them."""
    for index in range(count):
        sink.made = index + 1
        yield (f"/srv/d{index // 100:06d}/file {index}", "file", index % 200, "lost", ""), None


@pytest.mark.parametrize(
    "write", [render.write_json_document, render.write_yaml_document], ids=["json", "yaml"]
)
def test_a_document_is_written_while_its_entries_are_made(
    write: Callable[[TextIO, render.Heading, Iterable[render.Row], list[DeeperTuple]], None],
) -> None:
    """The writer consumes a generator as it goes: it has written most of the document
    before the last entry is made, and its peak memory does not grow with the entries."""
    heading = render.Heading("btrfs", None, True, dict.fromkeys(STATUSES, 0))
    peaks = {}
    for count in (10_000, 100_000):
        sink = Sink()
        peaks[count] = traced_peak(
            lambda: write(cast(TextIO, sink), heading, rows(count, sink), [])  # noqa: B023
        )
        early = [made for made in sink.made_at_writes if made < count]
        assert len(early) >= len(sink.made_at_writes) - 2, sink.made_at_writes[:5]
        assert len(early) >= count // 5000  # a few thousand entries at a time
    assert peaks[100_000] < 2 * peaks[10_000], peaks


@pytest.mark.parametrize("seed", range(20))
def test_the_streamed_json_equals_a_plain_reference_from_the_same_entries(seed: int) -> None:
    """A reference written the plain way (json.dumps of a list built whole, with the
    collapsed directories found by brute force) says the same as the streamed document."""
    report = generated_report(seed, 300)
    streamed = json.loads(render.render_json(report))
    entries = report.entries
    listed: list[dict[str, object]] = []
    covered_until: list[str] = []  # collapsed directories' prefixes
    for path, kind, size, status, reason in entries:
        if any(path.startswith(prefix) for prefix in covered_until):
            continue
        row: dict[str, object] = {
            "path": path, "type": kind, "size": size, "status": status, "reason": reason,
        }  # fmt: skip
        if reason and status == "lost":
            row["hidden"] = True
        below = [entry for entry in entries if entry[0].startswith(path + "/")]
        if (
            status == "lost"
            and kind in ("dir", "subvolume")
            and below
            and all(entry[3] == "lost" and entry[4] == reason for entry in below)
        ):
            row["collapsed"] = {"entries": len(below), "size": sum(entry[2] for entry in below)}
            covered_until.append(path + "/")
        listed.append(row)
    for row, streamed_row in zip(listed, streamed["entries"], strict=True):
        if "pathBytes" in streamed_row:
            raw = base64.b64decode(streamed_row.pop("pathBytes"))
            streamed_row["path"] = raw.decode("utf-8", "surrogateescape")
        assert streamed_row == row
    assert streamed["summary"] == report.summary
    assert len(streamed["deeper"]) == len(report.deeper)
    yaml = YAML(typ="safe").load(render.render_yaml(report))
    assert yaml["summary"] == streamed["summary"]
    assert len(yaml["entries"]) == len(listed)


def test_lost_entries_yields_the_lost_ones_in_order_one_at_a_time() -> None:
    report = generated_report(3, 300)
    lost = report.lost_entries()
    assert iter(lost) is lost  # a generator, not a list
    assert list(lost) == [entry for entry in report.entries if entry[3] == "lost"]
    assert any(entry[4].startswith(classify.HIDDEN_PREFIX) for entry in report.lost_entries())


def test_classify_consumes_the_scan_only_when_told() -> None:
    """The audit hands its scan over (the classified tuples replace the scanned ones in the
    same list: no entry held twice); any other caller's list is left as it was."""
    raw = generated_raw(random.Random(5), 200)
    kept = list(raw)
    rules = classify.rules_for(plansource.default(), IGNORE, CLEAN)
    entries = classify.classify(raw, rules)
    assert raw == kept and id(entries) != id(raw)
    consumed = classify.classify(raw, rules, consume=True)
    assert id(consumed) == id(raw) and consumed == entries


def test_one_path_twice_is_sorted_by_the_path_alone() -> None:
    """The scan's tuples are sorted as they are (no list of keys); were a path there twice
    with a target beside None, which tuples cannot compare, the path alone sorts them."""
    raw: list[tuple[str, str, int, str | None]] = [
        ("/srv/b", "file", 1, None),
        ("/srv/a", "symlink", 4, "/x"),
        ("/srv/a", "symlink", 4, None),
    ]
    entries = classify.classify(raw, classify.Rules(), consume=True)
    assert [entry[0] for entry in entries] == ["/srv/a", "/srv/a", "/srv/b"]


class CountedEntries(list[EntryTuple]):
    """Entries that count how many of them are read, one at a time, by a slice or by
    iterating over them."""

    reads = 0

    def __iter__(self) -> Iterator[EntryTuple]:
        for entry in super().__iter__():
            self.reads += 1
            yield entry

    @overload
    def __getitem__(self, key: SupportsIndex) -> EntryTuple: ...
    @overload
    def __getitem__(self, key: slice) -> list[EntryTuple]: ...
    def __getitem__(self, key: SupportsIndex | slice) -> EntryTuple | list[EntryTuple]:
        self.reads += len(range(*key.indices(len(self)))) if isinstance(key, slice) else 1
        return super().__getitem__(key)


def many_collapsed_directories(count: int) -> Report:
    """`count` directories of ten lost files under /srv; every other one holds an ignored
    entry too, so /srv does not collapse and half of the directories do, one by one."""
    entries = CountedEntries([("/srv", "dir", 0, "lost", "")])
    for number in range(count):
        directory = f"/srv/d{number:06d}"
        entries.append((directory, "dir", 0, "lost", ""))
        if number % 2 == 0:
            entries.append((f"{directory}/a.tmp", "file", 1, "ignored", "scratch [**/*.tmp]"))
        entries.extend((f"{directory}/f{file}", "file", file, "lost", "") for file in range(10))
    return Report("btrfs", entries)


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_writer_reads_each_entry_a_bounded_number_of_times(name: str) -> None:
    """Not a timed test: what a collapsed directory holds is read where it lies, not by
    walking the entries before it again (as a slice of an iterator would), so the entries a
    writer reads grow with the report, not with its square: on old main 2,000 directories
    read 11,617,285 entries of 23,001."""
    report = many_collapsed_directories(2_000)
    entries = report.entries
    assert isinstance(entries, CountedEntries)
    entries.reads = 0
    sink = Sink()
    WRITERS[name](report, sink)
    assert sink.size > 0
    assert entries.reads < 10 * len(entries), (entries.reads, len(entries))
