"""The Optuna adapter: storages, samplers, pruners and the study of a search.

Optuna's RDB storage is the distributed engine: workers on one machine or many share a study
through it, and a worker that dies is noticed by its missing heartbeat — its trial is failed and
retried with the same parameters (``RetryFailedTrialCallback``). We write no scheduler.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from mlbuild.errors import MlbuildError, UsageError
from mlbuild.extras import require
from mlbuild.search.spec import SearchSpec, heartbeat

PURPOSE = "mlbuild search"
DEFAULT_STORAGE = "search.db"  # in .mlbuild/
MAX_RETRY = 3  # a trial whose worker died is retried this often
_SCHEMA_RACE_RETRIES = 5


_loaded: list[Any] = []  # optuna, once set up: a trial asks for it several times


def optuna_module() -> Any:
    """``optuna``, or the error naming ``pip install 'mlbuild-engine[search]'``."""
    if _loaded:
        return _loaded[0]
    optuna = require("optuna", "search", PURPOSE)
    # mlbuild prints one line per trial, failed ones with their reason: Optuna's own warnings
    # about them (with tracebacks) would say it again
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # heartbeats and stale-trial retries are "experimental" in Optuna's words, and are what a
    # shared study needs: said once here, not on every trial
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    _loaded.append(optuna)
    return optuna


def storage_url(spec: SearchSpec, meta: Path) -> str:
    """The search's storage: the recipe's URL, else SQLite in the workspace's ``.mlbuild``."""
    if spec.storage:
        return spec.storage
    return f"sqlite:///{(meta / DEFAULT_STORAGE).absolute()}"


def display_url(url: str) -> str:
    """``url`` with any password masked, for messages (and the ``password=`` of a libpq URL)."""
    from mlbuild.masking import MASK, without_password

    return without_password(url, mask=MASK)


def open_storage(url: str, *, workers: bool = True) -> Any:
    """The RDB storage at ``url``; ``workers``: with the heartbeat that fails and retries the
    trials of a worker that died."""
    optuna = optuna_module()
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # several worker processes write one SQLite file: wait for the lock instead of failing
        engine = {"connect_args": {"timeout": 120}}
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if workers:
        beat = heartbeat()
        kwargs = {"heartbeat_interval": beat, "grace_period": 3 * beat}
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        if retry is not None:  # Optuna >= 4.9 names RetryFailedTrialCallback so
            kwargs["heartbeat_stale_trial_callback"] = retry(max_retry=MAX_RETRY)
        else:
            kwargs["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(
                max_retry=MAX_RETRY
            )
    try:
        storage = _create(optuna, engine_url(url), engine, kwargs)
    except ImportError as exc:  # Optuna wraps the driver's ModuleNotFoundError
        cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
        raise UsageError(
            f"the search storage {display_url(url)} needs the '{cause.name}' package; install "
            "it, or use postgresql:// (psycopg2: `pip install 'mlbuild-engine[postgres]'`)"
        ) from None
    except Exception as exc:  # SQLAlchemy's errors: a bad URL, a server that does not answer
        raise MlbuildError(
            f"cannot open the search storage {display_url(url)}: {_first_line(exc)}"
        ) from None
    return storage


def close_connections(storage: Any) -> None:
    """Close the storage's pooled connections; it opens new ones when used again. Before a
    fork: a child must never talk through a connection of its parent's (SQLite's and libpq's
    state would be shared by two processes)."""
    storage.engine.dispose()


def _create(optuna: Any, url: str, engine: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    """Optuna's RDB storage. Workers started together on an empty database all create Optuna's
    tables; on PostgreSQL all but one fail on the catalog's unique keys, and then find them made."""
    for attempt in range(_SCHEMA_RACE_RETRIES):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, **kwargs)
        except Exception as exc:
            if attempt + 1 == _SCHEMA_RACE_RETRIES or not _lost_schema_race(exc):
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _lost_schema_race(exc: BaseException) -> bool:
    """A unique or duplicate-table violation (PostgreSQL), or "already exists" (SQLite)."""
    code = getattr(getattr(exc, "orig", None), "pgcode", None)
    return code in ("23505", "42P07", "42710") or "already exists" in str(exc)


def engine_url(url: str) -> str:
    """``postgresql://`` with psycopg2, the driver the run store uses (``mlbuild-engine[postgres]``)
    where SQLAlchemy 2.1 would pick psycopg 3; a driver the URL names is kept."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg2://{rest}"
    return url


def worker_seed(spec: SearchSpec, worker: int, existing: int) -> int | None:
    """The seed of a worker's sampler: the recipe's for the first worker of a new study, so one
    seed gives one sequence of trials; shifted for every other worker and for a study that
    already holds trials, which would otherwise propose again what the first ones did. The grid
    sampler's seed shuffles the grid, and a grid point is named by its index in that order: every
    worker of a grid search keeps the one seed, or two would read one index as two points."""
    if spec.seed is None or spec.sampler == "grid":
        return spec.seed
    return (spec.seed + 7919 * worker + 104729 * existing) % 2**32


def sampler(spec: SearchSpec, seed: int | None = None) -> Any:
    """Optuna's sampler for the search (``optuna.samplers.BaseSampler``)."""
    optuna = optuna_module()
    samplers = optuna.samplers
    if spec.sampler == "grid":
        return samplers.GridSampler(spec.grid(), seed=seed)
    if spec.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    if spec.sampler == "cmaes":
        return samplers.CmaEsSampler(seed=seed)
    if spec.sampler == "nsga2":
        return samplers.NSGAIISampler(seed=seed)
    if spec.sampler == "qmc":
        return samplers.QMCSampler(seed=seed)
    return samplers.TPESampler(seed=seed)


def pruner(spec: SearchSpec) -> Any:
    pruners = optuna_module().pruners
    if spec.pruner == "hyperband":
        return pruners.HyperbandPruner()
    if spec.pruner == "successive_halving":
        return pruners.SuccessiveHalvingPruner()
    if spec.pruner == "median":
        return pruners.MedianPruner()
    return pruners.NopPruner()


def open_study(spec: SearchSpec, storage: Any, name: str, *, seed: int | None = None) -> Any:
    """The study ``name`` (an ``optuna.Study``) in ``storage``, created if new; its directions
    must be the search's. ``seed`` seeds its sampler (see :func:`worker_seed`)."""
    optuna = optuna_module()
    try:
        study = optuna.create_study(
            storage=storage,
            sampler=sampler(spec, seed),
            pruner=pruner(spec),
            study_name=name,
            directions=spec.directions,
            load_if_exists=True,
        )
    except ValueError as exc:  # directions that differ from the stored study's
        raise UsageError(
            f"study '{name}' exists with other objectives: {_first_line(exc)}; name a new "
            "study with `study:` in the search"
        ) from None
    stored = [d.name.lower() for d in study.directions]
    if stored != spec.directions:
        raise UsageError(
            f"study '{name}' was created to {', '.join(stored)}, but the search asks to "
            f"{', '.join(spec.directions)}; name a new study with `study:` in the search"
        )
    return study


def load_study(storage: Any, name: str) -> Any:
    """The stored study ``name`` (read-only use), or ``None`` if there is none."""
    optuna = optuna_module()
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    return study


def study_names(storage: Any, prefix: str) -> list[str]:
    """The names of the stored studies starting with ``prefix``, newest first."""
    summaries = optuna_module().get_all_study_summaries(storage, include_best_trial=False)
    found = [s for s in summaries if s.study_name.startswith(prefix)]
    found.sort(key=lambda s: (s.datetime_start is not None, s.datetime_start), reverse=True)
    return [s.study_name for s in found]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
