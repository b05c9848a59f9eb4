"""The tree search's helper threads: a failed search is an error here, and the threads end."""

from __future__ import annotations

import errno
import os
import struct

import pytest

from blankslate import treesearch


def test_a_failed_search_raises_and_the_helper_thread_ends() -> None:
    reading, writing = os.pipe()  # not a btrfs directory: the ioctl is refused
    try:
        searcher = treesearch._Searcher(reading)
        stretch = treesearch._Stretch(5, treesearch.FIRST_FREE_OBJECTID, 1000)
        searcher.start(stretch)
        with pytest.raises(OSError) as error:
            searcher.wait(stretch)
        searcher.close()
    finally:
        os.close(reading)
        os.close(writing)
    assert error.value.errno in (errno.ENOTTY, errno.EINVAL)
    assert searcher.threads and not any(thread.is_alive() for thread in searcher.threads)


def test_an_error_on_the_helper_thread_reaches_the_waiting_thread() -> None:
    reading, writing = os.pipe()
    try:
        searcher = treesearch._Searcher(reading)
        stretch = treesearch._Stretch(5, treesearch.FIRST_FREE_OBJECTID, -1)  # cannot be packed
        searcher.start(stretch)
        with pytest.raises(struct.error):
            searcher.wait(stretch)
        searcher.close()
    finally:
        os.close(reading)
        os.close(writing)
    assert searcher.threads and not any(thread.is_alive() for thread in searcher.threads)
