"""`blankslate passwd`: where it writes, and that nothing a user made redirects the write."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from blankslate import passwd, plansource
from blankslate.errors import BlankslateError

from ..support.mounts import FINDMNT, findmnt_json
from ..support.plans import write_plan_json

HASH = "$y$j9T$AesRXvEZFH9m11FlIetcd/$vdHXKBQUDpFrS6IftMMy.FlHEnk8I98tromf8rcv2m9"


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    yield


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    return write_plan_json(tmp_path, plansource.default())


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


def stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


@pytest.mark.parametrize(
    "printed", ["$y$j9T$salt$hash", HASH + "\nx", HASH[:20] + ":" + HASH[21:], HASH + "\0"]
)
def test_passwd_writes_only_what_doctor_and_the_guard_accept(
    fp: FakeProcess, as_root: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printed: str
) -> None:
    monkeypatch.setattr("sys.stdin.readline", lambda: "correct horse\n")
    fp.register(passwd.mkpasswd("yescrypt"), stdout=printed + "\n")
    target = tmp_path / "admin"
    with pytest.raises(BlankslateError, match="mkpasswd gave no yescrypt hash; nothing written"):
        passwd.set_password(
            plansource.default(), "admin", target, method="yescrypt", from_stdin=True
        )
    assert not target.exists()


@pytest.mark.root
def test_missing_parents_are_0700_whatever_the_umask(
    fp: FakeProcess, as_root: None, umask_000: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.readline", lambda: "correct horse\n")
    fp.register(passwd.mkpasswd("yescrypt"), stdout=HASH + "\n")
    target = tmp_path / "out/deeper/admin"
    passwd.set_password(plansource.default(), "admin", target, method="yescrypt", from_stdin=True)
    assert target.read_text() == HASH + "\n"
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (target.parent.parent, target.parent)}
    assert modes == {target.parent.parent: 0o700, target.parent: 0o700}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_passwd_never_writes_through_a_symlink_below_persist(
    fp: FakeProcess,
    as_root: None,
    tmp_path: Path,
    plan_file: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "root"
    victim = tmp_path / "victim"
    victim.mkdir()
    (root / "persist").mkdir(parents=True)
    (root / "persist/passwords").symlink_to(victim)
    fp.register(FINDMNT, stdout=findmnt_json("/", f"{root}/persist"))
    fp.register(passwd.mkpasswd("yescrypt"), stdout=HASH + "\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    code = run_cli(
        "-q", "passwd", "admin", "--plan", str(plan_file), "--root", str(root), "--stdin"
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"error: {root}/persist/passwords is a symlink: refusing to write through it\n"
    assert list(victim.iterdir()) == []


def test_passwd_root_needs_persist_mounted(
    fp: FakeProcess,
    as_root: None,
    tmp_path: Path,
    plan_file: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "root"
    (root / "persist").mkdir(parents=True)
    fp.register(FINDMNT, stdout=findmnt_json("/"))
    fp.register(passwd.mkpasswd("yescrypt"), stdout=HASH + "\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    code = run_cli(
        "-q", "passwd", "admin", "--plan", str(plan_file), "--root", str(root), "--stdin"
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: persistPath {root}/persist is not mounted (")
    assert len(err.splitlines()) == 1
    assert list((root / "persist").iterdir()) == []


@pytest.mark.root
def test_passwd_output_needs_no_mount(
    fp: FakeProcess,
    as_root: None,
    tmp_path: Path,
    plan_file: Path,
    run_cli: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fp.register(passwd.mkpasswd("yescrypt"), stdout=HASH + "\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    out = tmp_path / "hash"
    assert (
        run_cli("-q", "passwd", "admin", "--plan", str(plan_file), "--output", str(out), "--stdin")
        == 0
    )
    assert out.read_text() == HASH + "\n"


@pytest.mark.parametrize(
    ("data", "output_is_dir", "complaint"),
    [
        (b"correct horse\n", True, "is a directory (name a file)"),
        (b"\xff\xfe horse\n", False, "the password is not valid UTF-8; nothing written"),
    ],
)
def test_passwd_bad_input_is_one_line(
    fp: FakeProcess,
    as_root: None,
    tmp_path: Path,
    plan_file: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data: bytes,
    output_is_dir: bool,
    complaint: str,
) -> None:
    fp.register(passwd.mkpasswd("yescrypt"), stdout=HASH + "\n")
    stdin(monkeypatch, data)
    out = tmp_path / "out"
    if output_is_dir:
        out.mkdir()
    code = run_cli(
        "-q", "passwd", "admin", "--plan", str(plan_file), "--output", str(out), "--stdin"
    )
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and complaint in err


def test_write_secret_onto_a_directory_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(BlankslateError, match=f"{tmp_path} is a directory"):
        passwd.write_secret(tmp_path, "x\n")
