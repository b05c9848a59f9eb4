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

from blankslate import audit, classify, display, plan, render, scan
from blankslate.errors import BlankslateError
from blankslate.ignore_rules import Rule
from blankslate.scan import Raw

FINDMNT = ["findmnt", "--json", "--list", "--output", "TARGET,SOURCE,FSTYPE,OPTIONS"]


def plan_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(plan.default_text())
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


def findmnt_json(*rows: tuple[str, str]) -> str:
    return json.dumps(
        {
            "filesystems": [
                {"target": target, "source": source, "fstype": "btrfs", "options": "rw"}
                for target, source in rows
            ]
        }
    )


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
    entries, problems = scan.scan_zfs(zfs_plan(), str(tmp_path))
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
        audit.run_diff(plan.default())
    assert fp.call_count(["umount", "--", fp.any()]) == 1


def test_btrfs_without_persist_mounted_asks_for_device(fp: FakeProcess) -> None:
    fp.register([*FINDMNT, "--mountpoint", "/persist"], returncode=1)
    with pytest.raises(BlankslateError, match=r"/persist is not a mountpoint \(give --device"):
        audit.run_diff(plan.default())


# --------------------------------------------------------------------------- classification


def test_classify_gives_one_status_each() -> None:
    rules = classify.rules_for(
        plan.default(),
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
    rules = classify.rules_for(plan.default(), [Rule("/srv/**", "scratch", "test")])
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
