"""Fast scan of a btrfs subvolume with the tree-search ioctl (BTRFS_IOC_TREE_SEARCH_V2).

One pass over the subvolume's b-tree reads every inode item (mode, size) and inode ref (parent
directory, name) in large batches: no system call per file. Nested subvolumes are found through
their ROOT_REF items in the root tree and scanned the same way. The result is what
`audit.walk` reports for the same tree, entry for entry.

It needs CAP_SYS_ADMIN and a btrfs subvolume's root directory; otherwise `scan` returns None
and the caller walks the tree. Placeholder directories that a snapshot leaves where a nested
subvolume was (inode 2, no inode item) are not reported; the walk reports them as directories.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blankslate.audit import RawTuple

# From linux/btrfs.h: _IOWR(0x94, 17, struct btrfs_ioctl_search_args_v2) and
# _IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args).
IOC_TREE_SEARCH_V2 = 0xC0709411
IOC_INO_LOOKUP = 0xD0009412

FIRST_FREE_OBJECTID = 256  # a subvolume's root directory
ROOT_TREE_OBJECTID = 1
INODE_ITEM_KEY = 1
INODE_REF_KEY = 12
INODE_EXTREF_KEY = 13
ROOT_REF_KEY = 156
U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1

SEARCH_KEY = struct.Struct("<7Q4I4Q")  # struct btrfs_ioctl_search_key, 104 bytes
BUF_SIZE_FIELD = struct.Struct("<Q")  # follows the key in btrfs_ioctl_search_args_v2
NR_ITEMS_OFFSET = 7 * 8 + 2 * 4
HEADER = struct.Struct("<3Q2I")  # struct btrfs_ioctl_search_header, 32 bytes
ARGS_SIZE = SEARCH_KEY.size + BUF_SIZE_FIELD.size
BUFFER_SIZE = 4 << 20
INODE_SIZE = struct.Struct("<Q")  # btrfs_inode_item.size, at offset 16
INODE_MODE = struct.Struct("<I")  # btrfs_inode_item.mode, at offset 52
REF = struct.Struct("<QH")  # btrfs_inode_ref: index, name_len, name
EXTREF = struct.Struct("<QQH")  # btrfs_inode_extref: parent, index, name_len, name
ROOT_REF = struct.Struct("<QQH")  # btrfs_root_ref: dirid, sequence, name_len, name

Items = Iterator[tuple[bytearray, int, int, int, int, int]]
RefEntry = tuple[int, int, str]  # (inode, parent directory inode, name)


def _search(fd: int, tree: int, objectid: tuple[int, int], types: tuple[int, int]) -> Items:
    """(buffer, objectid, offset, type, data offset, data length) of every item in range."""
    args = bytearray(ARGS_SIZE + BUFFER_SIZE)
    min_objectid, min_type, min_offset = objectid[0], types[0], 0
    while True:
        SEARCH_KEY.pack_into(
            args, 0, tree, min_objectid, objectid[1], min_offset, U64_MAX, 0, U64_MAX,
            min_type, types[1], U32_MAX, 0, 0, 0, 0, 0,
        )  # fmt: skip
        BUF_SIZE_FIELD.pack_into(args, SEARCH_KEY.size, BUFFER_SIZE)
        fcntl.ioctl(fd, IOC_TREE_SEARCH_V2, args, True)
        count = INODE_MODE.unpack_from(args, NR_ITEMS_OFFSET)[0]
        if count == 0:
            return
        position = ARGS_SIZE
        unpack = HEADER.unpack_from
        for _ in range(count):
            _transid, item_objectid, offset, item_type, length = unpack(args, position)
            position += HEADER.size
            yield args, item_objectid, offset, item_type, position, length
            position += length
        # Resume after the last key returned (keys compare as (objectid, type, offset)).
        min_objectid, min_type, min_offset = item_objectid, item_type, offset + 1
        if offset == U64_MAX:
            min_offset, min_type = 0, item_type + 1
            if item_type == 255:
                min_type, min_objectid = 0, item_objectid + 1
        if min_objectid > objectid[1]:
            return


def subvolume_id(fd: int) -> int:
    args = bytearray(4096)
    struct.pack_into("<QQ", args, 0, 0, FIRST_FREE_OBJECTID)
    fcntl.ioctl(fd, IOC_INO_LOOKUP, args, True)
    return int(struct.unpack_from("<Q", args, 0)[0])


def _decode(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", "surrogateescape")


def _inodes_and_refs(fd: int, tree: int) -> tuple[dict[int, tuple[int, int]], list[RefEntry]]:
    """Every inode's (mode, size) and every (inode, parent, name) link of one tree.

    The hot loop of the scan: the batches hold every item of the tree (directory entries and
    extents too), so the header loop is written out here rather than through `_search`.
    """
    inodes: dict[int, tuple[int, int]] = {}
    refs: list[RefEntry] = []
    args = bytearray(ARGS_SIZE + BUFFER_SIZE)
    header, header_size = HEADER.unpack_from, HEADER.size
    mode_of, size_of, ref_of, extref_of = (
        INODE_MODE.unpack_from, INODE_SIZE.unpack_from, REF.unpack_from, EXTREF.unpack_from,
    )  # fmt: skip
    min_objectid, min_type, min_offset = FIRST_FREE_OBJECTID, INODE_ITEM_KEY, 0
    while True:
        SEARCH_KEY.pack_into(
            args, 0, tree, min_objectid, U64_MAX, min_offset, U64_MAX, 0, U64_MAX,
            min_type, INODE_EXTREF_KEY, U32_MAX, 0, 0, 0, 0, 0,
        )  # fmt: skip
        BUF_SIZE_FIELD.pack_into(args, SEARCH_KEY.size, BUFFER_SIZE)
        fcntl.ioctl(fd, IOC_TREE_SEARCH_V2, args, True)
        count = INODE_MODE.unpack_from(args, NR_ITEMS_OFFSET)[0]
        if count == 0:
            return inodes, refs
        position = ARGS_SIZE
        objectid = offset = kind = 0
        for _ in range(count):
            _transid, objectid, offset, kind, length = header(args, position)
            data = position + header_size
            position = data + length
            if kind == INODE_ITEM_KEY:
                inodes[objectid] = (mode_of(args, data + 52)[0], size_of(args, data + 16)[0])
            elif kind == INODE_REF_KEY:
                if objectid == FIRST_FREE_OBJECTID:
                    continue  # the subvolume root's ".." entry
                while data < position:
                    _index, name_length = ref_of(args, data)
                    data += REF.size
                    name = args[data : data + name_length].decode("utf-8", "surrogateescape")
                    refs.append((objectid, offset, name))
                    data += name_length
            elif kind == INODE_EXTREF_KEY:
                while data < position:
                    parent, _index, name_length = extref_of(args, data)
                    data += EXTREF.size
                    name = args[data : data + name_length].decode("utf-8", "surrogateescape")
                    refs.append((objectid, parent, name))
                    data += name_length
        # Resume after the last key returned (keys compare as (objectid, type, offset)).
        min_objectid, min_type, min_offset = objectid, kind, offset + 1
        if offset == U64_MAX:
            min_objectid, min_type, min_offset = objectid + 1, 0, 0


def _scan_tree(fd: int, tree: int, prefix: str, root: str, out: list[RawTuple]) -> None:
    inodes, refs = _inodes_and_refs(fd, tree)
    directories: dict[int, str] = {FIRST_FREE_OBJECTID: prefix}
    parent_of: dict[int, tuple[int, str]] = {}
    for inode, parent, name in refs:
        if stat.S_ISDIR(inodes.get(inode, (0, 0))[0]):
            parent_of[inode] = (parent, name)

    def directory(inode: int) -> str | None:
        chain: list[tuple[int, str]] = []
        while inode not in directories:
            step = parent_of.get(inode)
            if step is None:
                return None  # detached (being deleted)
            chain.append((inode, step[1]))
            inode = step[0]
        path = directories[inode]
        for child, name in reversed(chain):
            path = directories[child] = f"{path}/{name}"
        return path

    append = out.append
    for inode, parent, name in refs:
        info = inodes.get(inode)
        head = directories.get(parent)
        if head is None:
            head = directory(parent)
        if info is None or head is None:
            continue
        path = f"{head}/{name}"
        mode, size = info
        if stat.S_ISREG(mode):
            append((path, "file", size, None))
        elif stat.S_ISDIR(mode):
            append((path, "dir", 0, None))
        elif stat.S_ISLNK(mode):
            target = os.readlink(root + path)
            append((path, "symlink", len(os.fsencode(target)), target))
        else:
            append((path, "other", 0, None))
    # Nested subvolumes hang off directories of this tree.
    for _buf, _objectid, child, _kind, data, _length in _search(
        fd, ROOT_TREE_OBJECTID, (tree, tree), (ROOT_REF_KEY, ROOT_REF_KEY)
    ):
        dirid, _sequence, name_length = ROOT_REF.unpack_from(_buf, data)
        start = data + ROOT_REF.size
        head = directory(dirid)
        if head is None:
            continue
        path = f"{head}/{_decode(_buf[start : start + name_length])}"
        append((path, "subvolume", 0, None))
        _scan_tree(fd, child, path, root, out)


def scan(root: str) -> list[RawTuple] | None:
    """Every entry of the subvolume whose root directory is `root`, or None (not available)."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_ino != FIRST_FREE_OBJECTID:
            return None
        out: list[RawTuple] = []
        _scan_tree(fd, subvolume_id(fd), "", root.rstrip("/"), out)
        return out
    except OSError as error:
        if error.errno in (errno.EPERM, errno.EACCES, errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise
    finally:
        os.close(fd)
