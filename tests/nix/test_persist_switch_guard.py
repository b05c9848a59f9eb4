"""modules/guard/persist-switch.nix: the switch-time guard is one of nixpkgs'
system.preSwitchChecks, and what it compares (the new generation's plan.json against the
running one's) names exactly the paths the new configuration adds to persistence."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.nix

SCRIPT = Path(__file__).resolve().parents[2] / "modules" / "guard" / "persist-switch.bash"

CHECKS = "config.system.preSwitchChecks"
ADD_FOO = '{ blankslate.persistence.directories = [ "/var/lib/foo" ]; }'


def guard_words(host_eval: Any, extra: str = "") -> list[str]:
    fragment: str = host_eval("example", f"{CHECKS}.blankslate-persist", extra)
    return shlex.split(fragment)


def test_the_guard_is_a_pre_switch_check_next_to_nixpkgs_own(host_eval: Any) -> None:
    checks = host_eval("example", CHECKS)
    assert set(checks) == {"blankslate-persist", "switchInhibitors"}
    words = guard_words(host_eval)
    path, bash, script, *args = words
    assert path.startswith("PATH=")
    tools = {entry.split("-", 1)[1] for entry in path.removeprefix("PATH=").split(":")}
    assert tools == {"coreutils/bin", "findutils/bin", "jq/bin", "blankslate-0.1.0/bin"}
    assert bash.endswith("-bash/bin/bash")
    assert script.startswith("/nix/store/") and script.endswith("-persist-switch.bash")
    # the new toplevel and the action switch-to-configuration passes, as given
    assert args == ["--", "${1-}", "${2-}"]


def test_seed_on_switch_makes_it_seed(host_eval: Any) -> None:
    assert host_eval("example", "config.blankslate.seedOnSwitch") is False
    words = guard_words(host_eval, "{ blankslate.seedOnSwitch = true; }")
    assert words[3:] == ["--seed", "--", "${1-}", "${2-}"]


def test_no_guard_when_blankslate_is_off(host_eval: Any) -> None:
    checks = host_eval("example", CHECKS, "{ blankslate.enable = lib.mkForce false; }")
    assert "blankslate-persist" not in checks


def toplevel(path: Path, plan_json: str) -> Path:
    (path / "etc" / "blankslate").mkdir(parents=True)
    (path / "etc" / "blankslate" / "plan.json").write_text(plan_json)
    return path


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq not found")
def test_the_guard_receives_the_newly_persisted_paths(host_eval: Any, tmp_path: Path) -> None:
    """The example host, then the same host persisting /var/lib/foo: the guard the new
    configuration carries, over the plan.json both toplevels hold, refuses /var/lib/foo
    (live data, nothing in /persist) and nothing else."""
    etc = 'config.environment.etc."blankslate/plan.json".text'
    current = toplevel(tmp_path / "current", host_eval("example", etc))
    new_plan = host_eval("example", etc, ADD_FOO)
    new = toplevel(tmp_path / "new", new_plan)
    added = [d["directory"] for d in json.loads(new_plan)["persistence"]["directories"]]
    assert "/var/lib/foo" in added
    root = tmp_path / "root"
    for path in added:  # every persisted directory holds data, live and persistent ...
        for place in (root / path.lstrip("/"), root / "persist" / path.lstrip("/")):
            place.mkdir(parents=True, exist_ok=True)
            (place / "data").write_text("x")
    # ... except /var/lib/foo, new in this generation: only live
    shutil.rmtree(root / "persist" / "var" / "lib" / "foo")
    # the evaluation copies nothing into the store: the file the fragment names is this one
    assert guard_words(host_eval, ADD_FOO)[2].endswith("-" + SCRIPT.name)
    script = str(SCRIPT)
    result = subprocess.run(
        ["bash", script, "--root", str(root), "--current", str(current), str(new), "switch"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert "1 newly persisted path(s)" in result.stderr
    command = [line for line in result.stderr.splitlines() if "blankslate seed" in line]
    assert shlex.split(command[0])[-1] == "/var/lib/foo"
    # the same generation again (or one that adds nothing) has nothing new to check
    result = subprocess.run(
        ["bash", script, "--root", str(root), "--current", str(new), str(new), "switch"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert (result.returncode, result.stderr) == (0, "")
