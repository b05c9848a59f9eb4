"""`diff --suggest`: the plan's units are the evaluated systemd services, and the Nix it
prints parses and evaluates back to the very names it was made from."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from blankslate import plan, suggest
from blankslate.classify import EntryTuple

REPO = Path(__file__).resolve().parents[2]
PLAN = "config.blankslate.plan"
SUGGEST = "{ imports = [ ./tests/nix/suggest-example.nix ]; }"


def test_units_carry_state_cache_and_logs_directories_and_the_dynamic_user(
    host_eval: Any,
) -> None:
    units = {u["name"]: u for u in host_eval("example", f"{PLAN}.units", SUGGEST)}
    assert units["app"] == {
        "name": "app",
        "stateDirectories": ["app"],
        "cacheDirectories": ["app"],
        "logsDirectories": [],
        "dynamicUser": True,
        "user": None,
        "group": None,
    }
    # A list, with systemd's "path:symlink" form: the directory is the part before the colon.
    assert units["web"]["stateDirectories"] == ["web", "web-uploads"]
    assert units["web"]["logsDirectories"] == ["web"]
    assert (units["web"]["user"], units["web"]["group"]) == ("web", "www")
    # A whitespace-separated string and DynamicUser = "yes".
    assert units["two"]["stateDirectories"] == ["two-a", "two-b"]
    assert units["two"]["dynamicUser"] is True
    assert "off" not in units  # disabled


def test_the_example_hosts_units_are_dhcpcd_and_the_audit(host_eval: Any) -> None:
    """The model's nixpkgs dhcpcd service (user and group dhcpcd, StateDirectory dhcpcd)."""
    units = host_eval("example", f"{PLAN}.units")
    assert [u["name"] for u in units] == ["blankslate-audit", "dhcpcd"]
    assert units[1]["stateDirectories"] == ["dhcpcd"]
    assert (units[1]["user"], units[1]["group"]) == ("dhcpcd", "dhcpcd")


def test_a_template_units_specifier_is_no_user_name(host_eval: Any) -> None:
    extra = '{ systemd.services.t.serviceConfig = { User = "%i"; StateDirectory = "t"; }; }'
    (unit,) = [u for u in host_eval("example", f"{PLAN}.units", extra) if u["name"] == "t"]
    assert unit["user"] is None


def test_what_the_tool_would_refuse_is_left_out_and_the_plan_still_loads(host_eval: Any) -> None:
    """A bad directory or unit name in some module must not make every command fail."""
    extra = (
        "{ systemd.services = {"
        ' "a b".serviceConfig.StateDirectory = "x";'
        ' u.serviceConfig = { StateDirectory = "../up  good  /abs a/./b";'
        ' CacheDirectory = [ "" ]; };'
        " }; }"
    )
    evaluated = host_eval("example", PLAN, extra)
    units = {u["name"]: u for u in evaluated["units"]}
    assert "a b" not in units
    assert units["u"]["stateDirectories"] == ["good"]
    assert units["u"]["cacheDirectories"] == []
    assert isinstance(plan.from_json(evaluated), plan.Plan)


# Characters that need care in a Nix string, and a few that do not.
POOL = list("\"\\${}$ \n\t\r'`#;*?[]~:=é✓𝄞") + list("abcXYZ019._-")


def sample_names(count: int, seed: int) -> list[str]:
    chooser = random.Random(seed)
    names = {'q"uo${x}te\\b', "$${x}", "\\${", "a\nb", "${", "$", "\\", '"'}
    while len(names) < count:
        name = "".join(chooser.choice(POOL) for _ in range(chooser.randint(1, 12)))
        if name not in (".", ".."):
            names.add(name)
    return sorted(names)


@pytest.mark.nix
def test_the_suggested_nix_parses_and_evaluates_to_the_same_names(
    nix_instantiate: str, tmp_path: Path
) -> None:
    names = sample_names(200, seed=25)
    top = [f"/srv/{name}" for name in names]
    home = [f"/home/alice/{name}" for name in names]
    entries: list[EntryTuple] = [("/srv/kept", "dir", 0, "persisted", "x")]
    entries += [(path, "dir", 0, "lost", "") for path in top]
    entries += [(path, "file", 0, "lost", "") for path in home]
    entries += [("/home/alice/.cache", "dir", 0, "lost", "")]
    the_plan = plan.from_json(json.loads((REPO / "tests/plans/suggest.json").read_text()))
    found = suggest.group(sorted(entries), the_plan, lambda _: (0, 0, 0o40755), str, str)
    text = suggest.render_nix(found)
    source = tmp_path / "suggested.nix"
    source.write_text(text)
    parsed = subprocess.run(
        [nix_instantiate, "--parse", str(source)], capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, parsed.stderr
    evaluated = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    value = json.loads(evaluated.stdout)
    directories = [d["directory"] for d in value["blankslate"]["persistence"]["directories"]]
    cached = {p for p in top if suggest.looks_like_cache(p, False)}
    assert sorted(directories) == sorted(set(top) - cached)
    users = value["environment"]["persistence"]["/persist"]["users"]
    home_cached = {p for p in home if suggest.looks_like_cache(p, False)}
    assert sorted(users["alice"]["files"]) == sorted(
        p.removeprefix("/home/alice/") for p in set(home) - home_cached
    )
    patterns = value["blankslate"]["audit"]["ignore"]
    assert "/home/alice/.cache/**" in patterns
    assert set(patterns) <= {
        i.ignore for g in found.groups for i in g.items if i.ignore is not None
    }


@pytest.mark.nix
def test_a_cut_suggestion_with_warnings_still_parses_to_the_names_it_shows(
    nix_instantiate: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Groups that show their first entries only, skipped entries beyond those listed, and
    the audit's warnings (names with newlines and `${` in them): comments, one line each."""
    monkeypatch.setattr(suggest, "SHOWN", 20)
    monkeypatch.setattr(suggest, "SKIPPED_SHOWN", 3)
    names = sample_names(80, seed=26)
    entries: list[EntryTuple] = [("/srv/kept", "dir", 0, "persisted", "x")]
    entries += [(f"/srv/{name}", "dir", 0, "lost", "") for name in names]
    entries += [(f"/srv/{name}-fifo", "other", 0, "lost", "") for name in names[:10]]
    entries += [(f"/home/a\n${{b}}/{name}", "file", 0, "lost", "") for name in names]
    the_plan = plan.from_json(json.loads((REPO / "tests/plans/suggest.json").read_text()))
    found = suggest.group(sorted(entries), the_plan, lambda _: (0, 0, 0o40755), str, str)
    found = dataclasses.replace(found, problems=("cannot read /srv/x\n${y}: Permission denied",))
    text = suggest.render_nix(found)
    assert "# Not shown: each group shows its first 20 entries" in text
    assert "#   and 7 more\n" in text
    assert "# warning: cannot read /srv/x\\n${y}: Permission denied\n" in text
    source = tmp_path / "suggested.nix"
    source.write_text(text)
    evaluated = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    value = json.loads(evaluated.stdout)
    shown = {i.name for g in found.groups for i in g.items if not i.cache}
    directories = {d["directory"] for d in value["blankslate"]["persistence"]["directories"]}
    users = value["environment"]["persistence"]["/persist"]["users"]
    assert directories | set(users["a\n${b}"]["files"]) == shown
    assert len(directories) <= 20 and len(users["a\n${b}"]["files"]) <= 20
