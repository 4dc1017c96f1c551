"""The in-stream duplicate screen: every repeated hash becomes a candidate (within a batch and across
batches), while a partition of distinct hashes yields almost none."""

from __future__ import annotations

import hashlib

from assets.bronze.duplicates import DuplicateScreen


def digest(i: int) -> bytes:
    return hashlib.md5(str(i).encode()).digest()


def test_every_repeated_hash_is_a_candidate_and_distinct_ones_almost_never_are():
    screen = DuplicateScreen()
    distinct = 50_000
    repeats = [0, 1, 8191, 8192, 8193, 30_000, 49_999]  # around and across the 8,192-hash batches
    for i in range(distinct):
        screen.add(digest(i))
        if i in (1, 8192):
            screen.add(digest(i))  # repeated inside the same batch
    for i in repeats:
        screen.add(digest(i))  # repeated in a later batch

    candidates = screen.finish()

    assert {digest(i) for i in repeats} <= candidates
    assert len(candidates - {digest(i) for i in repeats}) <= 5  # false positives of a 16 MiB filter
