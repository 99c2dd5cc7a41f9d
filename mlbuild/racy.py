"""Which file stats are old enough to trust (git's "racy clean" problem).

A file hashed within the same mtime tick in which it was last written may be written again in that
tick: its stat would not change, and a hash remembered by stat would be wrong. Hashes remembered
by stat (the state table, a dataset's record) keep only files last written before :func:`cutoff`.
"""

from __future__ import annotations

import time

RACY_WINDOW_NS = 1_000_000_000


def cutoff() -> int:
    """Files with an mtime (ns) above this were written too recently to remember by stat."""
    return time.time_ns() - RACY_WINDOW_NS
