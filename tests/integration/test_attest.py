"""`blankslate attest --root` on a real btrfs with real bind mounts: the root and persist
subvolumes of a loop device mounted as a booted system would have them, each persisted
directory bind-mounted from persistPath, files bound or linked. Each fault fails with its
own line, the exit status and the node-exporter metrics."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from blankslate import plansource

from ..support.runner import blankslate

REPO = Path(__file__).resolve().parents[2]
NIXOS_BOUND = REPO / "modules" / "attest-nixos-bound.bash"
DIRECTORIES = ("/var/lib/nixos", "/var/lib/foo")
BOUND_FILE = "/etc/adjtime"
LINKED_FILE = "/etc/machine-id"
RESET = (
    "kind=btrfs\noutcome=reset\nreason=\nold_root=2026-12-04_10:00:00\ntime=2026-12-04T10:00:00Z\n"
)


@dataclass
class System:
    live: Path
    persist: Path
    plan_file: Path
    records: Path
    metrics: Path


def bind(source: Path, target: Path) -> None:
    subprocess.run(["mount", "--bind", "--", str(source), str(target)], check=True)


@pytest.fixture
def system(tmp_path: Path, btrfs_device: str, helpers: ModuleType) -> Iterator[System]:
    """The plan's root and persist subvolumes mounted on tmp/live and live/persist, the
    boot record `reset` in tmp/records; nothing persisted is in place yet (`place` does it).
    Everything is unmounted on exit, also on failure."""
    helpers.make_layout(btrfs_device)
    data = plansource.default().to_json()
    parents = [{"directory": "/var", "user": "root", "group": "root", "mode": "0755"}]
    data["persistence"] = {
        "directories": [
            {"directory": d, "root": "/persist", "parents": parents} for d in DIRECTORIES
        ],
        "files": [{"file": f, "root": "/persist"} for f in (BOUND_FILE, LINKED_FILE)],
        "roots": ["/persist"],
    }
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(data))
    records = tmp_path / "records"
    records.mkdir(mode=0o755)
    (records / "reset").write_text(RESET)
    with helpers.live_and_persist(btrfs_device, tmp_path) as (live, persist):
        try:
            live.chmod(0o755)
            for path in (*DIRECTORIES, "/etc"):
                (live / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
                (persist / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
            for name in (BOUND_FILE, LINKED_FILE):
                (persist / name.lstrip("/")).write_text("kept\n")
            yield System(live, persist, plan_file, records, tmp_path / "metrics" / "a.prom")
        finally:
            helpers.unmount_all_under(live / "var")
            helpers.unmount_all_under(live / "etc")


def place(system: System, *, skip: str | None = None) -> None:
    """Everything persisted in place, as impermanence does it, but `skip`."""
    for path in DIRECTORIES:
        if path != skip:
            bind(system.persist / path.lstrip("/"), system.live / path.lstrip("/"))
    if skip != BOUND_FILE:
        (system.live / BOUND_FILE.lstrip("/")).write_text("")
        bind(system.persist / BOUND_FILE.lstrip("/"), system.live / BOUND_FILE.lstrip("/"))
    if skip != LINKED_FILE:
        (system.live / LINKED_FILE.lstrip("/")).symlink_to("/persist" + LINKED_FILE)


def note_nixos_bound(system: System) -> subprocess.CompletedProcess[str]:
    """The activation script's note, made by the real script on the real mount."""
    return subprocess.run(
        ["bash", str(NIXOS_BOUND), str(system.live / "var/lib/nixos")],
        env={**os.environ, "BLANKSLATE_RECORD_DIR": str(system.records)},
        capture_output=True,
        text=True,
        check=False,
    )


def attest(system: System) -> subprocess.CompletedProcess[str]:
    argv = ["attest", "--plan", str(system.plan_file), "--root", str(system.live)]
    argv += ["--metrics-file", str(system.metrics)]
    env = {**os.environ, "BLANKSLATE_RECORD_DIR": str(system.records)}
    result = blankslate(*argv, quiet=True, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def metrics(system: System) -> dict[str, str]:
    lines = system.metrics.read_text().splitlines()
    return dict(line.split() for line in lines if not line.startswith("#"))


def failures(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("fail")]


def test_everything_in_place_passes(system: System) -> None:
    place(system)
    assert note_nixos_bound(system).returncode == 0
    assert (system.records / "nixos-bound").read_text().startswith("bound=yes\n")
    result = attest(system)
    assert result.returncode == 0, result.stdout + result.stderr
    assert failures(result) == []
    assert "4 persisted paths in place" in result.stdout
    found = metrics(system)
    assert found["blankslate_reset_ok"] == "1"
    assert found["blankslate_unbound_paths"] == "0"
    assert found["blankslate_attest_ok"] == "1"


def test_an_unbound_directory_fails_with_its_name_and_count(system: System) -> None:
    place(system, skip="/var/lib/foo")
    note_nixos_bound(system)
    result = attest(system)
    assert result.returncode == 1
    [line] = failures(result)
    assert "var/lib/foo is not mounted from /persist/var/lib/foo" in line
    found = metrics(system)
    assert found["blankslate_unbound_paths"] == "1"
    assert found["blankslate_reset_ok"] == "1"
    assert found["blankslate_attest_ok"] == "0"


def test_a_directory_bound_from_another_source_fails(system: System) -> None:
    place(system, skip="/var/lib/foo")
    other = system.persist / "elsewhere"
    other.mkdir()
    bind(other, system.live / "var/lib/foo")
    note_nixos_bound(system)
    result = attest(system)
    assert result.returncode == 1
    [line] = failures(result)
    assert "var/lib/foo is not mounted from /persist/var/lib/foo" in line


def test_a_symlink_to_the_wrong_source_fails(system: System) -> None:
    place(system, skip=LINKED_FILE)
    (system.live / "etc/machine-id").symlink_to("/persist/etc/other-id")
    note_nixos_bound(system)
    result = attest(system)
    assert result.returncode == 1
    [line] = failures(result)
    assert "links to /persist/etc/other-id, not to /persist/etc/machine-id" in line
    assert metrics(system)["blankslate_unbound_paths"] == "1"


def test_an_unbound_file_fails(system: System) -> None:
    place(system, skip=BOUND_FILE)
    (system.live / "etc/adjtime").write_text("on the root\n")
    note_nixos_bound(system)
    result = attest(system)
    assert result.returncode == 1
    [line] = failures(result)
    assert "etc/adjtime is not mounted from /persist/etc/adjtime" in line


def test_a_root_of_mode_0700_fails(system: System) -> None:
    place(system)
    note_nixos_bound(system)
    system.live.chmod(0o700)
    result = attest(system)
    assert result.returncode == 1
    [line] = failures(result)
    assert "root-mode" in line and "mode 700" in line
    # The paths are all in place: only the mode fails.
    assert metrics(system)["blankslate_unbound_paths"] == "0"


def test_var_lib_nixos_not_bound_when_users_ran_fails(system: System) -> None:
    """The note made while /var/lib/nixos was not a mountpoint yet (the vpsFree case), and
    bound later on: attest fails on the note, though the bind is in place by now."""
    assert note_nixos_bound(system).returncode == 0
    assert (system.records / "nixos-bound").read_text().startswith("bound=no\n")
    place(system)
    result = attest(system)
    assert result.returncode == 1
    [line] = failures(result)
    assert "nixos-bound" in line and "was not a mountpoint when `users` ran" in line


def test_a_failed_reset_sets_reset_ok_to_0(system: System) -> None:
    place(system)
    note_nixos_bound(system)
    (system.records / "reset").write_text(
        "kind=btrfs\noutcome=failed\nreason=no blank snapshot root-blank\nold_root=\n"
        "time=2026-12-04T10:00:00Z\n"
    )
    result = attest(system)
    assert result.returncode == 1
    [line] = failures(result)
    assert "btrfs: failed" in line and "no blank snapshot root-blank" in line
    assert metrics(system)["blankslate_reset_ok"] == "0"


def test_no_record_on_btrfs_fails(system: System) -> None:
    place(system)
    note_nixos_bound(system)
    (system.records / "reset").unlink()
    result = attest(system)
    assert result.returncode == 1
    [line] = failures(result)
    assert "no record" in line and "the rollback did not run" in line
    assert metrics(system)["blankslate_reset_ok"] == "0"


def test_a_root_given_through_a_symlink_is_checked_as_its_target(system: System) -> None:
    """The mount table names canonical paths; --root through a symlink still matches them."""
    place(system)
    note_nixos_bound(system)
    link = system.live.parent / "live-link"
    link.symlink_to(system.live)
    system.live = link
    result = attest(system)
    assert result.returncode == 0, result.stdout
