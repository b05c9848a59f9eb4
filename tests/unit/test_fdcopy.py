"""fdcopy: a live tree copied through held fds, never following a link, tolerant of entries
that vanish, keeping what cp --archive keeps."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from blankslate import fdcopy
from blankslate.errors import BlankslateError

ODD = ["with space", "new\nline", "\udcff-not-utf8", "-dash", "é", "a\x1b[2Jb"]


@contextlib.contextmanager
def fd(path: Path) -> Iterator[int]:
    opened = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield opened
    finally:
        os.close(opened)


def copy_dir(source: Path, target_parent: Path, name: str) -> Path:
    """fdcopy.copy_held of the directory `source` to target_parent/name."""
    with fd(source) as held, fd(target_parent) as target:
        fdcopy.copy_held(held, -1, "", target, name, source)
    return target_parent / name


def described(top: Path) -> dict[bytes, tuple[object, ...]]:
    found: dict[bytes, tuple[object, ...]] = {}
    inodes: dict[int, bytes] = {}
    for directory, names, files in sorted(os.walk(os.fsencode(top))):
        for name in sorted([*names, *files]):
            path = os.path.join(directory, name)
            info = os.lstat(path)
            relative = os.path.relpath(path, os.fsencode(top))
            link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else b""
            data = b""
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as file:
                    data = file.read()
            linked = info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode)
            same = inodes.setdefault(info.st_ino, relative) if linked else b""
            xattrs = (
                {}
                if stat.S_ISLNK(info.st_mode)
                else {key: os.getxattr(path, key) for key in sorted(os.listxattr(path))}
            )
            found[relative] = (
                info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns, link, data, same,
                xattrs,
            )  # fmt: skip
    return found


def build(tree: Path) -> None:
    (tree / "sub/deeper").mkdir(parents=True)
    for number, name in enumerate(ODD):
        (tree / "sub" / name).write_text(f"{number}\n")
        os.chmod(tree / "sub" / name, 0o600 + number)
    (tree / "exec").write_text("#!/bin/sh\n")
    os.chmod(tree / "exec", 0o750)
    (tree / "link").symlink_to("sub/with space")
    (tree / "dangling").symlink_to("/nowhere")
    os.link(tree / "exec", tree / "sub/deeper/hard")
    os.mkfifo(tree / "fifo", 0o640)
    with contextlib.suppress(OSError):  # user xattrs: not on every filesystem
        os.setxattr(tree / "exec", "user.note", b"kept")
    with open(tree / "sparse", "wb") as sparse:
        sparse.truncate(16 << 20)
        sparse.seek(8 << 20)
        sparse.write(b"middle")
    os.chmod(tree / "sub/deeper", 0o500)
    os.utime(tree / "sub", ns=(1_600_000_000_000_000_001, 1_500_000_000_000_000_002))
    os.utime(tree / "link", ns=(1, 1_400_000_000_000_000_003), follow_symlinks=False)
    os.chmod(tree, 0o751)


def test_a_tree_is_copied_with_its_metadata_links_and_odd_names(tmp_path: Path) -> None:
    (tmp_path / "live").mkdir()
    build(tmp_path / "live")
    (tmp_path / "out").mkdir(mode=0o700)
    copy = copy_dir(tmp_path / "live", tmp_path / "out", "live")
    assert described(copy) == described(tmp_path / "live")
    assert stat.S_IMODE(os.lstat(copy).st_mode) == 0o751
    assert os.stat(copy / "sparse").st_blocks * 512 < 4 << 20  # holes stay holes


def test_contents_fill_an_existing_directory_and_take_its_metadata(tmp_path: Path) -> None:
    (tmp_path / "live").mkdir()
    build(tmp_path / "live")
    (tmp_path / "empty").mkdir(mode=0o700)
    with fd(tmp_path / "live") as source, fd(tmp_path / "empty") as target:
        fdcopy.copy_contents(source, target, tmp_path / "live")
    assert described(tmp_path / "empty") == described(tmp_path / "live")
    live, empty = os.lstat(tmp_path / "live"), os.lstat(tmp_path / "empty")
    assert (empty.st_mode, empty.st_mtime_ns) == (live.st_mode, live.st_mtime_ns)


def test_a_held_file_and_a_symlink_entry_are_copied_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("data\n")
    os.chmod(tmp_path / "file", 0o640)
    (tmp_path / "link").symlink_to("/etc/shadow")
    (tmp_path / "out").mkdir()
    held = os.open(tmp_path / "file", os.O_PATH | os.O_NOFOLLOW)
    try:
        with fd(tmp_path) as parent, fd(tmp_path / "out") as target:
            fdcopy.copy_held(held, parent, "file", target, "file", tmp_path / "file")
            fdcopy.copy_held(-1, parent, "link", target, "link", tmp_path / "link")
    finally:
        os.close(held)
    assert (tmp_path / "out/file").read_text() == "data\n"
    assert stat.S_IMODE(os.stat(tmp_path / "out/file").st_mode) == 0o640
    assert os.readlink(tmp_path / "out/link") == "/etc/shadow"


def test_an_entry_that_vanishes_is_one_warning_and_the_rest_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "live/sub").mkdir(parents=True)
    (tmp_path / "live/sub/kept").write_text("x")
    (tmp_path / "out").mkdir()
    listdir = os.listdir

    def with_ghosts(path: int | str = ".") -> list[str]:  # listed, then removed by a user
        return [*listdir(path), "ghost"] if isinstance(path, int) else listdir(path)

    monkeypatch.setattr(os, "listdir", with_ghosts)
    with caplog.at_level(logging.WARNING, logger="blankslate"):
        copy = copy_dir(tmp_path / "live", tmp_path / "out", "live")
    assert (copy / "sub/kept").read_text() == "x"
    assert sorted(record.getMessage() for record in caplog.records) == [
        f"{tmp_path}/live/ghost vanished while it was copied: not copied",
        f"{tmp_path}/live/sub/ghost vanished while it was copied: not copied",
    ]


@pytest.mark.parametrize("kind", ["directory", "file"])
def test_an_entry_swapped_for_a_symlink_after_the_listing_is_never_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """Between the look at `x` and its open, alice exchanges it with a link to root's files:
    the open refuses the link, nothing of root's is read."""
    secret = tmp_path / "root-only"
    secret.mkdir()
    (secret / "key").write_text("root's secret")
    live = tmp_path / "live"
    live.mkdir()
    if kind == "directory":
        (live / "x").mkdir()
        (live / "x/key").write_text("alice's")
    else:
        (live / "x").write_text("alice's")
    (tmp_path / "out").mkdir()
    real_open = fdcopy._Copier._open

    def swapped(self: fdcopy._Copier, name: str, parent: int, flags: int, named: Path) -> int:
        if name == "x":
            os.rename(live / "x", tmp_path / "moved")
            (live / "x").symlink_to(secret if kind == "directory" else secret / "key")
        return real_open(self, name, parent, flags, named)

    monkeypatch.setattr(fdcopy._Copier, "_open", swapped)
    with caplog.at_level(logging.WARNING, logger="blankslate"):
        copy = copy_dir(live, tmp_path / "out", "live")
    assert not (copy / "x").exists()
    assert [record.getMessage() for record in caplog.records] == [
        f"{live}/x changed while it was copied (now a link or of another type): not copied"
    ]


def test_a_tree_deeper_than_path_max_is_copied_without_recursion(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    name, depth = "d" * 200, 400  # 80,000 characters: far past PATH_MAX
    current = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    for _level in range(depth):
        os.mkdir(name, dir_fd=current)
        deeper = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=current)
        os.close(current)
        current = deeper
    os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=current))
    os.close(current)
    (tmp_path / "out").mkdir()
    copy_dir(live, tmp_path / "out", "live")
    current = os.open(tmp_path / "out/live", os.O_RDONLY | os.O_DIRECTORY)
    for _level in range(depth):
        deeper = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=current)
        os.close(current)
        current = deeper
    assert os.listdir(current) == ["leaf"]
    os.close(current)


def test_a_write_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "live").mkdir()
    (tmp_path / "live/data").write_text("x")
    (tmp_path / "out").mkdir()

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fdcopy._Copier, "_data", full)
    with pytest.raises(BlankslateError, match=r"^copying .*/live: No space left on device$"):
        copy_dir(tmp_path / "live", tmp_path / "out", "live")
