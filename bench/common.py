"""What the benchmarks share: running a command, and a throwaway btrfs image with the layout."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUBVOLUMES = ("root", "nix", "persist", "log", "home")


def sh(*args: str | os.PathLike[str]) -> str:
    proc = subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {args}\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def mount_points_under(directory: Path) -> list[str]:
    """From /proc/self/mountinfo (os.path.ismount is fooled by subvolumes), deepest first."""
    base = os.path.realpath(directory)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split(" ")[4].replace("\\040", " ")
        if target == base or target.startswith(base + "/"):
            found.append(target)
    return sorted(found, key=len, reverse=True)


@dataclass(frozen=True)
class Image:
    work: Path  # a private directory for the benchmark's own files
    device: str  # the loop device
    top: Path  # the top level (subvolid=5), mounted


@contextlib.contextmanager
def btrfs_image(
    prefix: str, size: str, subvolumes: Sequence[str] = SUBVOLUMES, *, blank: bool = True
) -> Iterator[Image]:
    """A sparse image with a btrfs filesystem, its subvolumes and (if `blank`) the read-only
    `root-blank`; everything mounted below `work` is unmounted and the loop detached after."""
    work = Path(tempfile.mkdtemp(prefix=f"blankslate-bench-{prefix}-"))
    image, top = work / "disk.img", work / "top"
    top.mkdir()
    device = ""
    try:
        sh("truncate", "-s", size, image)
        device = sh("losetup", "-f", "--show", image).strip()
        sh("mkfs.btrfs", "-q", "-f", "-L", "nixos", device)
        sh("mount", "-o", "subvolid=5", device, top)
        for name in subvolumes:
            sh("btrfs", "subvolume", "create", top / name)
        if blank:
            sh("btrfs", "subvolume", "snapshot", "-r", top / "root", top / "root-blank")
        yield Image(work, device, top)
    finally:
        for target in mount_points_under(work):
            if subprocess.run(["umount", target], check=False).returncode != 0:
                subprocess.run(["umount", "-l", target], check=False)
        if device:
            subprocess.run(["losetup", "-d", device], check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", work], check=False)


def blankslate_env() -> dict[str, str]:
    """Runs this checkout's package, whatever is installed."""
    return {**os.environ, "PYTHONPATH": str(REPO / "scripts")}


def default_plan(work: Path) -> dict[str, Any]:
    """The plan `blankslate plan` prints from `work`, run from this checkout."""
    printed = subprocess.run(
        [sys.executable, "-m", "blankslate", "plan"],
        capture_output=True,
        text=True,
        check=True,
        cwd=work,
        env=blankslate_env(),
    ).stdout
    plan: dict[str, Any] = json.loads(printed)
    return plan


@dataclass(frozen=True)
class Measured:
    seconds: float  # wall time
    peak_mib: float  # the child's peak resident memory (ru_maxrss)
    status: int


def measured(
    args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None, stdout: Any = None
) -> Measured:
    """Runs `args` once: its wall time and the peak RSS of that one child (from wait4, not
    RUSAGE_CHILDREN, which keeps the largest child's so far)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        list(args), cwd=cwd, env=env, stdout=subprocess.DEVNULL if stdout is None else stdout
    )
    _pid, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return Measured(elapsed, usage.ru_maxrss / 1024, child.returncode)
