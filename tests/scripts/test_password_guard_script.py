"""modules/guard/password-files.bash, the boot-time guard, run on real files.

It must agree with `blankslate doctor`'s password check (doctor.hash_problem) on every
first line, and never change a file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blankslate import doctor

SCRIPT = Path(__file__).resolve().parents[2] / "modules" / "guard" / "password-files.bash"
YESCRYPT = "$y$j9T$AesRXvEZFH9m11FlIetcd/$vdHXKBQUDpFrS6IftMMy.FlHEnk8I98tromf8rcv2m9"
LINES = [
    YESCRYPT,
    "$gy$j9T$4iQLB7z0787/V.7.JVYvu0$ECLRyIVkjrFzoksqdJu9/Hx0W5t26/18hp1Lu1k2pK7",
    "$6$szCEJ9q58G4TlSpQ$IrYut0z1F8LOxc52vRwE9Cs3L90JDAcZjc67M1/IJI88WN8G.5RmJoxFUtP"
    ".jVRtiNyIw0qyssjx83VhWaoLh1",
    "$6$rounds=5000$abc$" + "a" * 86,
    "$5$8ZXxurnYRQZasuWr$W4La1EVKCQyiDJiFMi/jvPeY//qS278ztl2VOyEPVHA",
    "$2b$05$/byBAq/C6A141zsl3PgnUe9y4zlO02Jhjb7mGyBUW0QCbU1zpdoOC",
    "$7$CU..../....vKYfxGlSQ/TwXp3156f2C/$atBq0UR7F9o2CkGqrkRLfXyqvEGpU4h9Ju31mH4dWM4",
    "",
    "!",
    "*",
    "!" + YESCRYPT,
    "$1$Euyxh8E.$cGH1i6uhs6Qwt2LuHJdM31",
    "hunter2",
    YESCRYPT + " trailing",
    YESCRYPT[:-1],
    "$y$",
]

pytestmark = [
    pytest.mark.skipif(shutil.which("bash") is None, reason="bash not found"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the files must be root's for a pass"),
]


def guard(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def password_file(path: Path, line: str, mode: int = 0o600) -> Path:
    path.write_text(line + "\n")
    path.chmod(mode)
    return path


def test_good_files_pass(tmp_path: Path) -> None:
    files = [password_file(tmp_path / f"user{i}", line) for i, line in enumerate(LINES[:7])]
    result = guard(*files)
    assert result.returncode == 0, result.stdout
    assert (
        result.stdout == "blankslate: 7 password file(s) checked, all hold a hash, 0600, root's\n"
    )


def test_each_bad_file_is_one_critical_line(tmp_path: Path) -> None:
    good = password_file(tmp_path / "good", YESCRYPT)
    readable = password_file(tmp_path / "readable", YESCRYPT, 0o644)
    theirs = password_file(tmp_path / "theirs", YESCRYPT)
    os.chown(theirs, 1000, 1000)
    link = tmp_path / "link"
    link.symlink_to(good)
    directory = tmp_path / "dir"
    directory.mkdir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    locked = password_file(tmp_path / "locked", "!")
    empty = password_file(tmp_path / "empty", "")
    md5 = password_file(tmp_path / "md5", "$1$Euyxh8E.$cGH1i6uhs6Qwt2LuHJdM31")
    missing = tmp_path / "missing"
    before = {p: p.read_bytes() for p in (good, readable, theirs, locked, empty, md5)}
    result = guard(good, readable, theirs, link, directory, fifo, locked, empty, md5, missing)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert all(line.startswith("<2>blankslate: ") for line in lines)
    expected = [
        f"{readable} has owner uid 0 and mode 644 (want uid 0, mode 600)",
        f"{theirs} has owner uid 1000 and mode 600 (want uid 0, mode 600)",
        f"{link} is a symlink (a password file must be a plain file)",
        f"{directory} is not a regular file",
        f"{fifo} is not a regular file",
        f"{locked} holds a locked password ('!')",
        f"{empty} is empty: no password is set",
        f"{md5} does not hold a password hash (yescrypt, bcrypt, sha-512, sha-256, scrypt)",
        f"{missing} is missing: its admin cannot use sudo",
    ]
    assert lines[:-1] == [f"<2>blankslate: LOCKOUT RISK: {text}" for text in expected]
    assert lines[-1].startswith("<2>blankslate: 9 problem(s) with the password files")
    assert {p: p.read_bytes() for p in before} == before  # it changes nothing


@pytest.mark.parametrize("line", LINES)
def test_script_and_doctor_agree(tmp_path: Path, line: str) -> None:
    result = guard(password_file(tmp_path / "admin", line))
    assert (result.returncode == 0) == (doctor.hash_problem(line) is None), result.stdout


_HASHY = st.text(alphabet="$./0123456789abcxyzABCY!*=rounds", max_size=100)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(_HASHY, st.sampled_from(LINES).map(lambda s: s[: len(s) // 2])))
def test_script_and_doctor_agree_on_generated_lines(tmp_path: Path, line: str) -> None:
    result = guard(password_file(tmp_path / "admin", line))
    assert (result.returncode == 0) == (doctor.hash_problem(line) is None), (line, result.stdout)
