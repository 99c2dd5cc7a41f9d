"""Which cached object holds a path: an output a step recorded, or a file inside a directory one.

Serving (the model's artifacts, from the steps' action-cache entries) and ``mlbuild runs get``
(an artifact of a run record) both ask it; each turns the errors below into its own advice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlbuild.cache.actions import OutRecord
from mlbuild.cache.names import DIR_SUFFIX
from mlbuild.cache.objects import CorruptObjectError, MissingObjectError, Objects
from mlbuild.errors import CacheError
from mlbuild.paths import is_within


@dataclass(frozen=True)
class Located:
    """The object ``digest`` (``size`` bytes) that holds a path: output ``out`` or a file in it."""

    out: str
    record: OutRecord
    digest: str
    size: int


class LookupFailedError(CacheError):
    """``path`` cannot be had from the outputs; the subclass says why."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path} {problem}")
        self.path = path


class NotAnOutputError(LookupFailedError):
    """No output is ``path`` or holds it."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "is not among the outputs")


class InOutputError(LookupFailedError):
    """``path`` lies in output ``out``, but cannot be had from it."""

    def __init__(self, path: str, out: str, problem: str) -> None:
        super().__init__(path, problem)
        self.out = out


class UncachedOutputError(InOutputError):
    """``out`` is declared ``cache: false``: the cache never held it."""

    def __init__(self, path: str, out: str) -> None:
        super().__init__(path, out, f"is in the output {out}, which is declared `cache: false`")


class NotInOutputError(InOutputError):
    """``out`` holds no file ``path`` (or is a file itself)."""

    def __init__(self, path: str, out: str) -> None:
        super().__init__(path, out, f"is not a file of the output {out}")


class UnusableOutputError(InOutputError):
    """The manifest of directory output ``out`` is gone or bad (``cause``; a bad one is now in
    quarantine)."""

    def __init__(self, path: str, out: str, cause: MissingObjectError | CorruptObjectError) -> None:
        super().__init__(path, out, f"is in the output {out}, unusable ({cause.message})")
        self.cause = cause


def locate(objects: Objects, outs: Mapping[str, OutRecord], path: str) -> Located:
    """The object holding ``path``: one of ``outs`` (normalised output path → record), or a file
    inside a directory output, found in its manifest (read and verified; no file is read).

    ``path`` must be normalised (:func:`mlbuild.paths.normalise`). Raises a
    :class:`LookupFailedError` subclass saying which output ``path`` lies in, if any.
    """
    for out, record in outs.items():
        if not is_within(path, out):
            continue
        if not record.cached:
            raise UncachedOutputError(path, out)
        if path == out:
            return Located(out, record, record.digest, record.size)
        if not record.digest.endswith(DIR_SUFFIX):
            # a file output holds no files: reading it as a manifest would find it "damaged"
            # and quarantine a good object
            raise NotInOutputError(path, out)
        relpath = path[len(out.rstrip("/")) + 1 :]
        try:
            entries = objects.read_manifest(record.digest)
        except (MissingObjectError, CorruptObjectError) as exc:
            raise UnusableOutputError(path, out, exc) from None
        for entry in entries:
            if entry.relpath == relpath:
                return Located(out, record, entry.digest, entry.size)
        raise NotInOutputError(path, out)
    raise NotAnOutputError(path)
