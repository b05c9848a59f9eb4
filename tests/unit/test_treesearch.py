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


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (3, 2), (64, 2)])
def test_the_searches_leave_the_parsing_thread_a_cpu(
    monkeypatch: pytest.MonkeyPatch, cpus: int, threads: int
) -> None:
    """On two CPUs a second search thread slowed the scan (bench/scale.py): the parsing keeps
    one CPU, the searches take the others, at most two."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cpus)))
    assert treesearch._search_threads() == threads


def test_the_cpu_count_serves_where_affinity_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def unknown(_pid: int) -> set[int]:
        raise OSError(errno.ENOSYS, "not here")

    monkeypatch.setattr(os, "sched_getaffinity", unknown)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert treesearch._search_threads() == 2
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert treesearch._search_threads() == 1
