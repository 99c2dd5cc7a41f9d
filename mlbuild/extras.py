"""Optional dependencies: import what an extra provides, or say which ``pip install`` brings it.

mlbuild keeps installs lean with extras (``[serve]``, ``[dvc]``, ``[postgres]``, …), so a library
missing at import time is a user's setup, not a bug: it is reported with the command that fixes it
and exit code 2, never as an internal error. Only imports of mlbuild's own modules and of the
extras' libraries go through here — a module missing from a user's step or servable is theirs.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from mlbuild.errors import EXIT_USAGE, MlbuildError

# the name mlbuild is published under on PyPI; `mlbuild` there is an unrelated project
DISTRIBUTION = "mlbuild-engine"

# extra → the top-level modules it installs (pyproject.toml's optional-dependencies)
EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("uvicorn", "httptools", "orjson", "numpy", "sklearn", "joblib"),
    "dvc": ("dvc",),
    "postgres": ("psycopg2",),
    "search": ("optuna",),
    "docker": ("docker",),
    "k8s": ("kubernetes",),
    "remote": ("fsspec", "s3fs"),
}


class MissingExtraError(MlbuildError):
    """A library an optional feature needs is not installed."""

    exit_code = EXIT_USAGE


def install_command(extra: str) -> str:
    """``pip install 'mlbuild-engine[serve]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def missing_extra(extra: str, purpose: str, module: str) -> MissingExtraError:
    """The error for ``module`` missing when ``purpose`` needs ``extra``."""
    return MissingExtraError(
        f"{purpose} needs the '{module}' package, which is not installed; install it with "
        f"`{install_command(extra)}`"
    )


@contextmanager
def extra_needed(extra: str, purpose: str) -> Iterator[None]:
    """Turn a module missing inside the block into :class:`MissingExtraError` (a missing
    ``mlbuild`` module is a bug and stays an internal error)."""
    try:
        yield
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        if not top or top == "mlbuild":
            raise
        raise missing_extra(extra, purpose, top) from None


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` (a library of ``extra``), or raise :class:`MissingExtraError`."""
    with extra_needed(extra, purpose):
        return importlib.import_module(module)


def check_extra(extra: str, purpose: str) -> None:
    """Fail early, before any work, when a library of ``extra`` is missing; imports nothing."""
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):  # a broken install, or a stub without a spec
            found = None
        if found is None:
            raise missing_extra(extra, purpose, module)
