"""`blankslate pin`: exact commands, the pins file's text, atomic rewrite, refusals."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from blankslate import cli, nix, pin
from blankslate.errors import BlankslateError

IMPERMANENCE_HEAD = "4b3e914cdf97a5b536a889e939fb2fd2b043a170"
IMPERMANENCE_URL = (
    f"https://github.com/nix-community/impermanence/archive/{IMPERMANENCE_HEAD}.tar.gz"
)
SHA_IMPERMANENCE = "0x2vxmxnmcd5rjbkjx1mhcv1w0qhq3xkwrk1dj8rj9x6wms8lqh7"
SHA_BLANKSLATE = "1ab2cd3fg4hi5jk6lm7np8qr9sv0wxyzab2cd3fg4hi5jk6lm7np"
SOURCE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    # The CLI points logging at the (captured) stderr of the moment; later tests must not log
    # to that closed stream.
    handlers = logging.getLogger().handlers[:]
    yield
    logging.getLogger().handlers[:] = handlers


def register_ls_remote_head(fp: FakeProcess) -> None:
    fp.register(
        ["git", "ls-remote", "--", pin.IMPERMANENCE_REPOSITORY, "HEAD"],
        stdout=f"{IMPERMANENCE_HEAD}\tHEAD\n",
    )


def register_prefetch(fp: FakeProcess, url: str, sha256: str) -> None:
    fp.register(
        ["nix-prefetch-url", "--unpack", url],
        stdout=f"{sha256}\n",
        stderr=f"path is '/nix/store/{sha256}-source'\n",
    )


def test_builders_argv() -> None:
    assert pin.git_ls_remote("https://example.org/r", "main") == [
        "git",
        "ls-remote",
        "--",
        "https://example.org/r",
        "main",
    ]
    assert nix.prefetch_url_unpack("https://x/a.tar.gz") == [
        "nix-prefetch-url",
        "--unpack",
        "https://x/a.tar.gz",
    ]


def test_default_pins_impermanence_head_commit(fp: FakeProcess, tmp_path: Path) -> None:
    register_ls_remote_head(fp)
    register_prefetch(fp, IMPERMANENCE_URL, SHA_IMPERMANENCE)
    output = tmp_path / "pins.nix"

    pins = pin.pin(output)

    assert [(p.name, p.url, p.sha256) for p in pins] == [
        ("impermanence", IMPERMANENCE_URL, SHA_IMPERMANENCE)
    ]
    assert output.read_text() == (
        f"# Written by `blankslate pin --output {output}`; rerun it to update, "
        "do not edit by hand.\n"
        f"# impermanence: {pin.IMPERMANENCE_REPOSITORY} HEAD = {IMPERMANENCE_HEAD}\n"
        "{\n"
        "  impermanence = builtins.fetchTarball {\n"
        f'    url = "{IMPERMANENCE_URL}";\n'
        f'    sha256 = "{SHA_IMPERMANENCE}";\n'
        "  };\n"
        "}\n"
    )
    assert stat.S_IMODE(output.stat().st_mode) == 0o644
    assert fp.call_count(["git", "ls-remote", fp.any()]) == 1


def test_commit_revisions_are_not_resolved(fp: FakeProcess, tmp_path: Path) -> None:
    # A commit is already a stable pin: no git ls-remote, and the GitHub URL uses it as given.
    register_prefetch(
        fp, "https://github.com/nix-community/impermanence/archive/abc1234.tar.gz", SHA_IMPERMANENCE
    )
    register_prefetch(
        fp, f"https://github.com/me/blankslate/archive/{SOURCE_COMMIT}.tar.gz", SHA_BLANKSLATE
    )
    output = tmp_path / "pins.nix"

    pin.pin(output, "abc1234", "https://github.com/me/blankslate.git/", SOURCE_COMMIT)

    text = output.read_text()
    assert "--impermanence-rev abc1234 --source-url https://github.com/me/blankslate.git/" in text
    assert "# impermanence: https://github.com/nix-community/impermanence abc1234\n" in text
    assert f"# blankslate: https://github.com/me/blankslate {SOURCE_COMMIT}\n" in text
    assert (
        "  blankslate = builtins.fetchTarball {\n"
        f'    url = "https://github.com/me/blankslate/archive/{SOURCE_COMMIT}.tar.gz";\n'
        f'    sha256 = "{SHA_BLANKSLATE}";\n'
        "  };\n}\n"
    ) in text


def test_branch_and_annotated_tag_resolve_to_their_commit(fp: FakeProcess, tmp_path: Path) -> None:
    tag_object = "f" * 40
    fp.register(
        ["git", "ls-remote", "--", "https://github.com/me/blankslate", "v1.0"],
        stdout=(
            f"{tag_object}\trefs/tags/v1.0\n"
            f"{SOURCE_COMMIT}\trefs/tags/v1.0^{{}}\n"
            f"{'e' * 40}\trefs/heads/feature/v1.0\n"
        ),
    )
    fp.register(
        ["git", "ls-remote", "--", pin.IMPERMANENCE_REPOSITORY, "master"],
        stdout=f"{IMPERMANENCE_HEAD}\trefs/heads/master\n",
    )
    register_prefetch(fp, IMPERMANENCE_URL, SHA_IMPERMANENCE)
    register_prefetch(
        fp, f"https://github.com/me/blankslate/archive/{SOURCE_COMMIT}.tar.gz", SHA_BLANKSLATE
    )
    output = tmp_path / "pins.nix"

    pins = pin.pin(output, "master", "https://github.com/me/blankslate", "v1.0")

    assert [p.url for p in pins] == [
        IMPERMANENCE_URL,
        f"https://github.com/me/blankslate/archive/{SOURCE_COMMIT}.tar.gz",
    ]
    assert f"# impermanence: {pin.IMPERMANENCE_REPOSITORY} master = {IMPERMANENCE_HEAD}\n" in (
        output.read_text()
    )


def test_full_tarball_url_is_pinned_as_given(fp: FakeProcess, tmp_path: Path) -> None:
    tarball = "https://git.example.org/blankslate/archive/v2.tar.gz"
    register_ls_remote_head(fp)
    register_prefetch(fp, IMPERMANENCE_URL, SHA_IMPERMANENCE)
    register_prefetch(fp, tarball, SHA_BLANKSLATE)
    output = tmp_path / "pins.nix"

    pins = pin.pin(output, source_url=tarball, source_revision="v2")

    assert pins[1] == pin.Pin("blankslate", tarball, SHA_BLANKSLATE, f"{tarball} v2")
    assert f'    url = "{tarball}";\n' in output.read_text()


def test_rewrite_replaces_the_file_atomically(
    fp: FakeProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "pins.nix"
    output.write_text("old pins\n")
    output.chmod(0o600)
    (tmp_path / "neighbour.nix").write_text("untouched\n")
    replaced: list[tuple[str, str]] = []
    real_rename = os.rename

    def recording_rename(source: str, target: str, *, src_dir_fd: int, dst_dir_fd: int) -> None:
        fd = os.open(source, os.O_RDONLY, dir_fd=src_dir_fd)
        with os.fdopen(fd) as handle:
            replaced.append((os.readlink(f"/proc/self/fd/{src_dir_fd}"), handle.read()))
        real_rename(source, target, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "rename", recording_rename)
    register_ls_remote_head(fp)
    register_prefetch(fp, IMPERMANENCE_URL, SHA_IMPERMANENCE)

    pin.pin(output)

    # The full text was written to a temporary file beside the target, then renamed over it.
    assert replaced == [(str(tmp_path), output.read_text())]
    assert stat.S_IMODE(output.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neighbour.nix", "pins.nix"]
    assert (tmp_path / "neighbour.nix").read_text() == "untouched\n"


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (
            # What nix 2.x prints offline: retry warnings, then the error.
            f"warning: error: unable to download '{IMPERMANENCE_URL}': Couldn't resolve host "
            "name (6); retrying in 310 ms\n"
            f"error: unable to download '{IMPERMANENCE_URL}': Couldn't resolve host name (6)\n",
            "unable to download it: Couldn't resolve host name (6)",
        ),
        (
            f"error: unable to download '{IMPERMANENCE_URL}': HTTP error 404\n",
            "unable to download it: HTTP error 404",
        ),
        ("", "no message"),
    ],
)
def test_prefetch_failure_leaves_old_file(
    fp: FakeProcess, tmp_path: Path, stderr: str, reason: str
) -> None:
    output = tmp_path / "pins.nix"
    output.write_text("old pins\n")
    register_ls_remote_head(fp)
    fp.register(["nix-prefetch-url", "--unpack", IMPERMANENCE_URL], stderr=stderr, returncode=1)

    with pytest.raises(BlankslateError) as raised:
        pin.pin(output)

    assert str(raised.value) == (
        f"impermanence: cannot fetch {IMPERMANENCE_URL}: {reason} ({output} left unchanged)"
    )
    assert output.read_text() == "old pins\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pins.nix"]


def test_second_pin_failing_writes_nothing(fp: FakeProcess, tmp_path: Path) -> None:
    output = tmp_path / "pins.nix"
    register_ls_remote_head(fp)
    register_prefetch(fp, IMPERMANENCE_URL, SHA_IMPERMANENCE)
    fp.register(
        [
            "nix-prefetch-url",
            "--unpack",
            f"https://github.com/me/bs/archive/{SOURCE_COMMIT}.tar.gz",
        ],
        stderr="error: HTTP error 404",
        returncode=1,
    )

    with pytest.raises(BlankslateError, match=r"^blankslate: cannot fetch .*: HTTP error 404"):
        pin.pin(output, None, "https://github.com/me/bs", SOURCE_COMMIT)

    assert not output.exists()


def test_unknown_branch_and_offline_ls_remote(fp: FakeProcess, tmp_path: Path) -> None:
    output = tmp_path / "pins.nix"
    fp.register(["git", "ls-remote", "--", pin.IMPERMANENCE_REPOSITORY, "nope"], stdout="")
    with pytest.raises(BlankslateError, match="has no branch or tag 'nope'"):
        pin.pin(output, "nope")
    fp.register(
        ["git", "ls-remote", "--", pin.IMPERMANENCE_REPOSITORY, "main"],
        stderr=f"fatal: unable to access '{pin.IMPERMANENCE_REPOSITORY}/': Could not resolve "
        "host: github.com\n",
        returncode=128,
    )
    with pytest.raises(BlankslateError) as raised:
        pin.pin(output, "main")
    assert str(raised.value) == (
        f"impermanence: cannot ask {pin.IMPERMANENCE_REPOSITORY} for main: unable to access it: "
        f"Could not resolve host: github.com ({output} left unchanged)"
    )
    assert not output.exists()


def test_prefetch_printing_no_hash_is_an_error(fp: FakeProcess, tmp_path: Path) -> None:
    register_ls_remote_head(fp)
    register_prefetch(fp, IMPERMANENCE_URL, "not-a-hash")
    with pytest.raises(BlankslateError, match="printed no sha256"):
        pin.pin(tmp_path / "pins.nix")


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"impermanence_revision": "two words"}, "--impermanence-rev 'two words' is not a rev"),
        ({"impermanence_revision": "-rf"}, "is not a revision"),
        ({"impermanence_revision": "a..b"}, "is not a revision"),
        ({"impermanence_revision": "main.lock"}, "is not a revision"),
        ({"source_url": "https://github.com/a/b"}, "together, or neither"),
        ({"source_revision": "main"}, "together, or neither"),
        ({"source_url": "ftp://x/y.tar.gz", "source_revision": "v1"}, "not an http(s) URL"),
        ({"source_url": "github.com/a/b", "source_revision": "v1"}, "not an http(s) URL"),
        (
            {"source_url": 'https://x/a".tar.gz', "source_revision": "v1"},
            "unsafe character",
        ),
        (
            {"source_url": "https://x/${builtins.x}.tar.gz", "source_revision": "v1"},
            "unsafe character",
        ),
        (
            {"source_url": "https://gitlab.com/a/b", "source_revision": "v1"},
            "neither https://github.com/OWNER/REPO nor a URL ending in .tar.gz",
        ),
        ({"source_url": "https://github.com/a/b", "source_revision": "v 1"}, "--source-rev"),
    ],
)
def test_bad_input_runs_nothing(
    fp: FakeProcess, tmp_path: Path, arguments: dict[str, str], complaint: str
) -> None:
    # No command is registered: running any would fail the test before the assertion.
    with pytest.raises(BlankslateError) as raised:
        pin.pin(tmp_path / "pins.nix", **arguments)
    assert complaint in str(raised.value)
    assert not (tmp_path / "pins.nix").exists()


def test_missing_output_directory_is_an_error(fp: FakeProcess, tmp_path: Path) -> None:
    register_ls_remote_head(fp)
    register_prefetch(fp, IMPERMANENCE_URL, SHA_IMPERMANENCE)
    with pytest.raises(BlankslateError, match="is not a directory"):
        pin.pin(tmp_path / "missing" / "pins.nix")


def test_pins_file_escapes_interpolation_and_carriage_return() -> None:
    """The pins file writes its strings with nixtext.string (tests/nix reads them back)."""
    entry = pin.Pin("x", 'a"b\\c${d}\r', "sha", "main")
    assert '    url = "a\\"b\\\\c\\${d}\\r";' in pin.render([entry], "blankslate pin").splitlines()


def test_cli_usage_error_when_only_one_source_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(
        "sys.argv", ["blankslate", "pin", "--output", str(tmp_path / "p.nix"), "--source-rev", "v1"]
    )
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    assert "--source-url and --source-rev together" in capsys.readouterr().err


def test_cli_prefetch_failure_is_one_error_line(
    fp: FakeProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    register_ls_remote_head(fp)
    fp.register(
        ["nix-prefetch-url", "--unpack", IMPERMANENCE_URL],
        stderr="error: unable to download: Couldn't resolve host name (6)\n",
        returncode=1,
    )
    output = tmp_path / "pins.nix"
    monkeypatch.setattr("sys.argv", ["blankslate", "-q", "pin", "--output", str(output)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    error = capsys.readouterr().err
    assert error == (
        f"error: impermanence: cannot fetch {IMPERMANENCE_URL}: unable to download: "
        f"Couldn't resolve host name (6) ({output} left unchanged)\n"
    )


def test_written_file_parses_as_nix(fp: FakeProcess, tmp_path: Path, nix_instantiate: str) -> None:
    register_ls_remote_head(fp)
    register_prefetch(fp, IMPERMANENCE_URL, SHA_IMPERMANENCE)
    register_prefetch(
        fp, f"https://github.com/me/blankslate/archive/{SOURCE_COMMIT}.tar.gz", SHA_BLANKSLATE
    )
    output = tmp_path / "pins.nix"
    pin.pin(output, None, "https://github.com/me/blankslate", SOURCE_COMMIT)

    # The real nix-instantiate, let through pytest-subprocess for these two commands only.
    parse = ["nix-instantiate", "--parse", str(output)]
    names = [
        "nix-instantiate",
        "--eval",
        "--strict",
        "--expr",
        f"builtins.attrNames (import {output})",
    ]
    fp.pass_command(parse)
    fp.pass_command(names)
    parsed = subprocess.run(parse, capture_output=True, text=True, check=False)
    # attrNames does not force the values, so nothing is downloaded.
    evaluated = subprocess.run(names, capture_output=True, text=True, check=False)

    assert parsed.returncode == 0, parsed.stderr
    assert f'sha256 = "{SHA_BLANKSLATE}"' in parsed.stdout
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.strip() == '[ "blankslate" "impermanence" ]'
