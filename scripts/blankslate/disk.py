"""Block devices: probes (`lsblk`, `losetup`), partitioning (`sgdisk`), filesystems, swap."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from blankslate import process
from blankslate.errors import BlankslateError

MIN_MAIN_BYTES = 4 << 30
SYS_BLOCK = Path("/sys/class/block")


_DEVICE_NAME = re.compile(r"^/dev/[A-Za-z0-9._:@+/-]+\Z")


def check_device_name(flag: str, device: str) -> str:
    """A device named as a path under /dev (`sda` alone would become a relative path in a
    configuration); its existence is not checked here: the disk may be another machine's."""
    parts = device.split("/")
    if not _DEVICE_NAME.match(device) or ".." in parts or "" in parts[1:]:
        raise BlankslateError(
            f"{flag} {device!r}: give the device's path, e.g. /dev/disk/by-id/... or /dev/vda"
        )
    return device


def partition_path(disk: str, number: int) -> str:
    """The node of partition `number`: sda -> sda1, nvme0n1 -> nvme0n1p1, by-id/x -> x-part1."""
    if disk.startswith("/dev/disk/"):
        return f"{disk}-part{number}"
    if disk[-1].isdigit() or Path(disk).name.startswith("loop"):
        return f"{disk}p{number}"
    return f"{disk}{number}"


# --- builders -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GptPartition:
    size_bytes: int | None  # None: the rest of the disk
    type_code: str
    name: str


def sgdisk_layout(disk: str, partitions: Sequence[GptPartition]) -> list[str]:
    """A fresh GPT with the partitions in order, numbered from 1."""
    args = ["sgdisk", "--clear"]
    for number, part in enumerate(partitions, start=1):
        size = "0" if part.size_bytes is None else f"+{part.size_bytes // 1024}K"
        args += [f"--new={number}:0:{size}", f"--typecode={number}:{part.type_code}"]
        args += [f"--change-name={number}:{part.name}"]
    return [*args, disk]


def wipefs_all(device: str) -> list[str]:
    return ["wipefs", "--all", device]


def mkfs_vfat(partition: str, *, label: str) -> list[str]:
    return ["mkfs.vfat", "-F", "32", "-n", label, partition]


def mkswap(partition: str, *, label: str) -> list[str]:
    return ["mkswap", "--label", label, partition]


def swapon(partition: str) -> list[str]:
    return ["swapon", partition]


def swapoff(partition: str) -> list[str]:
    return ["swapoff", partition]


def wipefs_probe(device: str) -> list[str]:
    """Lists signatures without erasing; unlike lsblk it reads the disk, not udev's database."""
    return ["wipefs", "--no-act", "--json", device]


def lsblk(device: str) -> list[str]:
    columns = "NAME,PATH,TYPE,SIZE,MOUNTPOINTS"
    return ["lsblk", "--json", "--bytes", "--output", columns, device]


def losetup_attach(image: Path) -> list[str]:
    return ["losetup", "--find", "--partscan", "--show", str(image)]


def losetup_attach_readonly(image: Path) -> list[str]:
    """A probe: the image's partitions seen by the kernel, with no way to write to them."""
    return ["losetup", "--find", "--read-only", "--partscan", "--show", str(image)]


def losetup_detach(device: str) -> list[str]:
    return ["losetup", "--detach", device]


def losetup_find(image: Path) -> list[str]:
    return ["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)]


def partprobe(disk: str) -> list[str]:
    return ["partprobe", disk]


def udevadm_settle() -> list[str]:
    return ["udevadm", "settle", "--timeout=10"]


# --- probes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockDevice:
    path: str
    type: str
    size: int
    mountpoints: tuple[str, ...]
    children: tuple[BlockDevice, ...]

    def walk(self) -> list[BlockDevice]:
        return [self, *(device for child in self.children for device in child.walk())]

    @property
    def in_use(self) -> list[str]:
        """Mountpoints ("[SWAP]" for swap) of the device and its partitions."""
        return [point for device in self.walk() for point in device.mountpoints if point]


def _block_device(row: dict[str, object]) -> BlockDevice:
    points = row.get("mountpoints") or []
    children = row.get("children") or []
    assert isinstance(points, list) and isinstance(children, list)
    return BlockDevice(
        path=str(row["path"]),
        type=str(row["type"]),
        size=int(str(row["size"])),
        mountpoints=tuple(str(p) for p in points if p),
        children=tuple(_block_device(child) for child in children),
    )


def check_block_device(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise BlankslateError(f"{path}: no such device") from None
    if not stat.S_ISBLK(mode):
        raise BlankslateError(f"{path}: not a block device")


def probe(device: str) -> BlockDevice:
    """What lsblk knows of `device`; a clear error when it is not a block device."""
    check_block_device(device)
    text = process.output(lsblk(device))
    try:
        (row,) = json.loads(text)["blockdevices"]
    except (ValueError, KeyError) as error:
        raise BlankslateError(f"lsblk {device}: unexpected output ({error})") from None
    return _block_device(row)


def signatures(device: BlockDevice) -> list[str]:
    """Partition tables and filesystems found on the device and its partitions."""
    found = []
    for node in device.walk():
        text = process.output(wipefs_probe(node.path))
        try:
            rows = json.loads(text)["signatures"] if text.strip() else []
        except (ValueError, KeyError) as error:
            raise BlankslateError(f"wipefs {node.path}: unexpected output ({error})") from None
        found += [f"{row['type']} on {node.path}" for row in rows]
    return found


def holders(path: str) -> list[str]:
    """What the kernel lists as stacked on the device (device-mapper, md), by name: "dm-0
    (crypted)" for a device-mapper target with its dm name."""
    directory = SYS_BLOCK / os.path.basename(os.path.realpath(path)) / "holders"
    try:
        names = sorted(entry.name for entry in directory.iterdir())
    except OSError:
        return []
    found = []
    for name in names:
        try:
            found.append(f"{name} ({(SYS_BLOCK / name / 'dm' / 'name').read_text().strip()})")
        except OSError:
            found.append(name)
    return found


def held_exclusively(path: str) -> bool:
    """Whether something holds the device open exclusively (a mounted filesystem, a member of a
    multi-device btrfs or of an md array, a VM): then an O_EXCL open fails with EBUSY."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.EBUSY:
            return True
        raise BlankslateError(f"cannot open {path}: {error.strerror}") from None
    os.close(fd)
    return False


def exclusive_users(device: BlockDevice) -> list[str]:
    """What holds the device or one of its partitions, as "/dev/vda3 held by dm-0 (crypted)".

    A partition held exclusively makes its disk refuse O_EXCL too: the partition is named."""
    below = [found for child in device.children for found in exclusive_users(child)]
    held = holders(device.path)
    if held:
        return [f"{device.path} held by {', '.join(held)}", *below]
    if not below and held_exclusively(device.path):
        return [f"{device.path} opened exclusively by another program"]
    return below


def loop_backing_file(device: str) -> str | None:
    """The file the kernel says backs loop `device` (" (deleted)" when it was removed), or
    None when nothing is attached."""
    path = SYS_BLOCK / os.path.basename(device) / "loop" / "backing_file"
    try:
        return path.read_text().rstrip("\n")
    except OSError:
        return None


def attached_loop(image: Path) -> str | None:
    """The loop device already attached to `image`, if any."""
    lines = process.output(losetup_find(image)).split()
    return lines[0] if lines else None


def wait_for(paths: list[str], timeout: float = 10.0) -> None:
    """Partition nodes appear asynchronously after a table change: settle, then poll."""
    if process.which("udevadm"):
        process.probe(udevadm_settle(), check=False)
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(path) for path in paths):
        if time.monotonic() > deadline:
            missing = ", ".join(path for path in paths if not os.path.exists(path))
            raise BlankslateError(f"partition nodes did not appear: {missing}")
        time.sleep(0.05)


_SWAPS = Path("/proc/swaps")


def active_swaps() -> list[str]:
    try:
        lines = _SWAPS.read_text().splitlines()[1:]
    except OSError:
        return []
    return [line.split()[0] for line in lines if line.strip()]


def is_whole_disk(device: BlockDevice) -> bool:
    return device.type in ("disk", "loop") and not re.search(r"-part\d+$", device.path)
