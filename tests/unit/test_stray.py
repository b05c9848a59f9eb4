"""`persist stray` and `persist du` on a real directory tree (no command runs: pure file work)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blankslate import plan as plan_module
from blankslate import stray
from blankslate.plan import Plan

NON_UTF8 = os.fsdecode(b"caf\xe9")


def example_plan(host_plan_data: Callable[[str], dict[str, Any]]) -> Plan:
    return plan_module.from_json(host_plan_data("example"))


def write(path: Path, data: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A target root whose /persist holds declared paths and strays of every kind."""
    root = tmp_path / "target"
    persist = root / "persist"
    write(persist / "var/lib/nixos/uid-map", "{}")
    write(persist / "var/lib/systemd/random-seed", "s" * 512)
    write(persist / "etc/machine-id", "0" * 32 + "\n")
    write(persist / "etc/ssh/ssh_host_ed25519_key", "k")
    write(persist / "etc/ssh/ssh_host_ed25519_key.pub", "p")
    write(persist / "passwords/admin", "$y$hash\n")
    # strays: a removed service's state, an undeclared key, odd names, a symlink
    write(persist / "var/lib/old-service/db/data", "d" * 1000)
    write(persist / "var/lib/old-service/conf", "c" * 24)
    write(persist / "etc/ssh/ssh_host_rsa_key", "r" * 10)
    write(persist / "new\nline", "n")
    write(persist / NON_UTF8, "e" * 3)
    (persist / "etc/link").symlink_to("/etc")
    return root


def stray_paths(found: list[stray.Entry]) -> set[str]:
    return {entry.path for entry in found}


STRAYS = {
    "/persist/var/lib/old-service",
    "/persist/etc/ssh/ssh_host_rsa_key",
    "/persist/new\nline",
    f"/persist/{NON_UTF8}",
    "/persist/etc/link",
}


def test_strays_are_what_nothing_declares_each_at_its_top(
    target: Path, host_plan_data: Callable[[str], dict[str, Any]]
) -> None:
    found = stray.strays(example_plan(host_plan_data), target_root=target)
    assert stray_paths(found) == STRAYS
    service = next(entry for entry in found if entry.path.endswith("old-service"))
    assert (service.kind, service.usage.bytes, service.usage.entries) == ("directory", 1024, 4)
    link = next(entry for entry in found if entry.path.endswith("link"))
    assert (link.kind, link.usage.entries) == ("symlink", 1)  # /etc is not walked
    assert found[0] is service  # largest first


def test_a_symlink_planted_where_a_directory_is_expected_is_not_followed(
    target: Path, tmp_path: Path, host_plan_data: Callable[[str], dict[str, Any]]
) -> None:
    """A link at /persist/var/lib (above declared paths) is itself the stray: what it points
    at (here a tree of someone else's files) is neither listed nor counted."""
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "secret", "s" * 4096)
    lib = target / "persist/var/lib"
    lib.rename(tmp_path / "moved-lib")
    lib.symlink_to(elsewhere)
    found = stray.strays(example_plan(host_plan_data), target_root=target)
    entry = next(entry for entry in found if entry.path == "/persist/var/lib")
    assert (entry.kind, entry.usage.bytes) == ("symlink", len(str(elsewhere)))
    assert not any("secret" in path for path in stray_paths(found))


def test_du_lists_each_declared_path_and_each_root_largest_first(
    target: Path, host_plan_data: Callable[[str], dict[str, Any]]
) -> None:
    declared, roots = stray.disk_usage(example_plan(host_plan_data), target_root=target)
    sizes = {entry.path: (entry.kind, entry.usage.bytes) for entry in declared}
    assert sizes["/persist/var/lib/systemd"] == ("directory", 512)
    assert sizes["/persist/etc/machine-id"] == ("file", 33)
    assert sizes["/persist/var/lib/blankslate"] == ("missing", 0)
    assert sizes["/persist/passwords/admin"] == ("file", 8)
    assert [entry.usage.bytes for entry in declared] == sorted(
        (entry.usage.bytes for entry in declared), reverse=True
    )
    assert [entry.path for entry in roots] == ["/persist"]
    assert roots[0].usage.bytes >= 1024 + 512 + 33


def plan_file(tmp_path: Path, host_plan_data: Callable[[str], dict[str, Any]]) -> str:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(host_plan_data("example")))
    return str(path)


def test_the_command_lists_as_json_writes_metrics_and_fails_on_strays(
    target: Path,
    tmp_path: Path,
    host_plan_data: Callable[[str], dict[str, Any]],
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = plan_file(tmp_path, host_plan_data)
    metrics = tmp_path / "stray.prom"
    common = ["persist", "stray", "--plan", plan, "--root", str(target)]
    assert run_cli(*common, "--format", "json", "--metrics", str(metrics)) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {entry["path"] for entry in listed} == {
        path.replace(NON_UTF8, "caf\ufffd") for path in STRAYS
    }
    odd = next(entry for entry in listed if "pathBytes" in entry)
    assert odd["pathBytes"] == "L3BlcnNpc3QvY2Fm6Q=="  # base64 of b"/persist/caf\xe9"
    assert "blankslate_stray_entries 5\n" in metrics.read_text()
    assert "blankslate_stray_bytes " in metrics.read_text()
    assert run_cli(*common, "--fail-on-stray") == 1
    out = capsys.readouterr().out
    assert "$'/persist/new\\nline'" in out  # escaped, never a raw newline
    assert "/persist/var/lib/old-service" in out


@pytest.mark.root
def test_move_to_and_restore_rename_without_loss(
    target: Path,
    tmp_path: Path,
    host_plan_data: Callable[[str], dict[str, Any]],
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = plan_file(tmp_path, host_plan_data)
    persist = target / "persist"
    common = ["persist", "stray", "--plan", plan, "--root", str(target)]
    assert run_cli(*common, "--move-to", str(persist), "--dry-run") == 0
    assert "Dry run: nothing was moved." in capsys.readouterr().out
    assert (persist / "var/lib/old-service/db/data").exists()

    assert run_cli(*common, "--move-to", str(persist), "--yes") == 0
    assert "moved 5 of 5 entries" in capsys.readouterr().out
    (moved,) = persist.glob("strays-*")
    assert (moved / "persist/var/lib/old-service/db/data").read_text() == "d" * 1000
    assert os.stat(moved).st_mode & 0o777 == 0o700
    assert not (persist / "var/lib/old-service").exists()
    assert (persist / "var/lib/nixos/uid-map").read_text() == "{}"  # declared: untouched
    assert run_cli(*common, "--fail-on-stray") == 0  # the moved directory is no stray

    write(persist / "etc/ssh/ssh_host_rsa_key", "a new one")  # its place taken again
    assert run_cli(*common, "--restore", str(moved), "--yes") == 1
    out = capsys.readouterr().out
    assert "exists" in out and "ssh_host_rsa_key" in out
    assert (persist / "var/lib/old-service/db/data").read_text() == "d" * 1000
    assert (persist / "etc/ssh/ssh_host_rsa_key").read_text() == "a new one"
    assert (moved / "persist/etc/ssh/ssh_host_rsa_key").read_text() == "r" * 10


@pytest.mark.root
def test_move_to_without_yes_asks_and_a_no_moves_nothing(
    target: Path,
    tmp_path: Path,
    host_plan_data: Callable[[str], dict[str, Any]],
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = plan_file(tmp_path, host_plan_data)
    persist = target / "persist"
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    args = ["persist", "stray", "--plan", plan, "--root", str(target), "--move-to", str(persist)]
    assert run_cli(*args) == 1  # aborted
    out = capsys.readouterr().out
    assert "Move 5 entries?" in out and "moved" not in out
    assert (persist / "var/lib/old-service/db/data").read_text() == "d" * 1000
    assert not list(persist.glob("strays-*"))


@pytest.mark.root
def test_a_move_never_follows_a_link_swapped_in_after_the_listing(
    target: Path,
    tmp_path: Path,
    host_plan_data: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A user who owns a directory above a stray swaps it for a link to root's files between
    the listing and the move: the rename walks without following it and moves nothing."""
    plan = example_plan(host_plan_data)
    listed = stray.strays(plan, target_root=target)
    victim = tmp_path / "root-only"
    write(victim / "old-service/db/data", "root's")
    lib = target / "persist/var/lib"
    lib.rename(tmp_path / "away")
    lib.symlink_to(victim)
    monkeypatch.setattr(stray, "strays", lambda *_a, **_k: listed)
    moves = stray.move_strays(plan, target / "persist", target_root=target, dry_run=False)
    service = next(move for move in moves if move.source.endswith("old-service"))
    assert not service.done and "symlink" in (service.problem or "")
    assert (victim / "old-service/db/data").read_text() == "root's"


def errors(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_move_to_another_filesystem_or_a_missing_directory_is_one_line(
    target: Path,
    tmp_path: Path,
    host_plan_data: Callable[[str], dict[str, Any]],
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = plan_file(tmp_path, host_plan_data)
    common = ["persist", "stray", "--plan", plan, "--root", str(target), "--dry-run"]
    assert run_cli(*common, "--move-to", str(tmp_path / "nope")) == 1
    err = errors(capsys)
    assert len(err) == 1 and "no such directory" in err[0]
    assert run_cli(*common, "--move-to", "/dev/shm") in (0, 1)  # /dev/shm: tmpfs
    if os.stat("/dev/shm").st_dev != os.stat(target).st_dev:
        err = errors(capsys)
        assert len(err) == 1 and "another filesystem" in err[0]
    assert run_cli(*common, "--restore", str(tmp_path)) == 1
    assert "no directory of moved strays" in capsys.readouterr().err


OPTIONS = ["--format", "json", "text", "--fail-on-stray", "--metrics", "--move-to", "--restore"]
OPTIONS += ["--dry-run", "--yes", "--root", "/", "/nonexistent", "", "-", "--", "x" * 300]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(argv=st.lists(st.one_of(st.sampled_from(OPTIONS), st.text(max_size=8)), max_size=6))
def test_any_arguments_end_in_a_status_never_a_traceback(
    argv: list[str],
    target: Path,
    tmp_path: Path,
    host_plan_data: Callable[[str], dict[str, Any]],
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever else is given, --root stays the test's tree (the last one wins) and --move-to,
    when given, is refused unless it is a directory there: nothing outside it is touched."""
    plan = plan_file(tmp_path, host_plan_data)
    monkeypatch.chdir(tmp_path)  # a relative --metrics FILE lands here, never in the checkout
    argv = [arg for arg in argv if arg not in ("--root", "--plan")]
    code = run_cli("persist", "stray", *argv, "--plan", plan, "--root", str(target), "--dry-run")
    assert code in (0, 1, 2)
    assert "Traceback" not in capsys.readouterr().err


def test_a_kept_directory_with_a_kept_path_below_it_holds_no_strays(
    target: Path, host_plan_data: Callable[[str], dict[str, Any]]
) -> None:
    """/var/lib/nixos kept whole, and a file below it kept too: nothing in it is a stray."""
    data = host_plan_data("example")
    data["persistence"]["files"].append(
        {"file": "/var/lib/nixos/extra", "root": "/persist", "method": "auto", "parents": []}
    )
    write(target / "persist/var/lib/nixos/other", "o")
    found = stray.strays(plan_module.from_json(data), target_root=target)
    assert stray_paths(found) == STRAYS
