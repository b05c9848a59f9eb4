"""Fast scan of a btrfs subvolume with the tree-search ioctl (BTRFS_IOC_TREE_SEARCH_V2).

One pass over the subvolume's b-tree reads every inode item (mode, size) and inode ref (parent
directory, name) in large batches: no system call per file. The inode numbers are read as
stretches, so that the kernel searches some (on helper threads, as many as the CPUs allow
beside the parsing: `SEARCH_THREADS`) while Python parses another. Nested subvolumes
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
from collections.abc import Iterator
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
BUFFER_SIZE = 2 << 20  # of each stretch
COUNT = struct.Struct("<I")  # btrfs_ioctl_search_key.nr_items
TYPE_AND_LENGTH = struct.Struct("<II")  # of a search header, at offset 24
OBJECTID_AND_OFFSET = struct.Struct("<8xQQ")  # of a search header
REF_NAME_LENGTH = struct.Struct("<8xH")  # btrfs_inode_ref: index, name_len, then the name
REF_SIZE = 10
EXTREF = struct.Struct("<QQH")  # btrfs_inode_extref: parent, index, name_len, name
ROOT_REF = struct.Struct("<QQH")  # btrfs_root_ref: dirid, sequence, name_len, name
# Read from a search header on: its objectid, then the inode item's size and mode after it.
INODE_AT_HEADER = struct.Struct("<8xQ32xQ28xI")
# Read from a search header on: objectid and offset (the parent), then the inode ref's name_len.
REF_AT_HEADER = struct.Struct("<8xQQ16xH")
REF_NAME_AT = HEADER.size + REF_SIZE  # the inode ref's name, from its search header

LAST_FREE_OBJECTID = 2**64 - 256  # inode numbers stay below it (linux/btrfs_tree.h)
PROBE_BUFFER_SIZE = 64 << 10  # holds any one item (at most a node)


def _search_threads() -> int:
    """How many threads search at once: the parsing thread keeps one CPU, the searches take
    the others, at most two (a tree not yet cached waits on the disk). On two CPUs a second
    search thread only took CPU time from the parsing: a warm scan of 1,000,000 entries went
    from 1.2 s to 1.8 s (bench/scale.py)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus - 1))


SEARCH_THREADS = _search_threads()
# Stretches of inode numbers read side by side, each with its own buffer: two per search
# thread, so that one is parsed while the other is searched.
STRETCHES = 2 * SEARCH_THREADS

Items = Iterator[tuple[bytearray, int, int, int, int, int]]
Key = tuple[int, int, int]  # (objectid, type, offset): the order of the items in a tree


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
    """Runs the searches of stretches on helper threads, so that the kernel fills some
    stretches' buffers while this thread parses another's. The ioctl goes through ctypes, which
    lets go of the GIL during the call (the fcntl module keeps it for buffers over 1 KiB)."""

    def __init__(self, fd: int) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.ioctl = libc.ioctl
        self.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
        self.ioctl.restype = ctypes.c_int
        self.fd = fd
        self.queue: SimpleQueue[_Stretch | None] = SimpleQueue()
        self.threads = [
            threading.Thread(target=self._serve, name="tree-search", daemon=True)
            for _ in range(SEARCH_THREADS)
        ]
        for thread in self.threads:
            thread.start()

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
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()


def _parse_batch(stretch: _Stretch, tree: _Tree) -> bool:
    """Hand every (inode, parent, name) link of the batch to `tree`, with the inode's mode and
    size; False when the stretch has no more items.

    The hot loop of the scan: a batch holds every item of the tree (directory entries and
    extents too, most of them), so only the type and length of each are read until one is
    wanted, and the header loop is written out here rather than through `_search`. An inode
    item is read with its header in one unpack, and so is an inode ref with one name (nearly
    all of them); a file or directory whose parent is listed and whose path is short is added
    right here, as `_Tree.add` would add it, and every other link goes through `_Tree.add`.
    """
    args = stretch.args
    count = COUNT.unpack_from(args, NR_ITEMS_OFFSET)[0]
    if count == 0:
        return False
    kind_and_length, ref_name_length, extref = (
        TYPE_AND_LENGTH.unpack_from,
        REF_NAME_LENGTH.unpack_from,
        EXTREF.unpack_from,
    )
    inode_at, ref_at = INODE_AT_HEADER.unpack_from, REF_AT_HEADER.unpack_from
    kind_of_format = KIND_OF_FORMAT.get
    directories, append, add = tree.directories, tree.append, tree.add
    short = LISTED_PATH_MAX // 4  # no path of this many characters is too long (`too_long`)
    inode, mode, size = stretch.inode
    kind = kind_of_format(mode & S_IFMT, "other")
    header_size = HEADER.size
    position = header = ARGS_SIZE
    for _ in range(count):
        header = position
        item_type, length = kind_and_length(args, position + 24)
        position += header_size + length
        if item_type > INODE_EXTREF_KEY:
            continue  # directory entries, extents, xattrs: most items
        if item_type == INODE_ITEM_KEY:
            inode, size, mode = inode_at(args, header)
            kind = kind_of_format(mode & S_IFMT, "other")
        elif item_type == INODE_REF_KEY:
            objectid, parent, name_length = ref_at(args, header)
            if objectid == FIRST_FREE_OBJECTID or objectid != inode:
                continue  # the subvolume root's ".." entry (or a ref without its inode)
            data = header + REF_NAME_AT
            if data + name_length == position:  # one name: the common case
                name = args[data:position].decode("utf-8", "surrogateescape")
                head = directories.get(parent)
                if head is not None:
                    path = f"{head}/{name}"
                    if len(path) <= short:
                        if kind == "file":
                            append((path, "file", size, None))
                            continue
                        if kind == "dir":
                            directories[inode] = path
                            append((path, "dir", 0, None))
                            continue
                add(inode, parent, name, mode, size)
                continue
            data = header + header_size
            while data < position:
                name_length = ref_name_length(args, data)[0]
                data += REF_SIZE
                name = args[data : data + name_length].decode("utf-8", "surrogateescape")
                add(inode, parent, name, mode, size)
                data += name_length
        elif item_type == INODE_EXTREF_KEY and inode_at(args, header)[0] == inode:
            data = header + header_size
            while data < position:
                parent, _index, name_length = extref(args, data)
                data += EXTREF.size
                name = args[data : data + name_length].decode("utf-8", "surrogateescape")
                add(inode, parent, name, mode, size)
                data += name_length
    stretch.inode = (inode, mode, size)
    _transid, objectid, offset, item_type, _length = HEADER.unpack_from(args, header)
    stretch.next_key = _key_after(objectid, item_type, offset)
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


def _read_tree(fd: int, tree: int, entries: _Tree) -> None:
    """Every link of the tree, handed to `entries`, read as `STRETCHES` stretches of inode
    numbers whose searches and parsing overlap: while one stretch's batch is parsed here, the
    helper threads search the others' next batches. Batches are parsed in turn, a stretch at a
    time, so an entry whose directory is in a later stretch waits in `_Tree.pending`."""
    span = _highest_inode(fd, tree) + 1 - FIRST_FREE_OBJECTID
    firsts = [FIRST_FREE_OBJECTID + span * number // STRETCHES for number in range(STRETCHES)]
    lasts = [first - 1 for first in firsts[1:]] + [LAST_FREE_OBJECTID - 1]
    stretches = [
        _Stretch(tree, first, last)
        for first, last in zip(firsts, lasts, strict=True)
        if first <= last
    ]
    searcher = _Searcher(fd)
    try:
        for stretch in stretches:
            searcher.start(stretch)
        while stretches:
            unfinished = []
            for stretch in stretches:
                searcher.wait(stretch)
                if _parse_batch(stretch, entries):
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
        _read_tree(fd, tree, entries)
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
