"""Hidden is lost (#23): what the root holds beneath a bind mount or a mountpoint is reported
as lost by `diff`, for every rollback kind, and `seed --hidden` copies it into the root that
keeps the path without ever overwriting."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from blankslate import audit, beneath, classify, cli, hidden_seed, plan, plansource, render, scan
from blankslate.classify import Report
from blankslate.errors import BlankslateError
from blankslate.ignore_rules import Rule

from ..support.mounts import FINDMNT

# host -> (its rollback kind, a mountpoint of its layout or persistPath's platform mount, what
# `diff` says covers it)
HOSTS = {
    "example": ("btrfs", "/home", "the mount of subvolume 'home' on /home"),
    "zfs": ("zfs", "/home", "the mount of dataset 'safe/home' on /home"),
    "tmpfs": ("tmpfs", "/var/log", "the mount of subvolume 'log' on /var/log"),
    "vpsfree": ("none", "/persistent", "the mount of persistPath /persistent"),
}


def with_foo(data: dict[str, Any]) -> plan.Plan:
    """The host's plan with /var/lib/foo newly persisted, as in the issue."""
    root = data["persistPath"]
    data["persistence"]["directories"].append({"directory": "/var/lib/foo", "root": root})
    return plan.from_json(data)


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_hidden_entries_are_lost_for_every_rollback_kind(
    host: str, host_plan_data: Callable[[str], dict[str, Any]]
) -> None:
    kind, mountpoint, mount_cover = HOSTS[host]
    the_plan = with_foo(host_plan_data(host))
    assert the_plan.rollback == kind
    rules = classify.rules_for(the_plan, [])
    raw: list[scan.RawTuple] = [
        ("/var", "dir", 0, None),
        ("/var/lib", "dir", 0, None),
        ("/var/lib/foo", "dir", 0, None),  # the mountpoint itself: kept
        ("/var/lib/foo/db", "file", 7, None),
        ("/var/lib/foo/sub", "dir", 0, None),
        ("/var/lib/foo/sub/x", "symlink", 12, "/nix/store/x"),
        ("/var/lib/nixos", "dir", 0, None),
        ("/var/lib/nixos/uid-map", "file", 2, None),
        ("/etc", "dir", 0, None),
        ("/etc/machine-id", "file", 33, None),  # a placeholder that holds data: hidden
        (mountpoint, "dir", 0, None),
        (f"{mountpoint}/stray", "file", 5, None),
    ]
    entries = {entry[0]: entry[3:] for entry in classify.classify(raw, rules)}
    foo = "hidden under the bind mount of /var/lib/foo"
    assert entries["/var/lib/foo"][0] == "persisted"
    assert entries["/var/lib/foo/db"] == ("lost", foo)
    assert entries["/var/lib/foo/sub"] == ("lost", foo)
    assert entries["/var/lib/foo/sub/x"] == ("lost", foo)  # not managed: nothing re-creates it
    assert entries["/var/lib/nixos/uid-map"] == (
        "lost",
        "hidden under the bind mount of /var/lib/nixos",
    )
    assert entries["/etc/machine-id"] == ("lost", "hidden under the bind mount of /etc/machine-id")
    assert entries[mountpoint][0] == "persisted"
    assert entries[f"{mountpoint}/stray"] == ("lost", f"hidden under {mount_cover}")
    report = Report(kind, classify.classify(raw, rules))
    assert sum(classify.is_hidden(entry) for entry in report.entries) == 6


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (("/etc/machine-id", "file", 0, None), "persisted"),  # the empty placeholder
        (("/etc/machine-id", "symlink", 25, "/persist/etc/machine-id"), "persisted"),
        (("/etc/machine-id", "file", 33, None), "lost"),
        (("/var/lib/nixos", "dir", 0, None), "persisted"),
    ],
)
def test_the_exceptions_are_the_mountpoint_the_empty_placeholder_and_the_symlink(
    raw: scan.RawTuple, status: str
) -> None:
    rules = classify.rules_for(plansource.default(), [])
    [(_path, _kind, _size, found, reason)] = classify.classify([raw], rules)
    assert found == status
    assert classify.is_hidden((*raw[:3], found, reason)) == (status == "lost")


def test_hidden_beats_managed_and_ignored() -> None:
    rules = classify.rules_for(plansource.default(), [Rule("/var/lib/nixos/**", "fine", "test")])
    raw: list[scan.RawTuple] = [
        ("/var/lib/nixos", "dir", 0, None),
        ("/var/lib/nixos/cache", "file", 1, None),
        ("/var/lib/nixos/link", "symlink", 10, "/nix/store/x"),
    ]
    statuses = [entry[3] for entry in classify.classify(raw, rules)]
    assert statuses == ["persisted", "lost", "lost"]


def test_live_mounts_hide_what_lies_below_them() -> None:
    rules = classify.rules_for(plansource.default(), [])
    classify.add_live_mounts(rules, ["/", "/srv/data", "/home"])
    raw: list[scan.RawTuple] = [
        ("/srv", "dir", 0, None),
        ("/srv/data", "dir", 0, None),
        ("/srv/data/old", "file", 3, None),
        ("/home", "dir", 0, None),
    ]
    entries = {entry[0]: entry[3:] for entry in classify.classify(raw, rules)}
    assert entries["/srv/data/old"] == ("lost", "hidden under the mount on /srv/data")
    assert entries["/srv/data"] == ("managed", "mountpoint of a mount of the live system")
    assert entries["/home"] == ("persisted", "mountpoint of subvolume 'home'")  # the plan's


# --------------------------------------------------------------------------- rendering


def hidden_report() -> Report:
    return Report(
        "walk",
        [
            ("/etc/notes", "file", 4, "lost", ""),
            ("/var/lib/foo", "dir", 0, "persisted", "persisted directory"),
            ("/var/lib/foo/db", "file", 7, "lost", "hidden under the bind mount of /var/lib/foo"),
            ("/var/lib/foo/sub", "dir", 0, "lost", "hidden under the bind mount of /var/lib/foo"),
            (
                "/var/lib/foo/sub/a",
                "file",
                1,
                "lost",
                "hidden under the bind mount of /var/lib/foo",
            ),
            (
                "/var/lib/foo/sub/b",
                "file",
                2,
                "lost",
                "hidden under the bind mount of /var/lib/foo",
            ),
        ],
    )


def test_text_has_a_section_for_hidden_entries() -> None:
    assert render.render_text(hidden_report()) == (
        "Lost at the next boot: 1 entry, 4 B\n"
        "/etc  (1 entry, 4 B)\n"
        "  file             4 B  /etc/notes\n"
        "\n"
        "Hidden beneath mounts, lost at the next boot: 4 entries, 10 B\n"
        "hidden under the bind mount of /var/lib/foo  (4 entries, 10 B)\n"
        "  file             7 B  /var/lib/foo/db\n"
        "  dir              3 B  /var/lib/foo/sub/  (all 3 entries lost)\n"
        "\n"
        "lost 5, ignored 0, managed 0, persisted 1\n"
    )


def test_text_with_only_hidden_entries_never_says_nothing_is_lost() -> None:
    report = Report("walk", [hidden_report().entries[2]])
    text = render.render_text(report)
    assert "Nothing is lost" not in text
    assert text.startswith("Hidden beneath mounts, lost at the next boot: 1 entry, 7 B\n")


def test_json_and_yaml_mark_hidden_entries() -> None:
    collapsed = json.loads(render.render_json(hidden_report()))["entries"]
    assert [(e["path"], e.get("collapsed")) for e in collapsed if e.get("hidden")] == [
        ("/var/lib/foo/db", None),
        ("/var/lib/foo/sub", {"entries": 2, "size": 3}),  # all below hidden the same way
    ]
    document = json.loads(render.render_json(hidden_report(), full=True))
    hidden = [entry["path"] for entry in document["entries"] if entry.get("hidden") is True]
    assert hidden == ["/var/lib/foo/db", "/var/lib/foo/sub", "/var/lib/foo/sub/a",
                      "/var/lib/foo/sub/b"]  # fmt: skip
    assert "hidden" not in document["entries"][0]  # lost, not hidden
    yaml = render.render_yaml(hidden_report(), full=True)
    assert yaml.count("    hidden: true\n") == 4
    assert (
        '  - path: "/var/lib/foo/db"\n    type: file\n    size: 7\n    status: lost\n'
        '    reason: "hidden under the bind mount of /var/lib/foo"\n    hidden: true\n'
    ) in yaml


def test_metrics_count_hidden_entries_and_bytes() -> None:
    text = render.render_metrics(hidden_report(), now=1.0)
    assert "# TYPE blankslate_hidden_entries gauge\nblankslate_hidden_entries 4\n" in text
    assert "# TYPE blankslate_hidden_bytes gauge\nblankslate_hidden_bytes 10\n" in text
    assert "blankslate_lost_entries 5\n" in text


# --------------------------------------------------------------------------- the scans


def test_view_builders() -> None:
    assert beneath.make_private_cmd() == ["mount", "--make-rprivate", "/"]
    assert beneath.bind_view_cmd("/", "/tmp/v") == ["mount", "-o", "bind,ro", "--", "/", "/tmp/v"]


def none_plan(host_plan_data: Callable[[str], dict[str, Any]]) -> plan.Plan:
    data = host_plan_data("vpsfree")
    data["persistence"]["directories"].append({"directory": "/var/lib/foo", "root": "/persistent"})
    return plan.from_json(data)


@pytest.mark.parametrize("rollback", ["tmpfs", "none"])
def test_a_live_walk_looks_beneath_the_mounts(
    rollback: str,
    tmp_path: Path,
    fp: FakeProcess,
    monkeypatch: pytest.MonkeyPatch,
    host_plan_data: Callable[[str], dict[str, Any]],
) -> None:
    """tmpfs and none walk / as `beneath` shows it; a mount of the live system hides too."""
    view = tmp_path / "view"  # what the namespace shows: the root without its mounts
    (view / "var/lib/foo").mkdir(parents=True)
    (view / "var/lib/foo/db").write_text("hidden")
    (view / "srv/data").mkdir(parents=True)
    (view / "srv/data/old").write_text("x")
    seen: list[str] = []

    def in_view(root: str, work: Callable[[str], Any]) -> Any:
        seen.append(root)
        return work(str(view))

    monkeypatch.setattr(beneath, "in_view", in_view)
    mounts = {"filesystems": [{"target": "/srv/data", "source": "/dev/sdb1", "fstype": "ext4",
                               "options": "rw"}]}  # fmt: skip
    fp.register(FINDMNT, stdout=json.dumps(mounts))
    data = host_plan_data("tmpfs") if rollback == "tmpfs" else host_plan_data("vpsfree")
    the_plan = with_foo(data)
    report = audit.run_diff(the_plan)
    assert seen == ["/"]
    entries = {entry[0]: entry[3:] for entry in report.entries}
    assert entries["/var/lib/foo/db"] == ("lost", "hidden under the bind mount of /var/lib/foo")
    assert entries["/srv/data/old"] == ("lost", "hidden under the mount on /srv/data")


def test_without_root_the_walk_says_what_it_cannot_see(
    tmp_path: Path, fp: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_root(root: str, work: Callable[[str], Any]) -> Any:
        raise beneath.NotRoot(f"not root: what the mounts on {root} hide is not seen")

    monkeypatch.setattr(beneath, "in_view", not_root)
    fp.register(FINDMNT, stdout='{"filesystems": []}')
    (tmp_path / "srv").mkdir()
    report = audit.run_diff(plansource.default(), root=tmp_path)
    assert [entry[0] for entry in report.entries] == ["/srv"]
    assert report.problems == [f"not root: what the mounts on {tmp_path} hide is not seen"]


def test_zfs_measures_hidden_paths_beneath_the_mounts(
    tmp_path: Path,
    fp: FakeProcess,
    monkeypatch: pytest.MonkeyPatch,
    host_plan_data: Callable[[str], dict[str, Any]],
) -> None:
    """`zfs diff` names a file a bind mount hides: its size is its own, read beneath the mount
    (the live path would give the bind-mounted file's, or nothing)."""
    view = tmp_path / "view"
    (view / "var/lib/foo").mkdir(parents=True)
    (view / "var/lib/foo/db").write_text("hidden!")
    monkeypatch.setattr(beneath, "in_view", lambda root, work: work(str(view)))
    fp.register(["zfs", "diff", "-H", "-F", "rpool/local/root@blank"],
                stdout="+\tF\t/var/lib/foo/db\n")  # fmt: skip
    report = audit.run_diff(with_foo(host_plan_data("zfs")))
    assert report.entries == [
        ("/var/lib/foo/db", "file", 7, "lost", "hidden under the bind mount of /var/lib/foo")
    ]


def test_the_view_is_for_root_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real in_view, not the unit tier's stand-in
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(beneath.NotRoot, match="not root: what the mounts on / hide"):
        beneath.in_view("/", lambda view: None)


# --------------------------------------------------------------------------- seed --hidden


@pytest.fixture
def hidden_tree(
    tmp_path: Path, fp: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path, plan.Plan]:
    """A target root with persistPath mounted, and the view beneath its mounts."""
    root, view = tmp_path / "root", tmp_path / "view"
    (root / "persist/var/lib/foo").mkdir(parents=True)
    (root / "persist/var/lib/foo/kept").write_text("kept")
    (root / "persist/var/lib/foo/same").write_text("same")
    (view / "var/lib/foo/sub").mkdir(parents=True)
    (view / "var/lib/foo/db").write_text("hidden")
    (view / "var/lib/foo/kept").write_text("hidden other")
    (view / "var/lib/foo/same").write_text("same")
    (view / "var/lib/foo/sub/x").write_text("x")
    (view / "home/stray").mkdir(parents=True)
    monkeypatch.setattr(beneath, "in_view", lambda _root, work: work(str(view)))
    mounted = {"filesystems": [{"target": str(root / "persist"), "source": "/dev/vda3",
                                "fstype": "btrfs", "options": "rw"}]}  # fmt: skip
    fp.register(FINDMNT, stdout=json.dumps(mounted), occurrences=10)
    data = plansource.default().to_json()
    data["persistence"]["directories"].append({"directory": "/var/lib/foo", "root": "/persist"})
    return root, view, plan.from_json(data)


def test_seed_hidden_lists_copies_conflicts_and_what_it_cannot_keep(
    hidden_tree: tuple[Path, Path, plan.Plan],
) -> None:
    root, _view, the_plan = hidden_tree
    items = hidden_seed.inspect(the_plan, root=root)
    persist = root / "persist"
    assert sorted((item.action, item.path, item.target) for item in items) == [
        ("conflict", "/var/lib/foo/kept", f"{persist}/var/lib/foo/kept"),
        ("copy", "/var/lib/foo/db", f"{persist}/var/lib/foo/db"),
        ("copy", "/var/lib/foo/sub", f"{persist}/var/lib/foo/sub"),
        ("present", "/var/lib/foo/same", f"{persist}/var/lib/foo/same"),
        ("problem", "the mount of subvolume 'home' on /home", ""),
    ]
    by_path = {item.path: item for item in items}
    assert by_path["/var/lib/foo/db"].action == "copy"
    assert by_path["/var/lib/foo/sub"].action == "copy"  # the tree as one copy
    assert "/var/lib/foo/sub/x" not in by_path
    assert by_path["/var/lib/foo/same"].action == "present"
    conflict = by_path["/var/lib/foo/kept"]
    assert conflict.action == "conflict"
    line = hidden_seed.describe([conflict])[0]
    assert "/var/lib/foo/kept" in line and f"{persist}/var/lib/foo/kept" in line  # both copies
    assert "\n" not in line
    problem = by_path["the mount of subvolume 'home' on /home"]
    assert problem.action == "problem" and "copy them by hand" in problem.detail
    assert (persist / "var/lib/foo/kept").read_text() == "kept"


def test_seed_hidden_only_for_the_paths_given(hidden_tree: tuple[Path, Path, plan.Plan]) -> None:
    root, _view, the_plan = hidden_tree
    assert hidden_seed.inspect(the_plan, root=root, selection=["/var/lib/nixos"]) == []
    with pytest.raises(BlankslateError, match="/srv is not a persisted path of the plan"):
        hidden_seed.inspect(the_plan, root=root, selection=["/srv"])


def test_seed_hidden_never_writes_through_a_planted_symlink(
    hidden_tree: tuple[Path, Path, plan.Plan], tmp_path: Path
) -> None:
    """A user who owns a directory in persistPath plants a link where the copy would go."""
    root, _view, the_plan = hidden_tree
    victim = tmp_path / "victim"
    victim.mkdir()
    (root / "persist/var/lib/foo/sub").symlink_to(victim)
    items = {item.path: item for item in hidden_seed.inspect(the_plan, root=root)}
    assert items["/var/lib/foo/sub"].action == "conflict"
    assert "is a symlink" in items["/var/lib/foo/sub"].detail
    assert list(victim.iterdir()) == []


def test_seed_hidden_dry_run_copies_nothing(
    hidden_tree: tuple[Path, Path, plan.Plan],
    run_cli: Callable[..., int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, _view, the_plan = hidden_tree
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(the_plan.to_json()))
    code = run_cli("seed", "--hidden", "--dry-run", "--plan", str(plan_file), "--root", str(root))
    out = capsys.readouterr().out
    assert code == 1  # a conflict and a problem need a look
    assert (
        f"copy      dir        /var/lib/foo/sub (hidden) -> {root}/persist/var/lib/foo/sub" in out
    )
    assert out.endswith("Dry run: nothing was changed.\n")
    assert not (root / "persist/var/lib/foo/db").exists()


# --------------------------------------------------------------------------- the argument


@given(
    argv=st.lists(
        st.sampled_from(
            [
                "--hidden",
                "--dry-run",
                "--yes",
                "-y",
                "/var/lib/foo",
                "--root=/mnt",
                "--root",
                "/mnt",
                "--plan",
                "p.json",
                "--",
                "-x",
            ]
        ),
        max_size=7,
    )
)
def test_seed_hidden_parses_as_typer_would(argv: list[str]) -> None:
    """The fast start never turns --hidden into anything but the flag, and gives it once."""
    invocation = cli.parse_plain(["seed", *argv])
    if invocation is None:
        return
    assert invocation.parameters["hidden"] is ("--hidden" in argv)
    assert argv.count("--hidden") <= 1
    assert invocation.parameters["dry_run"] or invocation.parameters["yes"]


def test_covers_that_share_a_prefix_each_hide_their_own() -> None:
    """/srv/a.b sorts between /srv/a and /srv/a/x: it is no cover inside /srv/a."""
    rules = classify.rules_for(plansource.default(), [])
    classify.add_live_mounts(rules, ["/srv/a", "/srv/a.b", "/srv/a/x"])
    raw: list[scan.RawTuple] = [
        ("/srv", "dir", 0, None),
        ("/srv/a", "dir", 0, None),
        ("/srv/a.b", "dir", 0, None),
        ("/srv/a.b/in-a.b", "file", 1, None),
        ("/srv/a/x", "dir", 0, None),
        ("/srv/a/x/in-x", "file", 1, None),
    ]
    reasons = {entry[0]: entry[4] for entry in classify.classify(raw, rules)}
    assert reasons["/srv/a.b/in-a.b"] == "hidden under the mount on /srv/a.b"
    assert reasons["/srv/a/x"] == "hidden under the mount on /srv/a"  # the outer one hides
    assert reasons["/srv/a/x/in-x"] == "hidden under the mount on /srv/a"


def test_seed_hidden_never_reads_through_a_symlink_planted_after_the_listing(
    hidden_tree: tuple[Path, Path, plan.Plan], tmp_path: Path, fp: FakeProcess
) -> None:
    """Between the listing and the copy, a user swaps a hidden directory on the way for a link
    to root's files: the copy refuses it, nothing of root's is read."""
    import os
    import shutil

    root, view, the_plan = hidden_tree
    (view / "root/vault").mkdir(parents=True)
    (view / "root/vault/x").write_text("root's secret")
    context = hidden_seed._context(the_plan, root, ())
    target = root / "persist/var/lib/foo/sub/x"
    item = hidden_seed.HiddenItem("copy", "file", "/var/lib/foo/sub/x", str(target))
    shutil.rmtree(view / "var/lib/foo/sub")
    (view / "var/lib/foo/sub").symlink_to("../../../root/vault")

    def cp(process: Any) -> None:  # cp, as it would read what it is given
        shutil.copy2(os.path.realpath(str(process.args[-2])), str(process.args[-1]))

    fp.register(["cp", fp.any()], callback=cp, occurrences=2)
    with pytest.raises(BlankslateError, match=r"var/lib/foo/sub is a symlink: refusing to read"):
        hidden_seed._copy(context, item, str(view))
    assert not target.exists()
