"""modules/guard/password-files.bash, the boot-time guard, run on real files.

It must agree with `blankslate doctor`'s password check (passwordfile.content_problem, one
rule read from password-hashes.txt by both) on every file's bytes, and never change a file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blankslate import doctor, passwordfile

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
        f"{md5} does not hold a password hash ({', '.join(passwordfile.schemes())})",
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


def raw_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


# NixOS removes only the final newline (update-users-groups.pl: read_file, chomp): each of
# these would put a broken entry into /etc/shadow, or none at all.
BROKEN = {
    "two-lines": (YESCRYPT + "\n\n").encode(),
    "second-line": (YESCRYPT + "\nx").encode(),
    "second-line-newline": (YESCRYPT + "\nx\n").encode(),
    "carriage-return": (YESCRYPT + "\r\n").encode(),
    "nul": YESCRYPT[:10].encode() + b"\0" + YESCRYPT[10:].encode() + b"\n",
    "nul-after": YESCRYPT.encode() + b"\0\n",
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_file_nixos_would_break_fails_the_guard_and_doctor(tmp_path: Path, name: str) -> None:
    result = guard(raw_file(tmp_path / "admin", BROKEN[name]))
    assert result.returncode == 1, result.stdout
    assert "LOCKOUT RISK" in result.stdout
    assert passwordfile.content_problem(BROKEN[name]) is not None


def test_a_hash_without_final_newline_passes(tmp_path: Path) -> None:
    result = guard(raw_file(tmp_path / "admin", YESCRYPT.encode()))
    assert result.returncode == 0, result.stdout
    assert passwordfile.content_problem(YESCRYPT.encode()) is None


def test_a_huge_first_line_is_not_read_whole(tmp_path: Path) -> None:
    big = raw_file(tmp_path / "admin", b"a" * (50 << 20))
    result = guard(big)
    assert result.returncode == 1
    assert f"{big} is larger than 4096 bytes" in result.stdout


def test_the_guard_reads_its_rules_from_the_shared_file(tmp_path: Path) -> None:
    md5 = "$1$Euyxh8E.$cGH1i6uhs6Qwt2LuHJdM31"
    rules = tmp_path / "rules.txt"
    rules.write_text("# only md5\nmd5 ^\\$1\\$[./0-9A-Za-z]{8}\\$[./0-9A-Za-z]{22}$\n")
    admin = password_file(tmp_path / "admin", md5)
    env = {**os.environ, "BLANKSLATE_HASH_RULES": str(rules)}
    run = subprocess.run(
        ["bash", str(SCRIPT), str(admin)], capture_output=True, text=True, env=env, timeout=30
    )
    assert run.returncode == 0, run.stdout
    missing = {**env, "BLANKSLATE_HASH_RULES": str(tmp_path / "none")}
    run = subprocess.run(
        ["bash", str(SCRIPT), str(admin)], capture_output=True, text=True, env=missing, timeout=30
    )
    assert run.returncode == 1 and "no password hash rules" in run.stdout
    assert passwordfile.RULES.is_file()


_PIECES = st.sampled_from(
    [*(line.encode() for line in LINES[:7]), b"\n", b"\r", b"\0", b":", b" ", b"!", b"$", b"\xff"]
)
_BYTES = st.one_of(
    st.lists(_PIECES, max_size=4).map(b"".join),
    st.binary(max_size=120),
    st.builds(
        lambda a, b: a + b, st.sampled_from(LINES[:7]).map(str.encode), st.binary(max_size=4)
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_BYTES)
def test_guard_and_python_accept_the_same_bytes(tmp_path: Path, data: bytes) -> None:
    """The differential test of the one rule: bash (the guard) and Python (doctor, passwd)
    accept exactly the same files."""
    result = guard(raw_file(tmp_path / "admin", data))
    assert (result.returncode == 0) == (passwordfile.content_problem(data) is None), (
        data,
        result.stdout,
    )
