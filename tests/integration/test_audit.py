"""The audit as monitoring runs it, on a real btrfs: exit codes and node-exporter metrics of
`diff --fail-on-lost`, `ignore` settling it, and `diff --old-root` / `roots --audit` after a
simulated boot that runs the real rollback script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from blankslate import plan

ROLLBACK = Path(__file__).resolve().parents[2] / "modules" / "rollback" / "btrfs-rollback.bash"


def blankslate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blankslate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )


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
    plan_file.write_text(plan.default_text())
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
        env={**os.environ, "TMPDIR": str(run_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert booted.returncode == 0, booted.stderr
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.default_text())
    args = ["--plan", str(plan_file), "--device", layout.device]

    now = blankslate(tmp_path, "diff", *args, "--fail-on-lost")
    assert now.returncode == 0, now.stdout + now.stderr  # the fresh root is the blank

    erased = blankslate(tmp_path, "diff", *args, "--old-root", "latest", "--format", "json")
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
