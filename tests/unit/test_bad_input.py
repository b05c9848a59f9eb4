"""Bad input, through the real entry point: one `error: ...` line and exit 1, never a traceback."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from blankslate import cli, plan, plansource, process
from blankslate.errors import BlankslateError

DEFAULT_PLAN = Path(plan.__file__).with_name("default-plan.json")


def one_error_line(capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    err = capsys.readouterr().err
    # Besides the error, a command says which plan it uses ("plan: host ... from ...").
    lines = [line for line in err.splitlines() if not line.startswith("plan: ")]
    assert len(lines) == 1, err[:2000]
    assert lines[0].startswith("error: "), lines[0][:2000]
    for fragment in fragments:
        assert fragment in lines[0], lines[0][:2000]
    return lines[0]


def default_plan_json() -> dict[str, object]:
    loaded = json.loads(DEFAULT_PLAN.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_a_plan_file_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    bad = tmp_path / "plan.json"
    bad.write_bytes(b'{"version": 1,\n "hostName": "\xff"}')
    assert run_cli("plan", "--plan", str(bad)) == 1
    one_error_line(capsys, f"plan: {bad}: not UTF-8 (line 2: byte 0xff)")


def test_a_deeply_nested_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    deep = tmp_path / "plan.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert run_cli("plan", "--plan", str(deep)) == 1
    one_error_line(capsys, f"plan: {deep}: not valid JSON (nested too deeply")


def test_a_plan_nested_deeper_than_any_plan_but_within_the_parser_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    data = default_plan_json()
    data["hostName"] = json.loads("[" * 900 + "]" * 900)
    deep = tmp_path / "plan.json"
    deep.write_text(json.dumps(data))
    assert run_cli("plan", "--plan", str(deep)) == 1
    one_error_line(capsys, "nested too deeply")


def test_a_huge_integer_in_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    text = DEFAULT_PLAN.read_text().replace('"keepDays": 30', '"keepDays": 1' + "0" * 5000)
    assert "0" * 5000 in text
    huge = tmp_path / "plan.json"
    huge.write_text(text)
    assert run_cli("plan", "--plan", str(huge)) == 1
    one_error_line(capsys, f"plan: {huge}: not valid JSON (", "digits")


def test_an_ignore_file_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    ignore = tmp_path / "audit.yaml"
    ignore.write_bytes(b"ignore:\n  - pattern: /a\xff\n    reason: x\n")
    (tmp_path / "root").mkdir()
    code = run_cli(
        "diff", "--plan", str(DEFAULT_PLAN), "--root", str(tmp_path / "root"),
        "--ignore-file", str(ignore),
    )  # fmt: skip
    assert code == 1
    one_error_line(capsys, f"ignore file {ignore}: not UTF-8 (line 2: byte 0xff)")


def test_ignore_command_on_an_ignore_file_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    ignore = tmp_path / "audit.yaml"
    ignore.write_bytes(b"# caf\xe9\n")
    assert run_cli("ignore", "/x", "--reason", "r", "--ignore-file", str(ignore)) == 1
    one_error_line(capsys, f"ignore file {ignore}: not UTF-8 (line 1: byte 0xe9)")
    assert ignore.read_bytes() == b"# caf\xe9\n"


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])
def test_a_password_on_stdin_that_is_not_utf8(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
    errors: str,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"s\xffcret\n"), errors=errors))
    output = tmp_path / "admin"
    code = run_cli(
        "passwd", "admin", "--plan", str(DEFAULT_PLAN), "--stdin", "--output", str(output)
    )
    assert code == 1
    one_error_line(capsys, "the password is not valid UTF-8; nothing written")
    assert not output.exists()


def test_a_persisted_path_longer_than_path_max_in_seed(
    tmp_path: Path,
    fp: FakeProcess,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    data = default_plan_json()
    data.update(rollback="none", disk=None, btrfs=None, mounts=[], persistPath="/persist")
    data["users"] = [{"name": "admin", "hashedPasswordFile": "/persist/passwords/admin"}]
    data["sshHostKeys"] = ["/persist/etc/ssh/ssh_host_ed25519_key"]
    persistence = data["persistence"]
    assert isinstance(persistence, dict)
    persistence.update(roots=[], directories=[{"directory": "/" + "a" * 5000}], files=[])
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(data))
    findmnt = json.dumps(
        {"filesystems": [{"target": str(tmp_path / "persist"), "source": "tmpfs",
                          "fstype": "tmpfs", "options": "rw"}]}
    )  # fmt: skip
    fp.register(["findmnt", fp.any()], stdout=findmnt)
    code = run_cli("-q", "seed", "--plan", str(plan_file), "--root", str(tmp_path), "--dry-run")
    assert code == 1
    one_error_line(capsys, "File name too long")


def test_an_ignore_file_name_longer_than_path_max_in_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_cli: Callable[..., int]
) -> None:
    long_name = str(tmp_path / ("c" * 5000))
    code = run_cli(
        "diff", "--plan", str(DEFAULT_PLAN), "--root", str(tmp_path), "--ignore-file", long_name
    )
    assert code == 1
    one_error_line(capsys, "cannot read ignore file", "File name too long")


def test_a_command_writing_bytes_that_are_not_utf8(fp: FakeProcess) -> None:
    # The fake process decodes strictly itself: this one command runs for real.
    fp.pass_command(["printf", "caf\\351\\n"])
    assert process.output(["printf", "caf\\351\\n"]) == "caf\udce9\n"


def test_a_failing_command_writing_bytes_that_are_not_utf8(fp: FakeProcess) -> None:
    script = "printf 'error: caf\\351\\n' >&2; exit 1"
    fp.pass_command(["sh", "-c", script])
    with pytest.raises(BlankslateError, match="failed: error: caf\udce9"):
        process.run(["sh", "-c", script], dry_run=False)


def test_debug_shows_the_traceback_of_an_os_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_name = str(tmp_path / ("c" * 5000))
    monkeypatch.setattr("sys.argv", ["blankslate", "--debug", "plan", "--plan", str(DEFAULT_PLAN)])
    monkeypatch.setattr(plansource, "from_file", lambda path: Path(long_name).stat())
    with pytest.raises(OSError, match="File name too long"):
        cli.main()
