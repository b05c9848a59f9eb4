"""Integration tier: real btrfs filesystems on loop devices (root only).

Every test under tests/integration/ is marked ``integration`` and skipped, with the reason,
unless this machine can do it: running as root, ``losetup``, ``mkfs.btrfs``, ``btrfs``,
``mount`` and ``umount`` on PATH, and btrfs in /proc/filesystems (``modprobe btrfs`` is tried).

Fixtures (function scope):

``loop_image``
    a sparse image file in ``tmp_path`` attached to a loop device; yields the device path
    (``/dev/loopN``). Size 2 GiB, or ``@pytest.mark.image_size("4GiB")``. Always detached,
    and everything mounted from it unmounted first, even when the test fails.
``btrfs_device``
    ``loop_image`` formatted with ``mkfs.btrfs -f -L nixos``; yields the device path.
``top_level``
    the top level (subvolid=5) of ``btrfs_device`` mounted on a temporary directory for the
    whole test; yields its ``Path``.
``layout``
    ``btrfs_device`` with the blankslate subvolumes created by ``make_layout``; yields a
    ``Layout`` (device and names).
``helpers``
    this module, so tests reach the helpers below without importing ``conftest``:
    ``run``, ``mounted``, ``mount_top_level``, ``unmount``, ``mounts_under``,
    ``mounts_of``, ``make_layout``, ``subvolume_info``, ``subvolumes_under``,
    ``tree_manifest``, ``ROLLBACK_SCRIPT``.

At the end of the session a loop device or mount left behind by these fixtures fails the
run loudly (exit status 1 and a message naming it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from ..support.loops import image_prefix

REPO = Path(__file__).resolve().parents[2]
ROLLBACK_SCRIPT = REPO / "modules" / "rollback" / "btrfs-rollback.bash"
HERE = Path(__file__).resolve().parent

DEFAULT_IMAGE_SIZE = "2GiB"
IMAGE_PREFIX = image_prefix()

REQUIRED_TOOLS = ("losetup", "mkfs.btrfs", "btrfs", "mount", "umount")


# --------------------------------------------------------------------------- commands


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output as text; on failure (check=True) raise an
    AssertionError that shows the command, its exit status, stdout and stderr."""
    argv = [os.fspath(a) for a in args]
    proc = subprocess.run(
        argv, input=input, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {argv!r}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


# --------------------------------------------------------------------------- environment


@functools.cache
def environment_problem() -> str | None:
    """Why the integration tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "integration tests need root (loop devices, mount, mkfs.btrfs)"
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        return f"integration tests need {', '.join(missing)} on PATH"
    if not _btrfs_in_kernel():
        if shutil.which("modprobe"):
            subprocess.run(["modprobe", "btrfs"], capture_output=True, check=False)
        if not _btrfs_in_kernel():
            return "integration tests need btrfs in /proc/filesystems (modprobe btrfs failed)"
    if not os.path.exists("/dev/loop-control"):
        return "integration tests need /dev/loop-control (loop devices)"
    return None


def _btrfs_in_kernel() -> bool:
    try:
        text = Path("/proc/filesystems").read_text()
    except OSError:
        return False
    return any(line.split()[-1:] == ["btrfs"] for line in text.splitlines())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image_size(size): size of the loop_image fixture's sparse file, e.g. '4GiB'"
    )
    config.addinivalue_line("markers", "integration: needs root, loop devices and btrfs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # a session-wide hook: only touch the items that live below this directory
    ours = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    if not ours:
        return
    problem = environment_problem()
    for item in ours:
        item.add_marker(pytest.mark.integration)
        if problem:
            item.add_marker(pytest.mark.skip(reason=problem))


# --------------------------------------------------------------------------- mounts


def _unescape_mountinfo(field: str) -> str:
    raw = re.sub(
        rb"\\([0-7]{3})",
        lambda m: bytes([int(m.group(1), 8)]),
        field.encode("latin-1", "surrogateescape"),
    )
    return os.fsdecode(raw)


def _mountinfo() -> list[tuple[str, str]]:
    """(mount point, source) of every mount of this mount namespace, in mount order."""
    result = []
    for line in Path("/proc/self/mountinfo").read_bytes().decode("latin-1").splitlines():
        left, _, right = line.partition(" - ")
        target = _unescape_mountinfo(left.split(" ")[4])
        source = _unescape_mountinfo(right.split(" ")[1]) if right else ""
        result.append((target, source))
    return result


def mounts_under(directory: str | os.PathLike[str]) -> list[str]:
    """Mount points at or below ``directory``, deepest (last mounted) first."""
    base = os.path.realpath(directory)
    found = [t for t, _ in _mountinfo() if t == base or t.startswith(base.rstrip("/") + "/")]
    return list(reversed(found))


def mounts_of(device: str) -> list[str]:
    """Mount points whose source is ``device`` (e.g. /dev/loop3), last mounted first."""
    dev = os.path.realpath(device)
    return list(reversed([t for t, s in _mountinfo() if s and os.path.realpath(s) == dev]))


def unmount(target: str | os.PathLike[str]) -> None:
    """Unmount ``target`` and everything below it; fall back to a lazy unmount when busy.
    Never raises (it runs in finally blocks); a mount it could not remove shows up in the
    end-of-session check."""
    target = os.fspath(target)
    for _ in range(3):
        if not mounts_under(target):
            return
        proc = subprocess.run(["umount", "-R", target], capture_output=True, check=False)
        if proc.returncode != 0:
            subprocess.run(["umount", "-R", "-l", target], capture_output=True, check=False)


def unmount_all_under(directory: str | os.PathLike[str]) -> list[str]:
    """Unmount every mount at or below ``directory`` (as a reboot would); returns them."""
    found = mounts_under(directory)
    for target in found:
        unmount(target)
    return found


@contextlib.contextmanager
def mounted(
    device: str,
    options: Sequence[str] = ("subvolid=5",),
    target: str | os.PathLike[str] | None = None,
    fstype: str = "btrfs",
) -> Iterator[Path]:
    """Mount ``device`` with ``-o options`` on ``target`` (a fresh temporary directory when
    None, removed afterwards) and yield the mount point; always unmounted on exit."""
    made = target is None
    where = Path(tempfile.mkdtemp(prefix="blankslate-mnt-")) if target is None else Path(target)
    try:
        args = ["mount", "-t", fstype]
        if options:
            args += ["-o", ",".join(options)]
        run([*args, device, where])
        try:
            yield where
        finally:
            unmount(where)
    finally:
        if made:
            with contextlib.suppress(OSError):
                where.rmdir()


@contextlib.contextmanager
def live_and_persist(device: str, directory: Path) -> Iterator[tuple[Path, Path]]:
    """The root subvolume of ``device`` on directory/live and its persist subvolume on
    live/persist, as nixos-install's --root sees a target system; both unmounted on exit."""
    live = directory / "live"
    live.mkdir()
    with mounted(device, ("subvol=root",), target=live):
        persist = live / "persist"
        persist.mkdir(exist_ok=True)
        with mounted(device, ("subvol=persist",), target=persist):
            yield live, persist


def mount_top_level(device: str) -> contextlib.AbstractContextManager[Path]:
    """Context manager: the btrfs top level (subvolid=5) of ``device`` on a temporary
    directory, unmounted and removed on exit."""
    return mounted(device, ("subvolid=5",))


# --------------------------------------------------------------------------- loop devices


@contextlib.contextmanager
def loop_device(image: Path, size: str = DEFAULT_IMAGE_SIZE) -> Iterator[str]:
    """Create the sparse file ``image`` of ``size`` (truncate syntax), attach it with
    ``losetup -fP --show`` and yield the device. On exit: unmount everything mounted from it,
    detach it, delete the file."""
    run(["truncate", "-s", size, image])
    device = run(["losetup", "-fP", "--show", image]).stdout.strip()
    try:
        yield device
    finally:
        for target in mounts_of(device):
            unmount(target)
        subprocess.run(["losetup", "-d", device], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            image.unlink()


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Names (relative to the top level) of what ``make_layout`` created on ``device``."""

    device: str
    root: str = "root"
    blank: str = "root-blank"
    old_roots: str = "old_roots"
    subvolumes: tuple[str, ...] = ("root", "nix", "persist", "log", "home")
    persistent: tuple[str, ...] = field(default=("nix", "persist", "log", "home"))


def make_layout(device: str) -> Layout:
    """Create subvolumes root, nix, persist, log, home and the read-only snapshot
    ``root-blank`` of the (empty) root on the btrfs ``device`` with the installer's own code
    (``blankslate.layout.create_volumes`` and the built-in plan)."""
    from blankslate import layout as install_layout
    from blankslate import plansource

    from ..support.plans import btrfs_storage

    default = plansource.default()
    storage = btrfs_storage(default)
    layout = Layout(device=device)
    assert layout.subvolumes == storage.subvolumes
    assert (layout.root, layout.blank) == (storage.root_subvolume, storage.blank_snapshot)
    assert default.disk is not None
    parts = install_layout.Partitions(((default.disk.main, device),))
    install_layout.create_volumes(default, parts, dry_run=False)
    return layout


# --------------------------------------------------------------------------- inspection


def subvolume_info(path: str | os.PathLike[str]) -> dict[str, str]:
    """``btrfs subvolume show PATH`` as a dict: 'UUID', 'Parent UUID', 'Subvolume ID',
    'Flags' ('readonly' or '-'), 'Generation', ... (keys as btrfs-progs prints them)."""
    out = run(["btrfs", "subvolume", "show", path]).stdout
    info: dict[str, str] = {}
    for line in out.splitlines()[1:]:
        key, sep, value = line.strip().partition(":")
        if sep and key and not key.startswith("Snapshot"):
            info[key.strip()] = value.strip()
    return info


def is_subvolume(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is the root directory of a btrfs subvolume (inode 256)."""
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and st.st_ino == 256


def subvolumes_under(top: str | os.PathLike[str]) -> set[str]:
    """Relative paths of every subvolume below ``top`` at any depth (walks the tree; safe
    with any byte in names, unlike parsing ``btrfs subvolume list``)."""
    top = os.fspath(top)
    found = set()
    for dirpath, dirnames, _ in os.walk(top):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p) and is_subvolume(p):
                found.add(os.path.relpath(p, top))
    return found


def tree_manifest(top: str | os.PathLike[str]) -> dict[str, tuple[object, ...]]:
    """Everything below ``top`` as {relative path: (kind, detail...)}: files with their
    sha256 and mode, symlinks with their target, directories with their mode and whether
    they are subvolumes. Two equal manifests mean byte-for-byte equal trees."""
    top = os.fspath(top)
    manifest: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, top)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                manifest[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                manifest[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_ino == 256)
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                manifest[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_size, h.hexdigest())
            else:
                manifest[rel] = ("other", stat.S_IFMT(st.st_mode))
    return manifest


# --------------------------------------------------------------------------- fixtures


# --------------------------------------------------------------------------- fault injection

SHIMMED = ("btrfs", "mv", "mount", "umount", "date", "find", "stat", "sync", "mktemp", "rmdir")

SHIM = """#!/bin/bash
n=$(( $(<"$SHIM_STATE/count") + 1 ))
echo "$n" > "$SHIM_STATE/count"
echo "$n {name}" >> "$SHIM_STATE/trace"
if [[ $n == "$SHIM_KILL_AT" && $SHIM_MODE == before ]]; then kill -KILL 0; fi
{real} "$@"
rc=$?
if [[ $n == "$SHIM_KILL_AT" && $SHIM_MODE == after ]]; then kill -KILL 0; fi
exit $rc
"""


@dataclass(frozen=True)
class Shims:
    """A PATH directory whose btrfs, mv, mount, ... count their calls and SIGKILL the
    script's whole process group (start it in a session of its own) before or after call
    number $SHIM_KILL_AT."""

    bindir: Path
    state: Path

    def arm(self, kill_at: int, mode: str) -> dict[str, str]:
        """Resets the count; the environment that kills at call `kill_at` ("before" or
        "after" it; kill_at 0: never)."""
        (self.state / "count").write_text("0")
        (self.state / "trace").write_text("")
        return {"SHIM_STATE": str(self.state), "SHIM_KILL_AT": str(kill_at), "SHIM_MODE": mode}

    def calls(self) -> int:
        return int((self.state / "count").read_text())

    def trace(self) -> list[str]:
        """ "N program" per call, in order."""
        return (self.state / "trace").read_text().splitlines()


@pytest.fixture
def shims(tmp_path: Path) -> Shims:
    bindir = tmp_path / "shims"
    state = tmp_path / "shim-state"
    bindir.mkdir()
    state.mkdir()
    for name in SHIMMED:
        real = shutil.which(name)
        assert real, name
        path = bindir / name
        path.write_text(SHIM.format(name=name, real=real))
        path.chmod(0o755)
    return Shims(bindir, state)


@pytest.fixture
def helpers() -> ModuleType:
    """This module: run, mounted, mount_top_level, make_layout, subvolume_info, ..."""
    return sys.modules[__name__]


@pytest.fixture
def loop_image(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A sparse image (2 GiB or the image_size marker) on a loop device; yields /dev/loopN."""
    marker = request.node.get_closest_marker("image_size")
    size = marker.args[0] if marker else DEFAULT_IMAGE_SIZE
    with loop_device(tmp_path / f"{IMAGE_PREFIX}{os.urandom(4).hex()}.img", size) as device:
        yield device


@pytest.fixture
def btrfs_device(loop_image: str) -> str:
    """``loop_image`` formatted as btrfs labelled 'nixos'; yields the device."""
    run(["mkfs.btrfs", "-q", "-f", "-L", "nixos", loop_image])
    return loop_image


@pytest.fixture
def top_level(btrfs_device: str) -> Iterator[Path]:
    """The top level of ``btrfs_device``, mounted for the whole test."""
    with mount_top_level(btrfs_device) as top:
        yield top


@pytest.fixture
def layout(btrfs_device: str) -> Layout:
    """``btrfs_device`` after ``make_layout``."""
    return make_layout(btrfs_device)
