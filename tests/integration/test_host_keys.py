"""`--host-keys-from` with real keys and the real ssh-keygen: each file's key type must be the
one its name says, DSA and short RSA keys are refused, and a passphrase-protected key (which
sshd cannot load at boot) is refused without anything being asked."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from blankslate import hostkeys, plan, plansource
from blankslate.errors import BlankslateError

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="no ssh-keygen")

ED25519 = "ssh_host_ed25519_key"
RSA = "ssh_host_rsa_key"


def keygen(path: Path, key_type: str, *extra: str, passphrase: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, *extra, "-N", passphrase, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    return path


def the_plan(*names: str) -> plan.Plan:
    data = json.loads(plansource.default_text())
    data["sshHostKeys"] = [f"/persist/etc/ssh/{name}" for name in names]
    return plan.from_json(data)


def take(tmp_path: Path, *names: str) -> list[hostkeys.HostKey]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return hostkeys.take_keys(the_plan(*names), tmp_path / "keys", work)


@pytest.mark.parametrize(
    ("key_type", "extra", "said"),
    [
        ("rsa", ("-b", "3072"), "is a ssh-rsa key, not ed25519 as its name says"),
        ("ecdsa", (), "is a ecdsa-sha2-nistp256 key, not ed25519 as its name says"),
        ("dsa", (), "is a DSA key: refused"),
    ],
)
def test_a_key_of_another_type_in_the_ed25519_file_is_refused(
    tmp_path: Path, key_type: str, extra: tuple[str, ...], said: str
) -> None:
    keygen(tmp_path / "keys" / ED25519, key_type, *extra)
    with pytest.raises(BlankslateError, match=said):
        take(tmp_path, ED25519)


def test_dsa_is_refused_under_its_own_name(tmp_path: Path) -> None:
    keygen(tmp_path / "keys/ssh_host_dsa_key", "dsa")
    with pytest.raises(BlankslateError, match="is a DSA key: refused"):
        take(tmp_path, "ssh_host_dsa_key")


def test_a_short_rsa_key_is_refused(tmp_path: Path) -> None:
    keygen(tmp_path / "keys" / RSA, "rsa", "-b", "1024")
    with pytest.raises(BlankslateError, match="is a 1024-bit RSA key: refused"):
        take(tmp_path, RSA)


@pytest.mark.parametrize(
    ("key_type", "extra"), [("ed25519", ()), ("rsa", ("-b", "2048", "-m", "PEM"))]
)
def test_a_passphrase_protected_key_is_refused_without_asking(
    tmp_path: Path, key_type: str, extra: tuple[str, ...]
) -> None:
    name = ED25519 if key_type == "ed25519" else RSA
    key = keygen(tmp_path / "keys" / name, key_type, *extra, passphrase="secret words")
    with pytest.raises(BlankslateError, match="is protected by a passphrase"):
        take(tmp_path, name)
    assert hostkeys.is_encrypted(key.read_bytes())


def test_ssh_keygen_itself_never_asks_for_a_passphrase(tmp_path: Path) -> None:
    """The builder's -P "": even past is_encrypted, ssh-keygen fails instead of asking."""
    key = keygen(tmp_path / ED25519, "ed25519", passphrase="secret words")
    result = subprocess.run(
        hostkeys.ssh_public_of(key),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0 and "passphrase" in result.stderr


def test_keys_of_the_right_types_are_taken(tmp_path: Path) -> None:
    keygen(tmp_path / "keys" / ED25519, "ed25519")
    keygen(tmp_path / "keys" / RSA, "rsa", "-b", "3072")
    keygen(tmp_path / "keys/ssh_host_ecdsa_key", "ecdsa", "-b", "384")
    keys = take(tmp_path, ED25519, RSA, "ssh_host_ecdsa_key")
    kinds = [key.public.split()[0] for key in keys]
    assert kinds == ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp384"]
    assert keys[0].age is not None and keys[0].age.startswith("age1")
    assert hostkeys.rsa_bits(keys[1].public) == 3072
    assert not any(hostkeys.is_encrypted(key.private) for key in keys)
