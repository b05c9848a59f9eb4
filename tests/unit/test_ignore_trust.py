"""The ignore file trusts nothing it is not sure of: `ignore --ignore-file` replaces only a
regular file, a deeply nested file is one error, and a checkout owned by another user supplies
no rules (as git's safe.directory refuses a repository of dubious ownership)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blankslate import ignore_rules
from blankslate.errors import BlankslateError

# --- --ignore-file names something else than a regular file ---------------------------------


@pytest.mark.root
def test_ignore_never_replaces_a_device_node(tmp_path: Path) -> None:
    device = tmp_path / "null"
    os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # as /dev/null
    with pytest.raises(BlankslateError, match="is not a regular file"):
        ignore_rules.add_rule(device, "/srv/**", "scratch")
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_ignore_never_replaces_a_fifo_or_a_symlink(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(BlankslateError, match="is not a regular file"):
        ignore_rules.add_rule(fifo, "/srv/**", "scratch")  # and never blocks reading it
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    real = tmp_path / "real.yaml"
    real.write_text("ignore: []\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    with pytest.raises(BlankslateError, match="is a symlink: refusing to replace it"):
        ignore_rules.add_rule(link, "/srv/**", "scratch")
    assert link.is_symlink() and real.read_text() == "ignore: []\n"


def test_diff_reads_no_fifo_or_directory_as_its_ignore_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    for path in (fifo, tmp_path):
        with pytest.raises(BlankslateError, match="is not a regular file"):
            ignore_rules.collect([], "nohost", path)


# --- nesting -------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [300, 3000])
def test_a_deeply_nested_file_is_one_error(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text("ignore:\n  - " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(BlankslateError, match="nested too deeply"):
        ignore_rules.load_file(path)


def test_deep_block_nesting_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text("ignore:\n" + "".join("  " * i + "- \n" for i in range(1, 400)))
    with pytest.raises(BlankslateError, match="nested too deeply"):
        ignore_rules.load_file(path)


def test_a_file_just_within_the_cap_loads(tmp_path: Path) -> None:
    inner = "[" * 10 + "]" * 10
    path = tmp_path / "audit.yaml"
    path.write_text(f"ignore:\n  - pattern: /srv/**\n    reason: scratch\n# {inner}\n")
    assert [rule.pattern for rule in ignore_rules.load_file(path)] == ["/srv/**"]


_NESTED = st.integers(min_value=0, max_value=2000).flatmap(
    lambda depth: st.sampled_from(
        [
            "ignore: " + "[" * depth + "]" * depth,
            "ignore: " + "{a: " * depth + "1" + "}" * depth,
            "ignore:\n" + "".join("  " * i + "- \n" for i in range(1, min(depth, 500))),
            "ignore:\n  - " + "[" * depth,
        ]
    )
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_NESTED)
def test_any_nesting_is_rules_or_one_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text(text)
    try:
        rules = ignore_rules.load_file(path)
    except BlankslateError as error:
        assert len(str(error).splitlines()) == 1
    else:
        assert all(isinstance(rule, ignore_rules.Rule) for rule in rules)


# --- a checkout of another user -------------------------------------------------------------


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "flake.nix").write_text("{}")
    (tmp_path / "hosts/web").mkdir(parents=True)
    (tmp_path / "hosts/web/audit.yaml").write_text(
        "ignore:\n  - pattern: /**\n    reason: hides everything lost\n"
    )
    yield tmp_path


@pytest.mark.root
@pytest.mark.parametrize("owned", [".", "hosts", "hosts/web", "hosts/web/audit.yaml"])
def test_a_checkout_of_another_user_supplies_no_rules(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, owned: str
) -> None:
    monkeypatch.delenv("SUDO_UID", raising=False)
    os.chown(checkout / owned, 1000, 1000)
    monkeypatch.chdir(checkout)
    with pytest.raises(BlankslateError, match="is owned by uid 1000, not by you or root"):
        ignore_rules.collect([], "web", None)
    with pytest.raises(BlankslateError, match="is owned by uid 1000"):
        ignore_rules.target_file("web", None)


@pytest.mark.root
def test_the_checkout_of_the_user_who_ran_sudo_is_trusted(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in (checkout, checkout / "hosts", checkout / "hosts/web"):
        os.chown(path, 1000, 1000)
    monkeypatch.setenv("SUDO_UID", "1000")
    monkeypatch.chdir(checkout)
    assert ignore_rules.collect([], "web", None)[0].pattern == "/**"


def test_my_own_checkout_supplies_rules(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(checkout)
    assert ignore_rules.collect([], "web", None)[0].source.endswith("audit.yaml line 2")


def test_dev_null_is_an_ignore_file_without_rules(tmp_path: Path) -> None:
    """`diff --ignore-file /dev/null` means no rules, as it always did; other devices stay
    refused, and nothing is ever written to /dev/null."""
    assert ignore_rules.load_file(Path("/dev/null")) == []
    with pytest.raises(BlankslateError, match="not a regular file"):
        ignore_rules.load_file(Path("/dev/zero"))
    with pytest.raises(BlankslateError):
        ignore_rules.add_rule(Path("/dev/null"), "/srv/x", "a reason")
