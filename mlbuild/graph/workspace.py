"""A workspace: the directory holding ``ml.yaml``, its ``.mlbuild`` state and its cache."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlbuild import atomic
from mlbuild.cache import Cache
from mlbuild.data import DataSources, dvc_remote
from mlbuild.errors import Problem, RecipeError
from mlbuild.graph.compiled import load_graph
from mlbuild.graph.model import Graph
from mlbuild.graph.plan import ExternalHook, IdentityHook, Planner
from mlbuild.graph.records import StepRecords
from mlbuild.masking import Secrets, remember
from mlbuild.paths import META_DIR, Fence
from mlbuild.recipe import RECIPE_FILE

# the remote package (http.client, ssl: a tenth of a no-op run's imports) is imported only when a
# remote cache is configured
if TYPE_CHECKING:
    from mlbuild.cache.remote import Backend, RemoteCache

# what makes mlbuild.cache.remote.remote_settings look past the recipe (a remote, or a switch it
# validates); kept equal to that module's names by a test
REMOTE_VARIABLES = ("MLBUILD_REMOTE_CACHE", "MLBUILD_REMOTE_READ_ONLY", "MLBUILD_REMOTE_CACHE_PUSH")


# the folders of ``.mlbuild/`` that must be mlbuild's own (atomic.own_folder), parents first:
# the step records, run journal, logs, params files, data records and the cache, which answer
# "cached" and are written through. Not the compiled graphs and their pointers, a cache that a
# planted folder only disables (mlbuild.graph.compiled, mlbuild.graph.same_data), nor the
# running steps' records, which only a run reads (mlbuild.exec.leftovers).
_OWN_BUT_CACHE = (
    ".",
    "steps",
    "runs",
    "runs/journal",
    "logs",
    "params",
    "data",
    "data/verified",
    "data/dvcfiles",
)
_OWN = (*_OWN_BUT_CACHE, "cache", "cache/actions", "cache/objects", "cache/workspaces")


@dataclass
class Workspace:
    root: Path
    recipe_path: Path
    meta: Path
    cache: Cache
    records: StepRecords

    @classmethod
    def find(cls, start: Path, recipe: Path | None = None) -> Workspace:
        """The workspace of ``recipe``, or of the nearest ``ml.yaml`` at or above ``start``."""
        if recipe is None:
            for folder in [start, *start.parents]:
                if (folder / RECIPE_FILE).is_file():
                    recipe = folder / RECIPE_FILE
                    break
            else:
                raise RecipeError(
                    [
                        Problem(
                            RECIPE_FILE,
                            None,
                            None,
                            "",
                            f"no {RECIPE_FILE} in {start} or any parent directory; "
                            "create one with `mlbuild init`",
                        )
                    ]
                )
        recipe = recipe.absolute()
        root = recipe.parent
        meta = root / META_DIR
        return cls(root, recipe, meta, Cache.open(root, meta), StepRecords(meta / "steps"))

    def ensure_meta(self) -> None:
        """Create ``.mlbuild/`` with a ``.gitignore`` so git never tracks its contents. Raises
        :class:`~mlbuild.errors.PlantedError` when ``.mlbuild`` or a folder of the state a run
        writes and trusts there is a symlink (maybe out of the workspace), a file or a FIFO: a
        repository or a step put it there, and nothing is written or removed through it."""
        own = _OWN if self.cache.root == self.meta / "cache" else _OWN_BUT_CACHE
        for name in own:
            atomic.own_folder(self.meta / name)
        ignore = self.meta / ".gitignore"
        if not ignore.exists():
            # whole or not at all: a torn one would exist, never be rewritten, and let git
            # track the cache
            atomic.write_text(ignore, "# mlbuild's local state and cache\n*\n", sync=False)

    def graph(self, overrides: list[str]) -> Graph:
        self.ensure_meta()
        with _kept_from_collection():
            return load_graph(
                self.recipe_path, self.meta, self.cache.hasher, overrides, cache=self.cache.root
            )

    def check(self, graph: Graph) -> None:
        """Raise :class:`RecipeError` with everything ``plan`` or ``run`` would refuse about the
        workspace as it is now: refused paths (symlinks), missing deps, lock file, datasets."""
        self.planner(graph).check_inputs(list(graph.steps))

    def fence(self, graph: Graph) -> Fence:
        """What the engine may write or remove in this workspace for ``graph``."""
        return graph.fence(self.root, self.cache.root)

    def planner(
        self,
        graph: Graph,
        *,
        force: set[str] | None = None,
        identity: IdentityHook | None = None,
        remote: RemoteCache | None = None,
        external: ExternalHook | None = None,
    ) -> Planner:
        """``identity``: what of each step's executor enters its fingerprint (see Planner);
        with ``remote``, a step missing locally is looked up there."""
        sources = DataSources(self.root, self.meta, graph.datasets)
        return Planner(
            graph,
            self.root,
            self.cache,
            self.records,
            sources,
            force=force or set(),
            identity=identity,
            remote=remote,
            external=external,
        )

    def remote(
        self, graph: Graph, *, read_only: bool = False, strict: bool = False
    ) -> RemoteCache | None:
        """The remote cache ``MLBUILD_REMOTE_CACHE`` or the recipe's ``cache:`` names, if any
        (connected on first use); ``read_only``: nothing is uploaded."""
        if not graph.remote_cache and not any(name in os.environ for name in REMOTE_VARIABLES):
            return None  # what remote_settings answers, without importing it
        from mlbuild.cache.remote import open_remote, remote_settings

        settings = remote_settings(graph.remote_cache, self.root, read_only=read_only)
        if settings is None:
            return None
        return open_remote(settings, local_cache=self.cache.root, dvc=self._dvc, strict=strict)

    def _dvc(self, name: str) -> Backend:
        """A DVC remote's folder for mlbuild, with DVC's credentials (masked in messages)."""
        from mlbuild.cache.remote import DirectoryBackend, FsspecBackend

        found = dvc_remote(self.root, name)
        remember(Secrets(found.secrets))
        shown = f"dvc://{name}"
        if found.fs is None:
            return DirectoryBackend(Path(found.path), shown)
        return FsspecBackend(found.fs, found.path, shown)

    def save_state(self) -> None:
        """Persist the file hashes and entries learnt in this command (cheap when nothing
        changed)."""
        if self.meta.is_dir():
            self.cache.save()


@contextlib.contextmanager
def _kept_from_collection() -> Iterator[None]:
    """Read (or compile) the first graph of this process with the cyclic garbage collector off,
    then move everything alive to its permanent generation (``gc.freeze``), and turn the
    collector on again unless the caller had it off. A command's compiled graph lives until the
    command ends — 150,000 objects at 2,000 steps, 700,000 at 10,000 — and each full pass of
    the collector traversed it all: five passes were 0.28 s of a 0.95 s ``plan`` at 10,000
    steps. Frozen objects are still freed by reference counting; only garbage in a reference
    cycle made before that moment is never collected — so once per process: a process that
    reads a graph per search trial freezes only what existed at its first read."""
    if _FROZEN.is_set():
        yield
        return
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
        _FROZEN.set()
    finally:
        if was_on:
            gc.enable()


_FROZEN = threading.Event()  # this process has frozen its first graph
