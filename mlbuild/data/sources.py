"""The versions and presence of a recipe's DVC-tracked and imported datasets.

``version`` is cheap when nothing changed (a parsed ``.dvc`` file and one ``stat`` per file) and
imports DVC only when it must: to verify a workspace copy it has not seen, or to resolve an import.
``ensure_present`` fetches what a step about to run needs, through DVC's API.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlbuild import racy
from mlbuild.data.dvc_adapter import DvcAdapter
from mlbuild.data.md5 import Hashed, Unsupported, dvc_hash, ignores_files
from mlbuild.data.snapshot import (
    NotData,
    Record,
    Snapshot,
    is_verified,
    read_record,
    snapshot,
    write_record,
    write_verified,
)
from mlbuild.data.version import (
    DataError,
    DatasetSpec,
    DataVersion,
    Kind,
    dvc_repo_root,
    recorded_out,
    resolve_kind,
)
from mlbuild.paths import shortened


class DataSources:
    """Dataset versions for one workspace; safe to call from executor threads."""

    def __init__(self, root: Path, meta: Path, datasets: dict[str, DatasetSpec]) -> None:
        self.root = root
        self.meta = meta
        self.datasets = datasets
        self._versions: dict[str, DataVersion] = {}
        self._kinds: dict[str, Kind] = {}
        self._adapter: DvcAdapter | None = None
        self._lock = threading.RLock()

    def kind(self, name: str) -> Kind:
        with self._lock:
            if name not in self._kinds:
                self._kinds[name] = resolve_kind(self.root, self.datasets[name])
            return self._kinds[name]

    def version(self, name: str) -> DataVersion:
        """The version of DVC-tracked or imported dataset ``name``; ``present`` says whether the
        workspace holds it. Raises :class:`DataError` when the workspace copy was modified."""
        with self._lock, self._refusing(name):
            if name not in self._versions:
                spec = self.datasets[name]
                kind = self.kind(name)
                if kind == "dvc":
                    self._versions[name] = self._dvc_version(spec)
                elif kind == "import":
                    self._versions[name] = self._import_version(spec)
                else:
                    raise ValueError(f"dataset {name} is a plain path; hash it as a dep")
            return self._versions[name]

    def ensure_present(self, name: str, on_fetch: Callable[[str], None]) -> DataVersion:
        """Fetch dataset ``name`` if the workspace lacks it; its (now present) version."""
        with self._lock, self._refusing(name):
            current = self.version(name)
            if current.present:
                return current
            spec = self.datasets[name]
            adapter = self._dvc()
            if current.kind == "dvc":
                on_fetch(
                    f"fetching dataset '{name}' ({spec.path}) through DVC"
                    + (f" from remote '{spec.remote}'" if spec.remote else "")
                )
                adapter.pull(spec.path, spec.remote, dataset=name, digest=current.hash)
            else:
                assert spec.import_repo and spec.import_path and current.commit
                on_fetch(
                    f"importing dataset '{name}' from {spec.import_repo} at "
                    f"{spec.import_rev or 'the default branch'} ({current.commit[:12]})"
                )
                adapter.download_import(
                    spec.import_repo,
                    current.commit,
                    spec.import_path,
                    self.root / spec.path,
                    dataset=name,
                )
            now = snapshot(self.root / spec.path) or Snapshot([])
            write_record(
                self.meta, name, Record(current.hash, now.files, _source(spec, current)), now
            )
            present = DataVersion(**{**current.to_json(), "present": True})
            self._versions[name] = present
            return present

    @contextmanager
    def _refusing(self, name: str) -> Iterator[None]:
        """A FIFO, socket or device in dataset ``name`` as the user's error, naming it."""
        try:
            yield
        except NotData as exc:
            spec = self.datasets[name]
            where = os.path.relpath(exc.path, self.root)
            raise DataError(
                f"dataset '{name}': {where} is {exc.kind}; a dataset holds only files and "
                f"folders (and symlinks to them), and neither mlbuild nor DVC can version it: "
                f"move it out of {spec.path}"
            ) from None
        except OSError as exc:  # a tree deeper than PATH_MAX, an unreadable folder, …
            if not isinstance(exc.filename, str):
                raise
            where = shortened(os.path.relpath(exc.filename, self.root))
            raise DataError(f"dataset '{name}' cannot be read: {exc.strerror} ({where})") from None

    def _dvc_version(self, spec: DatasetSpec) -> DataVersion:
        found = recorded_out(self.root, self.meta, spec.path)
        assert found is not None  # resolve_kind said DVC tracks it
        digest, tracked_in = found.digest, found.tracked_in
        version = DataVersion(
            spec.name, spec.path, "dvc", digest, remote=spec.remote, tracked_in=tracked_in
        )
        now = snapshot(self.root / spec.path)
        if now is None:
            return DataVersion(**{**version.to_json(), "present": False})
        if is_verified(self.meta, spec.name, digest, now):  # no-op: the whole record unread
            return version
        record = read_record(self.meta, spec.name)
        if record is not None and record.version == digest and record.files == now.files:
            # a summary lost, or of an older mlbuild: the next run reads the summary
            write_verified(self.meta, spec.name, digest, now)
            return version
        hashed = self._own_hash(spec.path, found.hash_name, record, now)
        if hashed is not None and hashed.digest == digest:
            write_record(self.meta, spec.name, _trusted(digest, hashed), now)
            return version
        # a different hash, or one only DVC can compute: DVC tells missing from modified. A
        # hash computed here read every file whose stat changed: when it differs, the copy is
        # modified whatever DVC says (DVC's own state trusts a file's mtime, which can be set
        # back: an edit that kept the size and the mtime is "up to date" to DVC)
        state = self._dvc().workspace_state(spec.path)
        if state == "modified" or (hashed is not None and state != "missing"):
            raise DataError(
                f"dataset '{spec.name}': {spec.path} differs from the version in {tracked_in} "
                f"(md5 {digest}); record the new data with `dvc add {spec.path}`, or restore the "
                f"recorded version with `dvc checkout {spec.path}`"
            )
        if state == "missing":
            return DataVersion(**{**version.to_json(), "present": False})
        write_record(self.meta, spec.name, Record(digest, now.files), now)
        return version

    def _own_hash(
        self, path: str, hash_name: str, record: Record | None, now: Snapshot
    ) -> Hashed | None:
        """DVC's hash of ``path`` computed here, re-reading only files whose stat changed;
        ``None`` when only DVC can compute it (DVC 2 hashes, ignore files, symlinks)."""
        if hash_name != "md5":
            return None
        repo = dvc_repo_root(self.root)
        if repo is None or ignores_files(repo, self.root / path):
            return None
        known_files, known_md5 = (record.files, record.md5) if record else ([], {})
        try:
            listed = now.files if now.plain else None
            return dvc_hash(self.root / path, known_files, known_md5, listed)
        except Unsupported:
            return None

    def _import_version(self, spec: DatasetSpec) -> DataVersion:
        assert spec.import_repo is not None and spec.import_path is not None
        wanted = {"repo": spec.import_repo, "rev": spec.import_rev, "path": spec.import_path}
        record = read_record(self.meta, spec.name)
        now = snapshot(self.root / spec.path)
        if record is not None and {k: record.source.get(k) for k in wanted} == wanted:
            commit = str(record.source.get("commit"))
            present = now is not None and now.files == record.files
            return _import(spec, record.version, commit, present=present)
        commit, digest = self._dvc().resolve_import(
            spec.import_repo, spec.import_rev, spec.import_path, dataset=spec.name
        )
        return _import(spec, digest, commit, present=False)

    def _dvc(self) -> DvcAdapter:
        if self._adapter is None:
            self._adapter = DvcAdapter(self.root)
        return self._adapter

    def adapter(self) -> DvcAdapter:
        with self._lock:
            return self._dvc()


def _trusted(digest: str, hashed: Hashed) -> Record:
    """The record of a verified dataset, without the files written too recently to trust: one
    written again within the same ctime tick would look unchanged (git's "racy clean"). Those
    are read again by the next run; the others keep their md5."""
    cutoff = racy.cutoff()
    files = [s for s in hashed.files if int(s[3]) <= cutoff]
    md5 = {str(s[0]): hashed.md5[str(s[0])] for s in files}
    return Record(digest, files, md5=md5)


def _import(spec: DatasetSpec, digest: str, commit: str, *, present: bool) -> DataVersion:
    return DataVersion(
        spec.name,
        spec.path,
        "import",
        digest,
        repo=spec.import_repo,
        rev=spec.import_rev,
        commit=commit,
        present=present,
    )


def _source(spec: DatasetSpec, version: DataVersion) -> dict[str, str | None]:
    if version.kind != "import":
        return {}
    return {
        "repo": spec.import_repo,
        "rev": spec.import_rev,
        "path": spec.import_path,
        "commit": version.commit,
    }
