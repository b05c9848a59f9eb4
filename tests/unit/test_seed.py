"""`blankslate seed`: what it decides for each persisted path, and how it copies."""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from blankslate import cli, fdcopy, plan, plansource, safefile, seed, services
from blankslate.errors import BlankslateError

from ..support.mounts import FINDMNT, findmnt_json

CP = ["cp", "--archive", "--reflink=auto", "--no-target-directory", "--"]


def as_on_live(path: Path) -> str:
    """`path` as the system whose root is the `trees` fixture's `live` sees it (seed --root:
    persistPath lies under the root), or as is outside such a tree."""
    live = next((parent for parent in path.parents if parent.name == "live"), None)
    return str(path) if live is None else f"/{path.relative_to(live)}"


def make_plan(persist: Path, directories: list[str], files: list[str]) -> plan.Plan:
    data: dict[str, Any] = json.loads(plansource.default_text())
    persist_path = as_on_live(persist)
    data["persistPath"] = persist_path
    data["users"] = [{"name": "admin", "hashedPasswordFile": f"{persist_path}/passwords/admin"}]
    data["sshHostKeys"] = [f"{persist_path}/etc/ssh/ssh_host_ed25519_key"]
    data["persistence"] = {
        "directories": [{"directory": d} for d in directories],
        "files": [{"file": f} for f in files],
    }
    return plan.from_json(data)


@pytest.fixture
def trees(tmp_path: Path, fp: FakeProcess) -> tuple[Path, Path]:
    """A live root (--root) and its persist directory, which findmnt says is mounted."""
    live = tmp_path / "live"
    persist = live / "persist"
    persist.mkdir(parents=True)
    fp.register(FINDMNT, stdout=findmnt_json("/", str(persist), f"{live}/mnt/bound"))
    return live, persist


def actions(items: list[seed.SeedItem]) -> dict[str, tuple[str, str]]:
    return {item.path: (item.action, item.detail) for item in items}


def test_each_persisted_path_gets_one_action(trees: tuple[Path, Path]) -> None:
    live, persist = trees
    (live / "var/lib/app").mkdir(parents=True)
    (live / "var/lib/seeded").mkdir(parents=True)
    (persist / "var/lib/seeded").mkdir(parents=True)
    (live / "srv/conflict").mkdir(parents=True)
    (persist / "srv").mkdir()
    (persist / "srv/conflict").write_text("a file where the plan wants a directory")
    (live / "mnt/bound").mkdir(parents=True)
    (live / "etc").mkdir()
    (live / "etc/dir-not-file").mkdir()
    (live / "etc/dangling").symlink_to("/nonexistent/target")
    (live / "etc/linked").symlink_to("/persist/srv/conflict")  # as the live system sees it
    (live / "etc/machine-id").write_text("abc\n")
    the_plan = make_plan(
        persist,
        ["/var/lib/app", "/var/lib/seeded", "/srv/conflict", "/mnt/bound", "/var/lib/absent"],
        ["/etc/dir-not-file", "/etc/dangling", "/etc/linked", "/etc/machine-id"],
    )
    assert actions(seed.plan_seed(the_plan, root=live)) == {
        "/etc/dangling": ("problem", "dangling symlink to /nonexistent/target: nothing to copy"),
        "/etc/dir-not-file": ("problem", "a directory on disk, but the plan persists a file"),
        "/etc/linked": ("present", f"a symlink into {persist} (/persist/srv/conflict)"),
        "/etc/machine-id": ("copy", ""),
        "/mnt/bound": ("mounted", "already a mount: persisted already"),
        "/srv/conflict": ("conflict", f"{persist}/srv/conflict exists as a file: left as is"),
        "/var/lib/absent": ("absent", "not on the live system: nothing to copy"),
        "/var/lib/app": ("copy", ""),
        "/var/lib/seeded": ("present", f"already in {persist}: left as is"),
    }


def test_persist_path_must_be_mounted(tmp_path: Path, fp: FakeProcess) -> None:
    fp.register(FINDMNT, stdout=findmnt_json("/"))
    with pytest.raises(BlankslateError, match=f"persistPath {tmp_path} is not mounted"):
        seed.plan_seed(make_plan(tmp_path, [], []))


def test_selection_must_be_in_the_plan(trees: tuple[Path, Path]) -> None:
    live, persist = trees
    with pytest.raises(BlankslateError, match="/srv is not a persisted path of the plan"):
        seed.plan_seed(make_plan(persist, ["/var/lib/app"], []), root=live, selection=["/srv"])


@pytest.mark.root
def test_make_parents_takes_owner_and_mode_from_the_live_parents(tmp_path: Path) -> None:
    live, persist = tmp_path / "live", tmp_path / "persist"
    (live / "var/lib").mkdir(parents=True)
    os.chmod(live / "var", 0o711)
    os.chown(live / "var/lib", 1234, 5678)
    os.chmod(live / "var/lib", 0o750)
    persist.mkdir()
    created = safefile.make_parents(persist, "/var/lib/app/x", live)
    assert created == [persist / "var", persist / "var/lib", persist / "var/lib/app"]
    modes = {p.name: (stat.S_IMODE(p.stat().st_mode), p.stat().st_uid) for p in created}
    # var/lib/app does not exist live: root-owned with the default mode.
    assert modes == {"var": (0o711, 0), "lib": (0o750, 1234), "app": (0o755, 0)}
    assert safefile.make_parents(persist, "/var/lib/app/x", live) == []


@pytest.mark.root
def test_make_parents_without_live_root_uses_the_mode(tmp_path: Path) -> None:
    safefile.make_parents(tmp_path, "etc/ssh/ssh_host_ed25519_key", mode=0o700)
    assert stat.S_IMODE((tmp_path / "etc/ssh").stat().st_mode) == 0o700


def test_make_parents_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "etc").write_text("")
    with pytest.raises(BlankslateError, match="etc exists and is not a directory"):
        safefile.make_parents(tmp_path, "etc/ssh/key")


def held(argument: str) -> Path:
    """The path cp reads, /proc/PID/fd/N (a held file) or /proc/PID/fd/N/. (a held
    directory), resolved to the file or directory the fd holds."""
    assert argument.startswith(f"/proc/{os.getpid()}/fd/"), argument
    return Path(os.path.realpath(argument.removesuffix("/.")))


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[Path]]:
    """Watch the copies of a live tree (`fdcopy`, reading held fds): each reads `source`'s
    held fd, `before` runs first, and the copy really happens. The register returns the
    list of places each copy was written to, resolved (/proc/self/fd/N names a held fd)."""

    def register(source: Path, before: Any = None) -> list[Path]:
        staged: list[Path] = []
        copy_held, copy_contents = fdcopy.copy_held, fdcopy.copy_contents

        def start(held: int, target: int, name: str) -> None:
            assert Path(os.readlink(f"/proc/self/fd/{held}")) == source.resolve()
            if before is not None:
                before()
            staged.append(Path(os.readlink(f"/proc/self/fd/{target}"), name))

        def held_copy(
            held: int, parent: int, name: str, target: int, new: str, named: Path
        ) -> None:
            start(held, target, new)
            copy_held(held, parent, name, target, new, named)

        def contents_copy(held: int, target: int, named: Path) -> None:
            start(held, target, "")
            copy_contents(held, target, named)

        monkeypatch.setattr(fdcopy, "copy_held", held_copy)
        monkeypatch.setattr(fdcopy, "copy_contents", contents_copy)
        return staged

    return register


def no_space(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file's data fails to copy: the disk is full."""

    def full(*_args: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fdcopy._Copier, "_data", full)


def test_apply_copies_to_a_partial_name_then_renames(
    copies: Callable[..., list[Path]], trees: tuple[Path, Path], fp: FakeProcess
) -> None:
    live, persist = trees
    (live / "var/lib/app").mkdir(parents=True)
    (live / "var/lib/app/data").write_text("payload")
    items = seed.plan_seed(make_plan(persist, ["/var/lib/app"], []), root=live)
    partial = persist / "var/lib/app.blankslate-partial"
    staged = copies(live / "var/lib/app")
    done = seed.apply(items, live_root=live)
    assert [item.path for item in done] == ["/var/lib/app"]
    assert staged == [partial / "app"]  # cp wrote inside the 0700 partial directory
    assert (persist / "var/lib/app/data").read_text() == "payload"
    assert not partial.exists()


def test_a_failed_copy_is_removed_and_explained(
    trees: tuple[Path, Path], fp: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    live, persist = trees
    (live / "srv").mkdir()
    (live / "srv/data").write_text("x")
    items = seed.plan_seed(make_plan(persist, ["/srv"], []), root=live)
    partial = persist / "srv.blankslate-partial"
    no_space(monkeypatch)
    removed: list[str] = []

    def rm(process: Any) -> None:
        removed.append(os.path.realpath(process.args[-1]))
        shutil.rmtree(process.args[-1])

    fp.register(["rm", "-rf", "--one-file-system", "--", fp.any(min=1, max=1)], callback=rm)
    with pytest.raises(BlankslateError, match=r"partial copy was removed.*No space left"):
        seed.apply(items, live_root=live)
    assert removed == [str(partial)]
    assert not (persist / "srv").exists()
    assert not partial.exists()


def test_dry_run_changes_nothing(trees: tuple[Path, Path], fp: FakeProcess) -> None:
    live, persist = trees
    (live / "var/lib/app").mkdir(parents=True)
    items = seed.plan_seed(make_plan(persist, ["/var/lib/app"], []), root=live)
    seed.apply(items, live_root=live, dry_run=True)  # cp is not registered: not run
    assert list(persist.iterdir()) == []


def test_cli_seed_lists_asks_and_tells_the_next_step(
    copies: Callable[..., list[Path]],
    trees: tuple[Path, Path],
    fp: FakeProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live, persist = trees
    (live / "etc").mkdir()
    (live / "etc/machine-id").write_text("abc\n")
    plan_file = persist.parent / "plan.json"
    plan_file.write_text(json.dumps(make_plan(persist, [], ["/etc/machine-id"]).to_json()))
    copies(live / "etc/machine-id")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    monkeypatch.setattr(
        "sys.argv", ["blankslate", "seed", "--plan", str(plan_file), "--root", str(live)]
    )
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert out.startswith(
        f"copy  file       {live}/etc/machine-id -> {persist}/etc/machine-id\n"
        f"Copy 1 paths into {persist}? [y/N]: "
    )
    assert "next: nixos-rebuild boot --flake .#example, then reboot" in out
    assert (persist / "etc/machine-id").read_text() == "abc\n"


# --- a user's symlink under persistPath never redirects a write -----------------------------


def test_seed_refuses_a_symlinked_parent_planted_in_persist(
    copies: Callable[..., list[Path]], trees: tuple[Path, Path], tmp_path: Path, fp: FakeProcess
) -> None:
    # alice owns persist/home/alice (seed gave it her owner) and points .ssh at root's.
    live, persist = trees
    victim = tmp_path / "root-ssh"
    victim.mkdir()
    (live / "home/alice/.ssh").mkdir(parents=True)
    (live / "home/alice/.ssh/authorized_keys").write_text("ssh-ed25519 alice\n")
    (persist / "home/alice").mkdir(parents=True)
    (persist / "home/alice/.ssh").symlink_to(victim)
    the_plan = make_plan(persist, [], ["/home/alice/.ssh/authorized_keys"])
    copies(live / "home/alice/.ssh/authorized_keys")

    items = seed.plan_seed(the_plan, root=live)

    assert actions(items) == {
        "/home/alice/.ssh/authorized_keys": (
            "conflict",
            f"{persist}/home/alice/.ssh is a symlink: left as is (never written through)",
        )
    }
    forced = [dataclasses.replace(item, action="copy", detail="") for item in items]
    with pytest.raises(BlankslateError, match=r"home/alice/\.ssh is a symlink"):
        seed.apply(forced, live_root=live)
    assert list(victim.iterdir()) == []


def test_make_parents_refuses_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    persist = tmp_path / "persist"
    (persist / "home").mkdir(parents=True)
    (persist / "home/alice").symlink_to(victim)
    with pytest.raises(BlankslateError, match=r"home/alice is a symlink"):
        safefile.make_parents(persist, "home/alice/.ssh/authorized_keys")
    assert list(victim.iterdir()) == []


def test_a_parent_swapped_for_a_symlink_during_the_copy_redirects_nothing(
    copies: Callable[..., list[Path]], trees: tuple[Path, Path], tmp_path: Path, fp: FakeProcess
) -> None:
    live, persist = trees
    victim = tmp_path / "root-ssh"
    victim.mkdir()
    (live / "home/alice/.ssh").mkdir(parents=True)
    (live / "home/alice/.ssh/authorized_keys").write_text("ssh-ed25519 alice\n")
    (persist / "home/alice").mkdir(parents=True)
    items = seed.plan_seed(make_plan(persist, ["/home/alice/.ssh"], []), root=live)

    def swap() -> None:  # alice, while cp runs: her directory elsewhere, a link in its place
        (persist / "home/alice").rename(persist / "home/alice-moved")
        (persist / "home/alice").symlink_to(victim)

    copies(live / "home/alice/.ssh", before=swap)
    seed.apply(items, live_root=live)

    assert list(victim.iterdir()) == []
    assert (persist / "home/alice-moved/.ssh/authorized_keys").read_text() == "ssh-ed25519 alice\n"


# --- every persistence root, and the parents the plan declares ----------------------------


def rooted_plan(persist: Path, persistence: dict[str, Any]) -> plan.Plan:
    the_plan = make_plan(persist, [], [])
    data = the_plan.to_json()
    data["persistence"] = persistence
    return plan.from_json(data)


def parent(directory: str, user: str, group: str, mode: str) -> dict[str, str]:
    return {"directory": directory, "user": user, "group": group, "mode": mode}


def alice_home(live: Path) -> None:
    (live / "etc").mkdir(exist_ok=True)
    (live / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nalice:x:1000:100::/home/alice:\n")
    (live / "etc/group").write_text("root:x:0:\nusers:x:100:alice\n")
    (live / "home/alice/.ssh").mkdir(parents=True)
    (live / "home/alice/.ssh/authorized_keys").write_text("ssh-ed25519 alice\n")


HOME_PARENTS = [
    parent("/home", "root", "root", "0755"),
    parent("/home/alice", "alice", "users", "0700"),
]


@pytest.mark.root
def test_seed_makes_declared_parents_with_their_owner_and_mode(
    copies: Callable[..., list[Path]], trees: tuple[Path, Path], fp: FakeProcess
) -> None:
    live, persist = trees
    alice_home(live)
    os.chmod(live / "home/alice", 0o755)  # the live copy's mode is not what the plan declares
    the_plan = rooted_plan(
        persist,
        {"directories": [{"directory": "/home/alice/.ssh", "parents": HOME_PARENTS}], "files": []},
    )
    items = seed.plan_seed(the_plan, root=live)
    assert actions(items) == {"/home/alice/.ssh": ("copy", "")}
    copies(live / "home/alice/.ssh")
    seed.apply(items, live_root=live)
    home = os.lstat(persist / "home/alice")
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1000, 100, 0o700)
    top = os.lstat(persist / "home")
    assert (top.st_uid, top.st_gid, stat.S_IMODE(top.st_mode)) == (0, 0, 0o755)
    assert (persist / "home/alice/.ssh/authorized_keys").read_text() == "ssh-ed25519 alice\n"


def test_an_owner_the_live_root_does_not_know_is_a_problem(trees: tuple[Path, Path]) -> None:
    live, persist = trees
    alice_home(live)
    bob = [parent("/home", "root", "root", "0755"), parent("/home/alice", "bob", "users", "0700")]
    the_plan = rooted_plan(
        persist, {"directories": [{"directory": "/home/alice/.ssh", "parents": bob}], "files": []}
    )
    assert actions(seed.plan_seed(the_plan, root=live)) == {
        "/home/alice/.ssh": ("problem", f"user 'bob' is not in {live}/etc/passwd: nothing copied")
    }
    assert list(persist.iterdir()) == []


@pytest.mark.root
def test_a_second_root_inside_persist_path_is_made_and_filled(
    copies: Callable[..., list[Path]], trees: tuple[Path, Path], fp: FakeProcess
) -> None:
    live, persist = trees
    (live / "var/cache/app").mkdir(parents=True)
    cache = persist / "cache"
    the_plan = rooted_plan(
        persist,
        {
            "roots": [as_on_live(persist), as_on_live(cache)],
            "directories": [{"directory": "/var/cache/app", "root": as_on_live(cache)}],
            "files": [],
        },
    )
    items = seed.plan_seed(the_plan, root=live)
    assert [(item.action, item.target) for item in items] == [("copy", cache / "var/cache/app")]
    copies(live / "var/cache/app")
    seed.apply(items, live_root=live)
    assert (cache / "var/cache/app").is_dir()
    assert stat.S_IMODE(os.lstat(cache).st_mode) == 0o755


def test_a_root_on_no_mounted_filesystem_is_refused(
    trees: tuple[Path, Path], tmp_path: Path
) -> None:
    live, persist = trees
    (live / "var/cache/app").mkdir(parents=True)
    elsewhere = live / "state"
    the_plan = rooted_plan(
        persist,
        {"directories": [{"directory": "/var/cache/app", "root": "/state"}], "files": []},
    )
    with pytest.raises(BlankslateError, match=f"persistence root {elsewhere} is on no mounted"):
        seed.plan_seed(the_plan, root=live)
    assert not elsewhere.exists()


def test_a_symlink_planted_as_a_second_root_is_a_conflict(
    trees: tuple[Path, Path], tmp_path: Path
) -> None:
    live, persist = trees
    (live / "var/cache/app").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (persist / "cache").symlink_to(victim)
    the_plan = rooted_plan(
        persist,
        {"directories": [{"directory": "/var/cache/app", "root": "/persist/cache"}],
         "files": []},
    )  # fmt: skip
    items = seed.plan_seed(the_plan, root=live)
    assert [item.action for item in items] == ["conflict"]
    assert seed.apply(items, live_root=live) == []
    assert list(victim.iterdir()) == []


def test_a_symlinked_file_into_its_own_root_is_present(trees: tuple[Path, Path]) -> None:
    live, persist = trees
    cache = persist / "cache"
    (cache / "etc").mkdir(parents=True)
    (cache / "etc/token").write_text("t")
    (live / "etc").mkdir()
    (live / "etc/token").symlink_to("/persist/cache/etc/token")  # as the live system sees it
    the_plan = rooted_plan(
        persist,
        {
            "directories": [],
            "files": [{"file": "/etc/token", "root": "/persist/cache", "method": "symlink"}],
        },
    )
    assert actions(seed.plan_seed(the_plan, root=live)) == {
        "/etc/token": ("present", f"a symlink into {cache} (/persist/cache/etc/token)")
    }


# --- the source side: a user's link on the way to a live path is never followed ------------


def test_a_symlink_on_the_way_to_the_source_is_a_problem_and_never_read(
    copies: Callable[..., list[Path]], trees: tuple[Path, Path], fp: FakeProcess
) -> None:
    """alice's ~/.config -> ../../root, with /home/alice/.config/vault persisted: listed as a
    problem; a copy forced past the listing (the link planted after it) is refused too."""
    live, persist = trees
    (live / "root/vault").mkdir(parents=True)
    (live / "root/vault/secret").write_text("root's\n")
    (live / "home/alice").mkdir(parents=True)
    (live / "home/alice/.config").symlink_to("../../root")
    copies(live / "root/vault")

    items = seed.plan_seed(make_plan(persist, ["/home/alice/.config/vault"], []), root=live)

    assert actions(items) == {
        "/home/alice/.config/vault": (
            "problem",
            f"{live}/home/alice/.config is a symlink: never followed, nothing copied",
        )
    }
    forced = [dataclasses.replace(item, action="copy", detail="") for item in items]
    with pytest.raises(BlankslateError, match=r"\.config is a symlink: refusing to read through"):
        seed.apply(forced, live_root=live)
    assert not (persist / "home/alice/.config/vault").exists()


# --- live services (#27): what uses a path seed copies -------------------------------------

SHOW = services.show_directories(["postgresql.service", "nginx.service"])
LIST_UNITS = services.list_running_services()


def test_systemctl_builders() -> None:
    assert LIST_UNITS == [
        "systemctl", "list-units", "--type=service", "--state=running", "--no-legend",
        "--plain", "--full", "--no-pager",
    ]  # fmt: skip
    assert SHOW == [
        "systemctl", "show",
        "--property=Id,StateDirectory,CacheDirectory,LogsDirectory,ConfigurationDirectory",
        "--", "postgresql.service", "nginx.service",
    ]  # fmt: skip
    assert services.stop_units(["a.service"]) == ["systemctl", "stop", "--", "a.service"]
    assert services.start_units(["a.service"]) == ["systemctl", "start", "--", "a.service"]


def test_running_units_whose_directories_are_copied(fp: FakeProcess) -> None:
    fp.register(
        LIST_UNITS,
        stdout="postgresql.service loaded active running PostgreSQL Server\n"
        "nginx.service loaded active running Nginx\n",
    )
    fp.register(
        SHOW,
        stdout="Id=postgresql.service\nStateDirectory=postgresql\nCacheDirectory=\n"
        "LogsDirectory=\nConfigurationDirectory=\n\n"
        "Id=nginx.service\nStateDirectory=nginx\nCacheDirectory=nginx\nLogsDirectory=nginx\n"
        "ConfigurationDirectory=\n",
    )
    users = services.unit_directories(["/var/lib/postgresql/16", "/srv"])
    assert users == [services.User("postgresql.service", "its directory /var/lib/postgresql")]


def fake_proc(root: Path, pid: int, comm: str, cgroup: str, opened: list[Path]) -> Path:
    """A /proc/PID of our own: comm, cgroup, cwd and fd/N links to `opened`."""
    directory = root / str(pid)
    (directory / "fd").mkdir(parents=True)
    (directory / "comm").write_text(f"{comm}\n")
    (directory / "cgroup").write_text(cgroup)
    (directory / "cwd").symlink_to("/")
    for number, path in enumerate(opened):
        (directory / "fd" / str(number)).symlink_to(path)
    return directory


def test_open_files_under_a_copied_path_name_their_process_and_unit(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    fake_proc(proc, 40, "postgres", "0::/system.slice/postgresql.service\n",
              [Path("/dev/null"), Path("/var/lib/postgresql/16/base/1")])  # fmt: skip
    fake_proc(proc, 41, "vim", "0::/user.slice/user-1000.slice/session-3.scope\n",
              [Path("/var/lib/postgresql-notes")])  # fmt: skip
    fake_proc(proc, 42, "less", "0::/user.slice/user-1000.slice/session-3.scope\n",
              [Path("/var/lib/app/log (deleted)")])  # fmt: skip
    (proc / "self").mkdir()  # not a pid
    users = services.open_files(["/var/lib/postgresql", "/var/lib/app"], proc)
    assert users == [
        services.User(
            "postgresql.service", "pid 40 (postgres) has /var/lib/postgresql/16/base/1 open"
        ),
        services.User(None, "pid 42 (less) has /var/lib/app/log open"),
    ]
    assert services.stoppable(users) == (["postgresql.service"], [users[1]])


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_systemctl_and_cgroup_parsers_never_fail(text: str) -> None:
    assert all(unit.endswith(".service") for unit in services.parse_unit_list(text))
    for directories in services.parse_show(text).values():
        assert all(directory.startswith("/") for directory in directories)
    unit = services.parse_cgroup(text)
    assert unit is None or unit.endswith(".service")


@pytest.fixture
def postgres(trees: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A live /var/lib/postgresql that postgresql.service holds open (a /proc of our own)."""
    live, persist = trees
    (live / "var/lib/postgresql/16").mkdir(parents=True)
    (live / "var/lib/postgresql/16/PG_VERSION").write_text("16\n")
    proc = tmp_path / "proc"
    proc.mkdir()
    monkeypatch.setattr(services, "PROC", proc)
    fake_proc(proc, 40, "postgres", "0::/system.slice/postgresql.service\n",
              [live / "var/lib/postgresql/16/PG_VERSION"])  # fmt: skip
    plan_file = persist.parent / "plan.json"
    plan_file.write_text(json.dumps(make_plan(persist, ["/var/lib/postgresql"], []).to_json()))
    return plan_file


def test_seed_refuses_a_path_a_running_service_uses(
    trees: tuple[Path, Path],
    postgres: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    live, persist = trees
    code = run_cli("seed", "--plan", str(postgres), "--root", str(live), "--yes")
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[-1] == (
        "error: in use while seed would copy it: postgresql.service (pid 40 (postgres) has "
        f"{live}/var/lib/postgresql/16/PG_VERSION open) (stop it first, or give --stop-units "
        "to stop the units for the copy and start them again, or --live to copy anyway)"
    )
    assert not (persist / "var/lib/postgresql").exists()


def test_seed_stop_units_stops_them_for_the_copy_and_starts_them_again(
    copies: Callable[..., list[Path]],
    trees: tuple[Path, Path],
    postgres: Path,
    fp: FakeProcess,
    run_cli: Callable[..., int],
) -> None:
    live, persist = trees
    order: list[str] = []

    def stop(_process: Any) -> None:
        order.append("stop")
        shutil.rmtree(services.PROC / "40")  # the service ended

    fp.register(services.stop_units(["postgresql.service"]), callback=stop)
    copies(live / "var/lib/postgresql", before=lambda: order.append("cp"))
    fp.register(
        services.start_units(["postgresql.service"]),
        callback=lambda _process: order.append("start"),
    )
    code = run_cli("seed", "--plan", str(postgres), "--root", str(live), "--yes", "--stop-units")
    assert code == 0
    assert order == ["stop", "cp", "start"]
    assert (persist / "var/lib/postgresql/16/PG_VERSION").read_text() == "16\n"


def test_seed_stop_units_starts_them_again_when_the_copy_fails(
    trees: tuple[Path, Path],
    postgres: Path,
    fp: FakeProcess,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    live, _persist = trees
    fp.register(
        services.stop_units(["postgresql.service"]),
        callback=lambda _process: shutil.rmtree(services.PROC / "40"),
    )
    no_space(monkeypatch)
    fp.register(["rm", "-rf", "--one-file-system", "--", fp.any(min=1, max=1)])
    fp.register(services.start_units(["postgresql.service"]))
    code = run_cli("seed", "--plan", str(postgres), "--root", str(live), "--yes", "--stop-units")
    assert code == 1
    assert "No space left on device" in capsys.readouterr().err
    assert fp.call_count(services.start_units(["postgresql.service"])) == 1


def test_seed_stop_units_refuses_what_is_still_in_use_and_starts_them_again(
    trees: tuple[Path, Path],
    postgres: Path,
    fp: FakeProcess,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    live, persist = trees
    fp.register(services.stop_units(["postgresql.service"]))  # but pid 40 stays
    fp.register(services.start_units(["postgresql.service"]))
    code = run_cli("seed", "--plan", str(postgres), "--root", str(live), "--yes", "--stop-units")
    assert code == 1
    assert "still in use after stopping postgresql.service" in capsys.readouterr().err
    assert fp.call_count(services.start_units(["postgresql.service"])) == 1
    assert not (persist / "var/lib/postgresql").exists()


def test_seed_live_copies_anyway_and_says_so(
    copies: Callable[..., list[Path]],
    trees: tuple[Path, Path],
    postgres: Path,
    fp: FakeProcess,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    live, persist = trees
    copies(live / "var/lib/postgresql")
    code = run_cli("seed", "--plan", str(postgres), "--root", str(live), "--yes", "--live")
    assert code == 0
    assert "copying while in use (--live): postgresql.service" in capsys.readouterr().err
    assert (persist / "var/lib/postgresql/16/PG_VERSION").read_text() == "16\n"


def test_seed_stop_units_and_live_together_is_a_usage_error(
    trees: tuple[Path, Path], postgres: Path, run_cli: Callable[..., int]
) -> None:
    live, _persist = trees
    args = ["seed", "--plan", str(postgres), "--root", str(live), "--yes"]
    assert run_cli(*args, "--stop-units", "--live") == 2


# --- the read-only snapshot the copies are read from (btrfs) -------------------------------


def snapshot_commands(fp: FakeProcess, live: Path, nested: str = "") -> list[str]:
    """Register the probes and the snapshot's life: show, list -o, snapshot -r (a copy of the
    tree stands in for it), delete. Returns the snapshot path made, once it is."""
    made: list[str] = []
    fp.register(["btrfs", "subvolume", "show", str(live)], stdout="root\n\tName: root\n")
    fp.register(["btrfs", "subvolume", "list", "-o", str(live)], stdout=nested)

    def snapshot(process: Any) -> None:
        target = str(process.args[-1])
        made.append(target)
        shutil.copytree(live, target, symlinks=True, ignore=shutil.ignore_patterns(".blankslate-*"))

    fp.register(
        ["btrfs", "subvolume", "snapshot", "-r", str(live), fp.any(min=1, max=1)],
        callback=snapshot,
    )
    fp.register(
        ["btrfs", "subvolume", "delete", fp.any(min=1, max=1)],
        callback=lambda process: shutil.rmtree(str(process.args[-1])),
    )
    return made


def test_copies_are_read_from_a_snapshot_deleted_afterwards(
    trees: tuple[Path, Path], fp: FakeProcess
) -> None:
    live, persist = trees
    (live / "var/lib/app").mkdir(parents=True)
    (live / "var/lib/app/data").write_text("at the snapshot\n")
    items = seed.plan_seed(make_plan(persist, ["/var/lib/app"], []), root=live)
    items = [dataclasses.replace(item, snapshot=True) for item in items]
    made = snapshot_commands(fp, live)
    read: list[str] = []

    def cp(process: Any) -> None:
        source = held(str(process.args[-2]))
        read.append(str(source))
        shutil.copytree(source, str(process.args[-1]), symlinks=True)

    fp.register([*CP, fp.any(min=2, max=2)], callback=cp)
    assert [item.path for item in seed.apply(items, live_root=live)] == ["/var/lib/app"]
    assert len(made) == 1 and made[0].startswith(f"{live}/.blankslate-seed.")
    assert read == [f"{made[0]}/var/lib/app"]
    assert (persist / "var/lib/app/data").read_text() == "at the snapshot\n"
    assert list(live.glob(".blankslate-seed.*")) == []  # deleted, its directory removed


def test_the_snapshot_is_deleted_when_the_copy_fails(
    trees: tuple[Path, Path], fp: FakeProcess
) -> None:
    live, persist = trees
    (live / "srv").mkdir()
    items = seed.plan_seed(make_plan(persist, ["/srv"], []), root=live)
    items = [dataclasses.replace(item, snapshot=True) for item in items]
    made = snapshot_commands(fp, live)
    fp.register([*CP, fp.any(min=2, max=2)], returncode=1, stderr="cp: I/O error\n")
    fp.register(["rm", "-rf", "--one-file-system", "--", fp.any(min=1, max=1)])
    with pytest.raises(BlankslateError, match="I/O error"):
        seed.apply(items, live_root=live)
    assert fp.call_count(["btrfs", "subvolume", "delete", made[0]]) == 1
    assert list(live.glob(".blankslate-seed.*")) == []


def test_a_path_holding_a_nested_subvolume_is_read_live(
    copies: Callable[..., list[Path]], trees: tuple[Path, Path], fp: FakeProcess
) -> None:
    live, persist = trees
    (live / "var/lib/machines/box").mkdir(parents=True)
    items = seed.plan_seed(make_plan(persist, ["/var/lib"], []), root=live)
    items = [dataclasses.replace(item, snapshot=True) for item in items]
    fp.register(["btrfs", "subvolume", "show", str(live)], stdout="root\n")
    fp.register(
        ["btrfs", "subvolume", "list", "-o", str(live)],
        stdout="ID 300 gen 9 top level 256 path root/var/lib/machines\n",
    )
    staged = copies(live / "var/lib")  # the live tree, no snapshot taken
    seed.apply(items, live_root=live)
    assert staged == [persist / "var/lib.blankslate-partial/lib"]


def test_dry_run_says_it_would_snapshot(trees: tuple[Path, Path], fp: FakeProcess) -> None:
    live, persist = trees
    (live / "srv").mkdir()
    items = seed.plan_seed(make_plan(persist, ["/srv"], []), root=live)
    items = [dataclasses.replace(item, snapshot=True) for item in items]
    fp.register(["btrfs", "subvolume", "show", str(live)], stdout="root\n")
    fp.register(["btrfs", "subvolume", "list", "-o", str(live)], stdout="")
    seed.apply(items, live_root=live, dry_run=True)  # no snapshot, no cp registered
    assert list(live.glob(".blankslate-seed.*")) == []


def test_seed_and_the_processes_waiting_for_it_are_not_users(tmp_path: Path) -> None:
    """The admin's shell, whose working directory is the path, waits for seed: not a user."""
    proc = tmp_path / "proc"
    me, shell, other = os.getpid(), 7001, 7002
    fake_proc(proc, me, "blankslate", "0::/user.slice/session-1.scope\n", [Path("/srv/x")])
    (proc / str(me) / "status").write_text(f"Name:\tpython\nPPid:\t{shell}\n")
    fake_proc(proc, shell, "bash", "0::/user.slice/session-1.scope\n", [Path("/srv/x")])
    (proc / str(shell) / "status").write_text("Name:\tbash\nPPid:\t1\n")
    fake_proc(proc, other, "vim", "0::/user.slice/session-2.scope\n", [Path("/srv/x")])
    assert services.open_files(["/srv"], proc) == [
        services.User(None, f"pid {other} (vim) has /srv/x open")
    ]


@pytest.mark.root
def test_seed_makes_var_lib_private_0700_whatever_the_plan_or_live_copy_says(
    copies: Callable[..., list[Path]], trees: tuple[Path, Path], fp: FakeProcess
) -> None:
    live, persist = trees
    (live / "var/lib/private/app").mkdir(parents=True)
    os.chmod(live / "var/lib/private", 0o755)  # a live copy that is wrong already
    (live / "var/lib/private/app/state").write_text("kept\n")
    # A plan without the parents (written before plans carried them): the live modes would win.
    the_plan = rooted_plan(
        persist, {"directories": [{"directory": "/var/lib/private/app"}], "files": []}
    )
    items = seed.plan_seed(the_plan, root=live)
    assert actions(items) == {"/var/lib/private/app": ("copy", "")}
    copies(live / "var/lib/private/app")
    seed.apply(items, live_root=live)
    private = os.lstat(persist / "var/lib/private")
    assert (private.st_uid, private.st_gid, stat.S_IMODE(private.st_mode)) == (0, 0, 0o700)
    assert stat.S_IMODE(os.lstat(persist / "var/lib").st_mode) == 0o755
