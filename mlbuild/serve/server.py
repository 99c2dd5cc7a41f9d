"""Run the prediction server on uvicorn: one process, or ``--workers N`` processes sharing the
socket (uvicorn's supervisor; each worker loads the model itself). Each process predicts on
``--threads`` threads with at most ``--queue`` more requests waiting, and reads each request's
headers within ``--header-timeout`` and its body within ``--body-timeout``.

SIGTERM or SIGINT (Ctrl-C) stops accepting connections, closes idle ones and lets every request
already received finish, for up to ``GRACE_SECONDS``; a second Ctrl-C stops at once.

The workers read their settings from a JSON file named by ``MLBUILD_SERVE_CONFIG``. The bearer
token is never written there, logged or put on a command line: the file names the environment
variable or the secret file it comes from, and each process reads it.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from mlbuild.errors import MlbuildError, UsageError
from mlbuild.serve.app import PredictionApp
from mlbuild.serve.resolve import ModelSource
from mlbuild.serve.runtime import ModelRuntime

CONFIG_ENV = "MLBUILD_SERVE_CONFIG"
GRACE_SECONDS = 30  # in-flight requests get this long to finish after SIGTERM


class ServeError(MlbuildError):
    """The server cannot start: the port is taken, the token is missing."""


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body: int = 8 * 1024 * 1024
    token_env: str | None = None
    token_file: str | None = None
    access_log: bool = False
    threads: int = 1
    queue: int = 64
    header_timeout: float = 10.0
    body_timeout: float = 30.0


def read_token(options: ServerOptions) -> str | None:
    """The bearer token from the named environment variable or secret file, if auth is on."""
    if options.token_env is not None:
        token = os.environ.get(options.token_env, "").strip()
        if not token:
            raise UsageError(
                f"--token-env {options.token_env}: the variable is not set or empty; export "
                "the token in it, or drop --token-env to serve without auth"
            )
        return token
    if options.token_file is not None:
        where = f"--token-file {options.token_file}"
        try:
            # bounded: a device (/dev/zero) or a wrong, huge file must not fill the memory
            with open(options.token_file, "rb") as f:
                raw = f.read(_TOKEN_FILE_LIMIT + 1)
        except OSError as exc:
            raise UsageError(f"{where}: {exc.strerror}") from None
        if len(raw) > _TOKEN_FILE_LIMIT:
            raise UsageError(
                f"{where}: the file is larger than {_TOKEN_FILE_LIMIT:,} bytes; it should hold "
                "only the token"
            )
        try:
            token = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise UsageError(
                f"{where}: the file is not UTF-8 text; it should hold only the token"
            ) from None
        if not token:
            raise UsageError(f"{where}: the file is empty")
        return token
    return None


# far above any bearer token (a JWT is a few KiB)
_TOKEN_FILE_LIMIT = 64 * 1024


def build_app(
    source: ModelSource, options: ServerOptions, metrics_dir: Path | None
) -> PredictionApp:
    app = PredictionApp(
        ModelRuntime.load(source),
        max_body=options.max_body,
        token=read_token(options),
        metrics_dir=metrics_dir,
        threads=options.threads,
        queue=options.queue,
        body_timeout=options.body_timeout,
    )
    # Everything loaded so far (modules, the model) lives as long as the process: keep it out of
    # the garbage collector's generations so that collections during requests stay cheap.
    gc.collect()
    gc.freeze()
    return app


def create_app() -> PredictionApp:
    """The app of one worker process (uvicorn's factory), from the file ``CONFIG_ENV`` names."""
    raw = json.loads(Path(os.environ[CONFIG_ENV]).read_text(encoding="utf-8"))
    options = ServerOptions(**raw["options"])
    return build_app(ModelSource.from_json(raw["source"]), options, Path(raw["metrics_dir"]))


def serve(
    source: ModelSource,
    options: ServerOptions,
    state_dir: Path,
    announce: Callable[[], None] = lambda: None,
) -> None:
    """Serve until SIGINT or SIGTERM, then finish in-flight requests and return.

    ``announce`` is called once the model has loaded, just before the server listens."""
    import uvicorn

    from mlbuild.serve.protocol import GuardedHttpProtocol

    read_token(options)  # fail before starting when the token is missing
    settings: dict[str, Any] = {
        "host": options.host,
        "port": options.port,
        "log_level": "warning",
        "access_log": options.access_log,
        "timeout_graceful_shutdown": GRACE_SECONDS,
        "server_header": False,
        "proxy_headers": False,
        # a class and its keyword, both picklable, so that --workers' processes get them too
        "http": functools.partial(GuardedHttpProtocol, header_timeout=options.header_timeout),
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    # Load the model here even for several workers: a model that cannot load fails now, with its
    # message, instead of in every worker.
    app: PredictionApp | None = build_app(source, options, None)
    if options.workers > 1:
        app = None
    announce()
    with _quiet_exit_signals():
        if app is not None:
            server = uvicorn.Server(uvicorn.Config(app, **settings))
            try:
                server.run()
            except SystemExit:
                raise ServeError(_bind_failure(options)) from None
            if not server.started:
                raise ServeError(_bind_failure(options))
            return
        run_dir = Path(tempfile.mkdtemp(dir=state_dir, prefix="run-"))
        metrics_dir = run_dir / "metrics"
        metrics_dir.mkdir()
        config_file = run_dir / "config.json"
        config_file.write_text(
            json.dumps(
                {
                    "source": source.to_json(),
                    "options": asdict(options),
                    "metrics_dir": str(metrics_dir),
                }
            ),
            encoding="utf-8",
        )
        os.environ[CONFIG_ENV] = str(config_file)
        try:
            uvicorn.run(
                "mlbuild.serve.server:create_app",
                factory=True,
                workers=options.workers,
                **settings,
            )
        except SystemExit:
            raise ServeError(_bind_failure(options)) from None
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)


def _bind_failure(options: ServerOptions) -> str:
    return (
        f"the server could not start on {options.host}:{options.port} (the log above says why; "
        "a port in use: pick another with --port)"
    )


class _quiet_exit_signals:
    """uvicorn re-raises SIGINT/SIGTERM once it has shut down gracefully; a stopped server is a
    normal end, so swallow them here instead of reporting an interruption."""

    def __enter__(self) -> None:
        self.saved = {
            sig: signal.signal(sig, self._ignore) for sig in (signal.SIGINT, signal.SIGTERM)
        }

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)

    @staticmethod
    def _ignore(signum: int, frame: FrameType | None) -> None:
        return None
