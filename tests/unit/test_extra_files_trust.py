"""`extra-files` trusts nothing a user owns, and `--host-keys-from` checks each key: the
attacks first (another user's directory, a group- or world-writable one), then the checks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from blankslate import extrafiles, hostkeys, plan, plansource
from blankslate.errors import BlankslateError

PUBLIC = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOHz+U0YtjINc54dZiJNclfmEFifF7RXCFlNlTbuZBji "
    "joerg@turingmachine"
)
HASH = "$y$j9T$AesRXvEZFH9m11FlIetcd/$vdHXKBQUDpFrS6IftMMy.FlHEnk8I98tromf8rcv2m9"


def fake_keygen(fp: FakeProcess) -> None:
    def keygen(process: Any) -> None:
        path = Path(process.args[-1])
        path.write_text("PRIVATE\n")
        path.with_name(path.name + ".pub").write_text(PUBLIC + "\n")

    fp.register(["ssh-keygen", "-q", "-t", "ed25519", fp.any()], callback=keygen)
    fp.register(["ssh-keygen", "-l", "-f", fp.any()], stdout="256 SHA256:abc root@example\n")


def write_tree(directory: Path) -> extrafiles.ExtraFiles:
    return extrafiles.write(
        plansource.default(), directory, host_keys_from=None, hashes={"admin": HASH}
    )


# --- the attacks ------------------------------------------------------------------------------


@pytest.mark.root
def test_an_empty_directory_of_another_user_is_refused(tmp_path: Path, fp: FakeProcess) -> None:
    """That user could replace the host key and the admin's hash before nixos-anywhere
    copies them."""
    fake_keygen(fp)
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 1000, 1000)
    with pytest.raises(BlankslateError, match="is owned by uid 1000"):
        write_tree(theirs)
    assert list(theirs.iterdir()) == []


@pytest.mark.root
@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o775, 0o757])
def test_a_group_or_world_writable_directory_is_refused(
    tmp_path: Path, fp: FakeProcess, mode: int
) -> None:
    fake_keygen(fp)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(BlankslateError, match="is writable by group or others"):
        write_tree(shared)
    assert list(shared.iterdir()) == []


@pytest.mark.root
def test_a_directory_handed_over_after_the_check_is_refused(
    tmp_path: Path, fp: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made by another user between the check (it did not exist) and the write."""
    target = tmp_path / "tree"
    fake_keygen(fp)
    real_check = extrafiles.check_directory

    def check_then_plant(directory: Path) -> None:
        real_check(directory)
        directory.mkdir(mode=0o755)
        os.chown(directory, 1000, 1000)

    monkeypatch.setattr(extrafiles, "check_directory", check_then_plant)
    with pytest.raises(BlankslateError, match="is owned by uid 1000"):
        write_tree(target)
    assert list(target.iterdir()) == []


# --- what is accepted -------------------------------------------------------------------------


@pytest.mark.root
def test_a_new_directory_is_made_0700(tmp_path: Path, fp: FakeProcess) -> None:
    fake_keygen(fp)
    target = tmp_path / "tree"
    write_tree(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700 and target.stat().st_uid == 0
    key = target / "persist/etc/ssh/ssh_host_ed25519_key"
    assert key.read_text() == "PRIVATE\n" and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (target / "persist/passwords/admin").read_text() == HASH + "\n"


@pytest.mark.root
def test_an_empty_directory_of_roots_is_used(tmp_path: Path, fp: FakeProcess) -> None:
    fake_keygen(fp)
    target = tmp_path / "tree"
    target.mkdir(mode=0o755)
    write_tree(target)
    assert (target / "persist/etc/ssh/ssh_host_ed25519_key.pub").read_text() == PUBLIC + "\n"


# --- host key checks (the real ssh-keygen runs in tests/integration/test_host_keys.py) --------


def source_with(tmp_path: Path, name: str, private: bytes) -> Path:
    source = tmp_path / "keys"
    source.mkdir()
    (source / name).write_bytes(private)
    return source


def key_plan(name: str) -> plan.Plan:
    data = json.loads(plansource.default_text())
    data["sshHostKeys"] = [f"/persist/etc/ssh/{name}"]
    return plan.from_json(data)


@pytest.mark.parametrize(
    ("derived", "said"),
    [
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAAQC7 x", "is a ssh-rsa key, not ed25519"),
        ("ecdsa-sha2-nistp256 AAAAE2VjZHNh x", "is a ecdsa-sha2-nistp256 key, not ed25519"),
        ("ssh-dss AAAAB3NzaC1kc3M x", "is a DSA key: refused"),
    ],
)
def test_the_ed25519_file_holds_an_ed25519_key(
    tmp_path: Path, fp: FakeProcess, derived: str, said: str
) -> None:
    name = "ssh_host_ed25519_key"
    source = source_with(tmp_path, name, b"PRIVATE\n")
    fp.register(["ssh-keygen", "-y", "-P", "", "-f", fp.any()], stdout=derived + "\n")
    with pytest.raises(BlankslateError, match=said):
        hostkeys.take_keys(key_plan(name), source, tmp_path)


def test_a_failing_ssh_keygen_is_one_error(tmp_path: Path, fp: FakeProcess) -> None:
    name = "ssh_host_ed25519_key"
    source = source_with(tmp_path, name, b"PRIVATE\n")
    fp.register(
        ["ssh-keygen", "-y", "-P", "", "-f", fp.any()],
        returncode=255,
        stderr='Load key "k": incorrect passphrase supplied to decrypt private key\n',
    )
    with pytest.raises(BlankslateError, match="is protected by a passphrase"):
        hostkeys.take_keys(key_plan(name), source, tmp_path)


def test_an_encrypted_key_is_refused_before_ssh_keygen_runs(tmp_path: Path) -> None:
    pem = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC\n"
    source = source_with(tmp_path, "ssh_host_rsa_key", pem)
    with pytest.raises(BlankslateError, match="is protected by a passphrase"):
        hostkeys.take_keys(key_plan("ssh_host_rsa_key"), source, tmp_path)


@given(st.binary(max_size=400))
def test_is_encrypted_takes_any_bytes(data: bytes) -> None:
    armored = (
        b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + data + b"\n-----END OPENSSH PRIVATE KEY-----"
    )
    assert isinstance(hostkeys.is_encrypted(data), bool)
    assert isinstance(hostkeys.is_encrypted(armored), bool)


@given(st.text(max_size=200))
def test_rsa_bits_takes_any_line(line: str) -> None:
    bits = hostkeys.rsa_bits(line)
    assert bits is None or bits >= 0
