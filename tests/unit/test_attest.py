"""`blankslate attest` (attest.py): the boot record and the nixos-bound note parsed
defensively, each check, the metrics and the CLI; every subprocess (findmnt) mocked."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess
from typer.testing import CliRunner

from blankslate import attest, plan, plansource
from blankslate.app import app
from blankslate.errors import BlankslateError

from ..support.mounts import FINDMNT, findmnt_json
from ..support.plans import with_kind
from .test_properties import PARSER

RESET = (
    b"kind=btrfs\noutcome=reset\nreason=\nold_root=2026-12-04_10:00:00\ntime=2026-12-04T10:00:00Z\n"
)


def with_rollback(kind: plan.RollbackKind) -> plan.Plan:
    return with_kind(plansource.default(), kind)


# --- the record --------------------------------------------------------------------------------


def test_a_reset_record_parses() -> None:
    record = attest.parse_record(RESET)
    assert (record.kind, record.outcome, record.reason) == ("btrfs", "reset", "")
    assert record.old_root == "2026-12-04_10:00:00"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "incomplete"),
        (RESET[:-1], "incomplete"),
        (b"\xff" + RESET, "not UTF-8"),
        (RESET.replace(b"kind=btrfs", b"kind=ext4"), "unknown kind"),
        (RESET.replace(b"outcome=reset", b"outcome=maybe"), "unknown outcome"),
        (RESET + b"kind=zfs\n", "kind given twice"),
        (RESET.replace(b"time=", b"when="), "unknown key"),
        (RESET.replace(b"reason=\n", b""), "missing reason"),
        (RESET.replace(b"reason=", b"reason=a\x1bb"), "control character"),
        (RESET.replace(b"reason=", b"reason=oops"), "reset with a reason"),
        (RESET.replace(b"2026-12-04T10:00:00Z", b"yesterday"), "not UTC ISO 8601"),
        (RESET + b"x" * attest.MAX_RECORD_BYTES, "larger than"),
        (b"garbage\n", "not key=value"),
    ],
)
def test_a_bad_record_is_one_line(data: bytes, why: str) -> None:
    with pytest.raises(attest.RecordError) as raised:
        attest.parse_record(data)
    assert why in str(raised.value) and "\n" not in str(raised.value)


@PARSER
@given(st.binary(max_size=600))
@example(RESET)
@example(b"kind=none\noutcome=skipped\nreason=\xc2\x85\nold_root=\ntime=\n")
def test_no_record_ends_in_a_traceback(data: bytes) -> None:
    try:
        record = attest.parse_record(data)
    except attest.RecordError as error:
        assert "\n" not in str(error)
    else:
        assert record.kind in attest.KINDS and record.outcome in attest.OUTCOMES


@PARSER
@given(
    st.lists(
        st.tuples(st.sampled_from([*attest.RECORD_KEYS, "x", ""]), st.text(max_size=30)),
        max_size=7,
    )
)
def test_no_near_record_ends_in_a_traceback(lines: list[tuple[str, str]]) -> None:
    data = "".join(f"{key}={value}\n" for key, value in lines).encode("utf-8", "surrogatepass")
    try:
        attest.parse_record(data)
    except attest.RecordError as error:
        assert "\n" not in str(error)


@PARSER
@given(st.binary(max_size=200))
@example(b"bound=yes\ntime=2026-12-04T10:00:00Z\n")
def test_no_nixos_bound_note_ends_in_a_traceback(data: bytes) -> None:
    try:
        assert attest.parse_nixos_bound(data) in (True, False)
    except attest.RecordError as error:
        assert "\n" not in str(error)


def test_a_symlink_at_the_record_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_bytes(RESET)
    (tmp_path / "reset").symlink_to(real)
    result = attest.describe_record(plansource.default(), tmp_path)
    assert result.status == "fail" and "is a symlink (not followed)" in result.message


def test_a_fifo_at_the_record_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "reset")
    result = attest.describe_record(plansource.default(), tmp_path)
    assert result.status == "fail" and "not a regular file" in result.message


def test_the_read_is_bounded(tmp_path: Path) -> None:
    (tmp_path / "reset").write_bytes(b"a" * (10 * attest.MAX_RECORD_BYTES))
    data = attest.read_small(tmp_path / "reset")
    assert data is not None and len(data) == attest.MAX_RECORD_BYTES + 1
    result = attest.describe_record(plansource.default(), tmp_path)
    assert result.status == "fail" and "larger than" in result.message


def test_no_record_on_btrfs_fails(tmp_path: Path) -> None:
    result = attest.describe_record(plansource.default(), tmp_path)
    assert result.status == "fail"
    assert "no record" in result.message and "the rollback did not run" in result.message


def test_no_record_on_none_is_skipped(tmp_path: Path) -> None:
    result = attest.describe_record(with_rollback("none"), tmp_path)
    assert result.status == "skipped"


@pytest.mark.parametrize(
    ("record", "kind", "status"),
    [
        (RESET, "btrfs", "ok"),
        (RESET.replace(b"btrfs", b"zfs"), "btrfs", "fail"),  # another kind's record
        (b"kind=btrfs\noutcome=failed\nreason=no blank\nold_root=\ntime=\n", "btrfs", "fail"),
        (b"kind=btrfs\noutcome=skipped\nreason=x\nold_root=\ntime=\n", "btrfs", "fail"),
        (b"kind=none\noutcome=skipped\nreason=\nold_root=\ntime=\n", "none", "skipped"),
        (b"kind=tmpfs\noutcome=reset\nreason=\nold_root=\ntime=\n", "tmpfs", "ok"),
    ],
)
def test_the_record_against_the_plan(
    tmp_path: Path, record: bytes, kind: plan.RollbackKind, status: str
) -> None:
    (tmp_path / "reset").write_bytes(record)
    assert attest.describe_record(with_rollback(kind), tmp_path).status == status


def test_the_record_directory_comes_from_the_environment() -> None:
    assert attest.record_dir({}) == Path("/run/blankslate")
    assert attest.record_dir({"BLANKSLATE_RECORD_DIR": "/tmp/r"}) == Path("/tmp/r")


# --- persisted paths ---------------------------------------------------------------------------


def one_path_plan(kind: str, path: str) -> plan.Plan:
    base = plansource.default()
    persistence = plan.Persistence(
        directories=(plan.PersistedDirectory(path, root="/persist"),)
        if kind == "directory"
        else (),
        files=(plan.PersistedFile(path, root="/persist"),) if kind == "file" else (),
    )
    return dataclasses.replace(base, persistence=persistence)


def tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "persist/etc").mkdir(parents=True)
    source = root / "persist/etc/machine-id"
    source.write_text("id\n")
    return root, root / "etc/machine-id", source


def test_a_file_linked_to_its_source_is_in_place(tmp_path: Path, fp: FakeProcess) -> None:
    root, target, _ = tree(tmp_path)
    target.symlink_to("/persist/etc/machine-id")
    fp.register(FINDMNT, stdout=findmnt_json("/"))
    results, unbound = attest.check_persisted(one_path_plan("file", "/etc/machine-id"), root)
    assert unbound == [] and results[0].status == "ok"


def test_a_file_linked_elsewhere_fails(tmp_path: Path, fp: FakeProcess) -> None:
    root, target, _ = tree(tmp_path)
    target.symlink_to("/persist/etc/other")
    fp.register(FINDMNT, stdout=findmnt_json("/"))
    results, unbound = attest.check_persisted(one_path_plan("file", "/etc/machine-id"), root)
    assert unbound == ["/etc/machine-id"]
    assert "links to /persist/etc/other, not to /persist/etc/machine-id" in results[0].message


def test_a_file_is_bound_only_when_a_mountpoint_of_the_same_inode(
    tmp_path: Path, fp: FakeProcess
) -> None:
    """A hard link has the source's inode but is no mount; a mountpoint of another file is
    not the source: both fail. The mountpoint of the same inode passes."""
    root, target, source = tree(tmp_path)
    os.link(source, target)
    the_plan = one_path_plan("file", "/etc/machine-id")
    fp.register(FINDMNT, stdout=findmnt_json("/"))
    assert attest.check_persisted(the_plan, root)[1] == ["/etc/machine-id"]
    fp.register(FINDMNT, stdout=findmnt_json(str(target)))
    assert attest.check_persisted(the_plan, root)[1] == []
    target.unlink()
    target.write_text("on the root\n")
    fp.register(FINDMNT, stdout=findmnt_json(str(target)))
    results, unbound = attest.check_persisted(the_plan, root)
    assert unbound == ["/etc/machine-id"] and "is not mounted from" in results[0].message


def test_a_directory_that_is_a_symlink_or_missing_fails(tmp_path: Path, fp: FakeProcess) -> None:
    root = tmp_path / "root"
    (root / "persist/var/lib/foo").mkdir(parents=True)
    (root / "var/lib").mkdir(parents=True)
    the_plan = one_path_plan("directory", "/var/lib/foo")
    fp.register(FINDMNT, stdout=findmnt_json("/"))
    results, _ = attest.check_persisted(the_plan, root)
    assert "is missing" in results[0].message
    (root / "var/lib/foo").symlink_to("/persist/var/lib/foo")
    fp.register(FINDMNT, stdout=findmnt_json("/"))
    results, unbound = attest.check_persisted(the_plan, root)
    assert unbound == ["/var/lib/foo"] and "is a symlink, not a bind mount" in results[0].message


# --- /var/lib/nixos and / ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "status"),
    [
        (b"bound=yes\ntime=2026-12-04T10:00:00Z\n", "ok"),
        (b"bound=no\ntime=2026-12-04T10:00:00Z\n", "fail"),
        (b"bound=maybe\ntime=\n", "fail"),
        (None, "fail"),
    ],
)
def test_the_nixos_bound_note(tmp_path: Path, note: bytes | None, status: str) -> None:
    if note is not None:
        (tmp_path / "nixos-bound").write_bytes(note)
    assert attest.check_nixos_bound(plansource.default(), tmp_path).status == status


def test_without_a_users_script_or_a_persisted_var_lib_nixos_it_is_skipped(tmp_path: Path) -> None:
    assert (
        attest.check_nixos_bound(plansource.default(), tmp_path, expected=False).status == "skipped"
    )
    other = one_path_plan("directory", "/var/lib/foo")
    assert attest.check_nixos_bound(other, tmp_path).status == "skipped"


def test_the_root_must_be_roots_and_0755(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    expected = "ok" if os.geteuid() == 0 else "fail"
    assert attest.check_root_mode(tmp_path).status == expected
    tmp_path.chmod(0o700)
    result = attest.check_root_mode(tmp_path)
    assert result.status == "fail" and "mode 700" in result.message
    tmp_path.chmod(0o755)


# --- output and the CLI ------------------------------------------------------------------------


def test_failures_carry_the_crit_prefix_in_the_journal_only() -> None:
    report = attest.Report(
        (attest.Result("record", "ok", "fine"), attest.Result("root-mode", "fail", "bad")),
        True,
        (),
    )
    journal = attest.render_text(report, journal=True).splitlines()
    assert journal[0].startswith("<6>ok") and journal[1].startswith("<2>fail")
    assert not attest.render_text(report).startswith("<")


def test_the_metrics() -> None:
    report = attest.Report((attest.Result("persisted", "fail", "x"),), False, ("/a", "/b"))
    text = attest.render_metrics(report, 1.0)
    assert "blankslate_reset_ok 0\n" in text and "blankslate_unbound_paths 2\n" in text


def test_the_metrics_file_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "m.prom").symlink_to(victim)
    report = attest.Report((), True, ())
    attest.write_metrics(report, tmp_path / "m.prom", 1.0)
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "m.prom").is_symlink()
    assert "blankslate_reset_ok 1" in (tmp_path / "m.prom").read_text()


def test_the_cli_fails_and_writes_the_metrics(
    tmp_path: Path, fp: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, target, _ = tree(tmp_path)
    root.chmod(0o755)
    target.symlink_to("/persist/etc/wrong")
    the_plan = one_path_plan("file", "/etc/machine-id")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(the_plan.to_json()))
    records = tmp_path / "records"
    records.mkdir()
    monkeypatch.setenv("BLANKSLATE_RECORD_DIR", str(records))
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    fp.register(FINDMNT, stdout=findmnt_json("/"))
    metrics = tmp_path / "metrics" / "blankslate-attest.prom"
    result = CliRunner().invoke(
        app,
        ["attest", "--plan", str(plan_file), "--root", str(root), "--metrics-file", str(metrics)],
    )
    assert result.exit_code == 1, result.output
    crit = [line for line in result.output.splitlines() if line.startswith("<2>")]
    assert any("no record" in line for line in crit)
    assert any("links to /persist/etc/wrong" in line for line in crit)
    text = metrics.read_text()
    assert "blankslate_reset_ok 0" in text and "blankslate_unbound_paths 1" in text


def test_the_cli_json(tmp_path: Path, fp: FakeProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    root, target, _ = tree(tmp_path)
    target.symlink_to("/persist/etc/machine-id")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(one_path_plan("file", "/etc/machine-id").to_json()))
    (tmp_path / "reset").write_bytes(RESET)
    monkeypatch.setenv("BLANKSLATE_RECORD_DIR", str(tmp_path))
    fp.register(FINDMNT, stdout=findmnt_json("/"))
    result = CliRunner().invoke(
        app, ["attest", "--plan", str(plan_file), "--root", str(root), "--format", "json"]
    )
    document = json.loads(result.stdout)
    assert document["resetOk"] is True and document["unbound"] == []
    checks = {c["check"]: c["status"] for c in document["checks"]}
    assert checks["record"] == "ok" and checks["persisted"] == "ok"


def test_an_unwritable_metrics_file_is_one_line_after_the_results(
    tmp_path: Path, fp: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, target, _ = tree(tmp_path)
    target.symlink_to("/persist/etc/machine-id")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(one_path_plan("file", "/etc/machine-id").to_json()))
    monkeypatch.setenv("BLANKSLATE_RECORD_DIR", str(tmp_path))
    fp.register(FINDMNT, stdout=findmnt_json("/"))
    (tmp_path / "blocked").write_text("a file, not a directory\n")
    metrics = tmp_path / "blocked" / "blankslate-attest.prom"
    result = CliRunner().invoke(
        app,
        ["attest", "--plan", str(plan_file), "--root", str(root), "--metrics-file", str(metrics)],
    )
    assert result.exit_code == 1
    assert "no record" in result.stdout  # the results came first
    # The entry point (cli.py) prints a BlankslateError as one `error:` line.
    assert isinstance(result.exception, BlankslateError)
    assert "Not a directory" in str(result.exception) and "\n" not in str(result.exception)
