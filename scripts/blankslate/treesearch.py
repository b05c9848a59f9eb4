"""Fast scan of a btrfs subvolume with the tree-search ioctl (BTRFS_IOC_TREE_SEARCH_V2).

One pass over the subvolume's b-tree reads every inode item (mode, size) and inode ref (parent
directory, name) in large batches: no system call per file. The inode numbers are read as two
stretches, so that the kernel searches one while Python parses the other. Nested subvolumes
are found through their ROOT_REF items in the root tree and scanned the same way. The result
is what `scan.walk` reports for the same tree, entry for entry.

It needs CAP_SYS_ADMIN and a btrfs subvolume's root directory; otherwise `scan` returns None
and the caller walks the tree. Placeholder directories that a snapshot leaves where a nested
subvolume was (inode 2, no inode item) are not reported; the walk reports them as directories.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import struct
import threading
from collections.abc import Callable, Iterator
from queue import SimpleQueue

from blankslate.bounds import LISTED_PATH_MAX, Beyond, count_beyond, too_long
from blankslate.display import quote_path

# One scanned entry as a plain tuple: path, kind, size, symlink target (`scan.Raw`'s fields in
# its order). It lives here, below `scan`, so that `scan` imports this module and not back.
RawTuple = tuple[str, str, int, str | None]

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

LAST_FREE_OBJECTID = 2**64 - 256  # inode numbers stay below it (linux/btrfs_tree.h)
PROBE_BUFFER_SIZE = 64 << 10  # holds any one item (at most a node)

Items = Iterator[tuple[bytearray, int, int, int, int, int]]
Key = tuple[int, int, int]  # (objectid, type, offset): the order of the items in a tree
AddRecord = Callable[[int, int, str, int, int], None]  # inode, parent, name, mode, size


def _pack_search(
    args: bytearray, tree: int, start: Key, last_objectid: int, last_type: int, items: int = U32_MAX
) -> None:
    """Set up `args` for a search of `tree` from `start` up to (last_objectid, last_type, any
    offset), at most `items` items, into the rest of `args`."""
    objectid, kind, offset = start
    SEARCH_KEY.pack_into(
        args, 0, tree, objectid, last_objectid, offset, U64_MAX, 0, U64_MAX,
        kind, last_type, items, 0, 0, 0, 0, 0,
    )  # fmt: skip
    BUF_SIZE_FIELD.pack_into(args, SEARCH_KEY.size, len(args) - ARGS_SIZE)


def _key_after(objectid: int, kind: int, offset: int) -> Key:
    """The first key after this one: where the next batch of a search starts."""
    if offset < U64_MAX:
        return objectid, kind, offset + 1
    if kind < 255:
        return objectid, kind + 1, 0
    return objectid + 1, 0, 0


def _search(fd: int, tree: int, objectid: tuple[int, int], types: tuple[int, int]) -> Items:
    """(buffer, objectid, offset, type, data offset, data length) of every item in range."""
    args = bytearray(ARGS_SIZE + BUFFER_SIZE)
    start: Key = (objectid[0], types[0], 0)
    while start[0] <= objectid[1]:
        _pack_search(args, tree, start, objectid[1], types[1])
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
        start = _key_after(item_objectid, item_type, offset)


def subvolume_id(fd: int) -> int:
    args = bytearray(4096)
    struct.pack_into("<QQ", args, 0, 0, FIRST_FREE_OBJECTID)
    fcntl.ioctl(fd, IOC_INO_LOOKUP, args, True)
    return int(struct.unpack_from("<Q", args, 0)[0])


def _decode(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", "surrogateescape")


KIND_OF_FORMAT = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink"}
S_IFMT = 0o170000  # stat.S_IFMT(mode) is mode & S_IFMT


class _Tree:
    """The entries of one tree, built while its items stream past.

    Keys sort as (objectid, type, offset), so an inode's INODE_ITEM comes right before its
    INODE_REFs and the entry is complete when its ref arrives. Directories mostly have lower
    inode numbers than what they hold, so the parent's path is usually known by then; the rest
    (directories renamed into later ones) wait in `pending` until the tree is read.

    An entry whose path would be longer than `scan.LISTED_PATH_MAX` bytes is counted into
    `beyond` under its deepest listed directory (`deep` maps the directories past the cap to
    it), not listed. A symlink's target is read from the held root (`root_fd`) by a path
    relative to it, which the cap keeps short; one that is gone by then is left out.
    """

    def __init__(
        self,
        prefix: str | None,
        cut: str,
        root_fd: int,
        out: list[RawTuple],
        beyond: Beyond,
        problems: list[str],
    ) -> None:
        self.directories: dict[int, str] = {}
        self.deep: dict[int, str] = {}  # directory past the cap -> the listed one above it
        if prefix is None:
            self.deep[FIRST_FREE_OBJECTID] = cut
        else:
            self.directories[FIRST_FREE_OBJECTID] = prefix
        self.pending: list[tuple[int, int, str, int, int]] = []  # inode, parent, name, mode, size
        self.root_fd = root_fd
        self.out = out
        self.append = out.append
        self.beyond = beyond
        self.problems = problems

    def add(self, inode: int, parent: int, name: str, mode: int, size: int) -> None:
        # Called once per entry: stat.S_IFMT and too_long's first test are written out.
        head = self.directories.get(parent)
        kind = KIND_OF_FORMAT.get(mode & S_IFMT, "other")
        if head is None:
            cut = self.deep.get(parent)
            if cut is None:
                self.pending.append((inode, parent, name, mode, size))
            else:
                self._count_beyond(inode, cut, kind, size)
            return
        path = f"{head}/{name}"
        if len(path) * 4 > LISTED_PATH_MAX and too_long(path):
            self._count_beyond(inode, head, kind, size)
        elif kind == "file":
            self.append((path, kind, size, None))
        elif kind == "dir":
            self.directories[inode] = path
            self.out.append((path, kind, 0, None))
        elif kind == "symlink":
            try:
                target = os.readlink(path.lstrip("/"), dir_fd=self.root_fd)
            except OSError as error:
                if error.errno not in (errno.ENOENT, errno.ENOTDIR):
                    self.problems.append(f"cannot inspect {quote_path(path)}: {error.strerror}")
                return  # gone since the tree was read (or unreadable: said so)
            self.out.append((path, kind, len(os.fsencode(target)), target))
        else:
            self.out.append((path, kind, 0, None))

    def _count_beyond(self, inode: int, cut: str, kind: str, size: int) -> None:
        """An entry too deep to list: counted into `cut` (a symlink's size is the target's
        length, as the inode item has it)."""
        if kind == "dir":
            self.deep[inode] = cut
        count_beyond(self.beyond, cut, size if kind in ("file", "symlink") else 0)

    def place(self, dirid: int) -> tuple[str | None, str] | None:
        """Where a nested subvolume hanging off directory `dirid` goes: (its parent's path or
        None past the cap, the listed directory it counts into); None: off nothing."""
        head = self.directories.get(dirid)
        if head is not None:
            return head, head
        cut = self.deep.get(dirid)
        return None if cut is None else (None, cut)

    def settle(self) -> None:
        """Place the pending entries whose directories are known by now, until none is left
        or what is left hangs off nothing (a directory being deleted)."""
        while self.pending:
            waiting, self.pending = self.pending, []
            for entry in waiting:
                self.add(*entry)
            if len(self.pending) == len(waiting):
                return


class _Stretch:
    """A stretch of inode numbers of one tree, read batch by batch into its own buffer."""

    def __init__(self, tree: int, first: int, last: int) -> None:
        self.tree, self.last = tree, last
        self.args = bytearray(ARGS_SIZE + BUFFER_SIZE)
        # A ctypes view of the buffer, kept for as long as the thread may write through it.
        self.view = (ctypes.c_char * len(self.args)).from_buffer(self.args)
        self.next_key = (first, INODE_ITEM_KEY, 0)
        self.inode = (-1, -1, -1)  # objectid, mode and size of the last INODE_ITEM read
        self.searched: SimpleQueue[BaseException | None] = SimpleQueue()  # None: done

    def prepare(self) -> None:
        _pack_search(self.args, self.tree, self.next_key, self.last, INODE_EXTREF_KEY)


class _Searcher:
    """Runs the searches of stretches on a helper thread, so that the kernel fills one
    stretch's buffer while this thread parses another's. The ioctl goes through ctypes, which
    lets go of the GIL during the call (the fcntl module keeps it for buffers over 1 KiB)."""

    def __init__(self, fd: int) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.ioctl = libc.ioctl
        self.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
        self.ioctl.restype = ctypes.c_int
        self.fd = fd
        self.queue: SimpleQueue[_Stretch | None] = SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="tree-search", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while (stretch := self.queue.get()) is not None:
            try:
                stretch.prepare()
                if self.ioctl(self.fd, IOC_TREE_SEARCH_V2, ctypes.addressof(stretch.view)) < 0:
                    code = ctypes.get_errno()
                    raise OSError(code, os.strerror(code))
            except BaseException as error:  # handed to the waiting thread, which raises it
                stretch.searched.put(error)
            else:
                stretch.searched.put(None)

    def start(self, stretch: _Stretch) -> None:
        self.queue.put(stretch)

    def wait(self, stretch: _Stretch) -> None:
        error = stretch.searched.get()
        if error is not None:
            raise error

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def _parse_batch(stretch: _Stretch, add: AddRecord) -> bool:
    """Hand every (inode, parent, name) link of the batch to `add`, with the inode's mode and
    size; False when the stretch has no more items.

    The hot loop of the scan: a batch holds every item of the tree (directory entries and
    extents too, most of them), so only the type and length of each are read until one is
    wanted, and the header loop is written out here rather than through `_search`.
    """
    args = stretch.args
    count = COUNT.unpack_from(args, NR_ITEMS_OFFSET)[0]
    if count == 0:
        return False
    kind_and_length, ids = TYPE_AND_LENGTH.unpack_from, OBJECTID_AND_OFFSET.unpack_from
    inode_item, ref_name_length, extref = (
        INODE.unpack_from,
        REF_NAME_LENGTH.unpack_from,
        EXTREF.unpack_from,
    )
    inode, mode, size = stretch.inode
    header_size = HEADER.size
    position = header = ARGS_SIZE
    for _ in range(count):
        header = position
        kind, length = kind_and_length(args, position + 24)
        position += header_size + length
        if kind > INODE_EXTREF_KEY:
            continue  # directory entries, extents, xattrs: most items
        data = header + header_size
        if kind == INODE_ITEM_KEY:
            inode = ids(args, header)[0]
            size, mode = inode_item(args, data)
        elif kind == INODE_REF_KEY:
            objectid, parent = ids(args, header)
            if objectid == FIRST_FREE_OBJECTID or objectid != inode:
                continue  # the subvolume root's ".." entry (or a ref without its inode)
            while data < position:
                name_length = ref_name_length(args, data)[0]
                data += REF_SIZE
                name = args[data : data + name_length].decode("utf-8", "surrogateescape")
                add(inode, parent, name, mode, size)
                data += name_length
        elif kind == INODE_EXTREF_KEY and ids(args, header)[0] == inode:
            while data < position:
                parent, _index, name_length = extref(args, data)
                data += EXTREF.size
                name = args[data : data + name_length].decode("utf-8", "surrogateescape")
                add(inode, parent, name, mode, size)
                data += name_length
    stretch.inode = (inode, mode, size)
    _transid, objectid, offset, kind, _length = HEADER.unpack_from(args, header)
    stretch.next_key = _key_after(objectid, kind, offset)
    return True


def _first_objectid_from(fd: int, tree: int, objectid: int, args: bytearray) -> int | None:
    """The lowest objectid from `objectid` on (below LAST_FREE_OBJECTID) that has an item;
    `args` is the buffer to search with."""
    _pack_search(args, tree, (objectid, 0, 0), LAST_FREE_OBJECTID - 1, 255, items=1)
    fcntl.ioctl(fd, IOC_TREE_SEARCH_V2, args, True)
    if COUNT.unpack_from(args, NR_ITEMS_OFFSET)[0] == 0:
        return None
    return int(OBJECTID_AND_OFFSET.unpack_from(args, ARGS_SIZE)[0])


def _highest_inode(fd: int, tree: int) -> int:
    """The highest objectid with an item, by bisection with one-item searches."""
    args = bytearray(ARGS_SIZE + PROBE_BUFFER_SIZE)
    low, high = FIRST_FREE_OBJECTID, LAST_FREE_OBJECTID  # an item at low, none from high on
    while high - low > 1:
        middle = (low + high) // 2
        found = _first_objectid_from(fd, tree, middle, args)
        if found is None:
            high = middle
        else:
            low = found
    return low


def _read_tree(fd: int, tree: int, add: AddRecord) -> None:
    """Every link of the tree, handed to `add`, read as two stretches of inode numbers whose
    searches and parsing overlap: while one stretch's batch is parsed here, the helper thread
    searches the other's next batch."""
    middle = (FIRST_FREE_OBJECTID + _highest_inode(fd, tree)) // 2 + 1
    stretches = [
        _Stretch(tree, FIRST_FREE_OBJECTID, middle - 1),
        _Stretch(tree, middle, LAST_FREE_OBJECTID - 1),
    ]
    searcher = _Searcher(fd)
    try:
        for stretch in stretches:
            searcher.start(stretch)
        while stretches:
            unfinished = []
            for stretch in stretches:
                searcher.wait(stretch)
                if _parse_batch(stretch, add):
                    searcher.start(stretch)
                    unfinished.append(stretch)
            stretches = unfinished
    finally:
        searcher.close()


def _scan_trees(
    fd: int, tree: int, out: list[RawTuple], beyond: Beyond, problems: list[str]
) -> None:
    """The tree `tree` and every subvolume nested in it, however deep: a loop over a stack of
    trees still to read, not a recursion."""
    stack: list[tuple[int, str | None, str]] = [(tree, "", "")]  # tree, prefix, cut
    while stack:
        tree, prefix, cut = stack.pop()
        entries = _Tree(prefix, cut, fd, out, beyond, problems)
        _read_tree(fd, tree, entries.add)
        entries.settle()
        # Nested subvolumes hang off directories of this tree.
        for _buf, _objectid, child, _kind, data, _length in _search(
            fd, ROOT_TREE_OBJECTID, (tree, tree), (ROOT_REF_KEY, ROOT_REF_KEY)
        ):
            dirid, _sequence, name_length = ROOT_REF.unpack_from(_buf, data)
            start = data + ROOT_REF.size
            placed = entries.place(dirid)
            if placed is None:
                continue
            head, listed = placed
            path = None if head is None else f"{head}/{_decode(_buf[start : start + name_length])}"
            if path is None or too_long(path):
                count_beyond(beyond, listed, 0)
                stack.append((child, None, listed))
            else:
                out.append((path, "subvolume", 0, None))
                stack.append((child, path, path))


def scan(root: str, beyond: Beyond | None = None) -> tuple[list[RawTuple], list[str]] | None:
    """Every entry of the subvolume whose root directory is `root`, with problems, or None
    (not available). What lies deeper than `scan.LISTED_PATH_MAX` bytes is counted into
    `beyond`."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_ino != FIRST_FREE_OBJECTID:
            return None
        out: list[RawTuple] = []
        problems: list[str] = []
        _scan_trees(fd, subvolume_id(fd), out, {} if beyond is None else beyond, problems)
        return out, problems
    except OSError as error:
        if error.errno in (errno.EPERM, errno.EACCES, errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise
    finally:
        os.close(fd)
