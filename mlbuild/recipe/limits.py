"""How much YAML mlbuild reads: the recipe, Hydra config files, metrics and DVC files.

YAML aliases let 500 bytes describe billions of nodes (the "billion laughs" bomb). Whatever walks
the expanded tree — the position map, pydantic, Hydra, a metrics flattener — then runs for minutes
and gigabytes, much of it in C code that a signal cannot interrupt. So every YAML document is
composed within these limits (``_composer.py``) before a single value is built, and a file over
the size limit is not even parsed. The figures leave a wide margin over any real recipe (the
example's is 60 nodes deep 5) while keeping the worst case well under a second and ~100 MB.

This module imports nothing heavy: the compiled-graph cache checks a recipe's size with it
without loading PyYAML.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlbuild.errors import Problem, RecipeError

MAX_BYTES = 4 * 1024 * 1024  # a YAML file's size
MAX_DEPTH = 100  # nested mappings and sequences, aliases expanded
MAX_ALIASES = 10_000  # uses of ``*name`` in one document
# nodes aliases add, each use of ``*name`` counted as a copy of what it names: the alias bomb's
# bound (a few hundred bytes that name billions of nodes)
MAX_EXPANDED = 100_000
# nodes written (scalars, sequences and mappings): what the file holds itself. The size limit
# alone lets 4 MiB hold 2 million (`[1,1,1,…]`), which took 21 s and 1.3 GB to load; a recipe of
# 10,000 steps that each list deps, outs and params has 120,000
MAX_NODES = 400_000


def too_big(size: int) -> str:
    """The message for a YAML file of ``size`` bytes over :data:`MAX_BYTES`."""
    return (
        f"the file is {size} bytes, over the {MAX_BYTES // 2**20} MiB mlbuild reads from a YAML "
        "file; keep large data in files that steps read"
    )


def read_limited(path: Path, display: str) -> bytes:
    """The bytes of ``path``, reading no more than one byte past :data:`MAX_BYTES`.

    Raises :class:`RecipeError` naming ``display`` for a larger file, and ``OSError`` as
    ``open`` does.
    """
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
        if len(data) <= MAX_BYTES:
            return data
        size = max(MAX_BYTES + 1, os.fstat(handle.fileno()).st_size)  # a pipe's size is 0
    raise RecipeError([Problem(display, None, None, "", too_big(size))])
