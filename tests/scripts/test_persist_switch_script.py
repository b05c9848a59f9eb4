"""modules/guard/persist-switch.bash, the switch-time guard, run on real trees.

The current system persists what tests/plans/persistence.json persists; the new one adds
paths. A stand-in `blankslate` on PATH records its argv (and, when told to, copies the
paths into /persist the way seed would), so the guard's seed command is checked exactly.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..support.strategies import SURROGATES

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "modules" / "guard" / "persist-switch.bash"
PLAN = json.loads((REPO / "tests" / "plans" / "persistence.json").read_text())

pytestmark = [
    pytest.mark.skipif(shutil.which("bash") is None, reason="bash not found"),
    pytest.mark.skipif(shutil.which("jq") is None, reason="jq not found"),
]

# Records its argv, NUL-separated, in $SEED_LOG; with SEED_COPIES=1 copies each path from the
# live tree (--root) into <root>/persist, as `blankslate seed` does for a missing copy.
STAND_IN = r"""#!/usr/bin/env bash
set -o errexit -o nounset -o pipefail
printf '%s\0' "$@" >>"$SEED_LOG"
[[ ${SEED_COPIES:-0} == 1 ]] || exit "${SEED_STATUS:-0}"
shift  # seed
root=
paths=()
while (($# > 0)); do
  case $1 in
    --plan) shift 2 ;;
    --root) root=$2; shift 2 ;;
    --yes) shift ;;
    *) paths+=("$1"); shift ;;
  esac
done
for path in "${paths[@]}"; do
  mkdir -p "$(dirname "$root/persist$path")"
  cp -a "$root$path" "$root/persist$path"
done
"""


class Host:
    """A root with /persist, a current and a new system, and the stand-in blankslate."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.root = tmp_path / "root"
        (self.root / "persist").mkdir(parents=True)
        self.current = self.system("current", PLAN)
        self.new_plan = copy.deepcopy(PLAN)
        self.new = self.system("new", self.new_plan)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        stand_in = bin_dir / "blankslate"
        stand_in.write_text(STAND_IN)
        stand_in.chmod(0o755)
        self.log = tmp_path / "seed.log"
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "SEED_LOG": str(self.log),
        }

    def system(self, name: str, plan: dict[str, Any]) -> Path:
        toplevel = self.tmp / name
        (toplevel / "etc" / "blankslate").mkdir(parents=True, exist_ok=True)
        (toplevel / "etc" / "blankslate" / "plan.json").write_text(json.dumps(plan))
        return toplevel

    def persist(self, *, directories: tuple[str, ...] = (), files: tuple[str, ...] = ()) -> None:
        """The new system also persists these, in /persist."""
        persistence = self.new_plan["persistence"]
        for directory in directories:
            persistence["directories"].append(
                {"directory": directory, "root": "/persist", "user": "root", "group": "root",
                 "mode": "0755", "parents": []}
            )  # fmt: skip
        for file in files:
            persistence["files"].append(
                {"file": file, "root": "/persist", "method": "auto", "parents": []}
            )
        # sorted by path, as modules/persisted.nix writes them
        persistence["directories"].sort(key=lambda entry: entry["directory"])
        persistence["files"].sort(key=lambda entry: entry["file"])
        self.system("new", self.new_plan)

    def live(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def persistent(self, path: str) -> Path:
        return self.root / "persist" / path.lstrip("/")

    def run(
        self, *extra: str, action: str | None = "switch", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        args = ["bash", str(SCRIPT), "--root", str(self.root), "--current", str(self.current)]
        args += [*extra, str(self.new)] + ([action] if action is not None else [])
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
            env={**self.env, **(env or {})},
        )

    def seed_calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        # one call per "seed" word that starts a record
        words = self.log.read_text().split("\0")[:-1]
        calls: list[list[str]] = []
        for word in words:
            if word == "seed":
                calls.append([])
            calls[-1].append(word)
        return calls


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def fill(path: Path, text: str = "data\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def command_line(stderr: str) -> list[str]:
    """The seed command the refusal prints, split into words by bash itself (it quotes
    with printf %q, so a newline comes out as $'\\n', which bash reads back)."""
    lines = [line.strip() for line in stderr.splitlines()]
    commands = [line for line in lines if line.startswith("blankslate seed")]
    assert len(commands) == 1, stderr
    words = subprocess.run(
        ["bash", "-c", 'eval "set -- $1"; printf "%s\\0" "$@"', "bash", commands[0]],
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "surrogateescape")  # bytes: text mode would turn \r into \n
    return words.split("\0")[:-1]


def test_refuses_a_new_directory_with_live_data_and_no_persistent_copy(host: Host) -> None:
    host.persist(directories=("/var/lib/foo",))
    fill(host.live("/var/lib/foo/db"))
    result = host.run()
    assert result.returncode == 1, result.stderr
    assert "/var/lib/foo: " in result.stderr
    assert f"{host.persistent('/var/lib/foo')} is missing" in result.stderr
    assert "refusing to switch" in result.stderr
    words = command_line(result.stderr)
    plan = str(host.new / "etc" / "blankslate" / "plan.json")
    assert words == ["blankslate", "seed", "--plan", plan, "--root", str(host.root), "/var/lib/foo"]
    assert host.seed_calls() == []  # without seedOnSwitch it only says what to run
    assert not host.persistent("/var/lib/foo").exists()  # and writes nothing


def test_refuses_when_the_persistent_copy_is_empty(host: Host) -> None:
    host.persist(directories=("/srv/app",), files=("/etc/app.conf",))
    fill(host.live("/srv/app/state"))
    fill(host.live("/etc/app.conf"))
    host.persistent("/srv/app").mkdir(parents=True)
    fill(host.persistent("/etc/app.conf"), "")
    result = host.run()
    assert result.returncode == 1
    assert f"{host.persistent('/srv/app')} is empty" in result.stderr
    assert f"{host.persistent('/etc/app.conf')} is empty" in result.stderr
    assert command_line(result.stderr)[-2:] == ["/srv/app", "/etc/app.conf"]


def test_boot_and_test_refuse_too(host: Host) -> None:
    """`boot` mounts nothing now, but the reboot's reset erases the live copy."""
    host.persist(files=("/var/lib/foo.db",))
    fill(host.live("/var/lib/foo.db"))
    for action in ("boot", "test", "check", "dry-activate"):
        result = host.run(action=action)
        assert result.returncode == 1, action
        assert f"refusing to {action}" in result.stderr
    # nixpkgs before the verb was passed: the toplevel alone, taken as a switch
    result = host.run(action=None)
    assert result.returncode == 1 and "refusing to switch" in result.stderr


def test_already_persisted_paths_are_ignored(host: Host) -> None:
    # /var/lib/nixos is persisted by the current system too: its live copy is the bind
    # mount's, whatever /persist holds; nothing is new, nothing is checked.
    fill(host.live("/var/lib/nixos/uid-map"))
    fill(host.live("/etc/machine-id"))
    result = host.run()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert host.seed_calls() == []


def test_a_path_moving_to_another_root_is_new(host: Host) -> None:
    """Same path, another persistence root: the new root's copy is what gets mounted."""
    moved = next(
        e for e in host.new_plan["persistence"]["directories"] if e["directory"] == "/var/cache/app"
    )
    moved["root"] = "/persist"
    host.system("new", host.new_plan)
    fill(host.live("/var/cache/app/blob"))
    result = host.run()
    assert result.returncode == 1
    assert command_line(result.stderr)[-1] == "/var/cache/app"


def test_new_paths_without_live_data_pass(host: Host) -> None:
    host.persist(directories=("/var/lib/empty", "/var/lib/absent"), files=("/etc/zero",))
    host.live("/var/lib/empty").mkdir(parents=True)
    fill(host.live("/etc/zero"), "")
    result = host.run()
    assert result.returncode == 0, result.stderr
    assert "3 newly persisted path(s), none with data" in result.stderr


def test_new_paths_already_in_persistent_storage_pass(host: Host) -> None:
    host.persist(directories=("/var/lib/foo",), files=("/etc/foo.conf",))
    fill(host.live("/var/lib/foo/db"))
    fill(host.persistent("/var/lib/foo/db"))
    fill(host.live("/etc/foo.conf"))
    fill(host.persistent("/etc/foo.conf"))
    result = host.run()
    assert result.returncode == 0, result.stderr


def test_paths_with_spaces_and_newlines(host: Host) -> None:
    odd = "/srv/my app/it's\nhere"
    host.persist(directories=(odd, "/srv/plain dir"))
    fill(host.live(odd) / "x")
    fill(host.live("/srv/plain dir") / "y")
    fill(host.persistent("/srv/plain dir") / "y")
    result = host.run()
    assert result.returncode == 1
    assert "\n" not in command_line(result.stderr)[-2]  # printed $'...' on one line
    assert command_line(result.stderr)[-1] == odd
    # and the seed call with seedOnSwitch gets exactly that argument
    host.run("--seed")
    assert host.seed_calls()[-1][-1] == odd


def test_a_planted_symlink_at_the_persistent_copy_is_not_a_copy(host: Host) -> None:
    """A symlink to a non-empty directory at /persist/var/lib/foo (or on the way to it)
    must not pass for a persistent copy: seed never writes through it, the data would go."""
    host.persist(directories=("/var/lib/foo", "/home/alice/new"))
    fill(host.live("/var/lib/foo/db"))
    fill(host.live("/home/alice/new/notes"))
    elsewhere = host.tmp / "elsewhere"
    fill(elsewhere / "something")
    host.persistent("/var/lib").mkdir(parents=True)
    host.persistent("/var/lib/foo").symlink_to(elsewhere)
    host.persistent("/home").mkdir(parents=True)
    host.persistent("/home/alice").symlink_to(host.tmp / "decoys")
    fill(host.tmp / "decoys" / "new" / "decoy")
    result = host.run()
    assert result.returncode == 1
    assert f"{host.persistent('/var/lib/foo')} is a symlink" in result.stderr
    assert f"{host.persistent('/home/alice')} is a symlink" in result.stderr
    assert command_line(result.stderr)[-2:] == ["/home/alice/new", "/var/lib/foo"]


def test_a_symlink_in_the_live_path_is_not_followed(host: Host) -> None:
    """A user's symlink where a new path is does not make the guard read elsewhere."""
    host.persist(directories=("/home/alice/cache",))
    fill(host.tmp / "target" / "big")
    host.live("/home/alice").mkdir(parents=True)
    host.live("/home/alice/cache").symlink_to(host.tmp / "target")
    result = host.run()
    assert result.returncode == 0, result.stderr


def test_first_switch_without_a_current_plan_checks_every_path(host: Host) -> None:
    """The switch that turns blankslate on: the running system persists nothing yet."""
    (host.current / "etc" / "blankslate" / "plan.json").unlink()
    fill(host.live("/var/lib/nixos/uid-map"))
    fill(host.live("/etc/machine-id"))
    fill(host.live("/var/lib/systemd/random-seed"))
    fill(host.persistent("/var/lib/systemd/random-seed"))  # already copied: fine
    result = host.run()
    assert result.returncode == 1
    assert command_line(result.stderr)[-2:] == ["/var/lib/nixos", "/etc/machine-id"]


def test_an_unreadable_plan_is_one_line(host: Host) -> None:
    (host.current / "etc" / "blankslate" / "plan.json").write_text("{not json")
    result = host.run()
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("blankslate: cannot read the persisted paths of the current system's plan")
    )
    (host.new / "etc" / "blankslate" / "plan.json").unlink()
    result = host.run()
    assert result.returncode == 1
    assert result.stderr.startswith("blankslate: the new system has no plan at")


def test_usage_errors_exit_2(host: Host) -> None:
    for args in ([], ["--bogus", "x"], ["--root"], ["a", "b", "c"]):
        result = subprocess.run(
            ["bash", str(SCRIPT), *args], capture_output=True, text=True, check=False
        )
        assert result.returncode == 2, args
        assert result.stderr.startswith("usage:")


def test_seed_on_switch_runs_the_seed_command_and_passes(host: Host) -> None:
    host.persist(directories=("/var/lib/foo",), files=("/etc/foo.conf",))
    fill(host.live("/var/lib/foo/db"))
    fill(host.live("/etc/foo.conf"))
    result = host.run("--seed", env={"SEED_COPIES": "1"})
    assert result.returncode == 0, result.stderr
    plan = str(host.new / "etc" / "blankslate" / "plan.json")
    assert host.seed_calls() == [
        ["seed", "--plan", plan, "--root", str(host.root), "--yes", "/var/lib/foo", "/etc/foo.conf"]
    ]
    assert host.persistent("/var/lib/foo/db").read_text() == "data\n"


def test_seed_on_switch_refuses_what_seed_did_not_copy(host: Host) -> None:
    host.persist(directories=("/var/lib/foo",))
    fill(host.live("/var/lib/foo/db"))
    result = host.run("--seed", env={"SEED_STATUS": "1"})
    assert result.returncode == 1
    assert len(host.seed_calls()) == 1
    assert "blankslate seed did not copy them" in result.stderr
    assert "/var/lib/foo: " in result.stderr


def test_seed_on_switch_never_seeds_for_check_or_dry_activate(host: Host) -> None:
    host.persist(directories=("/var/lib/foo",))
    fill(host.live("/var/lib/foo/db"))
    for action in ("check", "dry-activate"):
        result = host.run("--seed", action=action, env={"SEED_COPIES": "1"})
        assert result.returncode == 0, result.stderr
        assert "the switch copies them first" in result.stderr
    assert host.seed_calls() == []
    assert not host.persistent("/var/lib/foo").exists()


def test_runs_well_under_a_second(host: Host) -> None:
    """Twenty new paths (a switch adds one or two), a few thousand entries in one: quick."""
    host.persist(directories=tuple(f"/var/lib/app{i}" for i in range(20)))
    for i in range(20):
        fill(host.live(f"/var/lib/app{i}/db"))
        fill(host.persistent(f"/var/lib/app{i}/db"))
    big = host.live("/var/lib/app0")
    for i in range(3000):
        (big / f"f{i}").touch()
    start = time.monotonic()
    result = host.run()
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert elapsed < 1.0, elapsed


def test_the_readme_shows_the_refusal_as_printed(host: Host) -> None:
    """README's "Adding a path to persistence safely" quotes the guard's refusal; it is the
    script's own output (the test's root and the new toplevel replaced by the README's)."""
    readme = (REPO / "README.md").read_text()
    heading = "## Adding a path to persistence safely\n"
    assert heading in readme
    section = readme.split(heading, 1)[1].split("\n## ", 1)[0]
    assert "`blankslate.seedOnSwitch = true;`" in section
    quoted = section.split("\n```\nblankslate: ", 1)[1].split("\n```", 1)[0]
    host.persist(directories=("/var/lib/foo",))
    fill(host.live("/var/lib/foo/db"))
    printed = host.run().stderr
    printed = printed.replace(f" --root {host.root}", "").replace(str(host.root), "")
    printed = printed.replace(str(host.new), "/nix/store/...-nixos-system-myhost")
    assert "blankslate: " + quoted + "\n" == printed
    assert "| `seedOnSwitch` |" in (REPO / "docs" / "options.md").read_text()


# A path component as a filesystem takes it: no "/" or NUL, not "." or "..", at most 255 bytes.
component = st.text(
    st.characters(blacklist_categories=SURROGATES, blacklist_characters="/\0"), min_size=1
).filter(lambda name: name not in (".", "..") and len(name.encode()) <= 255)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(component, min_size=1, max_size=3))
def test_any_path_is_read_from_the_plan_and_named_exactly(tmp_path: Path, parts: list[str]) -> None:
    """Whatever a persisted path holds (spaces, quotes, newlines, `$`, non-ASCII), the guard
    reads it from the plan, finds its live data, and prints a seed command naming it exactly;
    it never ends in anything but its refusal."""
    path = "/srv/" + "/".join(parts)
    case = tmp_path / str(len(list(tmp_path.iterdir())))
    case.mkdir()
    host = Host(case)
    host.persist(directories=(path,))
    fill(host.live(path) / "data")
    result = host.run()
    assert result.returncode == 1, result.stderr
    assert command_line(result.stderr)[-1] == path
