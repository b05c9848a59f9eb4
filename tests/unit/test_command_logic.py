"""Command logic that lived in the typer app (app.py) and now lives in its domain module:
`ignore`'s file, `roots --audit`, `recover`'s source, `extra-files`' passwords, `passwd`'s
file. The CLI tests run them through the program; these call each one alone."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from blankslate import (
    audit,
    extrafiles,
    ignore_rules,
    mounts,
    oldroots,
    passwd,
    persist,
    plan,
    plansource,
    snapshots,
)
from blankslate.errors import BlankslateError
from blankslate.plan import Plan
from blankslate.plansource import PlanSource

PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOHz+U0YtjINc54dZiJNclfmEFifF7RXCFlNlTbuZBji a@b"


def plan_with_key() -> Plan:
    data = plansource.default().to_json()
    data["users"][0]["authorizedKeys"] = [PUBLIC]
    return plan.from_json(data)


def no_plan_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def load(*_args: Any, **_kwargs: Any) -> Plan:
        raise AssertionError("the plan was evaluated")

    monkeypatch.setattr(plansource, "load", load)


# --- ignore: which file a rule goes to --------------------------------------------------------


def flake_checkout(path: Path, *hosts: str) -> None:
    (path / "flake.nix").write_text("{}")
    for host in hosts:
        (path / "hosts" / host).mkdir(parents=True)


def test_ignore_file_given_is_the_file_and_no_plan_is_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_plan_load(monkeypatch)
    source = PlanSource.of(None, None, ".")
    assert ignore_rules.rule_file(source, tmp_path / "mine.yaml") == tmp_path / "mine.yaml"


def test_ignore_host_given_names_its_file_and_no_plan_is_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flake_checkout(tmp_path, "web")
    monkeypatch.chdir(tmp_path)
    no_plan_load(monkeypatch)
    source = PlanSource.of(None, "web", ".")
    assert ignore_rules.rule_file(source, None) == tmp_path / "hosts/web/audit.yaml"


def test_ignore_without_host_takes_the_host_name_of_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flake_checkout(tmp_path, "example")
    (tmp_path / "plan.json").write_text(plansource.default_text())
    monkeypatch.chdir(tmp_path)
    source = PlanSource.of(tmp_path / "plan.json", None, ".")
    assert ignore_rules.rule_file(source, None) == tmp_path / "hosts/example/audit.yaml"


def test_ignore_without_a_host_file_names_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no flake checkout here
    with pytest.raises(BlankslateError, match="give --ignore-file"):
        ignore_rules.rule_file(PlanSource.of(None, "web", "."), None)


# --- roots --audit ---------------------------------------------------------------------------


def old_root(name: str) -> snapshots.Snapshot:
    return snapshots.Snapshot(name, Path("/top") / name, datetime(2026, 1, 1, tzinfo=UTC), 0)


@pytest.mark.parametrize(("host", "expected"), [(None, "example"), ("web", "web")])
def test_roots_audit_counts_the_lost_per_root_under_the_hosts_rules(
    host: str | None, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}
    rules = [ignore_rules.Rule("/srv/**", "scratch", "test")]

    def collect(plan_ignore: Any, host_name: str, ignore_file: Path | None) -> Any:
        seen.update(host=host_name, ignore_file=ignore_file)
        return rules

    def audit_old_roots(_plan: Plan, device: str | None, ignore: Any) -> Any:
        seen.update(device=device, ignore=ignore)
        newer, older = old_root("2026-01-02T00:00:00Z"), old_root("2026-01-01T00:00:00Z")
        return [(newer, {"lost": 3, "persisted": 9}), (older, {"lost": 0})]

    monkeypatch.setattr(ignore_rules, "collect", collect)
    monkeypatch.setattr(audit, "audit_old_roots", audit_old_roots)
    kept, lost = audit.lost_per_old_root(
        plansource.default(), "/dev/vda2", tmp_path / "rules.yaml", host=host
    )
    assert [root.name for root in kept] == ["2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"]
    assert lost == {"2026-01-02T00:00:00Z": 3, "2026-01-01T00:00:00Z": 0}
    assert seen == {
        "host": expected,
        "ignore_file": tmp_path / "rules.yaml",
        "device": "/dev/vda2",
        "ignore": rules,
    }


# --- recover: from an old root or a persist snapshot -----------------------------------------


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def from_persist(_plan: Plan, name: str, path: str, **options: Any) -> oldroots.Recovered:
        calls.append(("persist", {"name": name, "path": path, **options}))
        return oldroots.Recovered(
            path, "persist snapshot", "2026-01-02T00:00:00Z", Path("/persist") / path[1:]
        )

    def from_root(_plan: Plan, path: str, **options: Any) -> oldroots.Recovered:
        calls.append(("root", {"path": path, **options}))
        return oldroots.Recovered(
            path, "old root", "2026-01-01T00:00:00Z", Path("/back") / path[1:]
        )

    monkeypatch.setattr(persist, "recover_from_persist", from_persist)
    monkeypatch.setattr(oldroots, "recover", from_root)
    return calls


def test_recover_from_persist_copies_out_of_the_snapshot(
    recorded: list[tuple[str, dict[str, Any]]],
) -> None:
    done = persist.recover(
        plansource.default(), "/var/lib/x", from_persist="latest", device="/dev/vda2", dry_run=True
    )
    assert done == oldroots.Recovered(
        "/var/lib/x", "persist snapshot", "2026-01-02T00:00:00Z", Path("/persist/var/lib/x")
    )
    assert recorded == [
        (
            "persist",
            {"name": "latest", "path": "/var/lib/x", "to": None, "device": "/dev/vda2",
             "dry_run": True},
        )
    ]  # fmt: skip


def test_recover_without_a_snapshot_copies_out_of_an_old_root(
    recorded: list[tuple[str, dict[str, Any]]],
) -> None:
    done = persist.recover(plansource.default(), "/etc/x", from_root="r1", to=Path("/back"))
    assert done == oldroots.Recovered(
        "/etc/x", "old root", "2026-01-01T00:00:00Z", Path("/back/etc/x")
    )
    assert recorded == [
        ("root", {"path": "/etc/x", "from_root": "r1", "to": Path("/back"), "device": None})
    ]


def test_recover_from_both_or_a_dry_run_of_an_old_root_is_refused(
    recorded: list[tuple[str, dict[str, Any]]],
) -> None:
    with pytest.raises(BlankslateError, match="not both"):
        persist.recover(plansource.default(), "/etc/x", from_root="r1", from_persist="latest")
    with pytest.raises(BlankslateError, match="persist snapshot only"):
        persist.recover(plansource.default(), "/etc/x", dry_run=True)
    assert recorded == []


# --- extra-files: checks first, then passwords, then the files --------------------------------


@pytest.fixture
def extra_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    calls: list[tuple[str, Any]] = []

    def ask(_plan: Plan, no_terminal: str | None = None) -> dict[str, str]:
        calls.append(("ask", no_terminal))
        return {"admin": "$y$hash"}

    def write(_plan: Plan, directory: Path, **options: Any) -> extrafiles.ExtraFiles:
        calls.append(("write", options))
        return extrafiles.ExtraFiles(directory)

    monkeypatch.setattr(passwd, "ask_passwords", ask)
    monkeypatch.setattr(extrafiles, "write", write)
    return calls


def test_extra_files_asks_the_passwords_then_writes(
    tmp_path: Path, extra_calls: list[tuple[str, Any]]
) -> None:
    made = extrafiles.extra_files(plan_with_key(), tmp_path / "new", host_keys_from=None)
    assert extra_calls == [
        ("ask", extrafiles.NO_TERMINAL),
        ("write", {"host_keys_from": None, "hashes": {"admin": "$y$hash"}, "dry_run": False}),
    ]
    assert made.without_password == []


@pytest.mark.parametrize("options", [{"passwords": False}, {"dry_run": True}])
def test_extra_files_without_passwords_names_each_file_left_to_write(
    options: dict[str, bool], tmp_path: Path, extra_calls: list[tuple[str, Any]]
) -> None:
    directory = tmp_path / "new"
    made = extrafiles.extra_files(plan_with_key(), directory, host_keys_from=None, **options)
    assert [call for call, _ in extra_calls] == ["write"]
    assert extra_calls[0][1]["hashes"] == {}
    assert made.without_password == [("admin", directory / "persist/passwords/admin")]


def test_extra_files_refuses_a_lockout_before_asking_anything(
    tmp_path: Path, extra_calls: list[tuple[str, Any]]
) -> None:
    with pytest.raises(BlankslateError, match="nobody could log in"):
        extrafiles.extra_files(plansource.default(), tmp_path / "new", host_keys_from=None)
    with pytest.raises(BlankslateError, match="does not exist"):
        extrafiles.extra_files(plan_with_key(), tmp_path / "no/new", host_keys_from=None)
    assert extra_calls == []


# --- passwd ----------------------------------------------------------------------------------


def test_ask_passwords_without_a_terminal_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "isatty", lambda _fd: False)
    with pytest.raises(BlankslateError) as error:
        passwd.ask_passwords(plansource.default(), "use --no-passwords")
    assert str(error.value) == "no terminal to ask for passwords: use --no-passwords"


def test_ask_passwords_hashes_one_password_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "isatty", lambda _fd: True)
    monkeypatch.setattr(passwd, "read_password", lambda *, from_stdin: f"typed {from_stdin}")
    monkeypatch.setattr(passwd, "hash_password", lambda password, method: f"{method}:{password}")
    assert passwd.ask_passwords(plansource.default(), "unused") == {"admin": "yescrypt:typed False"}


@pytest.mark.parametrize("output", [True, False])
def test_passwd_writes_below_persist_without_following_links_unless_output_is_given(
    output: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def set_password(_plan: Plan, user: str, path: Path, **options: Any) -> Path:
        seen.update(user=user, path=path, **options)
        return path

    monkeypatch.setattr(passwd, "set_password", set_password)
    monkeypatch.setattr(mounts, "persist_mount", lambda *_args: None)
    root = tmp_path / "root"
    root.mkdir()
    file = tmp_path / "hash" if output else None
    written = passwd.write_password_file(
        plansource.default(), "admin", root=root, output=file, method="sha-512", from_stdin=True
    )
    expected = file if file is not None else root / "persist/passwords/admin"
    assert written == expected
    assert seen == {
        "user": "admin",
        "path": expected,
        "method": "sha-512",
        "from_stdin": True,
        "below": None if output else root / "persist",
    }
