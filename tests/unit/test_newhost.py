"""`new-host NAME`: a host written from its rollback kind's example, refusals in one line."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from blankslate import newhost, process
from blankslate.errors import BlankslateError

REPO = Path(__file__).resolve().parents[2]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ3Yr8QJ5wxBcz0ZNrqGdM1JW6rnWOvK2ykXf6wzM1c me@laptop"
PLACEHOLDER_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderReplaceMeWithYourOwnPublicKey0 admin@example"
)


@pytest.fixture
def flake(tmp_path: Path) -> Path:
    """A copy of the checkout's hosts/ (the templates), no git."""
    shutil.copytree(REPO / "hosts", tmp_path / "hosts")
    return tmp_path


def written(flake: Path, name: str) -> str:
    return (flake / "hosts" / name / "default.nix").read_text()


def test_a_btrfs_host_has_its_name_key_disk_boot_and_zone(
    flake: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(
        "new-host", "web1", "--flake", str(flake), "--key", KEY, "--rollback", "btrfs",
        "--disk", "/dev/disk/by-id/virtio-abc", "--boot", "bios", "--time-zone", "UTC",
    )  # fmt: skip
    assert code == 0
    text = written(flake, "web1")
    assert text.startswith("# web1: made by `blankslate new-host` from hosts/example.\n")
    assert '  networking.hostName = "web1";' in text
    assert f'      "{KEY}"' in text and "Placeholder" not in text
    assert '      device = "/dev/disk/by-id/virtio-abc";\n      boot = "bios";' in text
    assert '  time.timeZone = "UTC";\n  nixpkgs.hostPlatform' in text
    out = capsys.readouterr().out
    assert "blankslate install --host web1 --disk /dev/disk/by-id/virtio-abc" in out


@pytest.mark.parametrize("rollback", ["zfs", "tmpfs", "none"])
def test_every_kind_takes_its_own_example(
    rollback: str, flake: Path, run_cli: Callable[..., int]
) -> None:
    args = ["new-host", "box", "--flake", str(flake), "--key", KEY, "--rollback", rollback]
    args += ["--boot", "uefi", "--time-zone", "UTC"]
    if rollback != "none":
        args += ["--disk", "/dev/vdb"]
    assert run_cli(*args) == 0
    text = written(flake, "box")
    template = newhost.TEMPLATES[rollback]
    assert f"from hosts/{template}." in text.splitlines()[0]
    assert '  networking.hostName = "box";' in text and "Placeholder" not in text
    assert ('device = "/dev/vdb";' in text) == (rollback != "none")
    if rollback == "zfs":
        host_id = re.search(r'networking\.hostId = "([0-9a-f]{8})"', text)
        assert host_id is not None and host_id.group(1) != "8425e349"  # not the example's


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--key", PLACEHOLDER_KEY], "placeholder"),
        (["--key", "ssh-ed25519 AAAAnotakey"], "not a valid ssh-ed25519 key"),
        (["--key", "hello"], "not an SSH public key"),
        (["--key", KEY, "--time-zone", "Mars/Olympus_Mons"], "time zone"),
        (["--key", KEY, "--disk", "sda"], "--disk 'sda'"),
        (["--key", KEY, "--rollback", "ext4"], "--rollback 'ext4'"),
        (["--key", KEY, "--boot", "coreboot"], "--boot 'coreboot'"),
        (["--key", KEY], "no terminal to ask on: give --disk DEV"),
        ([], "no terminal to ask on: give --key KEY or --key-file FILE"),
    ],
)
def test_bad_choices_are_one_line_and_write_nothing(
    args: list[str],
    said: str,
    flake: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = ["new-host", "web1", "--flake", str(flake), "--time-zone", "UTC"]
    defaults = ["--rollback", "btrfs", "--boot", "uefi"]
    if "--disk" not in args and "no terminal" not in said:
        defaults += ["--disk", "/dev/vda"]
    given = {arg for arg in args if arg.startswith("--")}
    extra = [a for pair in zip(defaults[::2], defaults[1::2], strict=True) if pair[0] not in given
             for a in pair]  # fmt: skip
    assert run_cli(*common, *extra, *args) == 1
    assert said in one_error(capsys)
    assert not (flake / "hosts/web1").exists()


def test_an_existing_host_is_never_overwritten(
    flake: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    before = written(flake, "zfs")
    code = run_cli(
        "new-host", "zfs", "--flake", str(flake), "--key", KEY, "--rollback", "zfs",
        "--disk", "/dev/vda", "--boot", "uefi", "--time-zone", "UTC",
    )  # fmt: skip
    assert code == 1
    assert "exists: new-host never overwrites a host" in one_error(capsys)
    assert written(flake, "zfs") == before


def test_keys_come_from_a_pub_file_and_a_private_key_is_refused(
    flake: Path, tmp_path: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "id_ed25519.pub"
    pub.write_text(f"# mine\n{KEY}\n")
    common = ["new-host", "web1", "--flake", str(flake), "--rollback", "none", "--boot", "uefi"]
    common += ["--time-zone", "UTC"]
    assert run_cli(*common, "--key-file", str(tmp_path / "id_ed25519")) == 1
    assert "looks like a private key" in one_error(capsys)
    assert run_cli(*common, "--key-file", str(pub)) == 0
    assert f'"{KEY}"' in written(flake, "web1")


def test_a_git_checkout_gets_the_host_added(
    flake: Path, fp: FakeProcess, monkeypatch: pytest.MonkeyPatch, run_cli: Callable[..., int]
) -> None:
    (flake / ".git").mkdir()
    monkeypatch.setattr(process, "which", lambda _program: "/usr/bin/git")
    fp.register(["git", "-C", str(flake), "add", "--", "hosts/web1"])
    code = run_cli(
        "new-host", "web1", "--flake", str(flake), "--key", KEY, "--rollback", "btrfs",
        "--disk", "/dev/vda", "--boot", "uefi", "--time-zone", "UTC",
    )  # fmt: skip
    assert code == 0
    assert fp.call_count(["git", "-C", str(flake), "add", "--", "hosts/web1"]) == 1


def test_a_template_that_changed_is_refused_not_half_written(flake: Path) -> None:
    template = flake / "hosts/example/default.nix"
    template.write_text(template.read_text().replace('device = "/dev/vda";', "device = null;"))
    choices = newhost.HostChoices("web1", (KEY,), "btrfs", "/dev/vda", "uefi", None)
    with pytest.raises(BlankslateError, match="no longer has the line"):
        newhost.new_host(flake, choices)
    assert not (flake / "hosts/web1").exists()


@given(text=st.text(max_size=80))
def test_the_checks_take_any_text_without_a_traceback(text: str) -> None:
    for check in (
        newhost.check_key,
        newhost.check_name,
        newhost.check_disk,
        newhost.check_time_zone,
        newhost.parse_rollback,
        newhost.parse_boot,
    ):
        try:
            check(text)
        except BlankslateError as error:
            assert "\n" not in str(error).strip()
