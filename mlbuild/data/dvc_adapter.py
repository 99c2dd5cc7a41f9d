"""Everything mlbuild asks of DVC, through DVC's Python API. The only module that imports dvc.

DVC's ``Repo`` is not thread-safe; callers (``sources.DataSources``) serialise calls.

A DVC remote by name can also hold the remote cache (:func:`dvc_remote`):
``cache: {remote: dvc://storage}`` puts it in the folder ``mlbuild/`` of the DVC remote
``storage`` (beside DVC's own ``files/md5/``, which ``dvc gc --cloud`` keeps to), opened with the
filesystem DVC builds from its config — ``.dvc/config``, ``config.local`` (where credentials go),
the user's and the system's — so a team configures storage once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from mlbuild import atomic
from mlbuild.data.version import DataError
from mlbuild.errors import MlbuildError
from mlbuild.extras import require

_F = TypeVar("_F", bound=Callable[..., Any])


def _quiet_stdout(method: _F) -> _F:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return method(*args, **kwargs)

    return cast(_F, wrapper)


class DvcAdapter:
    """DVC at the workspace root. The local repository is opened on first use: imports need none.

    DVC prints progress and hints on stdout; while it works, that goes to stderr, so mlbuild's
    stdout stays clean for ``--json``.
    """

    def __init__(self, root: Path) -> None:
        require("dvc.logger", "dvc", "this recipe's DVC data")  # sets up DVC's log handlers
        for handler in logging.getLogger("dvc").handlers:  # DVC logs hints to stdout
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sys.stderr)
        self.root = root
        self._repo: Any = None

    @property
    def repo(self) -> Any:
        if self._repo is None:
            from dvc.exceptions import NotDvcRepoError
            from dvc.repo import Repo

            try:
                self._repo = Repo(str(self.root))
            except NotDvcRepoError:
                raise DataError(
                    f"{self.root} is not a DVC repository, but the recipe has DVC-tracked data; "
                    "run `dvc init` (and `dvc add` the data)"
                ) from None
        return self._repo

    @_quiet_stdout
    def workspace_state(self, path: str) -> str:
        """``clean``, ``missing`` (files absent) or ``modified``, against the recorded DVC hash."""
        status = self.repo.data_status(targets=[str(self.root / path)], granular=True)
        changes = status.get("uncommitted", {})
        if changes.get("modified") or changes.get("added"):
            return "modified"
        if changes.get("deleted"):
            return "missing"
        return "clean"

    @_quiet_stdout
    def pull(self, path: str, remote: str | None, *, dataset: str, digest: str) -> None:
        """Fetch ``path`` from the DVC cache or ``remote`` and check it out."""
        from dvc.config import NoRemoteError, RemoteNotFoundError
        from dvc.exceptions import CheckoutError, DvcException

        where = f"remote '{remote}'" if remote else "the default DVC remote"
        try:
            self.repo.pull(targets=[str(self.root / path)], remote=remote)
        except CheckoutError:
            raise DataError(
                f"dataset '{dataset}': {path} (md5 {digest}) is neither in the local DVC cache "
                f"nor on {where}; push it from a machine that has it (`dvc push {path}`)"
            ) from None
        except RemoteNotFoundError:
            raise DataError(
                f"dataset '{dataset}': DVC has no remote named '{remote}'; list them with "
                "`dvc remote list`"
            ) from None
        except NoRemoteError:
            raise DataError(
                f"dataset '{dataset}': {path} is not in the local DVC cache and no DVC remote is "
                "configured; add one (`dvc remote add -d NAME URL`) or name it in the dataset's "
                "`remote:`"
            ) from None
        except DvcException as exc:
            raise DataError(
                f"dataset '{dataset}': fetching {path} from {where} failed: {_first_line(exc)}"
            ) from None

    @_quiet_stdout
    def resolve_import(
        self, repo: str, rev: str | None, path: str, *, dataset: str
    ) -> tuple[str, str]:
        """``(commit, hash)`` of ``path`` in git repository ``repo`` at ``rev``."""
        from dvc.scm import SCMError

        fs = self._import_fs(repo, rev, dataset)
        try:  # the source is cloned lazily, by the first question asked of it
            info = fs.info(path)
            commit = str(fs.repo.get_rev())
        except FileNotFoundError:
            raise DataError(
                f"dataset '{dataset}': {path} does not exist in {repo} at "
                f"{rev or 'its default branch'}"
            ) from None
        except SCMError as exc:
            raise _source_error(exc, repo, rev, dataset) from None
        digest = info.get("md5") or info.get("sha") or _dvc_info_hash(info)
        return commit, str(digest)

    @_quiet_stdout
    def download_import(
        self, repo: str, commit: str, path: str, dest: Path, *, dataset: str
    ) -> None:
        """Download ``path`` of ``repo`` at ``commit`` to ``dest``, replacing it atomically."""
        fs = self._import_fs(repo, commit, dataset)
        try:
            with atomic.staging(dest) as target:
                if fs.isdir(path):
                    fs.get(path, str(target), recursive=True)
                else:
                    fs.get_file(path, str(target))
        except MlbuildError:
            raise  # a full disk, named with the path
        except Exception as exc:  # DVC raises many types; none may leave a half-written dest
            from dvc.scm import SCMError

            if isinstance(exc, SCMError):
                raise _source_error(exc, repo, commit, dataset) from None
            raise DataError(
                f"dataset '{dataset}': downloading {path} from {repo} at {commit[:12]} failed: "
                f"{_first_line(exc)}; if its data is not on that repository's DVC remote, run "
                f"`dvc push` there"
            ) from None

    @_quiet_stdout
    def add(self, paths: list[str]) -> None:
        from dvc.exceptions import DvcException

        try:
            self.repo.add([str(self.root / p) for p in paths])
        except DvcException as exc:
            raise DataError(f"`dvc add` of {', '.join(paths)} failed: {_first_line(exc)}") from None

    @_quiet_stdout
    def push(self, paths: list[str], remote: str | None) -> int:
        """Upload ``paths`` to ``remote``; the number of files sent."""
        from dvc.config import NoRemoteError
        from dvc.exceptions import DvcException

        try:
            pushed = self.repo.push(targets=[str(self.root / p) for p in paths], remote=remote)
        except NoRemoteError:
            raise DataError(
                "no DVC remote to push to; add one (`dvc remote add -d NAME URL`) or pass --remote"
            ) from None
        except DvcException as exc:
            raise DataError(f"pushing {', '.join(paths)} failed: {_first_line(exc)}") from None
        return int(pushed or 0)

    def _import_fs(self, repo: str, rev: str | None, dataset: str) -> Any:
        from dvc.fs import DVCFileSystem
        from dvc.scm import SCMError

        url = str((self.root / repo).resolve()) if os.path.isdir(self.root / repo) else repo
        try:
            return DVCFileSystem(url=url, rev=rev)
        except (SCMError, OSError, ValueError) as exc:
            raise DataError(
                f"dataset '{dataset}': cannot open {repo} at {rev or 'its default branch'}: "
                f"{_first_line(exc)}"
            ) from None


FOLDER = "mlbuild"
# DVC config keys whose values are credentials: masked in every message about the remote
_CREDENTIAL = re.compile(r"secret|password|token|key|sas|connection_string|credential", re.I)


@dataclass(frozen=True)
class DvcRemote:
    """Where the remote cache goes in DVC remote ``name``."""

    name: str
    protocol: str  # "local", "s3", …
    path: str  # the folder: a local path, or "bucket/prefix/mlbuild"
    fs: Any  # the fsspec filesystem DVC opened (None for a local remote)
    secrets: list[str]


def dvc_remote(root: Path, name: str) -> DvcRemote:
    """The DVC remote ``name`` of the DVC repository at or above ``root``."""
    require("dvc.repo", "dvc", f"the remote cache dvc://{name}")
    from dvc.config import RemoteNotFoundError
    from dvc.exceptions import DvcException, NotDvcRepoError
    from dvc.repo import Repo

    try:
        repo = Repo(str(root))
    except NotDvcRepoError:
        raise DataError(
            f"dvc://{name} names a DVC remote, but {root} is not in a DVC repository; run "
            "`dvc init` and `dvc remote add`, or give the remote's URL"
        ) from None
    try:
        config = dict(repo.config["remote"].get(name) or {})
        remote = repo.cloud.get_remote(name)
    except RemoteNotFoundError:
        raise DataError(
            f"DVC has no remote named '{name}'; list them with `dvc remote list`"
        ) from None
    except DvcException as exc:
        raise DataError(f"cannot open DVC remote '{name}': {_first_line(exc)}") from None
    finally:
        repo.close()
    secrets = [str(v) for k, v in config.items() if _CREDENTIAL.search(k) and isinstance(v, str)]
    protocol = remote.fs.protocol if isinstance(remote.fs.protocol, str) else remote.fs.protocol[0]
    path = f"{str(remote.path).rstrip('/')}/{FOLDER}"
    if protocol == "local":
        return DvcRemote(name, "local", path, None, secrets)
    return DvcRemote(name, protocol, path, remote.fs.fs, secrets)


def _source_error(exc: Exception, repo: str, rev: str | None, dataset: str) -> DataError:
    """An import's source repository could not be cloned, or lacks the revision."""
    from dvc.scm import CloneError, RevError

    if isinstance(exc, RevError):
        return DataError(
            f"dataset '{dataset}': {repo} has no revision '{rev}'; fix `import.rev` (a tag, "
            "branch or commit of that repository)"
        )
    if isinstance(exc, CloneError):
        return DataError(
            f"dataset '{dataset}': the source repository {repo} is unreachable "
            f"({_root_cause(exc)}); check `import.repo` (a git URL, or a path relative to the "
            "recipe), the network and your git credentials"
        )
    return DataError(
        f"dataset '{dataset}': cannot open {repo} at {rev or 'its default branch'}: "
        f"{_first_line(exc)}"
    )


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's message: DVC wraps git's reason in 'SCM error'."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return _first_line(exc)


def _dvc_info_hash(info: dict[str, Any]) -> str:
    entry = info.get("dvc_info", {})
    return str(entry.get("md5") or entry.get("etag") or "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
