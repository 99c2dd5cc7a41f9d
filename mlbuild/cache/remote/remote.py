"""The remote cache: look a step up after a local miss, bring its result in verified, upload
what was built.

Trust: a remote is written by every clone and CI job that shares it, so what is read from it is
checked exactly as a local entry and object are — an entry against its schema
(:meth:`ActionResult.from_json`) and the step's declared outputs, a manifest against its digest,
every object's bytes against its name while they are written into the local store. Something
damaged is reported once, never restored, never copied into the local cache; the step runs, and
its upload replaces the damaged file.

Availability: a remote that is down, slow to refuse or refuses writes makes a run slower, never
failed: the first failure is one warning, and the run goes on without the remote (or without
uploads). ``strict`` (``mlbuild cache push|pull|status``, where the remote is the point) raises
:class:`RemoteError` instead.

Thread-safe: steps look up and fetch in parallel while uploads run in their own threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mlbuild import atomic
from mlbuild.cache import manifest
from mlbuild.cache.actions import ActionResult, OutRecord
from mlbuild.cache.hashing import ManifestEntry
from mlbuild.cache.location import Cache
from mlbuild.cache.names import DIR_SUFFIX
from mlbuild.cache.objects import CorruptObjectError, MissingObjectError, Objects
from mlbuild.cache.remote.backend import Backend, RemoteFileError, entry_key, object_key
from mlbuild.cache.remote.transfer import (
    DamagedError,
    check_local,
    read_whole,
    receive,
    size_problem,
)
from mlbuild.errors import CacheError, MlbuildError
from mlbuild.masking import Secrets, known

ENTRY_LIMIT = 64 << 20  # as for a local entry: no real one comes near it
MANIFEST_LIMIT = 256 << 20  # a directory of about a million files
_FETCH_THREADS = 8


class RemoteError(CacheError):
    """The remote cache cannot be used, where nothing else would do (``mlbuild cache push``)."""


@dataclass
class RemoteReport:
    """What a command did with the remote cache, for its summary and ``--json``."""

    remote: str
    fetched: int = 0  # results brought into the local cache
    fetched_bytes: int = 0
    uploaded: int = 0  # results whose entry was written
    uploaded_bytes: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


class RemoteCache:
    """The remote cache at ``shown`` (a URL without its password), opened by ``connect`` on
    first use: a run that finds every step locally never imports a cloud library.

    ``warn(step, text)`` receives each warning once; set it before use.
    """

    def __init__(
        self,
        shown: str,
        connect: Callable[[], Backend],
        *,
        read_only: bool = False,
        strict: bool = False,
        secrets: Secrets | None = None,
    ) -> None:
        self.shown = shown
        self.read_only = read_only
        self.strict = strict
        self.secrets = secrets or Secrets()
        self.warn: Callable[[str, str], None] = lambda step, text: None
        self.report = RemoteReport(shown)
        self._connect = connect
        self._backend: Backend | None = None
        self._readable = True
        self._writable = not read_only
        self._lock = threading.Lock()
        self._said: set[str] = set()
        self._bad: set[str] = set()  # keys found damaged: an upload replaces them
        self._manifests: dict[str, list[ManifestEntry] | None] = {}

    @property
    def writable(self) -> bool:
        return self._writable and self._readable

    def lookup(self, fingerprint: str, outs: Collection[str], step: str) -> ActionResult | None:
        """The remote entry for ``fingerprint``, validated like a local one; ``None`` when there
        is none, it is damaged (reported once) or the remote is unreachable (warned once)."""
        key = entry_key(fingerprint)
        data = self._read(key, ENTRY_LIMIT, step, f"entry of step '{step}'")
        if data is None:
            return None
        try:
            result = ActionResult.from_json(data)
        except ValueError as exc:
            self._damaged(step, key, f"entry of step '{step}'", f"is malformed ({exc})")
            return None
        if set(result.outs) != set(outs):
            self._damaged(
                step, key, f"entry of step '{step}'", "names outputs the step does not declare"
            )
            return None
        return result

    def missing(self, result: ActionResult, step: str, objects: Objects) -> list[str]:
        """Why ``result``'s outputs cannot be fetched, checked cheaply for ``plan``: each file
        object's size, each directory's manifest (its files are checked when fetched). What
        ``objects``, the local store, holds already need not be fetched."""
        reasons = []
        for path, record in result.outs.items():
            if not record.cached or objects.holds(record.digest, record.size):
                continue
            if record.digest.endswith(DIR_SUFFIX):
                found = self.manifest(record.digest, path, step) is not None
            else:
                found = self._object_there(record.digest, record.size, path, step)
            if not found:
                reasons.append(self._unusable(path))
        return list(dict.fromkeys(reasons))

    def _object_there(self, digest: str, size: int, path: str, step: str) -> bool:
        key = object_key(digest)
        what = f"object {digest[:12]}… of {path}"
        try:
            found = self._size(key, step)
        except RemoteFileError as exc:
            self._damaged(step, key, what, str(exc))
            return False
        if found is None and self._readable:
            self._lacks(step, key, digest, path)
        elif found is not None and found != size:
            self._damaged(step, key, what, size_problem(found, size))
        return found == size

    def manifest(self, digest: str, path: str, step: str) -> list[ManifestEntry] | None:
        """The files of remote directory object ``digest`` (output ``path``), checked against
        its digest; ``None`` when it is missing or damaged."""
        with self._lock:
            if digest in self._manifests:
                return self._manifests[digest]
        key = object_key(digest)
        data = self._read(key, MANIFEST_LIMIT, step, f"manifest of {path}")
        entries: list[ManifestEntry] | None = None
        if data is not None:
            decoded = manifest.decode(digest, data)
            if isinstance(decoded, str):
                self._damaged(step, key, f"manifest of {path}", f"is damaged: it {decoded}")
            else:
                entries = list(decoded)
        with self._lock:
            self._manifests[digest] = entries
        return entries

    def fetch(self, fingerprint: str, result: ActionResult, cache: Cache, step: str) -> str | None:
        """Bring ``result`` into the local ``cache``: every object verified as it is written,
        then each directory's manifest, then the entry. ``None`` when it is all there; else why
        the step must run (and no entry is written)."""
        wanted: dict[str, tuple[int, str]] = {}  # digest → (size, the output it is part of)
        directories: list[tuple[str, list[ManifestEntry]]] = []
        for path, record in result.outs.items():
            if not record.cached:
                continue
            if not record.digest.endswith(DIR_SUFFIX):
                wanted.setdefault(record.digest, (record.size, path))
                continue
            entries = self.manifest(record.digest, path, step)
            if entries is None:
                return self._unusable(path)
            directories.append((record.digest, entries))
            for e in entries:
                wanted.setdefault(e.digest, (e.size, path))
        # every object of every output at once: a round trip each to a distant store, not one
        # output after the other
        got = self._fetch_objects(wanted, cache.objects, step)
        if isinstance(got, str):
            return got
        for digest, entries in directories:  # a manifest only once all its files are held
            if not _manifest_held(cache.objects, digest, entries):
                atomic.write_bytes(
                    cache.objects.path_of(digest), manifest.encode(tuple(entries)), mode=0o444
                )
        cache.actions.put(fingerprint, result)
        with self._lock:
            self.report.fetched += 1
            self.report.fetched_bytes += got
        return None

    def upload(self, fingerprint: str, result: ActionResult, objects: Objects) -> str | None:
        """Upload ``result``'s objects, then its entry, so that no reader finds an entry whose
        objects are not all there. ``None`` once the entry is written; else why it was not."""
        step = result.step
        backend = self._backend_for(step, writing=True)
        if backend is None:
            return f"{self.shown} cannot be written in this run"
        sent = 0
        try:
            for record in result.outs.values():
                if record.cached:
                    sent += self._put_output(backend, record, objects)
            backend.write(entry_key(fingerprint), result.to_json().encode())
        except (MissingObjectError, CorruptObjectError) as exc:  # gc'd, or damaged locally
            problem = f"not uploaded to {self.shown}: {exc.message}"
            self._say(step, f"{step}:{exc.digest}", problem)
            return problem
        except MlbuildError:
            raise
        except Exception as exc:
            self._failed(step, exc, writing=True)
            return f"cannot upload to {self.shown} ({self._masked(_reason(exc))})"
        with self._lock:
            self.report.uploaded += 1
            self.report.uploaded_bytes += sent
        return None

    # -- objects ------------------------------------------------------------------------------

    def _fetch_objects(
        self, wanted: dict[str, tuple[int, str]], objects: Objects, step: str
    ) -> int | str:
        """Fetch the objects ``wanted`` (digest → size and output path), several at once; the
        bytes fetched, or the first problem met."""
        items = [(digest, size, path) for digest, (size, path) in wanted.items()]
        results: list[int | str]
        if len(items) <= 1:  # no thread for one object
            results = [self._fetch_object(*item, objects, step) for item in items]
        else:
            with ThreadPoolExecutor(min(_FETCH_THREADS, len(items))) as pool:
                results = list(
                    pool.map(lambda i: self._fetch_object(i[0], i[1], i[2], objects, step), items)
                )
        problems = [r for r in results if isinstance(r, str)]
        if problems:
            return problems[0]
        return sum(r for r in results if isinstance(r, int))

    def _fetch_object(
        self, digest: str, size: int, path: str, objects: Objects, step: str
    ) -> int | str:
        if objects.holds(digest, size):
            return 0
        backend = self._backend_for(step, writing=False)
        if backend is None:
            return self._unusable(path)
        key = object_key(digest)
        try:
            with backend.opened(key) as source:
                return receive(objects, digest, size, source)
        except FileNotFoundError:
            self._lacks(step, key, digest, path)
        except (DamagedError, RemoteFileError) as exc:
            self._damaged(step, key, f"object {digest[:12]}… of {path}", str(exc))
        except MlbuildError:  # the local disk is full: the step's failure, as for a run
            raise
        except Exception as exc:
            self._failed(step, exc, writing=False)
        return self._unusable(path)

    def _put_output(self, backend: Backend, record: OutRecord, objects: Objects) -> int:
        if not record.digest.endswith(DIR_SUFFIX):
            return self._put_object(backend, record.digest, record.size, objects)
        entries = objects.read_manifest(record.digest)
        sent = sum(self._put_object(backend, e.digest, e.size, objects) for e in entries)
        data = manifest.encode(tuple(entries))
        key = object_key(record.digest)
        if key in self._bad or _size_or_none(backend, key) != len(data):
            backend.write(key, data)
            self._repaired(key)
            sent += len(data)
        return sent

    def _put_object(self, backend: Backend, digest: str, size: int, objects: Objects) -> int:
        key = object_key(digest)
        if key not in self._bad and _size_or_none(backend, key) == size:
            return 0  # content-addressed: the same bytes are there
        objects.check(digest, size)
        check_local(objects, digest)
        backend.upload(key, objects.path_of(digest), size)
        self._repaired(key)
        return size

    # -- reading, and what goes wrong ---------------------------------------------------------

    def _read(self, key: str, limit: int, step: str, what: str) -> bytes | None:
        backend = self._backend_for(step, writing=False)
        if backend is None:
            return None
        try:
            with backend.opened(key) as source:
                return read_whole(source, limit)
        except FileNotFoundError:
            return None
        except (DamagedError, RemoteFileError) as exc:
            self._damaged(step, key, what, str(exc))
        except Exception as exc:
            self._failed(step, exc, writing=False)
        return None

    def _size(self, key: str, step: str) -> int | None:
        """The size of the file at ``key``; ``None`` when there is none or the remote is
        unreachable; :class:`RemoteFileError` when what is there is not a regular file."""
        backend = self._backend_for(step, writing=False)
        if backend is None:
            return None
        try:
            return backend.size(key)
        except RemoteFileError:
            raise
        except Exception as exc:
            self._failed(step, exc, writing=False)
        return None

    def _backend_for(self, step: str, *, writing: bool) -> Backend | None:
        with self._lock:
            usable = self._writable if writing else self._readable
            if not usable:
                return None
            if self._backend is not None:
                return self._backend
        try:
            backend = self._connect()
        except Exception as exc:
            self._failed(step, exc, writing=False)
            return None
        with self._lock:
            self._backend = self._backend or backend
            return self._backend

    def _unusable(self, path: str) -> str:
        if not self._readable:
            return f"the remote cache is unreachable, so {path} cannot be fetched"
        return f"the remote cache's copy of {path} is missing or damaged"

    def _lacks(self, step: str, key: str, digest: str, path: str) -> None:
        text = f"{self.shown} has the entry of step '{step}' but not its object {digest[:12]}… "
        self._say(step, key, text + f"of {path}; ignored")

    def _damaged(self, step: str, key: str, what: str, problem: str) -> None:
        with self._lock:
            self._bad.add(key)
        self._say(step, key, f"{self.shown}: the {what} {problem}; ignored")

    def _repaired(self, key: str) -> None:
        with self._lock:
            self._bad.discard(key)

    def _failed(self, step: str, exc: BaseException, *, writing: bool) -> None:
        reason = self._masked(_reason(exc))
        if self.strict:
            raise RemoteError(f"the remote cache {self.shown} cannot be used: {reason}") from None
        with self._lock:
            self._writable = False
            if not writing:
                self._readable = False
        if writing:
            text = f"cannot upload to {self.shown} ({reason}); no more uploads in this run"
        else:
            text = f"the remote cache {self.shown} is unreachable ({reason}); going on without it"
        self._say(step, "write" if writing else "read", text)

    def _masked(self, text: str) -> str:
        # and what was learnt since this remote was opened (a DVC remote's credentials)
        return (self.secrets | known()).text(text)

    def _say(self, step: str, key: str, text: str) -> None:
        text = self._masked(text)
        with self._lock:
            if key in self._said:
                return
            self._said.add(key)
            self.report.warnings.append(text)
        self.warn(step, text)


def _size_or_none(backend: Backend, key: str) -> int | None:
    """The size of the file at ``key`` for an upload: a file that is not a regular one (a
    planted symbolic link) is replaced, as a missing one is written."""
    try:
        return backend.size(key)
    except RemoteFileError:
        return None


def _manifest_held(objects: Objects, digest: str, entries: list[ManifestEntry]) -> bool:
    try:
        return objects.read_manifest(digest) == entries
    except (MissingObjectError, CorruptObjectError):
        return False


def _reason(exc: BaseException) -> str:
    """A library's failure in one line: the first line of its message, or its type."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:200] + "…"
