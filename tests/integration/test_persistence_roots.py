"""diff and seed on a real btrfs with tests/plans/persistence.json: users' home paths, a third
module's directory, a file's declared parent mode and a second persistence root, all declared
the ways impermanence teaches and read from the evaluated configuration."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ..support.runner import blankslate

REPO = Path(__file__).resolve().parents[2]
PLAN = json.loads((REPO / "tests/plans/persistence.json").read_text())
ALICE, USERS, ACME = 1000, 100, 953


def populate(root: Path) -> None:
    """What a booted host holds: alice's files, acme's state, a cache, a secret, and the
    passwd and group files that name their owners."""
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text(
        f"root:x:0:0::/root:/bin/sh\nalice:x:{ALICE}:{USERS}::/home/alice:/bin/sh\n"
        f"acme:x:{ACME}:{ACME}::/var/lib/acme:/bin/false\n"
    )
    (root / "etc/group").write_text(f"root:x:0:\nusers:x:{USERS}:\nacme:x:{ACME}:\n")
    home = root / "home/alice"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/authorized_keys").write_text("ssh-ed25519 AAAA alice\n")
    os.setxattr(home / ".ssh/authorized_keys", "user.origin", b"alice's laptop")
    (home / ".screenrc").write_text("startup_message off\n")
    (home / ".bash_history").write_text("ls\n")
    (home / ".config/app").mkdir(parents=True)
    (home / ".config/app/token").write_text("t0k3n\n")
    for path in (home, home / ".ssh", home / ".ssh/authorized_keys", home / ".screenrc"):
        os.chown(path, ALICE, USERS)
    os.chmod(home, 0o755)  # not what the plan declares for the copy: 0700
    (root / "var/lib/acme").mkdir(parents=True)
    (root / "var/lib/acme/cert.pem").write_text("cert\n")
    os.chown(root / "var/lib/acme", ACME, ACME)
    os.chmod(root / "var/lib/acme", 0o750)
    (root / "var/cache/app").mkdir(parents=True)
    (root / "var/cache/app/db").write_text("rows\n")
    (root / "var/lib/secret").mkdir(parents=True)
    (root / "var/lib/secret/key").write_text("secret\n")


@pytest.fixture
def populated_root(layout: Any, helpers: ModuleType) -> str:
    with helpers.mount_top_level(layout.device) as top:
        populate(top / layout.root)
    return str(layout.device)


def test_diff_knows_every_declared_path(
    populated_root: str, helpers: ModuleType, tmp_path: Path
) -> None:
    """Every declared path is persisted; what the root subvolume holds beneath one (or in a
    persisted file's placeholder) is hidden there by the bind mount, and lost (#23)."""
    plan_file, no_rules = tmp_path / "plan.json", tmp_path / "audit.yaml"
    plan_file.write_text(json.dumps(PLAN))
    no_rules.write_text("ignore: []\n")
    args = ["--plan", str(plan_file), "--device", populated_root, "--ignore-file", str(no_rules)]
    result = blankslate("diff", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    status = {e["path"]: (e["status"], e["reason"]) for e in json.loads(result.stdout)["entries"]}
    assert status["/home/alice/.ssh"] == ("persisted", "persisted directory")
    assert status["/var/lib/acme"] == ("persisted", "persisted directory")
    assert status["/var/cache/app"] == ("persisted", "persisted directory (in /persist/cache)")

    def hidden(cover: str) -> tuple[str, str]:
        return ("lost", f"hidden under the bind mount of {cover}")

    assert status["/home/alice/.ssh/authorized_keys"] == hidden("/home/alice/.ssh")
    assert status["/home/alice/.screenrc"] == hidden("/home/alice/.screenrc")
    assert status["/home/alice/.config/app/token"] == hidden("/home/alice/.config/app/token")
    assert status["/var/lib/acme/cert.pem"] == hidden("/var/lib/acme")
    assert status["/var/cache/app/db"] == hidden("/var/cache/app")
    assert status["/var/lib/secret/key"] == hidden("/var/lib/secret/key")
    # What nobody declared is still lost: no false alarm, and no false calm either.
    assert status["/home/alice/.bash_history"] == ("lost", "")
    assert helpers.mounts_of(populated_root) == []


def rebased(persist: Path) -> dict[str, Any]:
    """The plan as seed --root reads it: persistPath as the system under --root sees it
    (`persist` is mounted there, at /persist)."""
    assert persist.name == "persist"
    data: dict[str, Any] = json.loads(json.dumps(PLAN))
    return data


@pytest.fixture
def live_and_persist(
    populated_root: str, helpers: ModuleType, tmp_path: Path
) -> Iterator[tuple[Path, Path]]:
    with helpers.live_and_persist(populated_root, tmp_path) as trees:
        yield trees
    assert helpers.mounts_of(populated_root) == []


def owner_and_mode(path: Path) -> tuple[int, int, int]:
    info = os.lstat(path)
    return (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))


def test_seed_copies_into_each_root_with_the_declared_parents(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    live, persist = live_and_persist
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(rebased(persist)))

    result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")

    assert result.returncode == 0, result.stdout + result.stderr
    assert owner_and_mode(persist / "home") == (0, 0, 0o755)
    assert owner_and_mode(persist / "home/alice") == (ALICE, USERS, 0o700)
    assert owner_and_mode(persist / "home/alice/.config") == (ALICE, USERS, 0o755)
    assert owner_and_mode(persist / "home/alice/.config/app") == (ALICE, USERS, 0o700)
    assert owner_and_mode(persist / "var/lib/secret") == (0, 0, 0o700)
    keys = persist / "home/alice/.ssh/authorized_keys"
    assert keys.read_text() == "ssh-ed25519 AAAA alice\n"
    assert owner_and_mode(keys) == (ALICE, USERS, 0o644)
    assert os.getxattr(keys, "user.origin") == b"alice's laptop"
    assert owner_and_mode(persist / "var/lib/acme") == (ACME, ACME, 0o750)
    # The second root: made inside persistPath's filesystem, the path copied into it.
    assert owner_and_mode(persist / "cache") == (0, 0, 0o755)
    assert (persist / "cache/var/cache/app/db").read_text() == "rows\n"
    assert not (persist / "var/cache").exists()
    assert not (persist / "home/alice/.bash_history").exists()
    again = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")
    assert again.returncode == 0, again.stderr
    assert "copied 0 paths" in again.stdout


def test_seed_refuses_a_second_root_on_no_persisting_filesystem(
    live_and_persist: tuple[Path, Path], tmp_path: Path
) -> None:
    live, persist = live_and_persist
    data = rebased(persist)
    elsewhere = live / "elsewhere"
    text = json.dumps(data).replace('"/persist/cache', '"/elsewhere')
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(text)
    result = blankslate("seed", "--plan", str(plan_file), "--root", str(live), "--yes")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        f"error: persistence root {elsewhere} is on no mounted filesystem but {live}"
    )
    assert list(persist.iterdir()) == []
