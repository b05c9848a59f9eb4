"""`blankslate diff`: scanning, classification and the text/JSON/YAML renderings."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_subprocess import FakeProcess
from ruamel.yaml import YAML

from blankslate import audit, classify, display, plan, plansource, render, scan
from blankslate.errors import BlankslateError
from blankslate.ignore_rules import Rule
from blankslate.scan import Raw

from ..support.mounts import FINDMNT, findmnt_json


def plan_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(plansource.default_text())
    data.update(changes)
    return data


def zfs_plan() -> plan.Plan:
    data = plan_data(
        rollback="zfs",
        btrfs=None,
        zfs={
            "pool": "tank",
            "rootDataset": "root",
            "blankSnapshot": "blank",
            "datasets": ["root", "nix"],
        },
        mounts=[
            {
                "mountPoint": mount_point,
                "device": device,
                "fsType": "zfs",
                "options": [],
                "neededForBoot": True,
            }
            for mount_point, device in (
                ("/", "tank/root"),
                ("/nix", "tank/nix"),
                ("/persist", "tank/persist"),
            )
        ],
    )
    data["zfs"]["datasets"].append("persist")
    data["disk"]["partitions"][-1].update(format="zfs", type="bf00", label="tank")
    return plan.from_json(data)


def statuses(entries: list[classify.EntryTuple]) -> dict[str, tuple[str, str]]:
    return {path: (status, kind) for path, kind, _size, status, _reason in entries}


# --------------------------------------------------------------------------- walking


def test_walk_reports_every_kind_without_following_links(tmp_path: Path) -> None:
    (tmp_path / "d" / "empty").mkdir(parents=True)
    (tmp_path / "d" / "f").write_bytes(b"12345")
    (tmp_path / "d" / "e").touch()
    (tmp_path / "l").symlink_to("/nowhere")
    (tmp_path / "ld").symlink_to("d")
    os.mkfifo(tmp_path / "fifo")
    entries, problems = scan.walk(str(tmp_path))
    assert sorted(entries) == [
        Raw("/d", "dir", 0, None),
        Raw("/d/e", "file", 0, None),
        Raw("/d/empty", "dir", 0, None),
        Raw("/d/f", "file", 5, None),
        Raw("/fifo", "other", 0, None),
        Raw("/l", "symlink", len("/nowhere"), "/nowhere"),
        Raw("/ld", "symlink", 1, "d"),
    ]
    assert problems == []


def test_walk_leaves_out_skipped_mountpoints(tmp_path: Path) -> None:
    (tmp_path / "persist" / "data").mkdir(parents=True)
    (tmp_path / "machine-id").touch()
    (tmp_path / "kept").touch()
    entries, _ = scan.walk(str(tmp_path), skip=frozenset({"/persist", "/machine-id"}))
    assert [entry[0] for entry in entries] == ["/kept"]


def test_walk_keeps_undecodable_names(tmp_path: Path) -> None:
    os.close(os.open(os.fsencode(tmp_path) + b"/bad\xff\nname", os.O_CREAT | os.O_WRONLY))
    entries, _ = scan.walk(str(tmp_path))
    assert [os.fsencode(entry[0]) for entry in entries] == [b"/bad\xff\nname"]


def test_mount_targets_below_maps_to_paths_as_on_root(fp: FakeProcess, tmp_path: Path) -> None:
    fp.register(
        FINDMNT,
        stdout=findmnt_json(
            ("/", "/dev/sda1"), (f"{tmp_path}/persist", "/dev/sda2"), (f"{tmp_path}x", "tmpfs")
        ),
    )
    assert scan.mount_targets_below(str(tmp_path)) == frozenset({"/persist"})


# --------------------------------------------------------------------------- zfs


ZFS_DIFF = (
    "M\t/\t/\n"
    "+\tF\t/etc/new\\0040file\n"
    "+\t/\t/srv\n"
    "+\t@\t/srv/link\n"
    "-\tF\t/gone\n"
    "M\tF\t/etc/changed\n"
    "R\tF\t/old\t/srv/renamed\\0012x\\0377\n"
    "+\t|\t/srv/fifo\n"
)


def test_parse_zfs_diff_keeps_what_exists_now() -> None:
    assert scan.parse_zfs_diff(ZFS_DIFF) == [
        ("/etc/new file", "file"),
        ("/srv", "dir"),
        ("/srv/link", "symlink"),
        ("/etc/changed", "file"),
        (os.fsdecode(b"/srv/renamed\nx\xff"), "file"),
        ("/srv/fifo", "other"),
    ]


def test_scan_zfs_runs_zfs_diff_and_measures_the_live_paths(
    fp: FakeProcess, tmp_path: Path
) -> None:
    fp.register(["zfs", "diff", "-H", "-F", "tank/root@blank"], stdout=ZFS_DIFF)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "new file").write_text("abc")
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "link").symlink_to("/nix/store/x")
    entries, problems = scan.scan_zfs("tank/root", "blank", str(tmp_path))
    assert entries == [
        Raw("/etc/new file", "file", 3, None),
        Raw("/srv", "dir", 0, None),
        Raw("/srv/link", "symlink", 12, "/nix/store/x"),
    ]
    assert problems == []


def test_run_diff_on_zfs_classifies(fp: FakeProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    fp.register(["zfs", "diff", "-H", "-F", "tank/root@blank"], stdout="+\t/\t/nix\n")
    monkeypatch.setattr(audit, "_read_text", lambda path: None)
    report = audit.run_diff(zfs_plan())
    assert report.method == "zfs"
    assert statuses(report.entries) == {"/nix": ("persisted", "dir")}


# --------------------------------------------------------------------------- btrfs


def test_btrfs_device_defaults_to_the_one_backing_persist(fp: FakeProcess) -> None:
    fp.register(
        [*FINDMNT, "--mountpoint", "/persist"],
        stdout=findmnt_json(("/persist", "/dev/vda3[/persist]")),
    )
    fp.register(["mount", "-t", "btrfs", "-o", "subvolid=5,ro", "--", "/dev/vda3", fp.any()])
    fp.register(["umount", "--", fp.any()])
    # The fake mount leaves its directory empty: the root subvolume is missing.
    with pytest.raises(BlankslateError, match="subvolume 'root' not found on /dev/vda3"):
        audit.run_diff(plansource.default())
    assert fp.call_count(["umount", "--", fp.any()]) == 1


def test_btrfs_without_persist_mounted_asks_for_device(fp: FakeProcess) -> None:
    fp.register([*FINDMNT, "--mountpoint", "/persist"], returncode=1)
    with pytest.raises(BlankslateError, match=r"/persist is not a mountpoint \(give --device"):
        audit.run_diff(plansource.default())


# --------------------------------------------------------------------------- classification


def test_classify_gives_one_status_each() -> None:
    rules = classify.rules_for(
        plansource.default(),
        [Rule("/srv/cache/**", "rebuilt", "test")],
        etc_clean="sudoers\nssh/ssh_config\n",
    )
    raw = [
        Raw("/persist", "dir", 0, None),
        Raw("/persist/stale", "file", 1, None),
        Raw("/var", "dir", 0, None),
        Raw("/var/lib", "dir", 0, None),
        Raw("/var/lib/nixos", "dir", 0, None),
        Raw("/var/lib/nixos/uid-map", "file", 9, None),
        Raw("/var/lib/nixos/sub", "subvolume", 0, None),
        Raw("/var/lib/nixos/sub/x", "file", 1, None),
        Raw("/etc", "dir", 0, None),
        Raw("/etc/machine-id", "file", 0, None),
        Raw("/etc/sudoers", "file", 10, None),
        Raw("/etc/ssh", "dir", 0, None),
        Raw("/etc/ssh/ssh_config", "file", 10, None),
        Raw("/etc/static", "symlink", 14, "/nix/store/abc"),
        Raw("/etc/hosts", "symlink", 18, "/etc/static/hosts"),
        Raw("/etc/own-link", "symlink", 4, "/srv"),
        Raw("/etc/notes", "file", 5, None),
        Raw("/srv", "dir", 0, None),
        Raw("/srv/cache", "dir", 0, None),
        Raw("/srv/cache/blob", "file", 3, None),
        Raw("/opt", "dir", 0, None),
        Raw("/opt/empty", "dir", 0, None),
        Raw("/usr", "dir", 0, None),
        Raw("/usr/share", "dir", 0, None),
        Raw("/usr/share/link", "symlink", 20, "/nix/store/x"),
    ]
    assert statuses(classify.classify(raw, rules)) == {
        "/etc": ("managed", "dir"),
        "/etc/hosts": ("managed", "symlink"),
        "/etc/machine-id": ("persisted", "file"),
        "/etc/notes": ("lost", "file"),
        "/etc/own-link": ("lost", "symlink"),
        "/etc/ssh": ("managed", "dir"),
        "/etc/ssh/ssh_config": ("managed", "file"),
        "/etc/static": ("managed", "symlink"),
        "/etc/sudoers": ("managed", "file"),
        "/opt": ("lost", "dir"),
        "/opt/empty": ("lost", "dir"),
        "/persist": ("persisted", "dir"),
        "/persist/stale": ("lost", "file"),  # hidden under persistPath's mount
        "/srv": ("managed", "dir"),
        "/srv/cache": ("ignored", "dir"),
        "/srv/cache/blob": ("ignored", "file"),
        "/usr": ("managed", "dir"),
        # a link into the store that NixOS does not place: the next boot erases it (#28)
        "/usr/share": ("lost", "dir"),
        "/usr/share/link": ("lost", "symlink"),
        "/var": ("managed", "dir"),
        "/var/lib": ("managed", "dir"),
        "/var/lib/nixos": ("persisted", "dir"),
        # on the root beneath the bind mount: hidden, and erased with the root
        "/var/lib/nixos/sub": ("lost", "subvolume"),
        "/var/lib/nixos/sub/x": ("lost", "file"),
        "/var/lib/nixos/uid-map": ("lost", "file"),
    }


def test_classify_reasons_say_why() -> None:
    rules = classify.rules_for(plansource.default(), [Rule("/srv/**", "scratch", "test")])
    raw = [
        Raw("/var/lib/nixos/x", "file", 0, None),
        Raw("/var/lib/nixos", "dir", 0, None),
        Raw("/srv/a", "file", 0, None),
        Raw("/home", "dir", 0, None),
    ]
    reasons = {entry[0]: entry[4] for entry in classify.classify(raw, rules)}
    assert reasons == {
        "/home": "mountpoint of subvolume 'home'",
        "/srv/a": "scratch [/srv/**]",
        "/var/lib/nixos": "persisted directory",
        "/var/lib/nixos/x": "hidden under the bind mount of /var/lib/nixos",
    }


def test_classify_knows_every_root_and_users_home_paths(host_plan_data: Any) -> None:
    data = host_plan_data("vpsfree")  # no /home filesystem
    data["persistence"] = {
        "roots": ["/persistent", "/state"],
        "directories": [
            {"directory": "/home/alice/.ssh", "user": "alice", "group": "users", "mode": "0700"},
            {"directory": "/var/cache/app", "root": "/state"},
        ],
        "files": [{"file": "/home/alice/.screenrc", "root": "/persistent"}],
    }
    rules = classify.rules_for(plan.from_json(data), [])
    raw = [
        Raw("/home", "dir", 0, None),
        Raw("/home/alice", "dir", 0, None),
        Raw("/home/alice/.ssh", "dir", 0, None),
        Raw("/var/cache/app", "dir", 0, None),
        Raw("/state", "dir", 0, None),
        Raw("/home/alice/.ssh/authorized_keys", "file", 0, None),
        Raw("/home/alice/.screenrc", "file", 0, None),
        Raw("/home/alice/.bash_history", "file", 0, None),
        Raw("/var/cache/app/db", "file", 0, None),
        Raw("/state/x", "file", 0, None),
    ]
    classified = {entry[0]: (entry[3], entry[4]) for entry in classify.classify(raw, rules)}
    assert classified == {
        "/home": ("managed", "parent of a persisted path"),
        "/home/alice": ("managed", "parent of a persisted path"),
        "/home/alice/.ssh": ("persisted", "persisted directory"),
        "/var/cache/app": ("persisted", "persisted directory (in /state)"),
        "/state": ("persisted", "persistence root"),
        "/home/alice/.bash_history": ("lost", ""),
        "/home/alice/.screenrc": ("persisted", "persisted file"),
        # What the root holds beneath a bind mount or a root's mount is hidden, and lost.
        "/home/alice/.ssh/authorized_keys": (
            "lost",
            "hidden under the bind mount of /home/alice/.ssh",
        ),
        "/state/x": ("lost", "hidden under the mount of persistence root /state"),
        "/var/cache/app/db": ("lost", "hidden under the bind mount of /var/cache/app"),
    }


# --------------------------------------------------------------------------- rendering

ODD = os.fsdecode(b"/srv/odd\xff\nname")


def sample_report() -> classify.Report:
    return classify.Report(
        "btrfs",
        [
            classify.Entry("/etc/notes", "file", 2048, "lost", ""),
            classify.Entry("/etc/static", "symlink", 14, "managed", "symlink"),
            classify.Entry(ODD, "file", 1, "lost", ""),
            classify.Entry("/tmp/x", "file", 0, "ignored", 'said "so"'),
        ],
    )


def test_quote_path() -> None:
    assert display.quote_path("/etc/plain name") == "/etc/plain name"
    assert display.quote_path(ODD) == "$'/srv/odd\\xff\\nname'"
    assert display.quote_path("/a'b\tc\x01") == "$'/a\\'b\\tc\\x01'"


def test_text_lists_lost_by_top_directory_then_counts() -> None:
    assert render.render_text(sample_report()) == (
        "Lost at the next boot: 2 entries, 2.0 KiB\n"
        "/etc  (1 entry, 2.0 KiB)\n"
        "  file         2.0 KiB  /etc/notes\n"
        "/srv  (1 entry, 1 B)\n"
        "  file             1 B  $'/srv/odd\\xff\\nname'\n"
        "\n"
        "lost 2, ignored 1, managed 1, persisted 0\n"
    )


def test_text_all_lists_every_status() -> None:
    text = render.render_text(sample_report(), all_entries=True)
    assert 'Ignored (1):\n  file      /tmp/x  (said "so")\n' in text
    assert "Managed (1):\n  symlink   /etc/static  (symlink)\n" in text


def test_json_round_trips_every_byte() -> None:
    document = json.loads(render.render_json(sample_report()))
    assert document["version"] == 2
    assert document["complete"] is True and document["deeper"] == []
    assert document["method"] == "btrfs"
    assert document["summary"] == {"lost": 2, "ignored": 1, "managed": 1, "persisted": 0}
    assert [
        base64.b64decode(entry["pathBytes"]) if "pathBytes" in entry else entry["path"].encode()
        for entry in document["entries"]
    ] == [
        b"/etc/notes",
        b"/etc/static",
        b"/srv/odd\xff\nname",
        b"/tmp/x",
    ]
    assert document["entries"][2] == {
        "path": "/srv/odd\ufffd\nname",
        "pathBytes": base64.b64encode(b"/srv/odd\xff\nname").decode(),
        "type": "file",
        "size": 1,
        "status": "lost",
        "reason": "",
    }
    assert document["entries"][3] == {
        "path": "/tmp/x",
        "type": "file",
        "size": 0,
        "status": "ignored",
        "reason": 'said "so"',
    }


def test_json_keeps_utf8_names_as_they_were() -> None:
    report = classify.Report(
        "walk", [classify.Entry("/srv/caf\u00e9 \U0001f600", "file", 1, "lost", "")]
    )
    assert render.render_json(report).splitlines()[2] == (
        '  {"path": "/srv/caf\\u00e9 \\ud83d\\ude00", "type": "file", "size": 1, '
        '"status": "lost", "reason": ""}'
    )


def undecodable_report() -> classify.Report:
    names = [b"/srv/a\xff", b"/srv/a\xfe", b"/srv/a\xef\xbf\xbd", b"/srv/\xed\xa0\x80"]
    return classify.Report(
        "walk", [classify.Entry(os.fsdecode(n), "file", 1, "lost", "") for n in names]
    )


def test_json_names_that_are_not_utf8_keep_their_bytes() -> None:
    document = json.loads(render.render_json(undecodable_report()))
    entries = document["entries"]
    assert [entry["path"] for entry in entries] == ["/srv/a\ufffd"] * 3 + ["/srv/" + "\ufffd" * 3]
    assert [base64.b64decode(entry["pathBytes"]) for entry in entries[:2] + entries[3:]] == [
        b"/srv/a\xff",
        b"/srv/a\xfe",
        b"/srv/\xed\xa0\x80",
    ]
    assert "pathBytes" not in entries[2]  # valid UTF-8: U+FFFD itself


def test_yaml_says_the_same_as_json() -> None:
    report = sample_report()
    from_yaml = YAML(typ="safe").load(io.StringIO(render.render_yaml(report)))
    assert from_yaml == json.loads(render.render_json(report))


def test_empty_report_renders() -> None:
    empty = classify.Report("walk", [])
    assert json.loads(render.render_json(empty))["entries"] == []
    assert YAML(typ="safe").load(render.render_yaml(empty))["entries"] == []
    assert render.render_text(empty).startswith("Nothing is lost at the next boot.\n")


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize(("fail_on_lost", "lost", "code"), [(True, True, 1), (True, False, 0)])
def test_cli_diff_json_and_fail_on_lost(
    fp: FakeProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fail_on_lost: bool,
    lost: bool,
    code: int,
    run_cli: Callable[..., int],
) -> None:
    root = tmp_path / "root"
    (root / "var" / "lib" / "nixos").mkdir(parents=True)
    if lost:
        (root / "srv").mkdir()
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan_data(rollback="none", btrfs=None, disk=None)))
    fp.register(FINDMNT, stdout=findmnt_json(("/", "/dev/sda1")))
    monkeypatch.chdir(tmp_path)
    args = ["diff", "--plan", str(plan_file), "--root", str(root), "--format", "json"]
    assert run_cli(*args, *(["--fail-on-lost"] if fail_on_lost else [])) == code
    document = json.loads(capsys.readouterr().out)
    assert document["method"] == "walk"
    assert document["summary"]["lost"] == (1 if lost else 0)


# --------------------------------------------------------------------------- bounds (#28)


def make_chain(base: Path, names: list[str], *, siblings: bool = False) -> list[str]:
    """Directories nested in the order of `names` below `base`, made from held descriptors
    (no long path); `siblings`: a file "f" beside each. Returns the paths as on /."""
    made: list[str] = []
    logical = ""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.mkdir(name, dir_fd=fd)
            logical = f"{logical}/{name}"
            made.append(logical)
            if siblings:
                os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
                made.append(f"{logical.rpartition('/')[0]}/f")
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.symlink("/nix/store/x", "link", dir_fd=fd)
        made.append(f"{logical}/link")
    finally:
        os.close(fd)
    return made


def remove_chain(base: Path) -> None:
    """Everything below `base`, however deep, removed from held descriptors."""
    stack = [os.open(base, os.O_RDONLY | os.O_DIRECTORY)]
    while stack:
        fd = stack[-1]
        names = os.listdir(fd)
        subdirectory = next(
            (n for n in names if os.stat(n, dir_fd=fd, follow_symlinks=False).st_mode & 0o40000),
            None,
        )
        if subdirectory is not None:
            stack.append(os.open(subdirectory, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd))
            continue
        for name in names:
            os.unlink(name, dir_fd=fd)
        stack.pop()
        os.close(fd)
        if stack:
            parent = stack[-1]
            for name in os.listdir(parent):
                if os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode & 0o40000:
                    os.rmdir(name, dir_fd=parent)
                    break


def test_walk_reads_past_path_max_and_counts_what_lies_deeper(tmp_path: Path) -> None:
    """A tree deeper than PATH_MAX: read from held descriptors; what lies past the listed
    depth is counted under the deepest listed directory, never lost from sight."""
    made = make_chain(tmp_path, ["n" * 200] * 40)  # 40 x 201 bytes
    try:
        beyond: dict[str, list[int]] = {}
        entries, problems = scan.walk(str(tmp_path), beyond=beyond)
    finally:
        remove_chain(tmp_path)
    assert problems == []
    listed = [entry[0] for entry in entries]
    assert listed == made[: len(listed)] and 0 < len(listed) < len(made)
    assert all(len(path.encode()) <= 4095 for path in listed)
    assert beyond == {listed[-1]: [len(made) - len(listed), len("/nix/store/x")]}


def test_walk_goes_back_up_a_deep_tree_through_dotdot(tmp_path: Path) -> None:
    """Deeper than the descriptors a walk keeps open: each closed directory is opened again
    through "..", and every entry is found, in a loop (no recursion limit)."""
    names = [f"d{level}" for level in range(scan.KEEP_OPEN * 3)]
    made = make_chain(tmp_path, names, siblings=True)
    try:
        entries, problems = scan.walk(str(tmp_path))
    finally:
        remove_chain(tmp_path)
    assert problems == []
    assert sorted(entry[0] for entry in entries) == sorted(made)


def test_walk_gives_up_a_directory_moved_while_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed directory that is not the same when the walk comes back: a warning (the
    audit is incomplete), never a read of whatever is there now."""
    names = [f"d{level}" for level in range(scan.KEEP_OPEN + 3)]
    make_chain(tmp_path, names, siblings=True)
    real_fstat = os.fstat
    opened: list[int] = []

    def moved_fstat(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        opened.append(fd)
        if len(opened) > scan.KEEP_OPEN + 6:  # the ".." of a deep directory: someone else's
            return os.stat_result((info.st_mode, info.st_ino + 1, *tuple(info)[2:]))
        return info

    monkeypatch.setattr(os, "fstat", moved_fstat)
    try:
        entries, problems = scan.walk(str(tmp_path))
    finally:
        monkeypatch.undo()
        remove_chain(tmp_path)
    assert problems and all("moved while it was read" in p for p in problems)
    assert report_of(entries, problems).complete is False


def report_of(entries: list[Any], problems: list[str]) -> classify.Report:
    rules = classify.rules_for(plansource.default(), [])
    return classify.Report("walk", classify.classify(entries, rules), problems=problems)


def test_only_the_links_nixos_places_are_managed() -> None:
    """A user's links into /nix/store (a directory of them) are erased at the next boot:
    lost. The etc activation's links and NixOS's own /bin/sh, /usr/bin/env are managed."""
    raw = [
        Raw("/etc", "dir", 0, None),
        Raw("/etc/static", "symlink", 14, "/nix/store/abc-etc/etc"),
        Raw("/etc/hosts", "symlink", 17, "/etc/static/hosts"),
        Raw("/etc/ssh", "dir", 0, None),
        Raw("/etc/ssh/ssh_config", "symlink", 27, "/etc/static/ssh/ssh_config"),
        Raw("/etc/planted", "symlink", 12, "/nix/store/x"),
        Raw("/etc/crossed", "symlink", 17, "/etc/static/hosts"),
        Raw("/bin", "dir", 0, None),
        Raw("/bin/sh", "symlink", 30, "/nix/store/abc-bash/bin/sh"),
        Raw("/usr", "dir", 0, None),
        Raw("/usr/bin", "dir", 0, None),
        Raw("/usr/bin/env", "symlink", 30, "/nix/store/abc-coreutils/bin/env"),
        Raw("/srv", "dir", 0, None),
        Raw("/srv/links", "dir", 0, None),
        *(Raw(f"/srv/links/{n}", "symlink", 40, f"/nix/store/abc-{n}") for n in range(3)),
        Raw("/srv/current", "symlink", 19, "/run/current-system"),
    ]
    rules = classify.rules_for(plansource.default(), [])
    statuses = {entry[0]: entry[3] for entry in classify.classify(raw, rules)}
    assert statuses == {
        "/bin": "managed",
        "/bin/sh": "managed",
        "/etc": "managed",
        "/etc/crossed": "lost",
        "/etc/hosts": "managed",
        "/etc/planted": "lost",
        "/etc/ssh": "managed",
        "/etc/ssh/ssh_config": "managed",
        "/etc/static": "managed",
        "/srv": "lost",
        "/srv/current": "lost",
        "/srv/links": "lost",
        "/srv/links/0": "lost",
        "/srv/links/1": "lost",
        "/srv/links/2": "lost",
        "/usr": "managed",
        "/usr/bin": "managed",
        "/usr/bin/env": "managed",
    }


EVIL = "\x1b[2J\x1b[H\rNothing is lost at the next boot.\n\x1b]0;t\x07"


def test_nothing_a_name_holds_reaches_the_terminal_raw() -> None:
    """Every path and reason of the text, warnings included, is escaped: no escape
    sequence, carriage return or newline from a name reaches a terminal."""
    report = classify.Report(
        "walk",
        [
            classify.Entry(f"/srv/{EVIL}", "file", 1, "lost", ""),
            classify.Entry(f"/tmp/{EVIL}", "file", 1, "ignored", f"scratch [{EVIL}]"),
            classify.Entry(f"/var/lib/foo/{EVIL}", "file", 1, "lost", f"hidden under {EVIL}"),
        ],
        problems=[f"cannot read /srv/{EVIL}: Permission denied"],
        deeper=[(f"/srv/{EVIL}", 3, 4, "lost", "")],
    )
    text = render.render_text(report, all_entries=True)
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    assert "Nothing is lost" not in text.replace("\\rNothing is lost", "")
    assert all(line.count(" ") < 40 for line in text.splitlines())  # no name broke a line
    assert "warning: cannot read /srv/\\x1b[2J" in text


def test_the_walks_warnings_name_paths_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / EVIL).mkdir()
    real_scandir = os.scandir

    def refused(fd: Any) -> Any:
        if isinstance(fd, int) and fd != root_fd[0]:
            raise PermissionError(13, "Permission denied")
        if not isinstance(fd, int) and EVIL in str(fd):
            raise PermissionError(13, "Permission denied")
        return real_scandir(fd)

    root_fd: list[int] = []
    real_open = os.open

    def recording_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real_open(path, flags, *args, **kwargs)
        if not root_fd:
            root_fd.append(fd)
        return fd

    monkeypatch.setattr(os, "scandir", refused)
    monkeypatch.setattr(os, "open", recording_open)
    _entries, problems = scan.walk(str(tmp_path))
    monkeypatch.undo()
    assert len(problems) == 1 and problems[0].startswith("cannot read $'/\\x1b[2J")
    assert problems[0].isprintable()


def test_json_and_yaml_collapse_what_is_all_lost_unless_full() -> None:
    entries: list[classify.EntryTuple] = [
        classify.Entry("/srv", "dir", 0, "lost", ""),
        *(classify.Entry(f"/srv/f{n:04}", "file", 10, "lost", "") for n in range(1000)),
    ]
    report = classify.Report("walk", entries, deeper=[("/srv", 5, 7, "lost", "")])
    document = json.loads(render.render_json(report))
    assert document["version"] == 2
    assert document["summary"]["lost"] == 1 + 1000 + 5
    assert document["entries"] == [
        {"path": "/srv", "type": "dir", "size": 0, "status": "lost", "reason": "",
         "collapsed": {"entries": 1000, "size": 10000}},
    ]  # fmt: skip
    assert document["deeper"] == [
        {"path": "/srv", "entries": 5, "size": 7, "status": "lost", "reason": ""}
    ]
    assert YAML(typ="safe").load(render.render_yaml(report)) == document
    full = json.loads(render.render_json(report, full=True))
    assert len(full["entries"]) == 1001 and "collapsed" not in full["entries"][0]
    assert YAML(typ="safe").load(render.render_yaml(report, full=True)) == full
    assert len(render.render_json(report)) < 1000


def test_an_audit_cut_short_says_so_in_the_metrics(tmp_path: Path) -> None:
    metrics_file = tmp_path / "blankslate.prom"
    audit.write_started(metrics_file, now=5.0)  # killed after this: the file stays so
    started = metrics_file.read_text()
    assert "blankslate_audit_complete 0\n" in started
    assert "blankslate_lost_entries" not in started  # not known: no number that looks fine
    incomplete = classify.Report("walk", [], problems=["cannot read /srv: Permission denied"])
    assert "blankslate_audit_complete 0\n" in render.render_metrics(incomplete, now=6.0)
    assert json.loads(render.render_json(incomplete))["complete"] is False
    assert "blankslate_audit_complete 1\n" in render.render_metrics(
        classify.Report("walk", []), now=6.0
    )


def test_every_command_escapes_the_paths_it_prints(
    tmp_path: Path, run_cli: Callable[..., int], capsys: Any
) -> None:
    """Not only diff's listing: `ignore` echoes the pattern and the file, an error names a
    path, a log line names a command's arguments; none of them writes raw to the terminal."""
    ignore_file = tmp_path / f"audit{EVIL}.yaml"
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plansource.default_text())
    args = ["--plan", str(plan_file), "--ignore-file", str(ignore_file)]
    pattern = "/srv/\x1bc\rNothing is lost\x07"  # ESC c resets the terminal
    assert run_cli("ignore", pattern, "--reason", "r", *args) == 0
    assert run_cli("diff", "--plan", str(plan_file), "--root", str(tmp_path / EVIL)) == 1
    out, err = capsys.readouterr()
    assert "added: $'/srv/\\x1bc\\rNothing is lost\\x07' in $'" in out and "error: " in err
    for stream in (out, err):
        assert "\x1b" not in stream and "\r" not in stream and "\x07" not in stream
    assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1
    assert not any(line.startswith("Nothing") for line in (out + err).splitlines())


def test_log_lines_are_escaped(capsys: Any) -> None:
    import logging

    from blankslate import commands, process

    commands.configure_logging(debug=False, quiet=False)
    process.echo.info("$ %s", f"mount /srv/{EVIL}")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err and err.count("\n") == 1
    logging.getLogger().handlers.clear()
