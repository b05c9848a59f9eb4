"""The audit as monitoring runs it, on a real btrfs: exit codes and node-exporter metrics of
`diff --fail-on-lost`, `ignore` settling it, and `diff --old-root` / `roots --audit` after a
simulated boot that runs the real rollback script."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from blankslate import plansource

from ..conftest import needs_mounted_root
from ..support.runner import blankslate as run_blankslate
from ..support.runner import blankslate_in

ROLLBACK = Path(__file__).resolve().parents[2] / "modules" / "rollback" / "btrfs-rollback.bash"
blankslate = functools.partial(blankslate_in, no_color=True)


def metrics(path: Path) -> dict[str, float]:
    samples = [line.split() for line in path.read_text().splitlines() if not line.startswith("#")]
    return {name: float(value) for name, value in samples}


def test_one_unpersisted_file_fails_until_it_is_ignored(
    layout: Any, helpers: ModuleType, tmp_path: Path
) -> None:
    with helpers.mount_top_level(layout.device) as top:
        (top / layout.root / "etc").mkdir()  # NixOS makes /etc: only the file is lost
        (top / layout.root / "etc" / "app.conf").write_text("state\n")
    plan_file, ignore_file = tmp_path / "plan.json", tmp_path / "audit.yaml"
    plan_file.write_text(plansource.default_text())
    ignore_file.write_text("ignore: []\n")
    metrics_file, report_file = tmp_path / "textfiles" / "blankslate.prom", tmp_path / "audit.json"
    args = ["--plan", str(plan_file), "--device", layout.device, "--ignore-file", str(ignore_file)]
    outputs = ["--fail-on-lost", "--metrics", str(metrics_file), "--report", str(report_file)]

    lost = blankslate(tmp_path, "diff", *args, *outputs)
    assert lost.returncode == 1, lost.stderr
    assert metrics(metrics_file)["blankslate_lost_entries"] == 1
    assert metrics(metrics_file)["blankslate_lost_bytes"] == 6
    assert "blankslate_lost_entries 1\n" in metrics_file.read_text()
    assert lost.stdout.startswith("Lost at the next boot: 1 entry, 6 B\n/etc  (1 entry, 6 B)\n")
    assert [e["path"] for e in json.loads(report_file.read_text())["entries"]] == [
        "/etc",
        "/etc/app.conf",
    ]
    assert "$ mount" not in lost.stderr  # the temporary mount is not echoed ...
    verbose = blankslate(tmp_path, "diff", *args, "--verbose")
    assert "$ mount" in verbose.stderr and verbose.returncode == 0  # ... unless asked

    added = blankslate(
        tmp_path,
        "ignore",
        "/etc/app.conf",
        "--reason",
        "rewritten at boot",
        *args[:2],
        "--ignore-file",
        str(ignore_file),
    )
    assert added.returncode == 0, added.stderr
    settled = blankslate(tmp_path, "diff", *args, *outputs)
    assert settled.returncode == 0, settled.stderr
    assert metrics(metrics_file)["blankslate_lost_entries"] == 0
    assert "blankslate_lost_entries 0\n" in metrics_file.read_text()
    assert helpers.mounts_of(layout.device) == []

    # The audit itself failing is 2, never the 1 of "lost": a device that is not there.
    failed = blankslate(
        tmp_path,
        "diff",
        "--plan",
        str(plan_file),
        "--device",
        str(tmp_path / "no-such-device"),
        "--fail-on-lost",
    )
    assert failed.returncode == 2, failed.stderr
    assert "\nerror: " in failed.stderr


def test_old_root_latest_lists_what_the_last_boot_erased(
    layout: Any, helpers: ModuleType, tmp_path: Path
) -> None:
    with helpers.mount_top_level(layout.device) as top:
        srv = top / layout.root / "srv"
        srv.mkdir()
        (srv / "erased.txt").write_text("gone at boot\n")
        # Written before /var/lib/nixos was bind-mounted over it: hidden, and erased too (#23).
        (top / layout.root / "var/lib/nixos").mkdir(parents=True)
        (top / layout.root / "var/lib/nixos/uid-map").write_text("{}\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    booted = subprocess.run(
        [
            "bash",
            str(ROLLBACK),
            layout.device,
            layout.root,
            layout.blank,
            layout.old_roots,
            "30",
            "0",
        ],
        env={
            **os.environ,
            "TMPDIR": str(run_dir),
            "BLANKSLATE_RECORD_DIR": str(tmp_path / "record"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert booted.returncode == 0, booted.stderr
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plansource.default_text())
    args = ["--plan", str(plan_file), "--device", layout.device]

    now = blankslate(tmp_path, "diff", *args, "--fail-on-lost")
    assert now.returncode == 0, now.stdout + now.stderr  # the fresh root is the blank

    erased = blankslate(
        tmp_path, "diff", *args, "--old-root", "latest", "--format", "json", "--full"
    )
    assert erased.returncode == 0, erased.stderr
    document = json.loads(erased.stdout)
    with helpers.mount_top_level(layout.device) as top:
        (name,) = os.listdir(top / layout.old_roots)
    assert document["oldRoot"] == name
    lost = {e["path"] for e in document["entries"] if e["status"] == "lost"}
    assert lost == {"/srv", "/srv/erased.txt", "/var/lib/nixos/uid-map"}
    hidden = [e["path"] for e in document["entries"] if e.get("hidden")]
    assert hidden == ["/var/lib/nixos/uid-map"]

    text = blankslate(tmp_path, "diff", *args, "--old-root", name, "--full")
    assert text.stdout.startswith(f"Thrown away with old root {name}: 2 entries, 13 B\n")
    assert "/srv/erased.txt\n" in text.stdout
    assert f"Hidden beneath mounts, thrown away with old root {name}: 1 entry, 3 B\n" in (
        text.stdout
    )

    listed = blankslate(tmp_path, "roots", *args, "--audit", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["name"], r["lostEntries"]) for r in json.loads(listed.stdout)] == [(name, 3)]
    table = blankslate(tmp_path, "roots", *args, "--audit")
    assert table.stdout.splitlines()[0].split()[-1] == "LOST"
    assert table.stdout.splitlines()[1].split()[-1] == "3"

    missing = blankslate(tmp_path, "diff", *args, "--old-root", "1999-01-01T00:00:00Z")
    assert missing.returncode == 1
    assert f"no old root named '1999-01-01T00:00:00Z' (newest: {name}" in missing.stderr
    assert helpers.mounts_of(layout.device) == []


# --------------------------------------------------------------------------- bounds (#28)
# No user can blind or exhaust the audit: what any user can make on the root (deeper than
# PATH_MAX, thousands deep, nested subvolumes, links that come and go) is read, counted and
# reported in bounded room, and the run ends with a report and metrics.

LONG = "d" * 250  # a long directory name: 17 of them pass PATH_MAX
IOC_SUBVOL_CREATE = 0x5000940E  # _IOW(0x94, 14, struct btrfs_ioctl_vol_args) in linux/btrfs.h


def deep_chain(base: Path, depth: int, name: str = LONG, *, leaves: bool = True) -> int:
    """`depth` nested directories called `name` below `base`, made from held descriptors (no
    path is long); with `leaves`, a file of 5 bytes and a symlink at the bottom. Returns the
    number of entries made."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        if leaves:
            file = os.open("data", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(file, b"state")
            os.close(file)
            os.symlink("/nix/store/x", "link", dir_fd=fd)  # 12 bytes
    finally:
        os.close(fd)
    return depth + 2 if leaves else depth


def nested_subvolumes(base: Path, depth: int) -> None:
    """`depth` btrfs subvolumes each nested in the one before, named "s", by the ioctl."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            args = bytearray(4096)
            args[8:9] = b"s"
            fcntl.ioctl(fd, IOC_SUBVOL_CREATE, args)
            inner = os.open("s", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)


def limited(gigabytes: int) -> Callable[[], None]:
    """A preexec_fn: the child's address space limited, as a unit's MemoryMax= would."""

    def limit() -> None:
        size = gigabytes << 30
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return limit


def bounded_diff(cwd: Path, *args: str, gigabytes: int = 2) -> subprocess.CompletedProcess[str]:
    return run_blankslate(
        "diff", *args, cwd=cwd, no_color=True, timeout=300, preexec_fn=limited(gigabytes)
    )


def test_entries_deeper_than_path_max_are_counted_in_the_root_and_old_roots(
    layout: Any, helpers: ModuleType, tmp_path: Path
) -> None:
    with helpers.mount_top_level(layout.device) as top:
        srv = top / layout.root / "srv"
        srv.mkdir()
        made = deep_chain(srv, 20)  # 20 x 251 bytes: past PATH_MAX
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plansource.default_text())
    metrics_file, report_file = tmp_path / "blankslate.prom", tmp_path / "audit.json"
    args = ["--plan", str(plan_file), "--device", layout.device]
    outputs = ["--fail-on-lost", "--metrics", str(metrics_file), "--report", str(report_file)]

    now = bounded_diff(tmp_path, *args, *outputs, "--format", "json", "--full")
    assert now.returncode == 1, now.stderr  # lost, not "the audit failed" (2)
    assert "Traceback" not in now.stderr
    document = json.loads(now.stdout)
    assert document["version"] == 2 and document["complete"] is True
    # /srv, and the chain: every entry counted as lost, the deep ones in "deeper".
    assert document["summary"]["lost"] == 1 + made
    listed = [e["path"] for e in document["entries"] if e["path"].startswith("/srv")]
    assert all(len(os.fsencode(path)) <= 4095 for path in listed)
    (deeper,) = document["deeper"]
    assert deeper["status"] == "lost" and deeper["path"] == listed[-1]
    assert deeper["entries"] + len(listed) == 1 + made
    assert deeper["size"] == 5 + 12  # the file's bytes and the link's target
    assert metrics(metrics_file)["blankslate_lost_entries"] == 1 + made
    assert metrics(metrics_file)["blankslate_lost_bytes"] == 17
    assert metrics(metrics_file)["blankslate_audit_complete"] == 1
    assert json.loads(report_file.read_text())["summary"] == document["summary"]

    text = bounded_diff(tmp_path, *args, "--full")
    assert text.returncode == 0, text.stderr
    assert f"{1 + made} entries, 17 B" in text.stdout.splitlines()[0]
    assert "deeper than 4095 bytes, not listed" in text.stdout

    # The same root kept as an old root by the boot's rollback.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    booted = subprocess.run(
        ["bash", str(ROLLBACK), layout.device, layout.root, layout.blank, layout.old_roots,
         "30", "0"],
        env={**os.environ, "TMPDIR": str(run_dir),
             "BLANKSLATE_RECORD_DIR": str(tmp_path / "record")},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert booted.returncode == 0, booted.stderr
    old = bounded_diff(tmp_path, *args, "--old-root", "latest", "--format", "json")
    assert old.returncode == 0, old.stderr
    erased = json.loads(old.stdout)
    assert erased["summary"]["lost"] == 1 + made and erased["deeper"][0]["entries"] > 0
    roots = blankslate(tmp_path, "roots", *args, "--audit", "--json")
    assert [r["lostEntries"] for r in json.loads(roots.stdout)] == [1 + made]
    assert helpers.mounts_of(layout.device) == []


@needs_mounted_root
def test_a_chain_3000_deep_costs_a_bounded_report(
    layout: Any, helpers: ModuleType, tmp_path: Path
) -> None:
    """3,000 directories of 250-character names: listed by their full paths, 1.1 GB of
    report and 6 GB of memory (a MemoryError under a limit). Now: a few KiB, under 2 GiB."""
    with helpers.mount_top_level(layout.device) as top:
        home = top / layout.root / "srv"
        home.mkdir()
        made = deep_chain(home, 3000, leaves=False)  # directories only: nothing too long to read
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plansource.default_text())
    report_file = tmp_path / "audit.json"
    args = ["--plan", str(plan_file), "--device", layout.device, "--report", str(report_file)]
    done = bounded_diff(tmp_path, *args, "--format", "yaml")
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(done.stdout) < 64 << 10 and report_file.stat().st_size < 64 << 10
    document = json.loads(report_file.read_text())
    assert document["summary"]["lost"] == 1 + made
    # /srv is all lost: one entry, with the count of what lies below it
    (srv,) = [e for e in document["entries"] if e["path"].startswith("/srv")]
    assert srv["collapsed"]["entries"] + document["deeper"][0]["entries"] == made

    # The walk (a tree given by --root) is bounded the same way.
    with helpers.mount_top_level(layout.device) as top:
        walked = bounded_diff(
            tmp_path, "--plan", str(plan_file), "--root", str(top / layout.root),
            "--format", "json", "--full",
        )  # fmt: skip
    assert walked.returncode == 0, walked.stderr[-2000:]
    assert len(walked.stdout) < 64 << 10
    walk_document = json.loads(walked.stdout)
    assert walk_document["complete"] is True
    assert walk_document["summary"]["lost"] == 1 + made
    assert max(len(e["path"].encode()) for e in walk_document["entries"]) <= 4095
    assert helpers.mounts_of(layout.device) == []


def test_1100_nested_subvolumes_are_read_whole(
    layout: Any, helpers: ModuleType, tmp_path: Path
) -> None:
    with helpers.mount_top_level(layout.device) as top:
        srv = top / layout.root / "srv"
        srv.mkdir()
        nested_subvolumes(srv, 1100)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plansource.default_text())
    done = bounded_diff(
        tmp_path, "--plan", str(plan_file), "--device", layout.device, "--format", "json"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RecursionError" not in done.stderr
    document = json.loads(done.stdout)
    assert document["summary"]["lost"] == 1 + 1100
    kinds = {e["type"] for e in document["entries"] if e["path"].startswith("/srv")}
    assert kinds == {"dir"}  # /srv, collapsed with its 1,100 subvolumes
    assert helpers.mounts_of(layout.device) == []


def test_a_symlink_removed_while_the_tree_is_read_is_left_out(
    top_level: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who keeps creating and removing symlinks: the tree search sees one the
    readlink then misses (ENOENT). That entry is gone: left out, and the scan goes on."""
    from blankslate import treesearch

    root = top_level / "root"
    subprocess.run(["btrfs", "subvolume", "create", str(root)], check=True, capture_output=True)
    (root / "kept").symlink_to("/srv")
    (root / "flicker").symlink_to("/srv/x")
    real_add = treesearch._Tree.add

    def remove_then_add(tree: Any, inode: int, parent: int, name: str, *rest: int) -> None:
        if name == "flicker" and (root / "flicker").is_symlink():
            (root / "flicker").unlink()  # read from the tree, gone before its readlink
        real_add(tree, inode, parent, name, *rest)

    monkeypatch.setattr(treesearch._Tree, "add", remove_then_add)
    found = treesearch.scan(str(root))
    assert found is not None
    entries, problems = found
    assert entries == [("/kept", "symlink", 4, "/srv")] and problems == []


def test_a_name_that_writes_to_the_terminal_is_escaped_in_warnings(tmp_path: Path) -> None:
    """Run as a user who cannot read a directory named with escape sequences (the walk's
    warning names it): the terminal gets no ESC, carriage return or newline from it."""
    base = Path(tempfile.mkdtemp(prefix="blankslate-escape-", dir="/tmp"))
    try:
        base.chmod(0o755)
        tree = base / "tree"
        (tree / "srv").mkdir(parents=True)
        evil = "\x1b[2J\x1b[H\rNothing is lost at the next boot.\n\x1b]0;owned\x07"
        (tree / "srv" / evil).mkdir(mode=0o700)
        (tree / "srv" / evil / "x").write_text("x")
        (tree / "srv" / evil).chmod(0o000)
        plan_file = base / "plan.json"
        plan_file.write_text(plansource.default_text())
        plan_file.chmod(0o644)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        if subprocess.run([*nobody, sys.executable, "-c", ""], check=False).returncode:
            pytest.skip("user nobody cannot run this Python (a checkout in a private home)")
        shown = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-m", "blankslate", "diff", "--plan", str(plan_file),
             "--root", str(tree)],
            cwd=base, capture_output=True, text=True, check=False, timeout=120,
            env={**os.environ, "NO_COLOR": "1", "HOME": str(base)},
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        warnings = [line for line in shown.stdout.splitlines() if line.startswith("warning:")]
        assert any("cannot read" in line and "\\x1b[2J" in line for line in warnings), warnings
        for stream in (shown.stdout, shown.stderr):
            assert "\x1b" not in stream and "\r" not in stream and "\x07" not in stream
        assert not any(line.startswith("Nothing is lost") for line in shown.stdout.splitlines())
    finally:
        (base / "tree" / "srv").chmod(0o755)
        for child in (base / "tree" / "srv").iterdir():
            child.chmod(0o755)
        shutil.rmtree(base)
