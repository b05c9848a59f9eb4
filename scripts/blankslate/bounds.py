"""The bounds of the audit's scans: how deep a path is listed, and what lies deeper.

Plain functions on the standard library only, shared by `scan` and `treesearch`.
"""

from __future__ import annotations

# Paths longer than this (in bytes, as on /) are not listed one by one: what lies deeper is
# counted (entries and bytes) into its deepest listed directory (`beyond`). The kernel takes
# no longer path (PATH_MAX, 4096 with its NUL), and listing every entry of a 3,000-deep chain
# of long names by its full path would cost memory quadratic in the depth.
LISTED_PATH_MAX = 4095
Beyond = dict[str, list[int]]  # deepest listed directory -> [entries, bytes] below the cap


def too_long(path: str) -> bool:
    """Whether `path` (as on /) is longer than LISTED_PATH_MAX bytes."""
    return len(path) * 4 > LISTED_PATH_MAX and (
        len(path.encode("utf-8", "surrogateescape")) > LISTED_PATH_MAX
    )


def count_beyond(beyond: Beyond, cut: str, size: int) -> None:
    """One more entry of `size` bytes below the listed directory `cut`, too deep to list."""
    counts = beyond.get(cut)
    if counts is None:
        beyond[cut] = [1, size]
    else:
        counts[0] += 1
        counts[1] += size
