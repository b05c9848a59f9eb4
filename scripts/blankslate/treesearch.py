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
COUNT = struct.Struct("<I")  # btrfs_ioctl_search_key.nr_items
TYPE_AND_LENGTH = struct.Struct("<II")  # of a search header, at offset 24
OBJECTID_AND_OFFSET = struct.Struct("<8xQQ")  # of a search header
INODE = struct.Struct("<16xQ28xI")  # btrfs_inode_item: size at offset 16, mode at 52
REF_NAME_LENGTH = struct.Struct("<8xH")  # btrfs_inode_ref: index, name_len, then the name
REF_SIZE = 10
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
        count = COUNT.unpack_from(args, NR_ITEMS_OFFSET)[0]
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


KIND_OF_FORMAT = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink"}


class _Tree:
    """The entries of one tree, built while its items stream past.

    Keys sort as (objectid, type, offset), so an inode's INODE_ITEM comes right before its
    INODE_REFs and the entry is complete when its ref arrives. Directories mostly have lower
    inode numbers than what they hold, so the parent's path is usually known by then; the rest
    (directories renamed into later ones) wait in `pending` until the tree is read.
    """

    def __init__(self, prefix: str, root: str, out: list[RawTuple]) -> None:
        self.directories: dict[int, str] = {FIRST_FREE_OBJECTID: prefix}
        self.pending: list[tuple[int, int, str, int, int]] = []  # inode, parent, name, mode, size
        self.root = root
        self.out = out

    def add(self, inode: int, parent: int, name: str, mode: int, size: int) -> None:
        head = self.directories.get(parent)
        if head is None:
            self.pending.append((inode, parent, name, mode, size))
            return
        path = f"{head}/{name}"
        kind = KIND_OF_FORMAT.get(stat.S_IFMT(mode), "other")
        if kind == "file":
            self.out.append((path, kind, size, None))
        elif kind == "dir":
            self.directories[inode] = path
            self.out.append((path, kind, 0, None))
        elif kind == "symlink":
            target = os.readlink(self.root + path)
            self.out.append((path, kind, len(os.fsencode(target)), target))
        else:
            self.out.append((path, kind, 0, None))

    def settle(self) -> None:
        """Place the pending entries whose directories are known by now, until none is left
        or what is left hangs off nothing (a directory being deleted)."""
        while self.pending:
            waiting, self.pending = self.pending, []
            for entry in waiting:
                self.add(*entry)
            if len(self.pending) == len(waiting):
                return


def _read_tree(fd: int, tree: int, entries: _Tree) -> None:
    """Every (inode, parent, name) link of one tree, with the inode's mode and size.

    The hot loop of the scan: a batch holds every item of the tree (directory entries and
    extents too, most of them), so only the type and length of each are read until one is
    wanted, and the header loop is written out here rather than through `_search`.
    """
    args = bytearray(ARGS_SIZE + BUFFER_SIZE)
    kind_and_length, ids = TYPE_AND_LENGTH.unpack_from, OBJECTID_AND_OFFSET.unpack_from
    inode_item, ref_name_length, extref = (
        INODE.unpack_from,
        REF_NAME_LENGTH.unpack_from,
        EXTREF.unpack_from,
    )
    add = entries.add
    inode = mode = size = -1  # the last INODE_ITEM seen
    min_objectid, min_type, min_offset = FIRST_FREE_OBJECTID, INODE_ITEM_KEY, 0
    while True:
        SEARCH_KEY.pack_into(
            args, 0, tree, min_objectid, U64_MAX, min_offset, U64_MAX, 0, U64_MAX,
            min_type, INODE_EXTREF_KEY, U32_MAX, 0, 0, 0, 0, 0,
        )  # fmt: skip
        BUF_SIZE_FIELD.pack_into(args, SEARCH_KEY.size, BUFFER_SIZE)
        fcntl.ioctl(fd, IOC_TREE_SEARCH_V2, args, True)
        count = COUNT.unpack_from(args, NR_ITEMS_OFFSET)[0]
        if count == 0:
            return
        position = ARGS_SIZE
        for _ in range(count):
            header = position
            kind, length = kind_and_length(args, position + 24)
            data = position + HEADER.size
            end = data + length
            if kind == INODE_ITEM_KEY:
                inode = ids(args, position)[0]
                size, mode = inode_item(args, data)
            elif kind == INODE_REF_KEY:
                objectid, parent = ids(args, position)
                if objectid == FIRST_FREE_OBJECTID or objectid != inode:
                    position = end
                    continue  # the subvolume root's ".." entry (or a ref without its inode)
                while data < end:
                    name_length = ref_name_length(args, data)[0]
                    data += REF_SIZE
                    add(
                        inode,
                        parent,
                        args[data : data + name_length].decode("utf-8", "surrogateescape"),
                        mode,
                        size,
                    )
                    data += name_length
            elif kind == INODE_EXTREF_KEY and ids(args, position)[0] == inode:
                while data < end:
                    parent, _index, name_length = extref(args, data)
                    data += EXTREF.size
                    add(
                        inode,
                        parent,
                        args[data : data + name_length].decode("utf-8", "surrogateescape"),
                        mode,
                        size,
                    )
                    data += name_length
            position = end
        # Resume after the last key returned (keys compare as (objectid, type, offset)).
        _transid, objectid, offset, kind, _length = HEADER.unpack_from(args, header)
        min_objectid, min_type, min_offset = objectid, kind, offset + 1
        if offset == U64_MAX:
            min_objectid, min_type, min_offset = objectid + 1, 0, 0


def _scan_tree(fd: int, tree: int, prefix: str, root: str, out: list[RawTuple]) -> None:
    entries = _Tree(prefix, root, out)
    _read_tree(fd, tree, entries)
    entries.settle()
    # Nested subvolumes hang off directories of this tree.
    for _buf, _objectid, child, _kind, data, _length in _search(
        fd, ROOT_TREE_OBJECTID, (tree, tree), (ROOT_REF_KEY, ROOT_REF_KEY)
    ):
        dirid, _sequence, name_length = ROOT_REF.unpack_from(_buf, data)
        start = data + ROOT_REF.size
        head = entries.directories.get(dirid)
        if head is None:
            continue
        path = f"{head}/{_decode(_buf[start : start + name_length])}"
        out.append((path, "subvolume", 0, None))
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
