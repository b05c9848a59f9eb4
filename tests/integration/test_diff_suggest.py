"""`blankslate diff --suggest` against a real btrfs root subvolume on a loop device, with the
evaluated plan of tests/nix/suggest-example.nix (tests/plans/suggest.json): its units; against
an old root the boot's rollback kept (`--old-root`); and against a real tmpfs root (`--root`)
with the plans of a tmpfs root and of no rollback."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from blankslate import suggest

from ..conftest import PLANS, needs_mounted_root
from ..support.plans import write_plan_json
from ..support.runner import blankslate_in as blankslate

ROLLBACK = Path(__file__).resolve().parents[2] / "modules" / "rollback" / "btrfs-rollback.bash"

ODD = b"/srv/odd\xffname"
QUOTED = '/srv/we"ird ${x} \\ name'


def make(root: Path, path: str, *, mode: int = 0o755, owner: tuple[int, int] = (0, 0)) -> Path:
    target = root / path.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, mode)
    os.chown(target, *owner)
    return target


def write(root: Path, path: str, text: str = "x", *, owner: tuple[int, int] = (0, 0)) -> None:
    target = root / path.lstrip("/")
    target.write_text(text)
    os.chown(target, *owner)


def populate(root: Path) -> None:
    make(root, "/etc")
    (root / "etc/passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nweb:x:990:991::/:/bin/false\nalice:x:1000:100::/home/alice:x\n"
    )
    write(root, "/etc/group", "root:x:0:\nwww:x:991:\nusers:x:100:\n")
    # app: DynamicUser, its state in /var/lib/private/app and systemd's link to it.
    make(root, "/var/lib/private", mode=0o700)
    make(root, "/var/lib/private/app", mode=0o750, owner=(61234, 61234))
    write(root, "/var/lib/private/app/db", owner=(61234, 61234))
    (root / "var/lib/app").symlink_to("private/app")
    # web: a static user's StateDirectory, a directory below it too.
    make(root, "/var/lib/web", mode=0o750, owner=(990, 991))
    make(root, "/var/lib/web/sessions", mode=0o700, owner=(990, 991))
    write(root, "/var/lib/web/sessions/one", owner=(990, 991))
    # alice's home on / (the plan has no /home filesystem).
    make(root, "/home/alice", mode=0o700, owner=(1000, 100))
    write(root, "/home/alice/.bash_history", owner=(1000, 100))
    make(root, "/home/alice/src", mode=0o755, owner=(1000, 100))
    write(root, "/home/alice/src/main.c", owner=(1000, 100))
    make(root, "/home/alice/.cache", mode=0o700, owner=(1000, 100))
    make(root, "/home/alice/.cache/thumbs", mode=0o700, owner=(1000, 100))
    write(root, "/home/alice/.cache/thumbs/a", owner=(1000, 100))
    # The rest: /srv holds an ignored directory, so its entries are suggested one by one.
    make(root, "/srv/ignored")
    make(root, "/srv/data", mode=0o750)
    write(root, "/srv/data/file")
    make(root, QUOTED)
    make(root, "/srv/tmp", mode=0o1777)
    fd = os.open(os.fsencode(root) + ODD, os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    # What the bind mount of /var/lib/nixos hides on a live system.
    make(root, "/var/lib/nixos")
    write(root, "/var/lib/nixos/uid-map", "{}")


@pytest.fixture
def populated(layout: Any, helpers: ModuleType, tmp_path: Path) -> tuple[str, Path, Path]:
    with helpers.mount_top_level(layout.device) as top:
        populate(top / layout.root)
    ignore_file = tmp_path / "audit.yaml"
    ignore_file.write_text("ignore:\n  - pattern: /srv/ignored/**\n    reason: test\n")
    return layout.device, PLANS / "suggest.json", ignore_file


def entries_of(group: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (e["name"], e["kind"], e["user"], e["group"], e["mode"], e["ignore"])
        for e in group["entries"]
    ]


def test_suggest_json_groups_by_service_user_and_top_directory(
    populated: tuple[str, Path, Path], helpers: ModuleType, tmp_path: Path
) -> None:
    device, plan_file, ignore_file = populated
    args = ["--plan", str(plan_file), "--device", device, "--ignore-file", str(ignore_file)]
    result = blankslate(tmp_path, "diff", *args, "--suggest", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    groups = {(g["by"], g["name"]): g for g in document["groups"]}
    assert list(groups) == [
        ("service", "app"),
        ("service", "web"),
        ("user", "alice"),
        ("top", "/srv"),
        ("hidden", "the bind mount of /var/lib/nixos"),
    ]
    assert entries_of(groups["service", "app"]) == [
        ("/var/lib/private/app", "directory", "root", "root", "0750", None)
    ]
    assert entries_of(groups["service", "web"]) == [
        ("/var/lib/web", "directory", "web", "www", "0750", None)
    ]
    assert entries_of(groups["user", "alice"]) == [
        (".bash_history", "file", "alice", "users", "0644", None),
        (".cache", "directory", "alice", "users", "0700", "/home/alice/.cache/**"),
        ("src", "directory", "alice", "users", "0755", None),
    ]
    assert entries_of(groups["top", "/srv"]) == [
        ("/srv/data", "directory", "root", "root", "0750", None),
        ("/srv/tmp", "directory", "root", "root", "1777", "/srv/tmp/**"),
        (QUOTED, "directory", "root", "root", "0755", None),
    ]
    assert [e["path"] for e in groups["hidden", "the bind mount of /var/lib/nixos"]["entries"]] == [
        "/var/lib/nixos/uid-map"
    ]
    assert document["skipped"] == [
        {"path": "$'/srv/odd\\xffname'", "why": document["skipped"][0]["why"]},
        {"path": "/var/lib/app", "why": "a symlink systemd makes for app"},
    ]
    assert helpers.mounts_of(device) == []


def test_suggest_text_is_nix_to_paste(
    populated: tuple[str, Path, Path], helpers: ModuleType, tmp_path: Path
) -> None:
    device, plan_file, ignore_file = populated
    args = ["--plan", str(plan_file), "--device", device, "--ignore-file", str(ignore_file)]
    result = blankslate(tmp_path, "diff", *args, "--suggest")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert (
        "  blankslate.persistence.directories = [\n"
        "    # app.service: StateDirectory (DynamicUser: systemd sets its owner at every start)\n"
        '    { directory = "/var/lib/private/app"; user = "root"; group = "root"; '
        'mode = "0750"; }\n'
        "    # web.service: StateDirectory\n"
        '    { directory = "/var/lib/web"; user = "web"; group = "www"; mode = "0750"; }\n'
        "    # in /srv\n"
        '    { directory = "/srv/data"; user = "root"; group = "root"; mode = "0750"; }\n'
        '    { directory = "/srv/we\\"ird \\${x} \\\\ name"; user = "root"; group = "root"; '
        'mode = "0755"; }\n'
        "  ];\n"
    ) in text
    assert (
        '  environment.persistence."/persist".users.alice = {\n'
        "    directories = [\n"
        "      # the home of alice, /home/alice\n"
        '      { directory = "src"; user = "alice"; group = "users"; mode = "0755"; }\n'
        "    ];\n"
        "    files = [\n"
        "      # the home of alice, /home/alice\n"
        '      ".bash_history"\n'
        "    ];\n"
        "  };\n"
    ) in text
    assert '    "/home/alice/.cache/**"\n' in text
    assert '    "/srv/tmp/**"\n' in text
    assert "#   $'/srv/odd\\xffname': Nix strings cannot hold" in text
    assert text.isprintable() or all(line.isprintable() for line in text.splitlines())
    assert helpers.mounts_of(device) == []


def rollback(layout: Any, tmp_path: Path) -> None:
    """What a boot does: the root moved to old_roots/<time>, a fresh root from the blank."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    booted = subprocess.run(
        ["bash", str(ROLLBACK), layout.device, layout.root, layout.blank, layout.old_roots,
         "30", "0"],
        env={**os.environ, "TMPDIR": str(run_dir), "BLANKSLATE_RECORD_DIR": str(tmp_path / "rec")},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert booted.returncode == 0, booted.stderr


def test_suggest_of_an_old_root_is_what_its_boot_erased(
    populated: tuple[str, Path, Path], layout: Any, helpers: ModuleType, tmp_path: Path
) -> None:
    device, plan_file, ignore_file = populated
    args = ["--plan", str(plan_file), "--device", device, "--ignore-file", str(ignore_file)]
    before_json = blankslate(tmp_path, "diff", *args, "--suggest", "--format", "json")
    before_text = blankslate(tmp_path, "diff", *args, "--suggest")
    assert before_json.returncode == before_text.returncode == 0, before_json.stderr
    rollback(layout, tmp_path)
    with helpers.mount_top_level(device) as top:
        (name,) = os.listdir(top / layout.old_roots)
    # The fresh root is the blank: nothing to suggest.
    now = blankslate(tmp_path, "diff", *args, "--suggest")
    assert now.returncode == 0, now.stderr
    assert "# Nothing is lost at the next boot: nothing to add." in now.stdout
    # The old root: the same suggestion, owners and modes observed on the old root.
    for which in ("latest", name):
        old = blankslate(
            tmp_path, "diff", *args, "--suggest", "--old-root", which, "--format", "json"
        )
        assert old.returncode == 0, old.stderr
        assert json.loads(old.stdout) == json.loads(before_json.stdout)
    text = blankslate(tmp_path, "diff", *args, "--suggest", "--old-root", name)
    assert text.returncode == 0, text.stderr
    assert text.stdout == before_text.stdout
    missing = blankslate(tmp_path, "diff", *args, "--suggest", "--old-root", "1999-01-01_00:00:00")
    assert missing.returncode == 1
    (error,) = [line for line in missing.stderr.splitlines() if line.startswith("error:")]
    assert "no old root named '1999-01-01_00:00:00'" in error
    both = blankslate(tmp_path, "diff", *args, "--suggest", "--old-root", name, "--root", "/")
    assert both.returncode == 1
    assert "give either --root or --old-root, not both" in both.stderr
    assert helpers.mounts_of(device) == []


@pytest.fixture
def tmpfs_root(tmp_path: Path, helpers: ModuleType) -> Iterator[Path]:
    """A real tmpfs, the root of a `rollback = "tmpfs"` host (or of one never rolled
    back), holding what `populate` writes."""
    live = tmp_path / "live"
    live.mkdir()
    helpers.run(["mount", "-t", "tmpfs", "blankslate-test-suggest", live])
    try:
        populate(live)
        yield live
    finally:
        helpers.run(["umount", live])


@needs_mounted_root
@pytest.mark.parametrize("kind", ["tmpfs", "vpsfree"])
def test_suggest_on_a_tmpfs_root_and_one_never_rolled_back(
    tmpfs_root: Path, tmp_path: Path, kind: str
) -> None:
    data = json.loads((PLANS / f"{kind}.json").read_text())
    assert data["rollback"] == ("tmpfs" if kind == "tmpfs" else "none")
    data["units"] = json.loads((PLANS / "suggest.json").read_text())["units"]
    plan_file = write_plan_json(tmp_path, data)
    ignore_file = tmp_path / "audit.yaml"
    ignore_file.write_text("ignore:\n  - pattern: /srv/ignored/**\n    reason: test\n")
    args = ["--plan", str(plan_file), "--root", str(tmpfs_root), "--ignore-file", str(ignore_file)]
    result = blankslate(tmp_path, "diff", *args, "--suggest", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["persistPath"] == data["persistPath"]
    groups = {(g["by"], g["name"]): g for g in document["groups"]}
    assert entries_of(groups["service", "app"]) == [
        ("/var/lib/private/app", "directory", "root", "root", "0750", None)
    ]
    assert entries_of(groups["service", "web"]) == [
        ("/var/lib/web", "directory", "web", "www", "0750", None)
    ]
    assert entries_of(groups["top", "/srv"]) == [
        ("/srv/data", "directory", "root", "root", "0750", None),
        ("/srv/tmp", "directory", "root", "root", "1777", "/srv/tmp/**"),
        (QUOTED, "directory", "root", "root", "0755", None),
    ]
    # /home is a filesystem of its own (tmpfs) or persisted whole (vpsfree): alice's files
    # on the root are hidden beneath it, for `seed --hidden`, not for the configuration.
    assert ("user", "alice") not in groups
    hidden = [g for (by, _name), g in groups.items() if by == "hidden"]
    assert "/home/alice" in [e["path"] for g in hidden for e in g["entries"]]
    text = blankslate(tmp_path, "diff", *args, "--suggest")
    assert text.returncode == 0, text.stderr
    assert '{ directory = "/var/lib/web"; user = "web"; group = "www"; mode = "0750"; }' in (
        text.stdout
    )
    assert all(line.isprintable() for line in text.stdout.splitlines())


def test_suggest_attacked_by_names_and_links_in_a_home_stays_paste_ready(
    layout: Any, helpers: ModuleType, tmp_path: Path
) -> None:
    """alice's home holds links (to /etc, to root's home), names with a newline, `${`, spaces
    and bytes that are not UTF-8, and more entries than a group shows; a service's state
    directory is a link into her home. Each link is observed as the link (never followed),
    every line stays one printable line, and the group shows its first entries only."""
    alice = (1000, 100)
    many = suggest.SHOWN + 20
    with helpers.mount_top_level(layout.device) as top:
        root = top / layout.root
        make(root, "/etc")
        (root / "etc/passwd").write_text("root:x:0:0::/root:x\nalice:x:1000:100::/home/alice:x\n")
        write(root, "/etc/group", "root:x:0:\nusers:x:100:\n")
        home = make(root, "/home/alice", mode=0o700, owner=alice)
        for link, target in ((".mozilla", "/etc"), ("escape", "/root"), ("loop", "loop")):
            (home / link).symlink_to(target)
            os.lchown(home / link, *alice)
        make(root, "/home/alice/We ird ${x}\nline", owner=alice)
        fd = os.open(os.fsencode(home) + b"/odd\xffname", os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        for index in range(many):
            write(root, f"/home/alice/f{index:04d}", owner=alice)
        make(root, "/var/lib")
        (root / "var/lib/web").symlink_to("/home/alice")
    args = ["--plan", str(PLANS / "suggest.json"), "--device", layout.device]
    result = blankslate(tmp_path, "diff", *args, "--suggest", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    groups = {(g["by"], g["name"]): g for g in document["groups"]}
    home_group = groups["user", "alice"]
    shown = {e["name"]: e for e in home_group["entries"]}
    assert len(shown) == suggest.SHOWN
    assert home_group["more"] == many + 4 - suggest.SHOWN  # 3 links, 1 odd directory
    link = shown[".mozilla"]
    assert (link["kind"], link["user"], link["mode"]) == (
        "file",
        "alice",
        "0777",  # the link's own mode: /etc is not looked at
    )
    assert shown["We ird ${x}\nline"]["kind"] == "directory"
    (web,) = groups["service", "web"]["entries"]
    assert (web["path"], web["kind"], web["user"]) == ("/var/lib/web", "file", "root")
    assert document["skipped"][0]["path"] == "$'/home/alice/odd\\xffname'"
    text = blankslate(tmp_path, "diff", *args, "--suggest")
    assert text.returncode == 0, text.stderr
    assert all(line.isprintable() for line in text.stdout.splitlines())
    assert '      "We ird \\${x}\\nline"\n' not in text.stdout  # a directory, with its owner:
    assert '{ directory = "We ird \\${x}\\nline"; user = "alice"; group = "users";' in text.stdout
    assert f"#   {many + 4 - suggest.SHOWN} more: the home of alice, /home/alice\n" in text.stdout
    assert helpers.mounts_of(layout.device) == []
