"""btrfs-progs builders and probes. One function per `btrfs` command, so tests can assert argv."""

from __future__ import annotations

from pathlib import Path


def mkfs_btrfs(device: str, *, label: str) -> list[str]:
    return ["mkfs.btrfs", "--force", "--label", label, device]


def subvolume_create(path: Path) -> list[str]:
    return ["btrfs", "subvolume", "create", str(path)]


def subvolume_snapshot(source: Path, target: Path, *, readonly: bool = False) -> list[str]:
    args = ["btrfs", "subvolume", "snapshot"]
    if readonly:
        args.append("-r")
    return [*args, str(source), str(target)]


def subvolume_delete(path: Path) -> list[str]:
    return ["btrfs", "subvolume", "delete", str(path)]


def subvolume_show(path: Path) -> list[str]:
    return ["btrfs", "subvolume", "show", str(path)]


def property_get_ro(path: Path) -> list[str]:
    return ["btrfs", "property", "get", "-ts", str(path), "ro"]


def is_subvolume(path: Path) -> bool:
    """A btrfs subvolume's root directory always has inode number 256."""
    try:
        return path.is_dir() and not path.is_symlink() and path.stat().st_ino == 256
    except OSError:
        return False


def qgroup_show(path: Path) -> list[str]:
    """Sizes in bytes per quota group ("0/ID rfer excl"); fails when quotas are off."""
    return ["btrfs", "qgroup", "show", "--raw", str(path)]


def subvolume_list(path: Path) -> list[str]:
    """Every subvolume: "ID 257 gen 12 top level 5 path old_roots/..."."""
    return ["btrfs", "subvolume", "list", str(path)]


def subvolume_list_below(path: Path) -> list[str]:
    """The subvolumes directly below the subvolume at `path`, paths from the top level:
    "ID 301 gen 40 top level 258 path persist/var/lib/machines"."""
    return ["btrfs", "subvolume", "list", "-o", str(path)]


def nested_subvolumes(listing: str) -> list[str]:
    """The paths (from the top level) of a `btrfs subvolume list` listing."""
    return [line.split(" path ", 1)[1] for line in listing.splitlines() if " path " in line]


def send(snapshot: Path, parent: Path | None = None) -> list[str]:
    """The read-only subvolume `snapshot` as a stream on stdout; with `parent`, only what
    changed since it (the receiving side must hold `parent` already)."""
    args = ["btrfs", "send"]
    if parent is not None:
        args += ["-p", str(parent)]
    return [*args, str(snapshot)]


def filesystem_du_summary(path: Path) -> list[str]:
    """The bytes the files below `path` use (subvolumes within included), in one line:
    "Total Exclusive Set-shared Filename". It reads every file's extents: no quotas needed."""
    return ["btrfs", "filesystem", "du", "-s", "--raw", str(path)]


def parse_du_summary(text: str) -> tuple[int, int, int] | None:
    """(total, exclusive, set shared) bytes of `btrfs filesystem du -s --raw`'s first data
    line ("-" counts as 0); None when the output has no such line."""
    for line in text.splitlines():
        fields = line.split(maxsplit=3)
        if len(fields) < 4:
            continue
        numbers = [
            0 if f == "-" else int(f) if f.isascii() and f.isdigit() else -1 for f in fields[:3]
        ]
        if min(numbers) >= 0:
            return numbers[0], numbers[1], numbers[2]
    return None
