"""`blankslate diff` for people and for monitoring: the collapsing text, colour, the
node-exporter metrics, the report files and the exit codes of `--fail-on-lost`."""

from __future__ import annotations

import io
import json
import os
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_subprocess import FakeProcess

from blankslate import audit, commands, oldroots, plansource, render, snapshots
from blankslate.classify import Entry, EntryTuple, Report, Status
from blankslate.errors import BlankslateError

from ..support.mounts import FINDMNT


def tree_report() -> Report:
    return Report(
        "btrfs",
        [
            Entry("/srv", "dir", 0, "lost", ""),
            Entry("/srv/a", "dir", 0, "lost", ""),
            Entry("/srv/a.b", "file", 5, "lost", ""),
            Entry("/srv/a/f1", "file", 10, "lost", ""),
            Entry("/srv/a/f2", "file", 20, "lost", ""),
            Entry("/srv/b", "dir", 0, "managed", "holds only entries that are not lost"),
            Entry("/srv/b/kept", "file", 1, "ignored", "scratch [/srv/b/**]"),
            Entry("/srv/c", "dir", 0, "lost", ""),
            Entry("/var/cache", "dir", 0, "lost", ""),
            Entry("/var/cache/x", "dir", 0, "lost", ""),
            Entry("/var/cache/x/y", "file", 7, "lost", ""),
            Entry("/var/lib/nixos", "dir", 0, "persisted", "persisted directory"),
            Entry("/work", "dir", 0, "lost", ""),
            Entry("/work/one", "file", 3, "lost", ""),
        ],
    )


def test_text_collapses_a_directory_whose_entries_are_all_lost() -> None:
    assert render.render_text(tree_report()) == (
        "Lost at the next boot: 11 entries, 45 B\n"
        "/srv  (6 entries, 35 B)\n"
        "  dir              0 B  /srv\n"
        "  dir             30 B  /srv/a/  (all 3 entries lost)\n"
        "  file             5 B  /srv/a.b\n"
        "  dir              0 B  /srv/c\n"
        "/var  (3 entries, 7 B)\n"
        "  dir              7 B  /var/cache/  (all 3 entries lost)\n"
        "/work  (2 entries, 3 B, all lost)\n"
        "\n"
        "lost 11, ignored 1, managed 1, persisted 1\n"
    )


def test_text_full_lists_every_lost_entry() -> None:
    text = render.render_text(tree_report(), full=True)
    lost = [
        entry.path for entry in map(Entry._make, tree_report().entries) if entry.status == "lost"
    ]
    listed = [line.split()[-1] for line in text.splitlines() if line.startswith("  ")]
    assert listed == lost
    assert "all lost" not in text


def test_all_keeps_the_other_statuses_and_collapses_only_the_lost() -> None:
    text = render.render_text(tree_report(), all_entries=True)
    assert "  dir             30 B  /srv/a/  (all 3 entries lost)\n" in text
    assert "Persisted (1):\n  dir       /var/lib/nixos  (persisted directory)\n" in text
    assert "Ignored (1):\n  file      /srv/b/kept  (scratch [/srv/b/**])\n" in text


def test_old_root_report_says_what_its_boot_threw_away() -> None:
    report = Report(
        "btrfs", [Entry("/srv/x", "file", 1, "lost", "")], old_root="2026-01-02T03:04:05Z"
    )
    assert render.render_text(report).startswith(
        "Thrown away with old root 2026-01-02T03:04:05Z: 1 entry, 1 B\n"
    )
    assert json.loads(render.render_json(report))["oldRoot"] == "2026-01-02T03:04:05Z"
    assert "oldRoot" not in json.loads(render.render_json(tree_report()))
    empty = Report("btrfs", [], old_root="r")
    assert render.render_text(empty).startswith("Nothing was lost with old root r.\n")


NAMES = ("a", "a.b", "a-b", "b", "x\udcff")


def random_entries(seed: int) -> list[EntryTuple]:
    chooser = random.Random(seed)
    entries: dict[str, EntryTuple] = {}
    directories = [""]
    statuses: tuple[Status, ...] = ("lost", "lost", "lost", "ignored", "persisted")
    for _ in range(chooser.randint(1, 50)):
        parent = chooser.choice(directories)
        path = f"{parent}/{chooser.choice(NAMES)}"
        if path in entries:
            continue
        kind = chooser.choice(("file", "dir", "dir", "subvolume", "symlink"))
        entries[path] = (path, kind, chooser.randint(0, 9), chooser.choice(statuses), "")
        if kind in ("dir", "subvolume"):
            directories.append(path)
    return sorted(entries.values())


@pytest.mark.parametrize("seed", range(200))
def test_collapsing_shows_every_lost_entry_exactly_once(seed: int) -> None:
    """Against a plain statement: a lost directory collapses when everything below it (at any
    depth) is lost and something is; only the outermost of such directories is a line."""
    entries = random_entries(seed)

    def below(path: str) -> list[EntryTuple]:
        return [entry for entry in entries if entry[0].startswith(path + "/")]

    def collapsible(entry: EntryTuple) -> bool:
        inner = below(entry[0])
        lost_dir = entry[3] == "lost" and entry[1] in ("dir", "subvolume")
        return lost_dir and bool(inner) and all(item[3] == "lost" for item in inner)

    outermost = {
        entry[0]
        for entry in entries
        if collapsible(entry)
        and not any(entry[0].startswith(other[0] + "/") for other in entries if collapsible(other))
    }
    collapsed = render.collapsed_directories(entries)
    assert {entries[index][0] for index in collapsed} == outermost
    for index, (first, end, size) in collapsed.items():
        assert entries[first:end] == below(entries[index][0])
        assert size == sum(entry[2] for entry in below(entries[index][0]))
    # The text accounts for every lost entry once: its lines' counts add up.
    report = Report("walk", entries)
    text = render.render_text(report)
    shown = 0
    counted = re.compile(r"\((?:all (\d+) entries lost|(\d+) entr(?:y|ies), [^)]*, all lost)\)$")
    for line in text.splitlines():
        if match := counted.search(line):
            shown += int(match[1] or match[2])
        elif line.startswith("  "):
            shown += 1
    assert shown == report.lost


class Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("tty", "environ", "wanted"),
    [
        (True, {}, True),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # no-color.org: set and not empty
        (True, {"TERM": "dumb"}, False),
        (False, {}, False),
    ],
)
def test_colour_only_for_a_terminal_without_no_color(
    tty: bool, environ: dict[str, str], wanted: bool
) -> None:
    assert render.colour_wanted(Terminal(tty), environ) is wanted


def test_colour_marks_lost_red_and_persisted_green() -> None:
    text = render.render_text(tree_report(), all_entries=True, style=render.COLOURED)
    assert "  file             5 B  \x1b[31m/srv/a.b\x1b[0m\n" in text
    assert "\x1b[32m/var/lib/nixos\x1b[0m" in text
    assert "\x1b" not in render.render_text(tree_report(), all_entries=True)


# --------------------------------------------------------------------------- metrics

SAMPLE = re.compile(r"^(blankslate_[a-z_]+) ([0-9]+(?:\.[0-9]+)?)$")


def parse_metrics(text: str) -> dict[str, float]:
    """A strict reading of the Prometheus text format for gauges: HELP, TYPE, one sample."""
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) % 3 == 0
    values: dict[str, float] = {}
    for help_line, type_line, sample in zip(lines[::3], lines[1::3], lines[2::3], strict=True):
        match = SAMPLE.match(sample)
        assert match is not None, sample
        name = match[1]
        assert help_line.startswith(f"# HELP {name} ") and len(help_line) > len(name) + 10
        assert type_line == f"# TYPE {name} gauge"
        values[name] = float(match[2])
    return values


def test_metrics_are_six_gauges() -> None:
    text = render.render_metrics(tree_report(), now=1_700_000_000.25)
    assert parse_metrics(text) == {
        "blankslate_lost_entries": 11,
        "blankslate_lost_bytes": 45,
        "blankslate_audit_timestamp_seconds": 1_700_000_000.25,
        "blankslate_hidden_entries": 0,
        "blankslate_hidden_bytes": 0,
        "blankslate_audit_complete": 1,
    }
    empty = parse_metrics(render.render_metrics(Report("walk", []), now=5))
    assert empty["blankslate_lost_entries"] == 0 and empty["blankslate_lost_bytes"] == 0


# --------------------------------------------------------------------------- the command


def walk_plan(tmp_path: Path) -> Path:
    data: dict[str, Any] = json.loads(plansource.default_text())
    data.update(rollback="none", btrfs=None, disk=None)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(data))
    return plan_file


@pytest.fixture
def live_root(tmp_path: Path, fp: FakeProcess, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "root"
    (root / "var" / "lib" / "nixos").mkdir(parents=True)
    (root / "etc").mkdir()  # NixOS makes /etc: the file in it is the one lost entry
    (root / "etc" / "notes").write_text("lost")
    fp.register(FINDMNT, stdout=json.dumps({"filesystems": []}), occurrences=10)
    monkeypatch.chdir(tmp_path)
    return root


def test_fail_on_lost_exit_codes(
    live_root: Path, tmp_path: Path, run_cli: Callable[..., int], capsys: Any
) -> None:
    base = ["diff", "--plan", str(walk_plan(tmp_path)), "--root"]
    assert run_cli(*base, str(live_root), "--fail-on-lost") == 1
    assert run_cli(*base, str(live_root)) == 0
    # The audit itself fails: 2 with --fail-on-lost (never 1, which means "lost"), else 1.
    assert run_cli(*base, str(tmp_path / "missing"), "--fail-on-lost") == 2
    assert run_cli(*base, str(tmp_path / "missing")) == 1
    assert "error: " in capsys.readouterr().err
    # Usage errors stay 2.
    assert run_cli(*base, str(live_root), "--fail-on-lost", "--format", "xml") == 2
    assert run_cli("diff", "--fail-on-lost", "--no-such-option") == 2


def test_a_bug_during_the_audit_is_still_exit_2(
    live_root: Path,
    tmp_path: Path,
    run_cli: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Report:
        raise RuntimeError("a bug")

    monkeypatch.setattr(audit, "run_diff", broken)
    args = ["diff", "--plan", str(walk_plan(tmp_path)), "--root", str(live_root)]
    assert run_cli(*args, "--fail-on-lost") == 2
    assert "RuntimeError: a bug" in capsys.readouterr().err
    with pytest.raises(RuntimeError):
        run_cli(*args)


def test_report_and_metrics_files(
    live_root: Path, tmp_path: Path, run_cli: Callable[..., int], capsys: Any
) -> None:
    state = tmp_path / "state" / "blankslate"  # missing: made
    report_file, metrics_file = state / "audit.json", tmp_path / "textfiles" / "blankslate.prom"
    args = ["diff", "--plan", str(walk_plan(tmp_path)), "--root", str(live_root)]
    outputs = ["--report", str(report_file), "--metrics", str(metrics_file)]
    assert run_cli(*args, *outputs, "--fail-on-lost") == 1
    stdout = capsys.readouterr().out
    assert stdout.startswith("Lost at the next boot: 1 entry, 4 B\n")
    document = json.loads(report_file.read_text())
    assert document["summary"]["lost"] == 1
    assert [entry["path"] for entry in document["entries"] if entry["status"] == "lost"] == [
        "/etc/notes"
    ]
    assert oct(report_file.stat().st_mode & 0o777) == "0o600"
    assert oct(metrics_file.stat().st_mode & 0o777) == "0o644"
    assert oct(state.stat().st_mode & 0o777) == "0o755"
    values = parse_metrics(metrics_file.read_text())
    assert values["blankslate_lost_entries"] == 1 and values["blankslate_lost_bytes"] == 4
    assert abs(values["blankslate_audit_timestamp_seconds"] - datetime.now(UTC).timestamp()) < 600
    assert sorted(os.listdir(metrics_file.parent)) == ["blankslate.prom"]  # no temporary left


def test_outputs_never_follow_a_planted_symlink(
    live_root: Path, tmp_path: Path, run_cli: Callable[..., int]
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    metrics_file = textfiles / "blankslate.prom"
    metrics_file.symlink_to(victim)
    report_file = textfiles / "audit.json"
    report_file.symlink_to(victim)
    args = ["diff", "--plan", str(walk_plan(tmp_path)), "--root", str(live_root)]
    assert run_cli(*args, "--metrics", str(metrics_file), "--report", str(report_file)) == 0
    assert victim.read_text() == "precious"
    assert not metrics_file.is_symlink() and not report_file.is_symlink()
    assert "blankslate_lost_entries 1" in metrics_file.read_text()


def test_the_files_a_run_writes_are_not_lost(tmp_path: Path, fp: FakeProcess) -> None:
    root = tmp_path / "root"
    (root / "textfiles").mkdir(parents=True)
    (root / "textfiles" / "blankslate.prom").write_text("old")
    (root / "textfiles" / "other.prom").write_text("not ours")
    fp.register(FINDMNT, stdout=json.dumps({"filesystems": []}))
    outputs = audit.outputs_of(report_file=None, metrics_file=Path("/textfiles/blankslate.prom"))
    report = audit.run_diff(plansource.default(), root=root, outputs=outputs)
    statuses = {entry[0]: (entry[3], entry[4]) for entry in report.entries}
    assert statuses["/textfiles/blankslate.prom"] == (
        "managed",
        "written by blankslate diff (--metrics) at every run",
    )
    assert statuses["/textfiles/other.prom"][0] == "lost"


def test_verbose_alone_echoes_the_mount(
    live_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="blankslate")
    parameters: dict[str, Any] = dict(
        source=plansource.PlanSource(walk_plan(tmp_path)),
        device=None,
        root=live_root,
        format="json",
        all_entries=False,
        ignore_file=None,
        fail_on_lost=False,
    )
    commands.diff(**parameters)
    assert "$ findmnt" not in caplog.text
    commands.diff(**parameters, verbose=True)
    assert "$ findmnt" in caplog.text


# --------------------------------------------------------------------------- roots --audit


def test_roots_table_and_json_with_lost_counts() -> None:
    now = datetime(2026, 1, 3, tzinfo=UTC)
    kept = [
        snapshots.Snapshot("2026-01-02T00:00:00Z", Path("/x"), datetime(2026, 1, 2, tzinfo=UTC), 0),
        snapshots.Snapshot("by-hand", Path("/y"), None, 0),
    ]
    lost = {"2026-01-02T00:00:00Z": 12, "by-hand": 0}
    table = snapshots.format_table(kept, now, lost=lost).splitlines()
    assert table[0].split() == ["NAME", "TIME", "(UTC)", "AGE", "REFERENCED", "EXCLUSIVE", "LOST"]
    assert table[1].split()[-1] == "12" and table[2].split()[-1] == "0"
    assert "LOST" not in snapshots.format_table(kept, now)
    assert oldroots.root_json(kept[0], lost)["lostEntries"] == 12
    assert "lostEntries" not in oldroots.root_json(kept[0])


def test_pick_old_root_by_name_or_latest() -> None:
    kept = [snapshots.Snapshot(name, Path("/x"), None, 0) for name in ("new", "old")]
    assert oldroots.pick(kept, "latest").name == "new"
    assert oldroots.pick(kept, "old").name == "old"
    with pytest.raises(BlankslateError, match="no old root named 'gone' \\(newest: new, old"):
        oldroots.pick(kept, "gone")
    with pytest.raises(BlankslateError, match="no old roots kept yet"):
        oldroots.pick([], "latest")


def test_old_root_and_root_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(BlankslateError, match="either --root or --old-root"):
        audit.run_diff(plansource.default(), root=tmp_path, old_root="latest")
